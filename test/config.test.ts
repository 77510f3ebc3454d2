import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  assertApiCredentials,
  ConfigError,
  DEV_ADMIN_API_KEY,
  DEV_JWT_SECRET,
  DEV_SIMULATOR_WEBHOOK_SECRET,
  DEV_STAFF_JWK,
  loadConfig,
  parseDuration,
  sha256Hex,
} from '../src/config';

/** Every published development credential, set explicitly. */
const PUBLISHED = {
  WAYBILL_JWT_SECRET: DEV_JWT_SECRET,
  WAYBILL_STAFF_JWKS: JSON.stringify({ keys: [{ ...DEV_STAFF_JWK, d: undefined, kid: 'renamed' }] }),
  WAYBILL_STAFF_JWT_SIGNING_KEY: JSON.stringify({ ...DEV_STAFF_JWK, kid: 'renamed' }),
  WAYBILL_ADMIN_API_KEY_SHA256: `${'a'.repeat(64)},${sha256Hex(DEV_ADMIN_API_KEY)}`,
  COURIER_WEBHOOK_SECRET_SIMULATOR: DEV_SIMULATOR_WEBHOOK_SECRET,
  COURIER_WEBHOOK_SECRET_EASYPARCEL: DEV_SIMULATOR_WEBHOOK_SECRET,
};

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('configuration', () => {
  it('runs on defaults with no environment at all', () => {
    const config = loadConfig({});
    expect(config.api.port).toBe(3000);
    expect(config.database.embedded).toBe(true);
    expect(config.database.url).toContain('127.0.0.1:54329');
    expect(config.temporal.external).toBe(false);
    expect(config.polling.intervalMs.OUT_FOR_DELIVERY).toBe(30 * 60_000);
    expect(config.courier.dailyBudget).toBe(1000);
  });

  it('is frozen, so no module can change it at run time', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.polling.intervalMs)).toBe(true);
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        WAYBILL_PORT: 'abc',
        WAYBILL_POLL_IN_TRANSIT: 'soon',
        DATABASE_URL: 'mysql://x/y',
        TEMPORAL_TLS: 'maybe',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/WAYBILL_PORT must be a whole number from 1 to 65535 \(got "abc"\)/);
    expect(problems.join('\n')).toMatch(/WAYBILL_POLL_IN_TRANSIT must be a duration/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL must start with postgres:\/\//);
    expect(problems.join('\n')).toMatch(/TEMPORAL_TLS must be true or false/);
  });

  it('treats a set DATABASE_URL or TEMPORAL_ADDRESS as "use that, start nothing"', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/w',
      TEMPORAL_ADDRESS: 'temporal:7233',
    });
    expect(config.database.embedded).toBe(false);
    expect(config.database.url).toBe('postgres://u:p@db:5432/w');
    expect(config.temporal.external).toBe(true);
    expect(config.temporal.address).toBe('temporal:7233');
  });

  it('refuses a notification webhook without a signing secret', () => {
    expect(() => loadConfig({ WAYBILL_NOTIFY_WEBHOOK_URL: 'https://shop.example/hook' })).toThrow(
      /WAYBILL_NOTIFY_WEBHOOK_SECRET must be set \(16\+ characters\) when WAYBILL_NOTIFY_WEBHOOK_URL is/,
    );
  });

  it('turns TLS on when an API key is given (Temporal Cloud)', () => {
    expect(loadConfig({ TEMPORAL_API_KEY: 'k' }).temporal.tls).toBe(true);
  });

  it('has defaults for the schedules, housekeeping and worker metrics, and reads them', () => {
    const defaults = loadConfig({});
    expect(defaults.worker).toEqual({ metricsHost: '127.0.0.1', metricsPort: 9464 });
    expect(defaults.schedules).toEqual({ dailyReportOffsetMs: 15 * 60_000, housekeepingEveryMs: 3_600_000 });
    expect(defaults.housekeeping).toEqual({
      archiveAfterMs: 90 * 86_400_000,
      scrubPersonalDataAfterMs: 30 * 86_400_000,
      batchSize: 200,
      maxBatches: 10,
      orderStartGraceMs: 15 * 60_000,
      pruneIdempotencyKeysAfterMs: 7 * 86_400_000,
      pruneWebhookEventsAfterMs: 30 * 86_400_000,
      pruneNotificationsAfterMs: 90 * 86_400_000,
      pruneEventsAfterMs: 30 * 86_400_000,
    });
    const set = loadConfig({
      WAYBILL_WORKER_METRICS_PORT: '0',
      WAYBILL_DAILY_REPORT_AT: '23:45',
      WAYBILL_HOUSEKEEPING_EVERY: '15m',
      WAYBILL_SCRUB_PII_AFTER: '14d',
    });
    expect(set.worker.metricsPort).toBeNull();
    expect(set.schedules).toEqual({
      dailyReportOffsetMs: (23 * 60 + 45) * 60_000,
      housekeepingEveryMs: 900_000,
    });
    expect(set.housekeeping.scrubPersonalDataAfterMs).toBe(14 * 86_400_000);
  });

  it('reads the pruning ages and refuses ones that would undo what the rows protect', () => {
    const set = loadConfig({
      WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER: '2d',
      WAYBILL_PRUNE_WEBHOOK_EVENTS_AFTER: '1d',
      WAYBILL_PRUNE_NOTIFICATIONS_AFTER: '30d',
      WAYBILL_PRUNE_EVENTS_AFTER: '7d',
    });
    expect([
      set.housekeeping.pruneIdempotencyKeysAfterMs,
      set.housekeeping.pruneWebhookEventsAfterMs,
      set.housekeeping.pruneNotificationsAfterMs,
      set.housekeeping.pruneEventsAfterMs,
    ]).toEqual([2 * 86_400_000, 86_400_000, 30 * 86_400_000, 7 * 86_400_000]);
    expect(() =>
      loadConfig({ WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER: '10m', WAYBILL_PRUNE_WEBHOOK_EVENTS_AFTER: '5m' }),
    ).toThrow(
      /WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER must be at least 1h[\s\S]*WAYBILL_PRUNE_WEBHOOK_EVENTS_AFTER must be longer than WAYBILL_WEBHOOK_MAX_AGE/,
    );
  });

  it('has defaults for the tracking stream caps and lifetime, and reads them', () => {
    const defaults = loadConfig({});
    expect([
      defaults.api.streamMaxPerCaller,
      defaults.api.streamMaxOpen,
      defaults.api.streamMaxLifetimeMs,
    ]).toEqual([5, 1000, 30 * 60_000]);
    const set = loadConfig({
      WAYBILL_STREAM_MAX_PER_CALLER: '2',
      WAYBILL_STREAM_MAX_OPEN: '50',
      WAYBILL_STREAM_MAX_LIFETIME: '5m',
    });
    expect([set.api.streamMaxPerCaller, set.api.streamMaxOpen, set.api.streamMaxLifetimeMs]).toEqual([
      2,
      50,
      5 * 60_000,
    ]);
  });

  it('has defaults for the refresh cooldown and quota, reads them, and refuses a start grace under a minute', () => {
    const defaults = loadConfig({});
    expect(defaults.polling.refreshCooldownMs).toBe(5 * 60_000);
    expect(defaults.api.refreshQuota).toBe(20);
    expect(defaults.api.refreshQuotaWindowMs).toBe(3_600_000);
    const set = loadConfig({
      WAYBILL_REFRESH_COOLDOWN: '2m',
      WAYBILL_REFRESH_QUOTA: '5',
      WAYBILL_REFRESH_QUOTA_WINDOW: '1d',
      WAYBILL_ORDER_START_GRACE: '1h',
    });
    expect([set.polling.refreshCooldownMs, set.api.refreshQuota, set.api.refreshQuotaWindowMs]).toEqual([
      120_000, 5, 86_400_000,
    ]);
    expect(set.housekeeping.orderStartGraceMs).toBe(3_600_000);
    expect(() => loadConfig({ WAYBILL_ORDER_START_GRACE: '30s' })).toThrow(
      'WAYBILL_ORDER_START_GRACE must be at least 1m (got "30000ms")',
    );
    expect(() => loadConfig({ WAYBILL_REFRESH_QUOTA: '0' })).toThrow(
      'WAYBILL_REFRESH_QUOTA must be a whole number from 1 to 1000000 (got "0")',
    );
  });

  it("waits 25 s for an admin's retry by default, and refuses a wait too short for the update or past the key's lock", () => {
    expect(loadConfig({}).api.adminActionWaitMs).toBe(25_000);
    expect(loadConfig({ WAYBILL_ADMIN_ACTION_WAIT: '5s' }).api.adminActionWaitMs).toBe(5_000);
    for (const wait of ['500ms', '30s'])
      expect(() => loadConfig({ WAYBILL_ADMIN_ACTION_WAIT: wait })).toThrow(
        `WAYBILL_ADMIN_ACTION_WAIT must be from 1s to 25s (got ${wait === '30s' ? 30_000 : 500} ms)`,
      );
  });

  it('finds a courier not answering after 5 s (or half a shorter timeout) by default, and refuses a threshold the call timeout would cut short', () => {
    expect(loadConfig({}).courier.slowAfterMs).toBe(5_000);
    expect(loadConfig({ WAYBILL_COURIER_SLOW_AFTER: '8s' }).courier.slowAfterMs).toBe(8_000);
    expect(problemsOf(() => loadConfig({ WAYBILL_COURIER_SLOW_AFTER: '10s' }))).toEqual([
      'WAYBILL_COURIER_SLOW_AFTER (10000 ms) must be below WAYBILL_COURIER_TIMEOUT (10000 ms): a courier request gives up at the timeout, so a courier that hangs would be found only then',
    ]);
    // A timeout under 10 s (set before this setting existed) takes half of it.
    expect(loadConfig({ WAYBILL_COURIER_TIMEOUT: '4s' }).courier.slowAfterMs).toBe(2_000);
    expect(
      loadConfig({ WAYBILL_COURIER_SLOW_AFTER: '10s', WAYBILL_COURIER_TIMEOUT: '30s' }).courier.slowAfterMs,
    ).toBe(10_000);
  });

  it("keeps a tenth of the courier's daily budget for bookings by default, and refuses a reserve that leaves polls nothing", () => {
    expect(loadConfig({}).courier).toMatchObject({ dailyBudget: 1000, bookingReserve: 100 });
    expect(loadConfig({ WAYBILL_COURIER_DAILY_BUDGET: '5' }).courier.bookingReserve).toBe(0);
    expect(loadConfig({ WAYBILL_COURIER_BOOKING_RESERVE: '0' }).courier.bookingReserve).toBe(0);
    expect(loadConfig({ WAYBILL_COURIER_BOOKING_RESERVE: '250' }).courier.bookingReserve).toBe(250);
    expect(problemsOf(() => loadConfig({ WAYBILL_COURIER_BOOKING_RESERVE: '1000' }))).toEqual([
      'WAYBILL_COURIER_BOOKING_RESERVE (1000) must be below WAYBILL_COURIER_DAILY_BUDGET (1000): polls get what the reserve leaves, and would get nothing',
    ]);
  });

  it('speaks EasyParcel 2026-06 with its 0-11 code table and 50-number batches by default, and reads the settings', () => {
    expect(loadConfig({}).courier.easyParcel).toMatchObject({
      apiVersion: '2026-06',
      statusCodes: null,
      refreshToken: 'waybill-dev-refresh-token',
      maxBatch: 50,
    });
    const set = loadConfig({
      EASYPARCEL_API_VERSION: '2026-03',
      EASYPARCEL_STATUS_CODES: '1-11',
      EASYPARCEL_REFRESH_TOKEN: 'rt',
      EASYPARCEL_TRACKING_BATCH: '100',
    });
    expect(set.courier.easyParcel).toMatchObject({
      apiVersion: '2026-03',
      statusCodes: '1-11',
      refreshToken: 'rt',
      maxBatch: 100,
    });
  });

  it("refuses to guess EasyParcel's code table, and an unknown version or batch size", () => {
    expect(() => loadConfig({ EASYPARCEL_API_VERSION: '2026-03' })).toThrow(
      /EASYPARCEL_STATUS_CODES: EasyParcel's 2026-03 docs published two status code tables/,
    );
    expect(() => loadConfig({ EASYPARCEL_STATUS_CODES: '1-11' })).toThrow(/publish only the 0-11/);
    expect(() => loadConfig({ EASYPARCEL_API_VERSION: '2024-01' })).toThrow(
      /EASYPARCEL_API_VERSION must be one of/,
    );
    expect(() => loadConfig({ EASYPARCEL_TRACKING_BATCH: '101' })).toThrow(
      /EASYPARCEL_TRACKING_BATCH must be a whole number from 1 to 100/,
    );
  });

  it("reads EasyParcel's booking settings, and refuses a service id or phone it cannot send", () => {
    expect(loadConfig({}).courier.easyParcel.shipping).toEqual({
      serviceId: 'EP-CS096',
      senderAddress: 'Waybill shop',
      senderPhone: '0123456789',
      receiverPhoneFallback: null,
    });
    const set = loadConfig({
      EASYPARCEL_SERVICE_ID: 'EP-CS0AP',
      EASYPARCEL_SENDER_ADDRESS: '3 Jalan Kedai, Shah Alam',
      EASYPARCEL_SENDER_PHONE: '+60 3-5555 0000',
      EASYPARCEL_RECEIVER_PHONE_FALLBACK: '0387654321',
    });
    expect(set.courier.easyParcel.shipping).toEqual({
      serviceId: 'EP-CS0AP',
      senderAddress: '3 Jalan Kedai, Shah Alam',
      senderPhone: '+60 3-5555 0000',
      receiverPhoneFallback: '0387654321',
    });
    expect(() => loadConfig({ EASYPARCEL_SERVICE_ID: 'EP-CS0AP-TOO-LONG' })).toThrow(
      /EASYPARCEL_SERVICE_ID: an EasyParcel service id/,
    );
    expect(() => loadConfig({ EASYPARCEL_RECEIVER_PHONE_FALLBACK: 'call the shop' })).toThrow(
      /EASYPARCEL_RECEIVER_PHONE_FALLBACK: a phone number/,
    );
  });

  it('reads the courier of each warehouse, and names each malformed or doubled entry', () => {
    expect(loadConfig({}).api.courierByWarehouse).toEqual({});
    expect(
      loadConfig({ WAYBILL_COURIER_BY_WAREHOUSE: ' wh-kl:easyparcel , wh-del:bluedart' }).api
        .courierByWarehouse,
    ).toEqual({ 'wh-kl': 'easyparcel', 'wh-del': 'bluedart' });
    expect(
      problemsOf(() =>
        loadConfig({ WAYBILL_COURIER_BY_WAREHOUSE: 'wh-kl:pigeon,wh-del,a:bluedart,a:simulator' }),
      ),
    ).toEqual([
      'WAYBILL_COURIER_BY_WAREHOUSE must be comma-separated warehouse:courier pairs with a courier among easyparcel, bluedart, simulator, fleet (got "wh-kl:pigeon")',
      'WAYBILL_COURIER_BY_WAREHOUSE must be comma-separated warehouse:courier pairs with a courier among easyparcel, bluedart, simulator, fleet (got "wh-del")',
      'WAYBILL_COURIER_BY_WAREHOUSE names warehouse "a" twice',
    ]);
  });

  it('names a daily report time that is not HH:MM', () => {
    expect(() => loadConfig({ WAYBILL_DAILY_REPORT_AT: '24:00' })).toThrow(
      'WAYBILL_DAILY_REPORT_AT must be a UTC time of day HH:MM (got "24:00")',
    );
    expect(() => loadConfig({ WAYBILL_WORKER_METRICS_PORT: '70000' })).toThrow(
      /WAYBILL_WORKER_METRICS_PORT must be a whole number from 0 to 65535/,
    );
  });

  it('parses durations with units', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('6h')).toBe(21_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0s')).toBeNull();
    expect(parseDuration('-1h')).toBeNull();
    expect(parseDuration('fast')).toBeNull();
  });

  describe('outside development (WAYBILL_ENV=production)', () => {
    it('refuses every published development credential, naming each', () => {
      const problems = problemsOf(() => loadConfig({ WAYBILL_ENV: 'production', ...PUBLISHED }));
      expect(problems).toEqual([
        'WAYBILL_JWT_SECRET is the published development JWT secret: set your own (WAYBILL_ENV=production)',
        'WAYBILL_STAFF_JWKS is the published development staff key: set your own (WAYBILL_ENV=production)',
        'WAYBILL_STAFF_JWT_SIGNING_KEY is the published development staff key: set your own (WAYBILL_ENV=production)',
        'WAYBILL_ADMIN_API_KEY_SHA256 is the published development admin key: set your own (WAYBILL_ENV=production)',
        'COURIER_WEBHOOK_SECRET_EASYPARCEL is the published development webhook secret: set your own (WAYBILL_ENV=production)',
        'COURIER_WEBHOOK_SECRET_SIMULATOR is the published development webhook secret: set your own (WAYBILL_ENV=production)',
      ]);
      // The same values are fine for development.
      expect(loadConfig({ ...PUBLISHED }).env).toBe('development');
    });

    it('gives no credential a default: the API needs its own, other processes need none', () => {
      const config = loadConfig({ WAYBILL_ENV: 'production' });
      expect(config.api).toMatchObject({
        jwtSecret: '',
        staffJwtKeys: [],
        adminApiKeyHashes: [],
        courierWebhookSecrets: {},
      });
      expect(config.tokens.staffSigningKey).toBeNull();
      expect(problemsOf(() => assertApiCredentials(config))).toEqual([
        'WAYBILL_JWT_SECRET must be set (32+ characters) when WAYBILL_ENV=production',
        'WAYBILL_STAFF_JWKS or WAYBILL_ADMIN_API_KEY_SHA256 must be set when WAYBILL_ENV=production: with neither, no staff member can sign in',
      ]);
      const own = loadConfig({
        WAYBILL_ENV: 'production',
        WAYBILL_JWT_SECRET: 'x'.repeat(40),
        WAYBILL_ADMIN_API_KEY_SHA256: sha256Hex('an-admin-key-of-our-own'),
      });
      expect(problemsOf(() => assertApiCredentials(own))).toEqual([]);
    });

    it('does not guess from NODE_ENV: NODE_ENV=production without WAYBILL_ENV is refused', () => {
      expect(problemsOf(() => loadConfig({ NODE_ENV: 'production' }))).toEqual([
        'WAYBILL_ENV must be set when NODE_ENV=production: production (refuses development credentials) or development',
      ]);
      expect(loadConfig({ NODE_ENV: 'production', WAYBILL_ENV: 'development' }).env).toBe('development');
      expect(problemsOf(() => loadConfig({ WAYBILL_ENV: 'staging' }))).toEqual([
        'WAYBILL_ENV must be one of development, production (got "staging")',
      ]);
    });

    it('stops the API process at start with one line naming each published credential', async () => {
      const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
        cwd: path.join(__dirname, '..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, WAYBILL_ENV: 'production', ...PUBLISHED },
      });
      const failure = (await run.then(
        () => null,
        (err: unknown) => err,
      )) as { code: number; stdout: string; stderr: string } | null;
      expect(failure).toMatchObject({ code: 1, stdout: '' });
      const lines = failure!.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      for (const name of Object.keys(PUBLISHED)) expect(lines[0]).toContain(`${name} is the published`);
      expect(lines[0]).toMatch(/^waybill: Invalid configuration: /);
    });
  });

  it('reads staff keys as a JWKS document and names what is wrong with one', () => {
    expect(
      problemsOf(() =>
        loadConfig({ WAYBILL_STAFF_JWKS: JSON.stringify({ keys: [{ ...DEV_STAFF_JWK, kid: 'private' }] }) }),
      ),
    ).toEqual([
      'WAYBILL_STAFF_JWKS: key "private" is a private key; give the API public keys only (drop "d")',
    ]);
    expect(problemsOf(() => loadConfig({ WAYBILL_STAFF_JWKS: '/no/such/jwks.json' }))).toEqual([
      'WAYBILL_STAFF_JWKS must be inline JSON or a readable file (ENOENT: /no/such/jwks.json)',
    ]);
    expect(problemsOf(() => loadConfig({ WAYBILL_STAFF_JWKS: '{"keys":[]}' }))).toEqual([
      'WAYBILL_STAFF_JWKS must be a JWKS document: {"keys":[…]} with at least one key',
    ]);
    expect(
      problemsOf(() => loadConfig({ WAYBILL_JWT_ISSUER: 'same', WAYBILL_STAFF_JWT_ISSUER: 'same' })),
    ).toEqual([
      'WAYBILL_STAFF_JWT_ISSUER must differ from WAYBILL_JWT_ISSUER (staff and customer tokens are told apart by issuer)',
    ]);
  });
});
