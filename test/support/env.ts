import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';

/** Configuration pointing at the test servers started by the global setup. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    TEMPORAL_ADDRESS: process.env.WAYBILL_TEST_TEMPORAL_ADDRESS,
    DATABASE_URL: process.env.WAYBILL_TEST_PG_URL,
    LOG_LEVEL: 'warn',
    ...overrides,
  });
}

/** A quiet logger for tests (warnings and errors still print). */
export const testLog = pino({ level: process.env.WAYBILL_TEST_LOG_LEVEL ?? 'warn' });
