/**
 * Parcel imports (`/v1/admin/imports`): a shop switching to Waybill sends the parcels it has
 * in flight (JSON, or a CSV body) and Waybill takes over their tracking. The route stores the
 * list and starts one import workflow (src/workflows/import.ts), answering 202 at once; the
 * progress and every line's result are read back from Postgres while it runs.
 *
 * CSV comes as the request body (`Content-Type: text/csv`), not as a multipart upload: one
 * file needs no multipart envelope (`curl --data-binary @parcels.csv` sends it), the body is
 * parsed as it streams in (csv-parse), and no form-parsing dependency is needed.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parse } from 'csv-parse';
import type { FastifyError } from 'fastify';
import {
  deleteImport,
  findImport,
  importCounts,
  importLinesPage,
  type ImportLineResult,
  insertImport,
  type ImportLineInput,
} from '../../read-model/imports';
import { importWorkflowId, type importWorkflow } from '../../workflows/import';
import { Permission } from '../access';
import type { ApiDeps } from '../app';
import { actorOf, requireStaff } from '../auth';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors } from '../schemas/admin';
import {
  IMPORT_BODY_LIMIT_BYTES,
  IMPORT_COLUMNS,
  IMPORT_MAX_LINES,
  IMPORT_PAGE_DEFAULT,
  IMPORTS_PER_MINUTE,
  ImportAccepted,
  ImportBody,
  ImportParams,
  ImportProgress,
  ImportQuery,
} from '../schemas/imports';

type Column = (typeof IMPORT_COLUMNS)[number];
const COLUMN_BY_KEY = new Map<string, Column>(IMPORT_COLUMNS.map((c) => [c.toLowerCase(), c]));
const tooLarge = () =>
  new ApiError(
    413,
    'PAYLOAD_TOO_LARGE',
    `the body is larger than ${IMPORT_BODY_LIMIT_BYTES / 1024 / 1024} MiB, the most an import reads; split the list`,
  );

/** The CSV header as field names: `tracking_number`, `Tracking Number` and `trackingNumber` are one column. */
function csvColumns(header: string[]): Column[] {
  const columns = header.map((name) => {
    const column = COLUMN_BY_KEY.get(name.replace(/[\s_-]/g, '').toLowerCase());
    if (!column) {
      throw new ApiError(
        400,
        'INVALID_CSV',
        `CSV header: unknown column "${name}"; the columns are ${IMPORT_COLUMNS.join(', ')} (courier and trackingNumber required)`,
      );
    }
    return column;
  });
  for (const required of ['courier', 'trackingNumber'] as const) {
    if (!columns.includes(required)) {
      throw new ApiError(
        400,
        'INVALID_CSV',
        `CSV header: no "${required}" column; the first line must name the columns`,
      );
    }
  }
  return columns;
}

/** A CSV body as the JSON body's shape, read as it streams; at most one line past the limit is read. */
async function readCsv(payload: NodeJS.ReadableStream): Promise<{ parcels: Record<string, string>[] }> {
  let failure: ApiError | null = null;
  const parser = parse({
    bom: true,
    trim: true,
    skip_empty_lines: true,
    max_record_size: 4_096,
    columns: (header: string[]) => {
      try {
        return csvColumns(header);
      } catch (err) {
        failure = err as ApiError;
        throw err;
      }
    },
  });
  let bytes = 0;
  payload.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > IMPORT_BODY_LIMIT_BYTES && failure === null) {
      failure = tooLarge();
      parser.destroy(failure);
    }
  });
  payload.pipe(parser);
  const parcels: Record<string, string>[] = [];
  try {
    for await (const record of parser as AsyncIterable<Record<string, string>>) {
      // Empty cells are absent fields (a missing tracking number is that line's problem).
      parcels.push(Object.fromEntries(Object.entries(record).filter(([, v]) => v !== '')));
      if (parcels.length > IMPORT_MAX_LINES) break;
    }
  } catch (err) {
    if (failure) throw failure;
    throw new ApiError(400, 'INVALID_CSV', `the CSV body cannot be read: ${(err as Error).message}`);
  } finally {
    payload.unpipe(parser);
    (payload as NodeJS.ReadableStream & { resume(): void }).resume();
  }
  if (failure) throw failure;
  if (parcels.length === 0) {
    throw new ApiError(
      400,
      'INVALID_CSV',
      'the CSV body has no parcels: send a header line, then one parcel per line',
    );
  }
  return { parcels };
}

const field = (value: string | undefined): string | null => {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
};

const RESULT_NAMES: Record<ImportLineResult, 'started' | 'already_tracked' | 'rejected'> = {
  STARTED: 'started',
  ALREADY_TRACKED: 'already_tracked',
  REJECTED: 'rejected',
};
const RESULT_BY_NAME = new Map(Object.entries(RESULT_NAMES).map(([k, v]) => [v, k as ImportLineResult]));

export const importRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  // Only this plugin's routes read CSV.
  app.addContentTypeParser('text/csv', async (_request: unknown, payload: NodeJS.ReadableStream) =>
    readCsv(payload),
  );

  app.post(
    '/v1/admin/imports',
    {
      onRequest: requireStaff(Permission.IMPORT_PARCELS),
      bodyLimit: IMPORT_BODY_LIMIT_BYTES,
      config: { rateLimit: { max: IMPORTS_PER_MINUTE, timeWindow: 60_000 } },
      // A JSON body over the import limit: say which limit (the app's handler names the general one).
      errorHandler: (err: FastifyError) => {
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') throw tooLarge();
        throw err;
      },
      schema: {
        tags: ['admin'],
        summary: 'Import parcels already in flight and start tracking them (JSON or CSV)',
        description: `Send \`{"parcels":[{"courier","trackingNumber","orderReference"?,"email"?,"postcode"?}, …]}\` as JSON, or the same columns as CSV (\`Content-Type: text/csv\`, a header line first; \`tracking_number\` spellings are accepted). At most ${IMPORT_MAX_LINES} lines, ${IMPORT_BODY_LIMIT_BYTES / 1024 / 1024} MiB. Answers 202 with the import id at once; the import runs in the background (a Temporal workflow) and \`GET /v1/admin/imports/{importId}\` shows its progress and each line's result: started, already_tracked (the courier and number are tracked already, by an order, an earlier import or an earlier line), or rejected with the reason (missing field, unknown courier, a number not in the courier's format, a bad e-mail or postcode). First polls are spread so that an import's first polls use at most half of a courier's daily call budget.`,
        consumes: ['application/json', 'text/csv'],
        body: ImportBody,
        response: { 202: ImportAccepted, ...errors(400, ...AUTH_ERRORS, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const csv = /^text\/csv\b/i.test(request.headers['content-type'] ?? '');
      const lines: ImportLineInput[] = request.body.parcels.map((p) => ({
        courier: field(p.courier),
        trackingNumber: field(p.trackingNumber),
        orderReference: field(p.orderReference),
        email: field(p.email),
        postcode: field(p.postcode),
      }));
      const importId = `imp_${randomBytes(8).toString('hex')}`;
      await insertImport(deps.db, {
        id: importId,
        source: csv ? 'csv' : 'json',
        createdBy: actorOf(request.principal),
        lines,
      });
      try {
        await deps.temporal.client.workflow.start<typeof importWorkflow>('importWorkflow', {
          workflowId: importWorkflowId(importId),
          taskQueue: deps.config.temporal.taskQueue,
          args: [
            {
              importId,
              total: lines.length,
            },
          ],
        });
      } catch (err) {
        // Nothing will process it: the caller retries the whole list (503 says so).
        await deleteImport(deps.db, importId);
        throw err;
      }
      return reply.code(202).send({
        importId,
        status: 'RUNNING' as const,
        total: lines.length,
        links: { self: `/v1/admin/imports/${importId}` },
      });
    },
  );

  app.get(
    '/v1/admin/imports/:importId',
    {
      onRequest: requireStaff(Permission.IMPORT_PARCELS),
      schema: {
        tags: ['admin'],
        summary: "An import's progress and its lines' results, a page at a time",
        description:
          '`done` of `total` lines have a result; `counts` tallies them. `lines` lists lines after `afterLine` (optionally of one `result`; `pending` lines have none yet); `nextAfterLine` continues the list. Read from Postgres: answers while Temporal is down.',
        params: ImportParams,
        querystring: ImportQuery,
        response: { 200: ImportProgress, ...errors(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const { importId } = request.params;
      const found = await findImport(deps.db, importId);
      if (!found) throw new ApiError(404, 'NOT_FOUND', `no import ${importId}`);
      const limit = request.query.limit ?? IMPORT_PAGE_DEFAULT;
      const wanted = request.query.result;
      const [counts, rows] = await Promise.all([
        importCounts(deps.db, importId),
        importLinesPage(deps.db, importId, {
          afterLine: request.query.afterLine ?? 0,
          limit,
          ...(wanted ? { result: wanted === 'pending' ? null : RESULT_BY_NAME.get(wanted)! } : {}),
        }),
      ]);
      return {
        importId,
        status: found.status as 'RUNNING' | 'DONE',
        source: found.source as 'json' | 'csv',
        total: found.total,
        done: counts.started + counts.alreadyTracked + counts.rejected,
        counts,
        createdAt: found.created_at.toISOString(),
        finishedAt: found.finished_at?.toISOString() ?? null,
        lines: rows.map((r) => ({
          line: r.line_no,
          courier: r.courier,
          trackingNumber: r.tracking_number,
          orderReference: r.order_reference,
          result: r.result ? RESULT_NAMES[r.result] : ('pending' as const),
          reason: r.reason,
          shipmentId: r.shipment_id,
          firstPollAt: r.first_poll_at?.toISOString() ?? null,
        })),
        nextAfterLine: rows.length === limit ? rows[rows.length - 1]!.line_no : null,
      };
    },
  );
};
