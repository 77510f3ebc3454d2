/**
 * Named (server-side prepared) statements for the hot reads. A statement registered here
 * is sent by name: each pooled connection has Postgres parse and plan it once, and later
 * runs only bind and execute it. Everything else goes as before (unnamed: parsed and
 * planned on every run). Register only fixed SQL texts (e.g. compiled once at load time);
 * the registry never grows from request data.
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';

const names = new Map<string, string>();

/** Sends this exact SQL text as a named statement from now on. */
export function prepareStatement(sql: string): void {
  if (!names.has(sql)) names.set(sql, `waybill_${names.size + 1}`);
}

/**
 * Runs a named statement. The query is built from its text (pg copies a config object
 * property by property on every query, about 2 µs; a text it wraps as is) and named after.
 */
function runNamed(client: pg.PoolClient, name: string, text: string, values: unknown[]) {
  return new Promise<pg.QueryResult>((resolve, reject) => {
    const query = new pg.Query(text, values, (err, result) =>
      err ? reject(err) : resolve(result as unknown as pg.QueryResult),
    );
    (query as { name?: string }).name = name;
    client.query(query);
  });
}

/** The pool as Kysely takes it, sending registered statements by name. */
export function withPreparedStatements(pool: pg.Pool): PostgresPool {
  // One wrapper per pooled client: Kysely keeps its connection objects by client identity.
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let wrapper = wrapped.get(client);
    if (!wrapper) {
      wrapper = {
        query: ((sqlOrCursor: unknown, parameters?: readonly unknown[]) => {
          const name = typeof sqlOrCursor === 'string' ? names.get(sqlOrCursor) : undefined;
          if (name !== undefined) {
            return runNamed(client, name, sqlOrCursor as string, (parameters ?? []) as unknown[]);
          }
          return typeof sqlOrCursor === 'string'
            ? client.query(sqlOrCursor, parameters as unknown[])
            : client.query(sqlOrCursor as never);
        }) as unknown as PostgresPoolClient['query'],
        release: () => client.release(),
      };
      wrapped.set(client, wrapper);
    }
    return wrapper;
  };
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
  };
}
