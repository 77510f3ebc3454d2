/**
 * {@link loadConfig}: one reader per section of {@link Config}, every problem collected
 * before one {@link ConfigError} names them all.
 */
import os from 'node:os';
import path from 'node:path';
import {
  EASYPARCEL_API_VERSIONS,
  EASYPARCEL_DEFAULT_API_VERSION,
  easyParcelCodeTable,
} from '../couriers/easyparcel-versions';
import { DEFAULT_SHIPPING } from '../couriers/easyparcel-orders';
import { defaultBookingReserve } from '../domain/polling';
import { type Credentials, DEFAULT_JWT_AUDIENCE, EMBEDDED_PG, readCredentials } from './credentials';
import {
  courierByWarehouse,
  deepFreeze,
  type Env,
  origins,
  parseTimeOfDay,
  parseNightWindow,
  Reader,
  trustProxy,
} from './parse';
import { type Config, ConfigError, ORDER_COURIERS, type PolledStatus, WAYBILL_ENVS } from './types';
import { readWorkerSizing } from './worker-sizing';

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
  const waybillEnv = readWaybillEnv(r, env);
  const credentials = readCredentials(r, waybillEnv === 'production');
  const api = readApi(r, credentials.api);
  const temporal = readTemporal(r);
  const courier = readCourier(r, credentials.payloads);

  const config: Config = {
    env: waybillEnv,
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const),
    api,
    database: readDatabase(r),
    temporal,
    courier,
    payments: readPayments(r),
    notifications: readNotifications(r),
    events: readEvents(r, waybillEnv === 'production'),
    polling: readPolling(r),
    worker: readWorker(r),
    workerSizing: readWorkerSizing(r, courier.concurrency),
    schedules: readSchedules(r),
    housekeeping: readHousekeeping(r, api.webhookMaxAgeMs),
    payloads: {
      ...credentials.payloads,
      codecCorsOrigins: origins(
        'WAYBILL_CODEC_CORS_ORIGINS',
        r.string(
          'WAYBILL_CODEC_CORS_ORIGINS',
          `http://localhost:${temporal.uiPort},http://127.0.0.1:${temporal.uiPort}`,
        ),
        r.problems,
      ),
      codecRateLimitPerMinute: r.int('WAYBILL_CODEC_RATE_LIMIT_PER_MINUTE', 6000, 1, 10_000_000),
    },
    tokens: credentials.tokens,
    paths: readPaths(r),
  };

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

function readWaybillEnv(r: Reader, env: Env): Config['env'] {
  // WAYBILL_ENV decides; NODE_ENV never does. An image built with NODE_ENV=production and
  // no WAYBILL_ENV is a deployment that forgot to say: refuse rather than guess development.
  const waybillEnv = r.oneOf('WAYBILL_ENV', 'development', WAYBILL_ENVS);
  if (!r.has('WAYBILL_ENV') && env.NODE_ENV?.trim() === 'production') {
    r.problems.push(
      'WAYBILL_ENV must be set when NODE_ENV=production: production (refuses development credentials) or development',
    );
  }
  return waybillEnv;
}

function readApi(r: Reader, credentials: Credentials['api']): Config['api'] {
  const apiPort = r.port('WAYBILL_PORT', 3000);
  // Next to the API's own port by default, so stacks side by side (tests, benchmarks) never share one.
  const apiMetricsPort = r.int('WAYBILL_METRICS_PORT', Math.min(apiPort + 1, 65_535), 0, 65_535);
  if (apiMetricsPort === apiPort) r.problems.push('WAYBILL_METRICS_PORT must differ from WAYBILL_PORT');
  const adminActionWaitMs = r.duration('WAYBILL_ADMIN_ACTION_WAIT', '25s');
  // At least long enough for the workflow to take the update; under the Idempotency-Key's
  // 30 s lock, so a repeat meanwhile is told the key is in use rather than joining as owner.
  if (adminActionWaitMs < 1_000 || adminActionWaitMs > 25_000)
    r.problems.push(`WAYBILL_ADMIN_ACTION_WAIT must be from 1s to 25s (got ${adminActionWaitMs} ms)`);
  return {
    host: r.string('WAYBILL_HOST', '127.0.0.1'),
    port: apiPort,
    jwtSecret: credentials.jwtSecret,
    jwtSecretIsDefault: credentials.jwtSecretIsDefault,
    jwtIssuer: credentials.jwtIssuer,
    jwtAudience: r.string('WAYBILL_JWT_AUDIENCE', DEFAULT_JWT_AUDIENCE),
    jwtMaxAgeMs: r.duration('WAYBILL_JWT_MAX_AGE', '24h'),
    staffJwtKeys: credentials.staffJwtKeys,
    staffJwtKeysAreDefault: credentials.staffJwtKeysAreDefault,
    staffJwtIssuer: credentials.staffJwtIssuer,
    staffJwtMaxAgeMs: r.duration('WAYBILL_STAFF_JWT_MAX_AGE', '12h'),
    adminApiKeyHashes: credentials.adminApiKeyHashes,
    adminApiKeyIsDefault: credentials.adminApiKeyIsDefault,
    rateLimitPerMinute: r.int('WAYBILL_RATE_LIMIT_PER_MINUTE', 600, 1, 10_000_000),
    guestRateLimitPerMinute: r.int('WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE', 10, 1, 100_000),
    rateLimitClients: r.int('WAYBILL_RATE_LIMIT_CLIENTS', 20_000, 100, 10_000_000),
    refreshDeadlineMs: r.duration('WAYBILL_REFRESH_DEADLINE', '4s'),
    adminActionWaitMs,
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
    courierWebhookSecrets: credentials.courierWebhookSecrets,
    easyParcelWebhookToken: credentials.easyParcelWebhookToken,
    defaultCourier: r.oneOf('WAYBILL_DEFAULT_COURIER', 'simulator', ORDER_COURIERS),
    courierByWarehouse: courierByWarehouse(r.string('WAYBILL_COURIER_BY_WAREHOUSE', ''), r.problems),
    webhookMaxAgeMs: r.duration('WAYBILL_WEBHOOK_MAX_AGE', '5m'),
    pushMaxClockSkewMs: r.duration('WAYBILL_PUSH_MAX_CLOCK_SKEW', '5m'),
    fleetSilentRunAfterMs: r.duration('WAYBILL_FLEET_SILENT_RUN_AFTER', '1h'),
    trustProxy: trustProxy(r.string('WAYBILL_TRUST_PROXY', 'false'), r.problems),
    metricsHost: r.string('WAYBILL_METRICS_HOST', '127.0.0.1'),
    metricsPort: apiMetricsPort === 0 ? null : apiMetricsPort,
    bookingRetryWindowMs: r.duration('WAYBILL_BOOKING_RETRY_WINDOW', '30m'),
    settleRetryWindowMs: r.duration('WAYBILL_SETTLE_RETRY_WINDOW', '1h'),
  };
}

function readDatabase(r: Reader): Config['database'] {
  const embeddedPort = r.port('WAYBILL_PG_PORT', 54329);
  const embeddedUrl = `postgres://${EMBEDDED_PG.user}:${EMBEDDED_PG.password}@127.0.0.1:${embeddedPort}/${EMBEDDED_PG.database}`;
  const databaseUrl = r.has('DATABASE_URL')
    ? r.url('DATABASE_URL', embeddedUrl, ['postgres:', 'postgresql:'])
    : embeddedUrl;
  return {
    url: databaseUrl,
    embedded: !r.has('DATABASE_URL'),
    embeddedPort,
    poolMax: r.int('WAYBILL_DB_POOL_MAX', 10, 1, 500),
  };
}

function readTemporal(r: Reader): Config['temporal'] {
  const temporalTls = r.bool('TEMPORAL_TLS', false);
  const temporalDevPort = r.port('TEMPORAL_DEV_PORT', 7233);
  const apiKey = r.optional('TEMPORAL_API_KEY');
  const certPath = r.optional('TEMPORAL_TLS_CERT_PATH');
  const keyPath = r.optional('TEMPORAL_TLS_KEY_PATH');
  if ((certPath === null) !== (keyPath === null)) {
    r.problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  return {
    address: r.string('TEMPORAL_ADDRESS', `localhost:${temporalDevPort}`),
    external: r.has('TEMPORAL_ADDRESS'),
    namespace: r.string('TEMPORAL_NAMESPACE', 'default'),
    tls: temporalTls || apiKey !== null || certPath !== null,
    tlsCertPath: certPath,
    tlsKeyPath: keyPath,
    apiKey,
    uiPort: r.port('TEMPORAL_UI_PORT', 8233),
    devPort: temporalDevPort,
    cliPath: r.optional('TEMPORAL_CLI_PATH'),
    taskQueue: r.string('WAYBILL_TASK_QUEUE', 'waybill'),
    courierTaskQueue: r.string('WAYBILL_COURIER_TASK_QUEUE', 'waybill-courier'),
  };
}

function readCourier(r: Reader, payloads: Credentials['payloads']): Config['courier'] {
  const simulatorPort = r.port('COURIER_SIMULATOR_PORT', 4010);
  const simulatorUrl = r.url('COURIER_SIMULATOR_URL', `http://127.0.0.1:${simulatorPort}`, [
    'http:',
    'https:',
  ]);
  const timeoutMs = r.duration('WAYBILL_COURIER_TIMEOUT', '10s');
  // A healthy courier answers a bulk call in a second or two; the polls waiting on one that
  // does not are put off from here on (src/couriers/batcher.ts), not held until the timeout.
  // 5 s, or half a shorter timeout.
  const slowAfterMs = r.duration(
    'WAYBILL_COURIER_SLOW_AFTER',
    `${Math.max(1, Math.min(5_000, Math.floor(timeoutMs / 2)))}ms`,
  );
  if (slowAfterMs >= timeoutMs) {
    r.problems.push(
      `WAYBILL_COURIER_SLOW_AFTER (${slowAfterMs} ms) must be below WAYBILL_COURIER_TIMEOUT (${timeoutMs} ms): a courier request gives up at the timeout, so a courier that hangs would be found only then`,
    );
  }
  const dailyBudget = r.int('WAYBILL_COURIER_DAILY_BUDGET', 1000, 1, 10_000_000);
  // Polls stop short of the budget by this much, so the day's orders can still be booked.
  const bookingReserve = r.int(
    'WAYBILL_COURIER_BOOKING_RESERVE',
    defaultBookingReserve(dailyBudget),
    0,
    10_000_000,
  );
  if (bookingReserve >= dailyBudget) {
    r.problems.push(
      `WAYBILL_COURIER_BOOKING_RESERVE (${bookingReserve}) must be below WAYBILL_COURIER_DAILY_BUDGET (${dailyBudget}): polls get what the reserve leaves, and would get nothing`,
    );
  }
  return {
    simulatorHost: r.string('COURIER_SIMULATOR_HOST', '127.0.0.1'),
    simulatorTimeScale: r.int('COURIER_SIMULATOR_TIME_SCALE', 1, 1, 10_000_000),
    simulatorPort,
    simulatorUrl,
    dailyBudget,
    bookingReserve,
    concurrency: r.int('WAYBILL_COURIER_CONCURRENCY', 3, 1, 1000),
    callsPerSecond: r.int('WAYBILL_COURIER_CALLS_PER_SECOND', 5, 1, 10_000),
    requestsPerSecond: r.int('WAYBILL_COURIER_REQUESTS_PER_SECOND', 10, 1, 10_000),
    timeoutMs,
    slowAfterMs,
    easyParcel: readEasyParcel(r, simulatorUrl, payloads),
    blueDart: {
      baseUrl: r.url('BLUEDART_BASE_URL', `${simulatorUrl}/bluedart`, ['http:', 'https:']),
      loginId: r.string('BLUEDART_LOGIN_ID', 'waybill-dev'),
      licenceKey: r.string('BLUEDART_LICENCE_KEY', 'waybill-dev-licence'),
    },
    // ---- Bulk tracking (issue 16) ----
    batchWindowMs: r.duration('WAYBILL_COURIER_BATCH_WINDOW', '2s'),
  };
}

function readEasyParcel(
  r: Reader,
  simulatorUrl: string,
  payloads: Credentials['payloads'],
): Config['courier']['easyParcel'] {
  // By default every courier is the simulator speaking that courier's wire format.
  const easyParcel: Config['courier']['easyParcel'] = {
    baseUrl: r.url('EASYPARCEL_BASE_URL', `${simulatorUrl}/easyparcel`, ['http:', 'https:']),
    apiVersion: r.oneOf('EASYPARCEL_API_VERSION', EASYPARCEL_DEFAULT_API_VERSION, EASYPARCEL_API_VERSIONS),
    statusCodes: r.optional('EASYPARCEL_STATUS_CODES'),
    clientId: r.string('EASYPARCEL_CLIENT_ID', 'waybill-dev'),
    clientSecret: r.string('EASYPARCEL_CLIENT_SECRET', 'waybill-dev-secret'),
    refreshToken: r.string('EASYPARCEL_REFRESH_TOKEN', 'waybill-dev-refresh-token'),
    maxBatch: r.int('EASYPARCEL_TRACKING_BATCH', 50, 1, 100),
    // The token pair shared in Postgres is sealed at rest with the payload keys.
    tokenKeys: { keys: payloads.keys, activeKeyId: payloads.activeKeyId },
    shipping: {
      serviceId: r.string('EASYPARCEL_SERVICE_ID', DEFAULT_SHIPPING.serviceId),
      senderAddress: r.string('EASYPARCEL_SENDER_ADDRESS', DEFAULT_SHIPPING.senderAddress),
      senderPhone: r.string('EASYPARCEL_SENDER_PHONE', DEFAULT_SHIPPING.senderPhone),
      receiverPhoneFallback: r.optional('EASYPARCEL_RECEIVER_PHONE_FALLBACK'),
    },
  };
  const { shipping } = easyParcel;
  // EasyParcel's service_id is string(10), e.g. EP-CS096 (its rate check names the services).
  if (!/^[A-Za-z0-9-]{1,10}$/.test(shipping.serviceId)) {
    r.problems.push('EASYPARCEL_SERVICE_ID: an EasyParcel service id, e.g. EP-CS096 (at most 10 characters)');
  }
  const phones = [
    ['EASYPARCEL_SENDER_PHONE', shipping.senderPhone],
    ['EASYPARCEL_RECEIVER_PHONE_FALLBACK', shipping.receiverPhoneFallback],
  ] as const;
  for (const [name, phone] of phones) {
    if (phone !== null && !/^\+?[\d\s-]{7,20}$/.test(phone)) {
      r.problems.push(`${name}: a phone number, e.g. +60123456789 or 0123456789`);
    }
  }
  try {
    easyParcelCodeTable(easyParcel.apiVersion, easyParcel.statusCodes);
  } catch (err) {
    r.problems.push(`EASYPARCEL_STATUS_CODES: ${(err as Error).message}`);
  }
  return easyParcel;
}

function readPayments(r: Reader): Config['payments'] {
  const paymentSimulatorPort = r.port('PAYMENT_SIMULATOR_PORT', 4020);
  return {
    baseUrl: r.url('PAYMENTS_BASE_URL', `http://127.0.0.1:${paymentSimulatorPort}`, ['http:', 'https:']),
    apiKey: r.optional('PAYMENTS_API_KEY'),
    host: r.string('PAYMENT_SIMULATOR_HOST', '127.0.0.1'),
    simulatorPort: paymentSimulatorPort,
    timeoutMs: r.duration('PAYMENTS_TIMEOUT', '10s'),
  };
}

function readNotifications(r: Reader): Config['notifications'] {
  const webhookUrl = r.has('WAYBILL_NOTIFY_WEBHOOK_URL')
    ? r.url('WAYBILL_NOTIFY_WEBHOOK_URL', 'http://localhost', ['http:', 'https:'])
    : null;
  const webhookSecret = r.optional('WAYBILL_NOTIFY_WEBHOOK_SECRET');
  if (webhookUrl !== null && (webhookSecret === null || webhookSecret.length < 16)) {
    r.problems.push(
      'WAYBILL_NOTIFY_WEBHOOK_SECRET must be set (16+ characters) when WAYBILL_NOTIFY_WEBHOOK_URL is',
    );
  }
  return { webhookUrl, webhookSecret };
}

// ---- Domain events out (issue 18) ----
function readEvents(r: Reader, production: boolean): Config['events'] {
  return {
    pollIntervalMs: r.duration('WAYBILL_EVENTS_POLL_INTERVAL', '1s'),
    retryBaseMs: r.duration('WAYBILL_EVENTS_RETRY_BASE', '10s'),
    retryMaxMs: r.duration('WAYBILL_EVENTS_RETRY_MAX', '1h'),
    disableAfterFailures: r.int('WAYBILL_EVENTS_DISABLE_AFTER', 20, 1, 10_000),
    timeoutMs: r.duration('WAYBILL_EVENTS_TIMEOUT', '10s'),
    allowPlainHttp: r.bool('WAYBILL_EVENTS_ALLOW_HTTP', !production),
  };
}

function readPolling(r: Reader): Config['polling'] {
  const intervalMs: Record<PolledStatus, number> = {
    PENDING: r.duration('WAYBILL_POLL_PENDING', '6h'),
    INFO_RECEIVED: r.duration('WAYBILL_POLL_INFO_RECEIVED', '6h'),
    IN_TRANSIT: r.duration('WAYBILL_POLL_IN_TRANSIT', '2h'),
    OUT_FOR_DELIVERY: r.duration('WAYBILL_POLL_OUT_FOR_DELIVERY', '30m'),
    AVAILABLE_FOR_PICKUP: r.duration('WAYBILL_POLL_AVAILABLE_FOR_PICKUP', '6h'),
    ATTEMPT_FAIL: r.duration('WAYBILL_POLL_ATTEMPT_FAIL', '1h'),
    EXCEPTION: r.duration('WAYBILL_POLL_EXCEPTION', '1h'),
  };
  return {
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
      quietSlotMs: r.duration('EASYPARCEL_POLL_QUIET_SLOT', '3h'),
      night: readNight(r, 'EASYPARCEL_POLL_NIGHT', '22:00-07:00'),
      push: {
        fallbackIntervalMs: r.duration('EASYPARCEL_PUSH_FALLBACK_INTERVAL', '3h'),
        quietAfterMs: r.duration('EASYPARCEL_PUSH_QUIET_AFTER', '1d'),
      },
    },
  };
}

/** A courier's night in its local time (`HH:MM-HH:MM`, or `off`). */
function readNight(
  r: Reader,
  name: string,
  fallback: string,
): { fromMinute: number; toMinute: number } | null {
  const text = r.string(name, fallback);
  const night = parseNightWindow(text);
  if (night !== undefined) return night;
  r.problems.push(`${name} must be a local time window HH:MM-HH:MM or off (got "${text}")`);
  return parseNightWindow(fallback) ?? null;
}

function readWorker(r: Reader): Config['worker'] {
  const metricsPort = r.int('WAYBILL_WORKER_METRICS_PORT', 9464, 0, 65_535);
  return {
    metricsHost: r.string('WAYBILL_WORKER_METRICS_HOST', '127.0.0.1'),
    metricsPort: metricsPort === 0 ? null : metricsPort,
  };
}

function readSchedules(r: Reader): Config['schedules'] {
  const dailyReportAt = r.string('WAYBILL_DAILY_REPORT_AT', '00:15');
  const dailyReportOffsetMs = parseTimeOfDay(dailyReportAt);
  if (dailyReportOffsetMs === null) {
    r.problems.push(`WAYBILL_DAILY_REPORT_AT must be a UTC time of day HH:MM (got "${dailyReportAt}")`);
  }
  return {
    dailyReportOffsetMs: dailyReportOffsetMs ?? 15 * 60_000,
    housekeepingEveryMs: r.duration('WAYBILL_HOUSEKEEPING_EVERY', '1h'),
  };
}

function readHousekeeping(r: Reader, webhookMaxAgeMs: number): Config['housekeeping'] {
  const orderStartGraceMs = r.duration('WAYBILL_ORDER_START_GRACE', '15m');
  if (orderStartGraceMs < 60_000) {
    // The create request holds its order's key for 30 s: a shorter grace could close an
    // order whose start is still under way.
    r.problems.push(`WAYBILL_ORDER_START_GRACE must be at least 1m (got "${orderStartGraceMs}ms")`);
  }
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
  return {
    archiveAfterMs: r.duration('WAYBILL_ARCHIVE_AFTER', '90d'),
    scrubPersonalDataAfterMs: r.duration('WAYBILL_SCRUB_PII_AFTER', '30d'),
    batchSize: r.int('WAYBILL_HOUSEKEEPING_BATCH', 200, 1, 10_000),
    maxBatches: r.int('WAYBILL_HOUSEKEEPING_MAX_BATCHES', 10, 1, 1_000),
    orderStartGraceMs,
    pruneIdempotencyKeysAfterMs,
    pruneWebhookEventsAfterMs,
    pruneNotificationsAfterMs: r.duration('WAYBILL_PRUNE_NOTIFICATIONS_AFTER', '90d'),
    pruneEventsAfterMs: r.duration('WAYBILL_PRUNE_EVENTS_AFTER', '30d'),
  };
}

function readPaths(r: Reader): Config['paths'] {
  const dataDir = path.resolve(r.string('WAYBILL_DATA_DIR', '.data'));
  const xdgCache = r.optional('XDG_CACHE_HOME') ?? path.join(os.homedir(), '.cache');
  const cacheDir = path.resolve(r.string('WAYBILL_CACHE_DIR', path.join(xdgCache, 'waybill')));
  return { dataDir, cacheDir };
}
