/**
 * The only module that reads `process.env`. Everything else receives a {@link Config}.
 *
 * Every variable has a default that runs the dev stack on one machine; `.env.example`
 * lists them all. A bad value never surfaces later as a stack trace: {@link loadConfig}
 * collects every problem and throws one {@link ConfigError} that names each variable.
 */
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  EASYPARCEL_API_VERSIONS,
  EASYPARCEL_DEFAULT_API_VERSION,
  easyParcelCodeTable,
} from './couriers/easyparcel-versions';

/** Shipment statuses that have a poll interval (terminal statuses stop polling). */
export const POLLED_STATUSES = [
  'PENDING',
  'INFO_RECEIVED',
  'IN_TRANSIT',
  'OUT_FOR_DELIVERY',
  'AVAILABLE_FOR_PICKUP',
  'ATTEMPT_FAIL',
  'EXCEPTION',
] as const;
export type PolledStatus = (typeof POLLED_STATUSES)[number];

/**
 * Where the process runs (`WAYBILL_ENV`). `development` (the default) accepts the published
 * development credentials so `npm start` works out of the box; `production` refuses them and
 * has no default for any credential. Behaviour never branches on `NODE_ENV`.
 */
export const WAYBILL_ENVS = ['development', 'production'] as const;
export type WaybillEnv = (typeof WAYBILL_ENVS)[number];

/** JWS algorithms a staff key may use, chosen by its key type (never by the token's header). */
export type StaffKeyAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

/** A key of the staff identity provider: public (verifies, in the API) or private (signs, `npm run token`). */
export interface StaffKey {
  /** The JWK `kid`; a staff token names its key in its header. */
  readonly kid: string;
  readonly alg: StaffKeyAlgorithm;
  /** SPKI (public) or PKCS#8 (private) PEM. */
  readonly pem: string;
}

export interface Config {
  readonly env: WaybillEnv;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly api: {
    readonly host: string;
    readonly port: number;
    /**
     * HS256 secret of customer bearer tokens (the shop's login signs them). Empty in
     * production when WAYBILL_JWT_SECRET is unset: no customer token verifies, and
     * {@link apiCredentialProblems} keeps the API from starting.
     */
    readonly jwtSecret: string;
    /** True while {@link jwtSecret} is the published development default. */
    readonly jwtSecretIsDefault: boolean;
    /** `iss` every customer token must carry. */
    readonly jwtIssuer: string;
    /** `aud` every bearer token (customer and staff) must carry. */
    readonly jwtAudience: string;
    /** A customer token older than this (from its `iat`) is refused whatever its `exp` (ms). */
    readonly jwtMaxAgeMs: number;
    /**
     * Public keys that verify staff tokens (admin, ops, support), from WAYBILL_STAFF_JWKS.
     * Staff tokens are signed by the staff identity provider's private key, which the API
     * never holds: nothing that can mint customer tokens can mint staff ones. Empty: staff
     * tokens are refused (API keys only).
     */
    readonly staffJwtKeys: readonly StaffKey[];
    readonly staffJwtKeysAreDefault: boolean;
    /** `iss` of staff tokens; it must differ from {@link jwtIssuer}. */
    readonly staffJwtIssuer: string;
    readonly staffJwtMaxAgeMs: number;
    /** SHA-256 (hex) of each admin API key accepted in `x-api-key`; the keys themselves are never stored. Empty: API keys are refused. */
    readonly adminApiKeyHashes: readonly string[];
    readonly adminApiKeyIsDefault: boolean;
    /** Requests per minute per client IP, all routes. */
    readonly rateLimitPerMinute: number;
    /** Guest lookups (order number + email/postcode) per minute per IP: wrong proofs are guesses. */
    readonly guestRateLimitPerMinute: number;
    /** How long `?refresh=true` waits for the shipment workflow's fresh poll before answering from cache (ms). */
    readonly refreshDeadlineMs: number;
    /**
     * Live refreshes per customer per {@link refreshQuotaWindowMs}: each parcel the API asks
     * its workflow to poll counts one (parcels inside the cooldown never reach the workflow
     * and count nothing). Kept in Postgres, so it holds across API processes. Admins have none.
     */
    readonly refreshQuota: number;
    readonly refreshQuotaWindowMs: number;
    // --- Freshness (src/domain/freshness.ts) ---
    /**
     * How the API judges a parcel's data against its workflow's `next_poll_at` (ms): a poll
     * may run `graceMs` late before the parcel reads stale; data not kept current and older
     * than `expiredAfterMs` reads expired.
     */
    readonly freshness: { readonly graceMs: number; readonly expiredAfterMs: number };
    // --- end of freshness ---
    /** Interval between SSE heartbeat comments on a tracking stream, so proxies keep it open (ms). */
    readonly streamHeartbeatMs: number;
    /** Tracking streams one caller (customer or staff member) may hold open at once, per API process. */
    readonly streamMaxPerCaller: number;
    /** Tracking streams one API process holds open at once, all callers together. */
    readonly streamMaxOpen: number;
    /** A tracking stream is ended after at most this long; the client reconnects with Last-Event-ID (ms). */
    readonly streamMaxLifetimeMs: number;
    /** HMAC-SHA256 secret per courier for `POST /v1/webhooks/couriers/:courier`; a courier without one is refused. */
    readonly courierWebhookSecrets: Readonly<Record<string, string>>;
    /** The courier of parcels from a warehouse `courierByWarehouse` does not name. */
    readonly defaultCourier: OrderCourier;
    /**
     * The courier each warehouse's parcels go with (WAYBILL_COURIER_BY_WAREHOUSE): the
     * server decides, never the customer. Keys are inventory locations (`ship from`).
     */
    readonly courierByWarehouse: Readonly<Record<string, OrderCourier>>;
    /** A webhook whose signed timestamp is older (or further ahead) than this is refused (ms). */
    readonly webhookMaxAgeMs: number;
    /** A pushed scan timed further ahead of our clock than this is refused (ms): it would stop no-scan expiry. */
    readonly pushMaxClockSkewMs: number;
    /**
     * Which proxies' X-Forwarded-For to believe for the client address (rate limits, logs):
     * false (none: the socket address), a hop count, or proxy addresses / CIDR ranges.
     */
    readonly trustProxy: boolean | number | readonly string[];
    /** The API's Prometheus endpoint listens here, apart from the public port; null when WAYBILL_METRICS_PORT is 0. */
    readonly metricsHost: string;
    readonly metricsPort: number | null;
    /** How long a new order's courier booking keeps retrying through a courier outage before the order fails (ms). */
    readonly bookingRetryWindowMs: number;
    /** Capture, void, refund and booking cancels retry through outages this long before the order is parked (NEEDS_ATTENTION). */
    readonly settleRetryWindowMs: number;
  };
  readonly database: {
    /** Connection string; when DATABASE_URL is unset this points at the embedded server. */
    readonly url: string;
    /** True when DATABASE_URL is unset: the dev stack runs an embedded Postgres. */
    readonly embedded: boolean;
    readonly embeddedPort: number;
    readonly poolMax: number;
  };
  readonly temporal: {
    readonly address: string;
    /** True when TEMPORAL_ADDRESS is set: use that server, start none. */
    readonly external: boolean;
    readonly namespace: string;
    readonly tls: boolean;
    readonly tlsCertPath: string | null;
    readonly tlsKeyPath: string | null;
    readonly apiKey: string | null;
    readonly uiPort: number;
    /** gRPC port of the dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
    readonly devPort: number;
    readonly cliPath: string | null;
    readonly taskQueue: string;
    readonly courierTaskQueue: string;
  };
  readonly courier: {
    readonly simulatorHost: string;
    /** Courier time per real time in the simulator (1 = real time; 1440 = a courier day per minute). */
    readonly simulatorTimeScale: number;
    readonly simulatorPort: number;
    readonly simulatorUrl: string;
    /** Calls per courier per UTC day; the shipment workflows wait for the next day beyond it. */
    readonly dailyBudget: number;
    /** Tracking calls per courier in flight at once on one worker (each carries up to a batch of polls). */
    readonly concurrency: number;
    /** Courier activities started per second across the courier task queue, per parcel a call may carry. */
    readonly callsPerSecond: number;
    /** One courier HTTP call gives up after this long (ms). */
    readonly timeoutMs: number;
    readonly easyParcel: {
      /** EasyParcel's root: `/oauth/token` and `/open_api/<apiVersion>/…` under it. */
      readonly baseUrl: string;
      /** The Open API version spoken (src/couriers/easyparcel-versions.ts). */
      readonly apiVersion: string;
      /** The status code table (`0-11` or `1-11`); null: the only one the version's docs showed. */
      readonly statusCodes: string | null;
      readonly clientId: string;
      readonly clientSecret: string;
      /** From the one-time OAuth authorisation of the app on the EasyParcel account. */
      readonly refreshToken: string;
      /** Most AWB numbers per tracking call. */
      readonly maxBatch: number;
    };
    readonly blueDart: { readonly baseUrl: string; readonly loginId: string; readonly licenceKey: string };
    // ---- Bulk tracking (issue 16) ----
    /** A courier's bulk tracking call waits this long for more polls to join (ms); 0: one call per poll. */
    readonly batchWindowMs: number;
  };
  readonly payments: {
    /** The payment provider's API; by default the payment simulator `npm start` runs. */
    readonly baseUrl: string;
    readonly apiKey: string | null;
    readonly host: string;
    readonly simulatorPort: number;
    readonly timeoutMs: number;
  };
  readonly notifications: {
    /** POST customer notifications here, signed with the secret; unset: the log transport. */
    readonly webhookUrl: string | null;
    readonly webhookSecret: string | null;
  };
  readonly polling: {
    /** Milliseconds to wait before the next poll, per current status. */
    readonly intervalMs: Readonly<Record<PolledStatus, number>>;
    /** Upper bound of the exponential backoff while the courier is unreachable (ms). */
    readonly backoffCapMs: number;
    /** No new scan for this long → EXPIRED (ms). */
    readonly expireAfterNoScanMs: number;
    /** Tracking stops after this age whatever the status (ms). */
    readonly maxAgeMs: number;
    /** A refresh polls a parcel's courier at most once per this long, whoever asks (ms). */
    readonly refreshCooldownMs: number;
    // ---- Bulk tracking (issue 16) ----
    /** EasyParcel's own polling, bulk calls in mind (src/poll-policy.ts): all in ms. */
    readonly easyParcel: {
      /** A moving parcel (pending to out for delivery, failed attempt, returning). */
      readonly intervalMs: number;
      /** At a counter, under investigation, or a day without a new scan. */
      readonly quietIntervalMs: number;
      /** Scheduled polls fall on multiples of this: polls due together share bulk calls. */
      readonly slotMs: number;
    };
  };
  readonly worker: {
    /** Where the worker serves Prometheus metrics (`/metrics`): Temporal's and Waybill's own. */
    readonly metricsHost: string;
    /** Null when WAYBILL_WORKER_METRICS_PORT is 0: no metrics endpoint. */
    readonly metricsPort: number | null;
  };
  /**
   * How much one worker process takes on at once (docs/benchmarks.md#worker-sizing has the
   * measurements the defaults come from). The sticky cache must hold every open workflow the
   * worker serves, and its heap (NODE_OPTIONS=--max-old-space-size) must hold the cache.
   */
  readonly workerSizing: {
    /** Workflows kept in memory between their tasks; one evicted is replayed from its history. */
    readonly maxCachedWorkflows: number;
    /** Workflow-task pollers and slots (main task queue). */
    readonly workflowTaskPollers: number;
    readonly workflowTaskSlots: number;
    /** Activity-task pollers and slots (main task queue: read-model writes, saga steps). */
    readonly activityTaskPollers: number;
    readonly activityTaskSlots: number;
    /** Activity-task pollers of the courier task queue (its slots: `courier.concurrency`). */
    readonly courierTaskPollers: number;
    /** The worker's Postgres pool: one connection per activity slot of both task queues. */
    readonly dbPoolMax: number;
    /**
     * A shipment workflow continues as new after this many polls: it bounds the history an
     * evicted workflow replays (open parcels beyond the cache are replayed at every poll).
     */
    readonly shipmentPollsPerRun: number;
  };
  readonly schedules: {
    /** The daily report runs this long after UTC midnight (ms), for the UTC day before. */
    readonly dailyReportOffsetMs: number;
    /** Housekeeping runs this often (ms). */
    readonly housekeepingEveryMs: number;
  };
  readonly housekeeping: {
    /** Finished shipments are archived (`archived_at`) this long after they finished (ms). */
    readonly archiveAfterMs: number;
    /** Personal data is scrubbed from stored raw courier payloads this long after a shipment finished (ms). */
    readonly scrubPersonalDataAfterMs: number;
    /** Rows one housekeeping activity handles at once. */
    readonly batchSize: number;
    /** Batches per step per housekeeping run: the bound on one run's work. */
    readonly maxBatches: number;
    /**
     * A PENDING order this old whose order workflow never started (the start failed and the
     * client did not retry) is closed as FAILED / NOT_STARTED (ms).
     */
    readonly orderStartGraceMs: number;
    /**
     * Finished `Idempotency-Key` records are deleted this long after the request (ms): a
     * retry with a pruned key is a new request. Keys of orders still PENDING are kept.
     */
    readonly pruneIdempotencyKeysAfterMs: number;
    /** Courier push dedupe rows (`courier_webhook_events`) are deleted this long after receipt (ms); longer than WAYBILL_WEBHOOK_MAX_AGE. */
    readonly pruneWebhookEventsAfterMs: number;
    /** Sent or given-up customer notifications are deleted this long after they were created (ms); pending ones never. */
    readonly pruneNotificationsAfterMs: number;
  };
  /**
   * The payload codec (src/codec): every payload Waybill's clients and workers send to Temporal
   * is sealed with AES-256-GCM under the active key; every listed key opens.
   */
  readonly payloads: {
    /** Key id → base64 of a 32-byte AES-256 key, from WAYBILL_PAYLOAD_KEYS. Empty in production when unset. */
    readonly keys: Readonly<Record<string, string>>;
    /** The key new payloads are sealed with (WAYBILL_PAYLOAD_KEY_ACTIVE). */
    readonly activeKeyId: string;
    /** True while the published development key is listed. */
    readonly keysAreDefault: boolean;
    /** Browser origins (the Temporal UI's) allowed to call the codec server with credentials. */
    readonly codecCorsOrigins: readonly string[];
    /** Codec server requests per minute per client address: the UI sends one per payload group. */
    readonly codecRateLimitPerMinute: number;
  };
  /** Only `npm run token` reads this: the private key that signs staff tokens in development and tests. */
  readonly tokens: {
    /** From WAYBILL_STAFF_JWT_SIGNING_KEY; in development the published development key; in production unset → null. */
    readonly staffSigningKey: StaffKey | null;
  };
  readonly paths: {
    /** Dev-stack state: Postgres data, Temporal SQLite file. */
    readonly dataDir: string;
    /** Cache outside the repo for the Temporal CLI build. */
    readonly cacheDir: string;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `500ms`, `90s`, `30m`, `6h`, `7d` (or a bare number of milliseconds). */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return null;
  const value = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  return Number.isFinite(value) && value > 0 ? Math.round(value) : null;
}

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optional(name: string): string | null {
    return this.raw(name) ?? null;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${text}")`);
      return fallback;
    }
    return value;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, 1, 65_535);
  }

  bool(name: string, fallback: boolean): boolean {
    const text = this.raw(name)?.toLowerCase();
    if (text === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    this.problems.push(`${name} must be true or false (got "${text}")`);
    return fallback;
  }

  duration(name: string, fallback: string): number {
    const text = this.raw(name) ?? fallback;
    const value = parseDuration(text);
    if (value === null) {
      this.problems.push(`${name} must be a duration such as 500ms, 90s, 30m, 6h or 7d (got "${text}")`);
      return parseDuration(fallback)!;
    }
    return value;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${text}")`);
      return fallback;
    }
    return text as T;
  }

  url(name: string, fallback: string, protocols: string[]): string {
    const text = this.raw(name) ?? fallback;
    try {
      const parsed = new URL(text);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
      }
    } catch {
      this.problems.push(`${name} must be a URL (got "${redactUrl(text)}")`);
    }
    return text;
  }
}

/** Hides the password of a connection string so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Development defaults, published in the README so the dev stack works out of the box.
 * The API logs a warning at start while any is in use; with WAYBILL_ENV=production every
 * one of them is refused, whether it is a default or set explicitly.
 */
export const DEV_JWT_SECRET = 'waybill-dev-jwt-secret-not-for-production';
export const DEV_ADMIN_API_KEY = 'waybill-dev-admin-key';
export const DEV_SIMULATOR_WEBHOOK_SECRET = 'waybill-dev-simulator-webhook-secret';
/** The published development staff key pair (EC P-256, ES256): `npm run token` signs with it. */
export const DEV_STAFF_JWK = {
  kty: 'EC',
  crv: 'P-256',
  kid: 'waybill-dev-staff',
  x: 'DEb9WFYUyka5cIAXaBLcHdEreW1am09wXYWxADZG1f4',
  y: 'S_mUQ0BlvgEFqmzpdfRJBZSsOVXUGVLc_GNS3fUP7Uw',
  d: 's6OcH-Y9rYiNTY49bl0bVV3fq8DDLOL1NMt-RmeADd8',
} as const;
/** The published development payload key (AES-256, base64) and its id: refused in production. */
export const DEV_PAYLOAD_KEY_ID = 'waybill-dev-1';
export const DEV_PAYLOAD_KEY = 'Aqwpgfj43NtlhwQphSpVvHWc9Lkay8ydWMOpbQK/tdU=';
export const DEFAULT_JWT_ISSUER = 'waybill-dev-shop';
export const DEFAULT_STAFF_JWT_ISSUER = 'waybill-dev-staff';
export const DEFAULT_JWT_AUDIENCE = 'waybill-api';

/** The algorithm a JWK's key type signs with; null for key types staff tokens do not use. */
function algorithmOf(jwk: JsonWebKey): StaffKeyAlgorithm | null {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return null;
}

/** The text of a JSON value given inline (starting with `{`) or as a path to a file holding it. */
function jsonValue(name: string, text: string, problems: string[]): unknown {
  let source = text;
  if (!text.startsWith('{')) {
    try {
      source = fs.readFileSync(text, 'utf8');
    } catch (err) {
      problems.push(
        `${name} must be inline JSON or a readable file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}: ${text})`,
      );
      return null;
    }
  }
  try {
    return JSON.parse(source);
  } catch {
    problems.push(`${name} is not valid JSON`);
    return null;
  }
}

/** One JWK as a {@link StaffKey}; names what is wrong with it otherwise. */
function staffKey(
  name: string,
  jwk: unknown,
  kind: 'public' | 'private',
  problems: string[],
): StaffKey | null {
  const key = (jwk ?? {}) as JsonWebKey & { kid?: unknown; alg?: unknown };
  const alg = typeof jwk === 'object' ? algorithmOf(key) : null;
  if (alg === null) {
    problems.push(`${name}: each key must be an EC P-256, RSA or Ed25519 JWK`);
    return null;
  }
  if (typeof key.kid !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(key.kid)) {
    problems.push(`${name}: each key needs a "kid" (letters, digits, . _ : -)`);
    return null;
  }
  if (key.alg !== undefined && key.alg !== alg) {
    problems.push(`${name}: key "${key.kid}" says alg ${String(key.alg)} but its key type signs ${alg}`);
    return null;
  }
  if (kind === 'public' && key.d !== undefined) {
    problems.push(`${name}: key "${key.kid}" is a private key; give the API public keys only (drop "d")`);
    return null;
  }
  try {
    const pem =
      kind === 'public'
        ? createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' })
        : createPrivateKey({ key, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
    return { kid: key.kid, alg, pem: String(pem) };
  } catch {
    problems.push(`${name}: key "${key.kid}" is not a valid ${kind} ${alg} key`);
    return null;
  }
}

/** A JWKS document (`{"keys":[…]}`) of public staff keys. */
function staffJwks(name: string, text: string, problems: string[]): StaffKey[] {
  const doc = jsonValue(name, text, problems) as { keys?: unknown } | null;
  if (doc === null) return [];
  if (!Array.isArray(doc.keys) || doc.keys.length === 0) {
    problems.push(`${name} must be a JWKS document: {"keys":[…]} with at least one key`);
    return [];
  }
  const keys = doc.keys.map((jwk) => staffKey(name, jwk, 'public', problems)).filter((k) => k !== null);
  const kids = keys.map((k) => k.kid);
  if (new Set(kids).size !== kids.length) problems.push(`${name}: every key needs its own kid`);
  return keys;
}

const DEV_STAFF_PUBLIC_JWKS = JSON.stringify({
  keys: [{ ...DEV_STAFF_JWK, d: undefined }],
});

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * WAYBILL_TRUST_PROXY: `false`, `true` (every hop: only when nothing but the proxy can reach
 * the API), a hop count, or comma-separated proxy addresses / CIDR ranges.
 */
function trustProxy(text: string, problems: string[]): boolean | number | string[] {
  const value = text.trim().toLowerCase();
  if (value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d{1,2}$/.test(value)) return Number(value);
  const entries = value.split(',').map((e) => e.trim());
  const valid = (entry: string) => {
    const [address, bits, ...rest] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || rest.length > 0) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  };
  if (entries.some((entry) => !valid(entry))) {
    problems.push(
      `WAYBILL_TRUST_PROXY must be false, true, a hop count or comma-separated proxy addresses / CIDR ranges (got "${text}")`,
    );
    return false;
  }
  return entries;
}

/** WAYBILL_PAYLOAD_KEYS: `id:base64key,id:base64key`, each key 32 bytes (AES-256). */
function payloadKeys(text: string, problems: string[]): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const entry of text.split(',').map((e) => e.trim())) {
    const [id, key, ...rest] = entry.split(':');
    if (!id || !/^[A-Za-z0-9._-]{1,64}$/.test(id) || key === undefined || rest.length > 0) {
      problems.push(
        'WAYBILL_PAYLOAD_KEYS must be comma-separated id:base64key pairs (ids: letters, digits, . _ -)',
      );
      return {};
    }
    const bytes = Buffer.from(key, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== key) {
      problems.push(`WAYBILL_PAYLOAD_KEYS: key "${id}" must be 32 bytes in base64 (openssl rand -base64 32)`);
      continue;
    }
    if (id in keys) problems.push(`WAYBILL_PAYLOAD_KEYS: key id "${id}" is listed twice`);
    keys[id] = key;
  }
  return keys;
}

/** WAYBILL_CODEC_CORS_ORIGINS: comma-separated origins (`scheme://host[:port]`, no path, no `*`). */
function origins(name: string, text: string, problems: string[]): string[] {
  const list = text
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of list) {
    let valid = false;
    try {
      const url = new URL(origin);
      valid = ['http:', 'https:'].includes(url.protocol) && url.origin === origin;
    } catch {
      valid = false;
    }
    if (!valid) {
      problems.push(
        `${name} must be comma-separated origins such as https://temporal.example.com (got "${origin}")`,
      );
    }
  }
  return list;
}

/** The couriers an order's parcels can be booked with. */
export const ORDER_COURIERS = ['easyparcel', 'bluedart', 'simulator'] as const;
export type OrderCourier = (typeof ORDER_COURIERS)[number];

/** WAYBILL_COURIER_BY_WAREHOUSE: `warehouse:courier` pairs, comma-separated (empty: none). */
function courierByWarehouse(text: string, problems: string[]): Record<string, OrderCourier> {
  const mapping: Record<string, OrderCourier> = Object.create(null);
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [warehouse, courier, ...rest] = entry.split(':').map((part) => part.trim());
    const known = (ORDER_COURIERS as readonly string[]).includes(courier ?? '');
    if (!warehouse || !/^[A-Za-z0-9_.-]{1,64}$/.test(warehouse) || !known || rest.length > 0) {
      problems.push(
        `WAYBILL_COURIER_BY_WAREHOUSE must be comma-separated warehouse:courier pairs with a courier among ${ORDER_COURIERS.join(', ')} (got "${entry}")`,
      );
      continue;
    }
    if (warehouse in mapping) {
      problems.push(`WAYBILL_COURIER_BY_WAREHOUSE names warehouse "${warehouse}" twice`);
      continue;
    }
    mapping[warehouse] = courier as OrderCourier;
  }
  return { ...mapping };
}

/** Parses a UTC time of day `HH:MM` into milliseconds after midnight. */
export function parseTimeOfDay(text: string): number | null {
  const match = /^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$/.exec(text);
  return match ? (Number(match[1]) * 60 + Number(match[2])) * 60_000 : null;
}

export const EMBEDDED_PG = { user: 'waybill', password: 'waybill', database: 'waybill' } as const;

/**
 * A copy of this process's environment with some variables replaced and others removed:
 * for starting a child process that reads its own configuration (`npm run demo` starts the
 * dev stack this way). Kept here so this stays the only module that reads `process.env`.
 */
export function environmentWith(
  set: Readonly<Record<string, string>>,
  unset: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !unset.includes(name)) env[name] = value;
  }
  return { ...env, ...set };
}

/** Reads, validates and freezes the configuration. Throws {@link ConfigError} naming every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);

  const dataDir = path.resolve(r.string('WAYBILL_DATA_DIR', '.data'));
  const xdgCache = r.optional('XDG_CACHE_HOME') ?? path.join(os.homedir(), '.cache');
  const cacheDir = path.resolve(r.string('WAYBILL_CACHE_DIR', path.join(xdgCache, 'waybill')));

  const embeddedPort = r.port('WAYBILL_PG_PORT', 54329);
  const embeddedUrl = `postgres://${EMBEDDED_PG.user}:${EMBEDDED_PG.password}@127.0.0.1:${embeddedPort}/${EMBEDDED_PG.database}`;
  const databaseUrl = r.has('DATABASE_URL')
    ? r.url('DATABASE_URL', embeddedUrl, ['postgres:', 'postgresql:'])
    : embeddedUrl;

  const temporalTls = r.bool('TEMPORAL_TLS', false);
  const temporalDevPort = r.port('TEMPORAL_DEV_PORT', 7233);
  const apiKey = r.optional('TEMPORAL_API_KEY');
  const certPath = r.optional('TEMPORAL_TLS_CERT_PATH');
  const keyPath = r.optional('TEMPORAL_TLS_KEY_PATH');
  if ((certPath === null) !== (keyPath === null)) {
    r.problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }

  const simulatorPort = r.port('COURIER_SIMULATOR_PORT', 4010);
  const simulatorUrl = r.url('COURIER_SIMULATOR_URL', `http://127.0.0.1:${simulatorPort}`, [
    'http:',
    'https:',
  ]);

  const paymentSimulatorPort = r.port('PAYMENT_SIMULATOR_PORT', 4020);
  const webhookUrl = r.has('WAYBILL_NOTIFY_WEBHOOK_URL')
    ? r.url('WAYBILL_NOTIFY_WEBHOOK_URL', 'http://localhost', ['http:', 'https:'])
    : null;
  const webhookSecret = r.optional('WAYBILL_NOTIFY_WEBHOOK_SECRET');
  if (webhookUrl !== null && (webhookSecret === null || webhookSecret.length < 16)) {
    r.problems.push(
      'WAYBILL_NOTIFY_WEBHOOK_SECRET must be set (16+ characters) when WAYBILL_NOTIFY_WEBHOOK_URL is',
    );
  }

  // WAYBILL_ENV decides; NODE_ENV never does. An image built with NODE_ENV=production and
  // no WAYBILL_ENV is a deployment that forgot to say: refuse rather than guess development.
  const waybillEnv = r.oneOf('WAYBILL_ENV', 'development', WAYBILL_ENVS);
  if (!r.has('WAYBILL_ENV') && env.NODE_ENV?.trim() === 'production') {
    r.problems.push(
      'WAYBILL_ENV must be set when NODE_ENV=production: production (refuses development credentials) or development',
    );
  }
  const production = waybillEnv === 'production';
  /** A published development value set explicitly in production: named, so the process stops. */
  const published = (name: string, what: string) =>
    r.problems.push(`${name} is the published development ${what}: set your own (WAYBILL_ENV=production)`);

  // In production no credential has a default: unset means that way in is off (empty).
  const jwtSecret = r.string('WAYBILL_JWT_SECRET', production ? '' : DEV_JWT_SECRET);
  if (jwtSecret !== '' && jwtSecret.length < 32)
    r.problems.push('WAYBILL_JWT_SECRET must be at least 32 characters');
  if (production && jwtSecret === DEV_JWT_SECRET) published('WAYBILL_JWT_SECRET', 'JWT secret');
  const jwtIssuer = r.string('WAYBILL_JWT_ISSUER', DEFAULT_JWT_ISSUER);
  const staffJwtIssuer = r.string('WAYBILL_STAFF_JWT_ISSUER', DEFAULT_STAFF_JWT_ISSUER);
  if (jwtIssuer === staffJwtIssuer) {
    r.problems.push(
      'WAYBILL_STAFF_JWT_ISSUER must differ from WAYBILL_JWT_ISSUER (staff and customer tokens are told apart by issuer)',
    );
  }

  const devStaffPublic = staffJwks('DEV_STAFF_JWK', DEV_STAFF_PUBLIC_JWKS, [])[0]!;
  const staffJwksText = r.optional('WAYBILL_STAFF_JWKS');
  const staffJwtKeys =
    staffJwksText !== null
      ? staffJwks('WAYBILL_STAFF_JWKS', staffJwksText, r.problems)
      : production
        ? []
        : [devStaffPublic];
  const staffJwtKeysAreDefault = staffJwtKeys.some((k) => k.pem === devStaffPublic.pem);
  if (production && staffJwtKeysAreDefault) published('WAYBILL_STAFF_JWKS', 'staff key');
  const signingKeyText = r.optional('WAYBILL_STAFF_JWT_SIGNING_KEY');
  const staffSigningKey =
    signingKeyText !== null
      ? staffKey(
          'WAYBILL_STAFF_JWT_SIGNING_KEY',
          jsonValue('WAYBILL_STAFF_JWT_SIGNING_KEY', signingKeyText, r.problems),
          'private',
          r.problems,
        )
      : production
        ? null
        : staffKey('DEV_STAFF_JWK', DEV_STAFF_JWK, 'private', []);
  const publicPemOf = (key: StaffKey) =>
    String(createPublicKey(key.pem).export({ type: 'spki', format: 'pem' }));
  if (production && staffSigningKey !== null && publicPemOf(staffSigningKey) === devStaffPublic.pem) {
    published('WAYBILL_STAFF_JWT_SIGNING_KEY', 'staff key');
  }

  const payloadKeysText = r.string(
    'WAYBILL_PAYLOAD_KEYS',
    production ? '' : `${DEV_PAYLOAD_KEY_ID}:${DEV_PAYLOAD_KEY}`,
  );
  const keys = payloadKeysText === '' ? {} : payloadKeys(payloadKeysText, r.problems);
  const keysAreDefault = Object.values(keys).includes(DEV_PAYLOAD_KEY);
  if (production && keysAreDefault) published('WAYBILL_PAYLOAD_KEYS', 'payload key');
  const keyIds = Object.keys(keys);
  const activeKeyId = r.string('WAYBILL_PAYLOAD_KEY_ACTIVE', keyIds.length === 1 ? keyIds[0]! : '');
  if (keyIds.length > 1 && !r.has('WAYBILL_PAYLOAD_KEY_ACTIVE')) {
    r.problems.push(
      `WAYBILL_PAYLOAD_KEY_ACTIVE must name the key that seals new payloads when WAYBILL_PAYLOAD_KEYS lists several (${keyIds.join(', ')})`,
    );
  } else if (keyIds.length > 0 && activeKeyId !== '' && !(activeKeyId in keys)) {
    r.problems.push(
      `WAYBILL_PAYLOAD_KEY_ACTIVE "${activeKeyId}" is not a key id of WAYBILL_PAYLOAD_KEYS (${keyIds.join(', ')})`,
    );
  }
  if (keyIds.length === 0 && r.has('WAYBILL_PAYLOAD_KEY_ACTIVE')) {
    r.problems.push('WAYBILL_PAYLOAD_KEY_ACTIVE is set but WAYBILL_PAYLOAD_KEYS lists no key');
  }
  const temporalUiPort = r.port('TEMPORAL_UI_PORT', 8233);

  const adminKeyHashes = r
    .string('WAYBILL_ADMIN_API_KEY_SHA256', production ? '' : sha256Hex(DEV_ADMIN_API_KEY))
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (adminKeyHashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
    r.problems.push(
      'WAYBILL_ADMIN_API_KEY_SHA256 must be comma-separated SHA-256 hex digests (64 hex characters each)',
    );
  }
  const adminApiKeyIsDefault = adminKeyHashes.includes(sha256Hex(DEV_ADMIN_API_KEY));
  if (production && adminApiKeyIsDefault) published('WAYBILL_ADMIN_API_KEY_SHA256', 'admin key');
  const webhookSecrets: Record<string, string> = {};
  for (const [courier, variable, secret] of [
    ['easyparcel', 'COURIER_WEBHOOK_SECRET_EASYPARCEL', r.optional('COURIER_WEBHOOK_SECRET_EASYPARCEL')],
    ['bluedart', 'COURIER_WEBHOOK_SECRET_BLUEDART', r.optional('COURIER_WEBHOOK_SECRET_BLUEDART')],
    [
      'simulator',
      'COURIER_WEBHOOK_SECRET_SIMULATOR',
      production
        ? r.optional('COURIER_WEBHOOK_SECRET_SIMULATOR')
        : r.string('COURIER_WEBHOOK_SECRET_SIMULATOR', DEV_SIMULATOR_WEBHOOK_SECRET),
    ],
  ] as const) {
    if (secret === null) continue;
    if (secret.length < 16) r.problems.push(`${variable} must be at least 16 characters`);
    if (production && secret === DEV_SIMULATOR_WEBHOOK_SECRET) published(variable, 'webhook secret');
    webhookSecrets[courier] = secret;
  }

  // By default every courier is the simulator speaking that courier's wire format.
  const easyParcel: Config['courier']['easyParcel'] = {
    baseUrl: r.url('EASYPARCEL_BASE_URL', `${simulatorUrl}/easyparcel`, ['http:', 'https:']),
    apiVersion: r.oneOf('EASYPARCEL_API_VERSION', EASYPARCEL_DEFAULT_API_VERSION, EASYPARCEL_API_VERSIONS),
    statusCodes: r.optional('EASYPARCEL_STATUS_CODES'),
    clientId: r.string('EASYPARCEL_CLIENT_ID', 'waybill-dev'),
    clientSecret: r.string('EASYPARCEL_CLIENT_SECRET', 'waybill-dev-secret'),
    refreshToken: r.string('EASYPARCEL_REFRESH_TOKEN', 'waybill-dev-refresh-token'),
    maxBatch: r.int('EASYPARCEL_TRACKING_BATCH', 50, 1, 100),
  };
  try {
    easyParcelCodeTable(easyParcel.apiVersion, easyParcel.statusCodes);
  } catch (err) {
    r.problems.push(`EASYPARCEL_STATUS_CODES: ${(err as Error).message}`);
  }

  const intervalMs: Record<PolledStatus, number> = {
    PENDING: r.duration('WAYBILL_POLL_PENDING', '6h'),
    INFO_RECEIVED: r.duration('WAYBILL_POLL_INFO_RECEIVED', '6h'),
    IN_TRANSIT: r.duration('WAYBILL_POLL_IN_TRANSIT', '2h'),
    OUT_FOR_DELIVERY: r.duration('WAYBILL_POLL_OUT_FOR_DELIVERY', '30m'),
    AVAILABLE_FOR_PICKUP: r.duration('WAYBILL_POLL_AVAILABLE_FOR_PICKUP', '6h'),
    ATTEMPT_FAIL: r.duration('WAYBILL_POLL_ATTEMPT_FAIL', '1h'),
    EXCEPTION: r.duration('WAYBILL_POLL_EXCEPTION', '1h'),
  };

  const dailyReportAt = r.string('WAYBILL_DAILY_REPORT_AT', '00:15');
  const dailyReportOffsetMs = parseTimeOfDay(dailyReportAt);
  if (dailyReportOffsetMs === null) {
    r.problems.push(`WAYBILL_DAILY_REPORT_AT must be a UTC time of day HH:MM (got "${dailyReportAt}")`);
  }
  const metricsPort = r.int('WAYBILL_WORKER_METRICS_PORT', 9464, 0, 65_535);
  const apiPort = r.port('WAYBILL_PORT', 3000);
  // Next to the API's own port by default, so stacks side by side (tests, benchmarks) never share one.
  const apiMetricsPort = r.int('WAYBILL_METRICS_PORT', Math.min(apiPort + 1, 65_535), 0, 65_535);
  if (apiMetricsPort === apiPort) r.problems.push('WAYBILL_METRICS_PORT must differ from WAYBILL_PORT');
  const orderStartGraceMs = r.duration('WAYBILL_ORDER_START_GRACE', '15m');
  if (orderStartGraceMs < 60_000) {
    // The create request holds its order's key for 30 s: a shorter grace could close an
    // order whose start is still under way.
    r.problems.push(`WAYBILL_ORDER_START_GRACE must be at least 1m (got "${orderStartGraceMs}ms")`);
  }

  const courierConcurrency = r.int('WAYBILL_COURIER_CONCURRENCY', 3, 1, 1000);
  const webhookMaxAgeMs = r.duration('WAYBILL_WEBHOOK_MAX_AGE', '5m');
  const pruneIdempotencyKeysAfterMs = r.duration('WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER', '7d');
  if (pruneIdempotencyKeysAfterMs < 3_600_000) {
    // Shoppers' apps retry a create for a while (offline phones); under an hour is no protection.
    r.problems.push(
      `WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER must be at least 1h (got "${pruneIdempotencyKeysAfterMs}ms")`,
    );
  }
  const pruneWebhookEventsAfterMs = r.duration('WAYBILL_PRUNE_WEBHOOK_EVENTS_AFTER', '30d');
  if (pruneWebhookEventsAfterMs <= webhookMaxAgeMs) {
    // A push is deduplicated by its row for as long as its signature is accepted: pruning
    // sooner would let a captured push be replayed and accepted as new.
    r.problems.push(
      `WAYBILL_PRUNE_WEBHOOK_EVENTS_AFTER must be longer than WAYBILL_WEBHOOK_MAX_AGE (got "${pruneWebhookEventsAfterMs}ms" and "${webhookMaxAgeMs}ms")`,
    );
  }

  const config: Config = {
    env: waybillEnv,
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const),
    api: {
      host: r.string('WAYBILL_HOST', '127.0.0.1'),
      port: apiPort,
      jwtSecret,
      jwtSecretIsDefault: jwtSecret === DEV_JWT_SECRET,
      jwtIssuer,
      jwtAudience: r.string('WAYBILL_JWT_AUDIENCE', DEFAULT_JWT_AUDIENCE),
      jwtMaxAgeMs: r.duration('WAYBILL_JWT_MAX_AGE', '24h'),
      staffJwtKeys,
      staffJwtKeysAreDefault,
      staffJwtIssuer,
      staffJwtMaxAgeMs: r.duration('WAYBILL_STAFF_JWT_MAX_AGE', '12h'),
      adminApiKeyHashes: adminKeyHashes,
      adminApiKeyIsDefault,
      rateLimitPerMinute: r.int('WAYBILL_RATE_LIMIT_PER_MINUTE', 600, 1, 10_000_000),
      guestRateLimitPerMinute: r.int('WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE', 10, 1, 100_000),
      refreshDeadlineMs: r.duration('WAYBILL_REFRESH_DEADLINE', '4s'),
      refreshQuota: r.int('WAYBILL_REFRESH_QUOTA', 20, 1, 1_000_000),
      refreshQuotaWindowMs: r.duration('WAYBILL_REFRESH_QUOTA_WINDOW', '1h'),
      // --- Freshness ---
      freshness: {
        graceMs: r.duration('WAYBILL_FRESHNESS_GRACE', '15m'),
        expiredAfterMs: r.duration('WAYBILL_FRESHNESS_EXPIRED_AFTER', '1d'),
      },
      // --- end of freshness ---
      streamHeartbeatMs: r.duration('WAYBILL_STREAM_HEARTBEAT', '15s'),
      streamMaxPerCaller: r.int('WAYBILL_STREAM_MAX_PER_CALLER', 5, 1, 10_000),
      streamMaxOpen: r.int('WAYBILL_STREAM_MAX_OPEN', 1000, 1, 1_000_000),
      streamMaxLifetimeMs: r.duration('WAYBILL_STREAM_MAX_LIFETIME', '30m'),
      courierWebhookSecrets: webhookSecrets,
      defaultCourier: r.oneOf('WAYBILL_DEFAULT_COURIER', 'simulator', ORDER_COURIERS),
      courierByWarehouse: courierByWarehouse(r.string('WAYBILL_COURIER_BY_WAREHOUSE', ''), r.problems),
      webhookMaxAgeMs,
      pushMaxClockSkewMs: r.duration('WAYBILL_PUSH_MAX_CLOCK_SKEW', '5m'),
      trustProxy: trustProxy(r.string('WAYBILL_TRUST_PROXY', 'false'), r.problems),
      metricsHost: r.string('WAYBILL_METRICS_HOST', '127.0.0.1'),
      metricsPort: apiMetricsPort === 0 ? null : apiMetricsPort,
      bookingRetryWindowMs: r.duration('WAYBILL_BOOKING_RETRY_WINDOW', '30m'),
      settleRetryWindowMs: r.duration('WAYBILL_SETTLE_RETRY_WINDOW', '1h'),
    },
    database: {
      url: databaseUrl,
      embedded: !r.has('DATABASE_URL'),
      embeddedPort,
      poolMax: r.int('WAYBILL_DB_POOL_MAX', 10, 1, 500),
    },
    temporal: {
      address: r.string('TEMPORAL_ADDRESS', `localhost:${temporalDevPort}`),
      external: r.has('TEMPORAL_ADDRESS'),
      namespace: r.string('TEMPORAL_NAMESPACE', 'default'),
      tls: temporalTls || apiKey !== null || certPath !== null,
      tlsCertPath: certPath,
      tlsKeyPath: keyPath,
      apiKey,
      uiPort: temporalUiPort,
      devPort: temporalDevPort,
      cliPath: r.optional('TEMPORAL_CLI_PATH'),
      taskQueue: r.string('WAYBILL_TASK_QUEUE', 'waybill'),
      courierTaskQueue: r.string('WAYBILL_COURIER_TASK_QUEUE', 'waybill-courier'),
    },
    courier: {
      simulatorHost: r.string('COURIER_SIMULATOR_HOST', '127.0.0.1'),
      simulatorTimeScale: r.int('COURIER_SIMULATOR_TIME_SCALE', 1, 1, 10_000_000),
      simulatorPort,
      simulatorUrl,
      dailyBudget: r.int('WAYBILL_COURIER_DAILY_BUDGET', 1000, 1, 10_000_000),
      concurrency: courierConcurrency,
      callsPerSecond: r.int('WAYBILL_COURIER_CALLS_PER_SECOND', 5, 1, 10_000),
      timeoutMs: r.duration('WAYBILL_COURIER_TIMEOUT', '10s'),
      easyParcel,
      blueDart: {
        baseUrl: r.url('BLUEDART_BASE_URL', `${simulatorUrl}/bluedart`, ['http:', 'https:']),
        loginId: r.string('BLUEDART_LOGIN_ID', 'waybill-dev'),
        licenceKey: r.string('BLUEDART_LICENCE_KEY', 'waybill-dev-licence'),
      },
      // ---- Bulk tracking (issue 16) ----
      batchWindowMs: r.duration('WAYBILL_COURIER_BATCH_WINDOW', '2s'),
    },
    payments: {
      baseUrl: r.url('PAYMENTS_BASE_URL', `http://127.0.0.1:${paymentSimulatorPort}`, ['http:', 'https:']),
      apiKey: r.optional('PAYMENTS_API_KEY'),
      host: r.string('PAYMENT_SIMULATOR_HOST', '127.0.0.1'),
      simulatorPort: paymentSimulatorPort,
      timeoutMs: r.duration('PAYMENTS_TIMEOUT', '10s'),
    },
    notifications: { webhookUrl, webhookSecret },
    polling: {
      intervalMs,
      backoffCapMs: r.duration('WAYBILL_POLL_BACKOFF_CAP', '6h'),
      expireAfterNoScanMs: r.duration('WAYBILL_EXPIRE_AFTER_NO_SCAN', '7d'),
      maxAgeMs: r.duration('WAYBILL_TRACKING_MAX_AGE', '60d'),
      refreshCooldownMs: r.duration('WAYBILL_REFRESH_COOLDOWN', '5m'),
      // ---- Bulk tracking (issue 16) ----
      easyParcel: {
        intervalMs: r.duration('EASYPARCEL_POLL_INTERVAL', '30m'),
        quietIntervalMs: r.duration('EASYPARCEL_POLL_QUIET_INTERVAL', '3h'),
        slotMs: r.duration('EASYPARCEL_POLL_SLOT', '15m'),
      },
    },
    worker: {
      metricsHost: r.string('WAYBILL_WORKER_METRICS_HOST', '127.0.0.1'),
      metricsPort: metricsPort === 0 ? null : metricsPort,
    },
    workerSizing: readWorkerSizing(r, courierConcurrency),
    schedules: {
      dailyReportOffsetMs: dailyReportOffsetMs ?? 15 * 60_000,
      housekeepingEveryMs: r.duration('WAYBILL_HOUSEKEEPING_EVERY', '1h'),
    },
    housekeeping: {
      archiveAfterMs: r.duration('WAYBILL_ARCHIVE_AFTER', '90d'),
      scrubPersonalDataAfterMs: r.duration('WAYBILL_SCRUB_PII_AFTER', '30d'),
      batchSize: r.int('WAYBILL_HOUSEKEEPING_BATCH', 200, 1, 10_000),
      maxBatches: r.int('WAYBILL_HOUSEKEEPING_MAX_BATCHES', 10, 1, 1_000),
      orderStartGraceMs,
      pruneIdempotencyKeysAfterMs,
      pruneWebhookEventsAfterMs,
      pruneNotificationsAfterMs: r.duration('WAYBILL_PRUNE_NOTIFICATIONS_AFTER', '90d'),
    },
    payloads: {
      keys,
      activeKeyId,
      keysAreDefault,
      codecCorsOrigins: origins(
        'WAYBILL_CODEC_CORS_ORIGINS',
        r.string(
          'WAYBILL_CODEC_CORS_ORIGINS',
          `http://localhost:${temporalUiPort},http://127.0.0.1:${temporalUiPort}`,
        ),
        r.problems,
      ),
      codecRateLimitPerMinute: r.int('WAYBILL_CODEC_RATE_LIMIT_PER_MINUTE', 6000, 1, 10_000_000),
    },
    tokens: { staffSigningKey },
    paths: { dataDir, cacheDir },
  };

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

/**
 * The worker's sizing (its own block: the figures behind each default are in
 * docs/benchmarks.md#worker-sizing). A poller count above its slots, or more workflow-task
 * slots than cached workflows, is refused here rather than silently clamped by the SDK.
 */
function readWorkerSizing(r: Reader, courierSlots: number): Config['workerSizing'] {
  const maxCachedWorkflows = r.int('WAYBILL_WORKER_CACHED_WORKFLOWS', 4_000, 0, 1_000_000);
  const workflowTaskSlots = r.int('WAYBILL_WORKER_WORKFLOW_SLOTS', 40, 2, 1_000);
  const workflowTaskPollers = r.int('WAYBILL_WORKER_WORKFLOW_POLLERS', 20, 2, 1_000);
  const activityTaskSlots = r.int('WAYBILL_WORKER_ACTIVITY_SLOTS', 20, 1, 1_000);
  const activityTaskPollers = r.int('WAYBILL_WORKER_ACTIVITY_POLLERS', 5, 1, 1_000);
  const courierTaskPollers = r.int('WAYBILL_COURIER_POLLERS', Math.min(5, courierSlots), 1, 1_000);
  // Each activity holds at most one connection at a time: one per slot, so none waits for one.
  const dbPoolMax = r.int('WAYBILL_WORKER_DB_POOL_MAX', activityTaskSlots + courierSlots, 1, 2_000);
  const atMost = (name: string, value: number, limitName: string, limit: number) => {
    if (value > limit) r.problems.push(`${name} (${value}) must not exceed ${limitName} (${limit})`);
  };
  atMost(
    'WAYBILL_WORKER_WORKFLOW_POLLERS',
    workflowTaskPollers,
    'WAYBILL_WORKER_WORKFLOW_SLOTS',
    workflowTaskSlots,
  );
  atMost(
    'WAYBILL_WORKER_ACTIVITY_POLLERS',
    activityTaskPollers,
    'WAYBILL_WORKER_ACTIVITY_SLOTS',
    activityTaskSlots,
  );
  atMost('WAYBILL_COURIER_POLLERS', courierTaskPollers, 'WAYBILL_COURIER_CONCURRENCY', courierSlots);
  if (maxCachedWorkflows > 0) {
    atMost(
      'WAYBILL_WORKER_WORKFLOW_SLOTS',
      workflowTaskSlots,
      'WAYBILL_WORKER_CACHED_WORKFLOWS',
      maxCachedWorkflows,
    );
  }
  const shipmentPollsPerRun = r.int('WAYBILL_SHIPMENT_POLLS_PER_RUN', 10, 1, 10_000);
  return {
    shipmentPollsPerRun,
    maxCachedWorkflows,
    workflowTaskPollers,
    workflowTaskSlots,
    activityTaskPollers,
    activityTaskSlots,
    courierTaskPollers,
    dbPoolMax,
  };
}

/**
 * Throws a {@link ConfigError} naming each credential the API lacks (production only:
 * development always has its published defaults). Other processes do not hold API
 * credentials, so they are not asked for them.
 */
export function assertApiCredentials(config: Config): void {
  if (config.env !== 'production') return;
  const problems: string[] = [];
  if (config.api.jwtSecret === '') {
    problems.push('WAYBILL_JWT_SECRET must be set (32+ characters) when WAYBILL_ENV=production');
  }
  if (config.api.staffJwtKeys.length === 0 && config.api.adminApiKeyHashes.length === 0) {
    problems.push(
      'WAYBILL_STAFF_JWKS or WAYBILL_ADMIN_API_KEY_SHA256 must be set when WAYBILL_ENV=production: with neither, no staff member can sign in',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** The published development credentials this configuration accepts (for the start-up warning). */
export function developmentCredentialsInUse(config: Config): string[] {
  return [
    ...(config.api.jwtSecretIsDefault ? ['WAYBILL_JWT_SECRET'] : []),
    ...(config.api.staffJwtKeysAreDefault ? ['WAYBILL_STAFF_JWKS'] : []),
    ...(config.api.adminApiKeyIsDefault ? ['WAYBILL_ADMIN_API_KEY_SHA256'] : []),
    ...(config.payloads.keysAreDefault ? ['WAYBILL_PAYLOAD_KEYS'] : []),
    ...(config.api.courierWebhookSecrets.simulator === DEV_SIMULATOR_WEBHOOK_SECRET
      ? ['COURIER_WEBHOOK_SECRET_SIMULATOR']
      : []),
  ];
}
