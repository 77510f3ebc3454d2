/**
 * CSV exports for admin and ops: deliveries, exceptions, courier usage and orders with their
 * money, each over a bounded UTC date range. Streamed end to end, never held whole: a
 * server-side cursor (pg-query-stream) reads a batch of rows at a time, csv-stringify turns
 * them into CSV, and the reply writes it out; each stage waits while the next is full, so a
 * slow client slows the cursor instead of filling memory. A client that goes away destroys
 * the chain: the cursor is closed and its connection goes back to the pool.
 *
 * Exports run on a small pool of their own (EXPORT_CONNECTIONS): a long export never holds
 * a connection the request path needs, and at most that many run at once (503 beyond).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { pipeline } from 'node:stream';
import { stringify } from 'csv-stringify';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { createPool } from '../../../db/client';
import { EXPORT_KINDS, exportQuery, type ExportKind, type ExportRange } from '../../read-model/exports';
import { Permission } from '../access';
import type { ApiDeps } from '../app';
import { requireStaff } from '../auth';
import { neutraliseFormula } from '../csv-cell';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors } from '../schemas/admin';
import { CsvBody, EXPORTS, ExportRangeQuery, MAX_EXPORT_DAYS } from '../schemas/exports';

/** Exports running at once per API process (each holds one connection while it streams). */
export const EXPORT_CONNECTIONS = 2;
/** Postgres `application_name` of the export connections: find them in pg_stat_activity. */
export const EXPORT_APPLICATION_NAME = 'waybill-export';
/**
 * The longest one export may stream (ms). A cursor is one statement until it closes, so
 * Postgres's statement timeout bounds the whole export: the request path's 15 s would cut
 * a million-row file off, and no cap at all would let a stalled client hold a connection.
 */
export const EXPORT_MAX_MS = 30 * 60_000;
/** Rows the cursor fetches per round trip. */
const BATCH_ROWS = 1_000;
const DAY_MS = 86_400_000;

/** The range of `from`..`to` (both UTC days, included), or a 400 saying what is wrong. */
export function exportRange(from: string, to: string): ExportRange {
  const start = Date.parse(`${from}T00:00:00.000Z`);
  const last = Date.parse(`${to}T00:00:00.000Z`);
  if (last < start) {
    throw new ApiError(400, 'INVALID_RANGE', `querystring: to (${to}) is before from (${from})`);
  }
  const days = (last - start) / DAY_MS + 1;
  if (days > MAX_EXPORT_DAYS) {
    throw new ApiError(
      400,
      'INVALID_RANGE',
      `querystring: from ${from} to ${to} is ${days} days; one export covers at most ${MAX_EXPORT_DAYS} (split the range)`,
    );
  }
  return { from: new Date(start), to: new Date(last + DAY_MS), firstDay: from, lastDay: to };
}

/** The database URL with the exports' application name, so their sessions are recognisable. */
function exportDatabaseUrl(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', EXPORT_APPLICATION_NAME);
  return parsed.toString();
}

/** Cells as text: times in ISO 8601 UTC, booleans spelled out, text guarded against formulas. */
const CAST = {
  string: (value: string) => neutraliseFormula(value),
  date: (value: Date) => value.toISOString(),
  boolean: (value: boolean) => (value ? 'true' : 'false'),
};

export const exportRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const pool = createPool({
    url: exportDatabaseUrl(deps.config.database.url),
    poolMax: EXPORT_CONNECTIONS,
    statementTimeoutMs: EXPORT_MAX_MS,
    onError: (err) => deps.log.warn({ err }, 'export connection lost'),
  });
  app.addHook('onClose', async () => {
    await pool.end();
  });

  /** A connection for one export, or 503 when every export connection is streaming already. */
  async function connect(): Promise<pg.PoolClient> {
    if (pool.totalCount >= EXPORT_CONNECTIONS && pool.idleCount === 0) {
      throw new ApiError(
        503,
        'EXPORTS_BUSY',
        `${EXPORT_CONNECTIONS} exports are streaming already; retry when one has finished`,
      );
    }
    return pool.connect();
  }

  for (const kind of EXPORT_KINDS) {
    const about = EXPORTS[kind];
    app.get(
      `/v1/admin/exports/${kind}`,
      {
        onRequest: requireStaff(Permission.READ_EXPORTS),
        schema: {
          tags: ['admin'],
          summary: about.summary,
          description: `${about.rows}\n\nThe range is UTC days, both included, at most ${MAX_EXPORT_DAYS}; 400 INVALID_RANGE when \`to\` is before \`from\` or the range is longer. 503 EXPORTS_BUSY when ${EXPORT_CONNECTIONS} exports are streaming already.`,
          querystring: ExportRangeQuery,
          response: { 200: CsvBody, ...errors(400, ...AUTH_ERRORS, 503) },
        },
      },
      async (request, reply) => {
        const { from, to } = request.query;
        const range = exportRange(from, to);
        const { query, columns } = exportQuery(deps.db, kind as ExportKind, range, {
          dailyBudget: deps.config.courier.dailyBudget,
        });
        const client = await connect();
        const rows = client.query(
          new QueryStream(query.sql, query.parameters as unknown[], { batchSize: BATCH_ROWS }),
        );
        // The connection goes back once the cursor is closed (end, error or the client leaving);
        // after an error it is discarded rather than reused in an unknown state.
        let failure: Error | undefined;
        rows.once('error', (err) => (failure = err));
        rows.once('close', () => client.release(failure));

        const csv = stringify({ header: true, columns: [...columns], cast: CAST });
        // pipeline, not pipe: a failed query destroys the CSV stream (the client sees a
        // cut-off transfer, never a short file that looks whole), and a client that leaves
        // (Fastify destroys the CSV stream) destroys the cursor stream, which closes it.
        pipeline(rows, csv, (err) => {
          if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
            request.log.error({ err, kind }, 'export failed mid-stream');
          }
        });
        return (
          reply
            .header('content-type', 'text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="waybill-${kind}-${from}-to-${to}.csv"`)
            .header('cache-control', 'no-store')
            // The reply's declared type is the CSV text; what Fastify sends is that text as a stream.
            .send(csv as unknown as string)
        );
      },
    );
  }
};
