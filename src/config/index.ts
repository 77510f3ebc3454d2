/**
 * The only module that reads `process.env`. Everything else receives a {@link Config}.
 *
 * Every variable has a default that runs the dev stack on one machine; `.env.example`
 * lists them all. A bad value never surfaces later as a stack trace: {@link loadConfig}
 * collects every problem and throws one {@link ConfigError} that names each variable.
 *
 * The folder: `types.ts` (the {@link Config} shape), `parse.ts` (typed reading and value
 * parsers), `credentials.ts` (development credentials, keys, secrets and their checks),
 * `load.ts` (one reader per section), `worker-sizing.ts` (the worker's capacity block).
 */
export {
  assertApiCredentials,
  DEFAULT_JWT_AUDIENCE,
  DEFAULT_JWT_ISSUER,
  DEFAULT_STAFF_JWT_ISSUER,
  DEV_ADMIN_API_KEY,
  DEV_JWT_SECRET,
  DEV_PAYLOAD_KEY,
  DEV_PAYLOAD_KEY_ID,
  DEV_SIMULATOR_WEBHOOK_SECRET,
  DEV_STAFF_JWK,
  developmentCredentialsInUse,
  EMBEDDED_PG,
  sha256Hex,
} from './credentials';
export { environmentWith, loadConfig } from './load';
export { parseDuration, parseTimeOfDay, redactUrl } from './parse';
export {
  type Config,
  ConfigError,
  ORDER_COURIERS,
  type OrderCourier,
  POLLED_STATUSES,
  type PolledStatus,
  type StaffKey,
  type StaffKeyAlgorithm,
  WAYBILL_ENVS,
  type WaybillEnv,
} from './types';
