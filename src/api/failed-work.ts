/**
 * Failed work, found and judged: the pages of the failed-work list (Temporal visibility for
 * workflow runs that failed, were terminated or timed out; the read model for parked steps and
 * sync errors), one opaque cursor per kind, the read model's parcel as a shipment workflow's
 * starting state, and whether an order workflow may be reset (docs/operations.md#failed-work).
 */
import { createHash } from 'node:crypto';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { Database, Shipment } from '../../db/database';
import type { ShipmentStatus } from '../domain/status';
import type { ShipmentState } from '../workflows/contract';
import { openAttentionKeyset } from '../read-model/order-attention';
import { syncErrorKeyset } from '../read-model/shipment-lookups';
import type { ApiDeps } from './app';
import { isCursorTime } from './admin-queries';
import { ApiError, mayBeUnreadableToken } from './errors';
import { unstorableText } from './storable-text';
import { FailedWorkKind, WorkflowEnd, type FailedWorkQuery } from './schemas/failed-work';

export interface FailedWorkItem {
  kind: FailedWorkKind;
  orderId: string | null;
  shipmentId: string | null;
  itemId: string | null;
  workflowId: string | null;
  runId: string | null;
  courier: string | null;
  reason: string;
  since: string;
  currentRun: { runId: string; status: string } | null;
  actions: string[];
}

export interface FailedWorkPage {
  items: FailedWorkItem[];
  nextCursor: string | null;
}

const badFilter = (message: string) => new ApiError(400, 'INVALID_FILTER', `querystring: ${message}`);
const badCursor = () =>
  new ApiError(
    400,
    'INVALID_CURSOR',
    'querystring: cursor is not one this API handed out for this kind and these filters; pass nextCursor from the previous page with the same query',
  );

// --- Cursors: { kind, filters' fingerprint, position }, base64url JSON ----------------------

type Position = string[];

function fingerprint(query: FailedWorkQuery): string {
  const { kind, courier, olderThanMinutes, reason } = query;
  return createHash('sha256')
    .update(JSON.stringify([kind, courier ?? null, olderThanMinutes ?? null, reason ?? null]))
    .digest('base64url')
    .slice(0, 16);
}

/** The cursor of a page that starts after `position` (exported for the tests' forged cursors). */
export function encodeCursor(query: FailedWorkQuery, position: Position): string {
  return Buffer.from(JSON.stringify({ k: query.kind, f: fingerprint(query), p: position })).toString(
    'base64url',
  );
}

function decodeCursor(query: FailedWorkQuery, size: number): Position | null {
  if (query.cursor === undefined) return null;
  try {
    const value = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as {
      k?: unknown;
      f?: unknown;
      p?: unknown;
    };
    const p = value.p;
    if (value.k !== query.kind || value.f !== fingerprint(query)) throw badCursor();
    if (!Array.isArray(p) || p.length !== size || p.some((x) => typeof x !== 'string' || x.length > 3000)) {
      throw badCursor();
    }
    return p as Position;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw badCursor();
  }
}

function checkFilters(query: FailedWorkQuery): void {
  const workflowKind =
    query.kind === FailedWorkKind.ORDER_WORKFLOW || query.kind === FailedWorkKind.SHIPMENT_WORKFLOW;
  if (
    query.courier !== undefined &&
    query.kind !== FailedWorkKind.SHIPMENT_WORKFLOW &&
    query.kind !== FailedWorkKind.SYNC_ERROR
  ) {
    throw badFilter(`courier applies to kind shipment_workflow and sync_error, not ${query.kind}`);
  }
  if (
    workflowKind &&
    query.reason !== undefined &&
    !Object.values<string>(WorkflowEnd).includes(query.reason)
  ) {
    throw badFilter(
      `reason for kind ${query.kind} is how the run ended: one of ${Object.values(WorkflowEnd).join(', ')}`,
    );
  }
}

export async function failedWorkPage(
  deps: ApiDeps,
  query: FailedWorkQuery,
  limit: number,
): Promise<FailedWorkPage> {
  checkFilters(query);
  const cutoff =
    query.olderThanMinutes === undefined ? null : new Date(Date.now() - query.olderThanMinutes * 60_000);
  switch (query.kind) {
    case FailedWorkKind.NEEDS_ATTENTION:
      return attentionPage(deps.db, query, limit, cutoff);
    case FailedWorkKind.SYNC_ERROR:
      return syncErrorPage(deps.db, query, limit, cutoff);
    default:
      return workflowPage(deps, query, limit, cutoff);
  }
}

// --- The read model's kinds (keyset pages) ---------------------------------------------------

const NOTHING = {
  orderId: null,
  shipmentId: null,
  itemId: null,
  workflowId: null,
  runId: null,
  courier: null,
  currentRun: null,
} as const;

/**
 * Where a keyset page starts: after (a time in microseconds, then ids), or from the top. A
 * time or id Postgres would refuse (30 February, year 0, a NUL) is the cursor's fault: 400.
 */
function keysetAfter(query: FailedWorkQuery, size: number): Position | null {
  const after = decodeCursor(query, size);
  if (after && (!isCursorTime(after[0]!) || after.slice(1).some((id) => unstorableText(id) !== null))) {
    throw badCursor();
  }
  return after;
}

/** A keyset page: `limit + 1` rows were read, so one more means a next page from the last shown. */
function keysetPage<R>(
  query: FailedWorkQuery,
  rows: R[],
  limit: number,
  item: (row: R) => FailedWorkItem,
  position: (row: R) => Position,
): FailedWorkPage {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(item),
    nextCursor: rows.length > limit && last ? encodeCursor(query, position(last)) : null,
  };
}

async function attentionPage(
  db: Kysely<Database>,
  query: FailedWorkQuery,
  limit: number,
  cutoff: Date | null,
): Promise<FailedWorkPage> {
  const after = keysetAfter(query, 3);
  const rows = await openAttentionKeyset(db, {
    openedBy: cutoff,
    reasonContains: query.reason,
    after,
    limit: limit + 1,
  });
  return keysetPage(
    query,
    rows,
    limit,
    (r) => ({
      ...NOTHING,
      kind: FailedWorkKind.NEEDS_ATTENTION,
      orderId: r.order_id,
      itemId: r.item_id,
      reason: r.reason,
      since: r.opened_at.toISOString(),
      actions: ['retry_step'],
    }),
    (r) => [r.key, r.order_id, r.item_id],
  );
}

async function syncErrorPage(
  db: Kysely<Database>,
  query: FailedWorkQuery,
  limit: number,
  cutoff: Date | null,
): Promise<FailedWorkPage> {
  const after = keysetAfter(query, 2);
  const rows = await syncErrorKeyset(db, {
    courier: query.courier,
    failingBy: cutoff,
    errorContains: query.reason,
    after,
    limit: limit + 1,
  });
  return keysetPage(
    query,
    rows,
    limit,
    (r) => ({
      ...NOTHING,
      kind: FailedWorkKind.SYNC_ERROR,
      orderId: r.order_id,
      shipmentId: r.id,
      workflowId: `shipment-${r.id}`,
      courier: r.courier,
      reason: r.sync_error!,
      since: (r.sync_failing_since ?? r.updated_at).toISOString(),
      actions: [],
    }),
    (r) => [r.key, r.id],
  );
}

// --- Temporal visibility's kinds (its next-page token) ------------------------------------------

/** Visibility's names of the ends that make failed work, by the `reason` filter's words. */
const CLOSED_AS: Record<WorkflowEnd, string> = {
  failed: 'Failed',
  terminated: 'Terminated',
  timed_out: 'TimedOut',
};
/** WorkflowExecutionStatus numbers (temporal.api.enums.v1) → visibility's names. */
const STATUS_NAMES: Record<number, string> = {
  1: 'Running',
  2: 'Completed',
  3: 'Failed',
  4: 'Canceled',
  5: 'Terminated',
  6: 'ContinuedAsNew',
  7: 'TimedOut',
};
const WORKFLOW_TYPES = {
  [FailedWorkKind.ORDER_WORKFLOW]: 'orderWorkflow',
  [FailedWorkKind.SHIPMENT_WORKFLOW]: 'shipmentWorkflow',
} as const;

const quoted = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function keyword(
  fields: Record<string, { data?: Uint8Array | null }> | null | undefined,
  name: string,
): string | null {
  const data = fields?.[name]?.data;
  if (!data) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}

async function workflowPage(
  deps: ApiDeps,
  query: FailedWorkQuery,
  limit: number,
  cutoff: Date | null,
): Promise<FailedWorkPage> {
  const after = decodeCursor(query, 1);
  const kind = query.kind as keyof typeof WORKFLOW_TYPES;
  const ends =
    query.reason === undefined ? Object.values(CLOSED_AS) : [CLOSED_AS[query.reason as WorkflowEnd]];
  const clauses = [
    `WorkflowType = ${quoted(WORKFLOW_TYPES[kind])}`,
    // This deployment's workflows only: a namespace may be shared by several.
    `TaskQueue = ${quoted(deps.config.temporal.taskQueue)}`,
    `(${ends.map((end) => `ExecutionStatus = ${quoted(end)}`).join(' OR ')})`,
    ...(query.courier !== undefined ? [`Courier = ${quoted(query.courier)}`] : []),
    ...(cutoff !== null ? [`CloseTime <= ${quoted(cutoff.toISOString())}`] : []),
  ];
  const list = (pageSize: number, token: Buffer | null) =>
    deps.temporal.client.workflowService.listWorkflowExecutions({
      namespace: deps.config.temporal.namespace,
      query: clauses.join(' AND '),
      pageSize,
      ...(token ? { nextPageToken: token } : {}),
    });
  const given = after ? Buffer.from(after[0]!, 'base64url') : null;
  let response: Awaited<ReturnType<typeof list>>;
  try {
    response = await list(limit, given);
  } catch (err) {
    // A page token Temporal cannot read is INVALID_ARGUMENT from some visibility stores
    // (Elasticsearch) and an internal error, UNKNOWN, from the SQL ones. The query is built
    // from checked filters only, so when such an error goes away without the token, and
    // comes back with it, the token was at fault: a cursor this API did not hand out (the
    // second try tells a passing fault that answers the same codes, a reset stream, from the
    // token). Any other error (Temporal unavailable, rate limited) says nothing about the
    // token and stands, as does the first error when the query fails without the token too.
    if (given === null || !mayBeUnreadableToken(err)) throw err;
    const answersWithoutToken = await list(1, null).then(
      () => true,
      () => false,
    );
    if (!answersWithoutToken) throw err;
    try {
      response = await list(limit, given);
    } catch (again) {
      throw mayBeUnreadableToken(again) ? badCursor() : again;
    }
  }
  const executions = response.executions ?? [];
  const items = await Promise.all(
    executions.map(async (e): Promise<FailedWorkItem> => {
      const workflowId = e.execution?.workflowId ?? '';
      const fields = e.searchAttributes?.indexedFields ?? null;
      const orderId = keyword(fields, 'OrderId');
      const shipment = kind === FailedWorkKind.SHIPMENT_WORKFLOW;
      let currentRun: FailedWorkItem['currentRun'] = null;
      try {
        const latest = await deps.temporal.client.workflow.getHandle(workflowId).describe();
        currentRun = {
          runId: latest.runId,
          status: STATUS_NAMES[Number(latest.raw.workflowExecutionInfo?.status)] ?? latest.status.name,
        };
      } catch (err) {
        // Gone from retention since the list was read: the row still says what ended. Any
        // other error (Temporal busy or down) fails the page rather than say "gone".
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      const status = STATUS_NAMES[Number(e.status)] ?? 'Unknown';
      return {
        kind: query.kind,
        orderId,
        shipmentId: shipment ? workflowId.replace(/^shipment-/, '') : null,
        itemId: null,
        workflowId,
        runId: e.execution?.runId ?? null,
        courier: keyword(fields, 'Courier'),
        reason: status === 'TimedOut' ? 'timed_out' : status.toLowerCase(),
        since: (optionalTsToDate(e.closeTime) ?? new Date()).toISOString(),
        currentRun,
        actions: shipment ? ['restart_tracking'] : ['reset'],
      };
    }),
  );
  const token = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : null;
  return {
    items,
    nextCursor: token ? encodeCursor(query, [Buffer.from(token).toString('base64url')]) : null,
  };
}

// --- Restart tracking: the read model's parcel as a shipment workflow's state --------------------

/**
 * Where a restarted shipment workflow carries on: the status, scans and sync the read model
 * last recorded. The no-scan clock restarts now (the time without a workflow was nobody's
 * silence), every milestone is told to the order again, and the first poll is due at once.
 */
export function shipmentStateFrom(row: Shipment, nowMs: number): ShipmentState {
  const status = row.status as ShipmentStatus;
  const lastScanAtMs = (row.last_event_at ?? row.created_at).getTime();
  return {
    status,
    subStatus: row.sub_status,
    eta: row.eta?.toISOString() ?? null,
    startedAtMs: row.created_at.getTime(),
    lastScanAtMs,
    newestScanAtMs: row.last_event_at?.getTime() ?? null,
    quietSinceMs: Math.max(lastScanAtMs, nowMs),
    unansweredSinceMs: null,
    lastPolledAtMs: null,
    lastSyncedAt: row.last_synced_at?.toISOString() ?? null,
    polls: 0,
    consecutiveFailures: 0,
    failingSince: null,
    notFoundCount: 0,
    eventsRecorded: 0,
    // Told again from the start: the order may have missed the last milestone, and it takes
    // each one once whatever the repeats (capture once, stock consumed once per parcel).
    reported: [],
  };
}
