import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database';
import { withPreparedStatements } from './prepared';

const INT8_OID = 20;
const NUMERIC_OID = 1700;
const DATE_OID = 1082;

/**
 * Type parsers for this pool only: money is bigint minor units and fits a JS number;
 * `date` columns stay 'YYYY-MM-DD' strings (no local-time shift).
 */
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    if (oid === DATE_OID) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface DbOptions {
  url: string;
  poolMax?: number;
  /** Fail fast when Postgres is down instead of queueing requests forever (ms). */
  connectTimeoutMs?: number;
  /** Server-side cap on one statement (ms). */
  statementTimeoutMs?: number;
  onError?: (err: Error) => void;
}

export function createPool(opts: DbOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3_000,
    statement_timeout: opts.statementTimeoutMs ?? 15_000,
    idleTimeoutMillis: 30_000,
    types: typeParsers,
  });
  // A client losing its connection (Postgres restarted) must not crash the process: idle
  // clients report through the pool; a checked-out client between two queries (inside a
  // transaction, say) reports on itself, and an 'error' nobody listens to kills Node.
  pool.on('error', (err) => opts.onError?.(err));
  pool.on('connect', (client) => client.on('error', (err) => opts.onError?.(err)));
  return pool;
}

export function createDb(opts: DbOptions): Kysely<Database> {
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: withPreparedStatements(createPool(opts)) }),
  });
}

export type { Database };
