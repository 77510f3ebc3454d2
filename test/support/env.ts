import pino from 'pino';
import { resolveTemporalCli } from '../../devstack/temporal-cli';
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

/** The Temporal CLI binary the test servers run (for a test that runs it itself). */
export async function testTemporalCliPath(): Promise<string> {
  const config = testConfig();
  const cli = await resolveTemporalCli({
    cliPath: config.temporal.cliPath,
    cacheDir: config.paths.cacheDir,
    log: () => undefined,
  });
  if (cli.executable.type !== 'existing-path') throw new Error('this test runs the Temporal CLI itself');
  return cli.executable.path;
}
