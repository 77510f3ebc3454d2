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
