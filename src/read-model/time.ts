/** Small SQL pieces the read model's queries share: ages by the database's clock, keyset positions, patterns. */
import { sql } from 'kysely';

/** The database's now minus `ms` milliseconds: ages are judged by Postgres's clock. */
export const ago = (ms: number) => sql<Date>`now() - ${ms} * interval '1 millisecond'`;

/**
 * A timestamp column as UTC text to the microsecond (`2026-01-02T03:04:05.123456Z`): a keyset
 * cursor's position, exact where a JavaScript Date would round to the millisecond.
 */
export const microsKey = (column: string) =>
  sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * A timestamp column as the API writes times (`2026-01-02T03:04:05.123Z`: UTC, to the
 * millisecond, as `Date#toISOString`), whatever the session's time zone.
 */
export const apiTimeText = (column: string) =>
  sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** An `ilike` pattern matching `text` anywhere, its wildcards taken literally. */
export const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
