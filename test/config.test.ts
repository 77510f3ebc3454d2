import { ConfigError, loadConfig, parseDuration } from '../src/config';

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
});
