/**
 * Entry-point plumbing shared by every executable (stack, API, worker, migrate): expected
 * startup failures end with one line naming the problem; only real bugs print a stack.
 */
import { sql, type Kysely } from 'kysely';
import { ConfigError, redactUrl } from './config';

/** A startup problem the user can fix (bad config, unreachable dependency). */
export class StartupError extends Error {
  override name = 'StartupError';
}

const EXPECTED = new Set(['ConfigError', 'StartupError', 'MigrationError', 'TemporalCliError']);

export function describeFatal(err: unknown): { line: string; stack: string | null } {
  if (err instanceof ConfigError) return { line: err.message, stack: null };
  if (err instanceof Error && EXPECTED.has(err.name)) return { line: err.message, stack: null };
  if (err instanceof Error) return { line: err.message, stack: err.stack ?? null };
  return { line: String(err), stack: null };
}

/** Runs an async main; any failure prints `waybill: <what is wrong>` and exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const { line, stack } = describeFatal(err);
    process.stderr.write(`waybill: ${line}\n`);
    if (stack) process.stderr.write(`${stack}\n`);
    process.exit(1);
  });
}

/** One round trip to Postgres; throws a StartupError naming the (redacted) URL. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function assertDatabaseReachable(db: Kysely<any>, url: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StartupError(
      `cannot reach Postgres at ${redactUrl(url)}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ').trim(),
    );
  }
}
