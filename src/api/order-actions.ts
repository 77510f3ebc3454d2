/**
 * Order lookups and actions shared by the customer and admin routes: who may see an
 * order, cancelling through the order workflow's `cancel` update, and asking shipment
 * workflows for a fresh poll with a deadline, within the refresh cooldown and quota.
 */
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { Order } from '../../db/database';
import { isTerminal, type ShipmentStatus } from '../domain/status';
import {
  cancelOrderUpdate,
  orderWorkflowId,
  OrderStatus,
  refreshNowUpdate,
  shipmentWorkflowId,
  TRACKING_FINISHED_REFUSAL,
  type RefreshNowResult,
  type RefreshSource,
} from '../workflows/contract';
import { can, Permission } from './access';
import type { ApiDeps } from './app';
import type { Principal } from './auth';
import { ApiError, isTemporalUnavailable, temporalRefusal } from './errors';
import { findOrder, getOrderStatus } from '../read-model/orders';
import { takeRefreshQuota } from '../read-model/refresh-quota';
import { RefreshOutcome, type ShipmentRefresh } from './tracking-view';
import { FailureType } from '../domain/failures';
import { FINISHED_ORDER_STATUSES as FINISHED_ORDERS } from '../read-model/stock-checks';

export const FINISHED_ORDER_STATUSES: ReadonlySet<string> = new Set(FINISHED_ORDERS);

/** The answer for an order that does not exist or that the caller may not see: the same, so ids cannot be probed. */
export const orderNotFound = (orderId: string) => new ApiError(404, 'NOT_FOUND', `no order ${orderId}`);

/**
 * What an action on an order whose workflow is not running (WorkflowNotFoundError) answers:
 * `finished` when the workflow completed (the order is settled), else 409 ORDER_STOPPED
 * naming how it ended (failed, terminated, timed out): nothing of it can act until ops reset it.
 */
export async function orderNotRunning(deps: ApiDeps, orderId: string, finished: ApiError): Promise<ApiError> {
  const run = await deps.temporal.client.workflow
    .getHandle(orderWorkflowId(orderId))
    .describe()
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    });
  if (run?.status.name === 'COMPLETED') return finished;
  if (run === null) {
    // Gone from Temporal (past its retention, or it never ran): the read model says whether it settled.
    const status = await getOrderStatus(deps.db, orderId);
    if (FINISHED_ORDER_STATUSES.has(status)) return finished;
    return new ApiError(
      409,
      'ORDER_STOPPED',
      `order ${orderId} is ${status} with no workflow left to act on it: it never settled, and is for a person to settle by hand`,
    );
  }
  return new ApiError(
    409,
    'ORDER_STOPPED',
    `order ${orderId}'s workflow is ${run.status.name}: it stopped before settling, so nothing of it acts until ops reset it from the failed-work list`,
  );
}

/** Whether this caller may see an order of this customer: its customer, or staff who may read any order. */
export function isVisibleTo(principal: Principal, orderCustomerId: string | null): boolean {
  if (principal.kind === 'staff') return can(principal.role, Permission.READ_ORDERS);
  return principal.kind === 'customer' && orderCustomerId === principal.customerId;
}

/**
 * The order if this caller may see it ({@link isVisibleTo}). Anyone else gets the same 404
 * as for an id that does not exist.
 */
export async function orderVisibleTo(deps: ApiDeps, principal: Principal, orderId: string): Promise<Order> {
  const order = await findOrder(deps.db, orderId);
  if (!order || !isVisibleTo(principal, order.customer_id)) throw orderNotFound(orderId);
  return order;
}

/** Resolves to the value, or to `timedOut` when the deadline passes first (the work goes on). */
export async function within<T, U>(work: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<U>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export type CancelOutcome =
  /** The saga has compensated and the order is CANCELLED. */
  | 'cancelled'
  /** The cancel was accepted; compensations are still running (the status will follow). */
  | 'cancelling';

/** How long a cancel waits for the order workflow to take it before answering 503. */
export const CANCEL_ACCEPT_WITHIN_MS = 5_000;

/**
 * The whole cancel's time budget: taking the update ({@link CANCEL_ACCEPT_WITHIN_MS} at most),
 * then waiting for its result for what is left. Well under the 10–15 s a client typically
 * waits, so a cancel always gets its answer: compensations that outlast it answer `cancelling`.
 */
export const CANCEL_ANSWER_WITHIN_MS = 8_000;

/** One cancel per order: every request joins the same update (Temporal dedupes by id). */
export const CANCEL_UPDATE_ID = 'cancel';

/**
 * Cancels through the order workflow's `cancel` update, answering within `answerWithinMs`
 * ({@link CANCEL_ANSWER_WITHIN_MS}) of the call. Refusals become 409s with the workflow's
 * reason; cancelling a cancelled order again is harmless.
 */
export async function cancelOrder(
  deps: ApiDeps,
  opts: {
    order: Order;
    requestedBy: string;
    reason: string;
    acceptWithinMs?: number;
    answerWithinMs?: number;
  },
): Promise<CancelOutcome> {
  const answerBy = Date.now() + (opts.answerWithinMs ?? CANCEL_ANSWER_WITHIN_MS);
  const { order } = opts;
  if (order.status === 'CANCELLED') return 'cancelled';
  if (FINISHED_ORDER_STATUSES.has(order.status)) {
    throw new ApiError(409, 'ORDER_FINISHED', `the order is already ${order.status} and cannot be cancelled`);
  }
  const handle = deps.temporal.client.workflow.getHandle(orderWorkflowId(order.id));
  const acceptWithinMs = opts.acceptWithinMs ?? CANCEL_ACCEPT_WITHIN_MS;
  try {
    // A workflow takes an update only while a worker runs it. Without a deadline a cancel
    // sent while the worker restarts would hang; with one the caller gets a 503 to retry,
    // and the fixed update id makes that retry join the cancel the workflow may yet take.
    const update = await deps.temporal.connection
      .withDeadline(Math.min(Date.now() + acceptWithinMs, answerBy), () =>
        handle.startUpdate(cancelOrderUpdate, {
          updateId: CANCEL_UPDATE_ID,
          args: [{ requestedBy: opts.requestedBy, reason: opts.reason }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        }),
      )
      .catch((err: unknown) => {
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
          throw new ApiError(
            503,
            'ORDER_NOT_RESPONDING',
            `the order's workflow did not take the cancel within ${acceptWithinMs / 1000} s (its worker may be restarting); retry shortly: a retry joins this cancel rather than starting another`,
          );
        }
        throw err;
      });
    // Accepted: the saga compensates whether or not we wait. Wait only for what is left of
    // the budget, then answer `cancelling` (the status follows on the order).
    return await within(
      update.result().then((order) =>
        // NEEDS_ATTENTION: cancelled, but a compensation waits for an admin.
        order.status === OrderStatus.CANCELLED ? ('cancelled' as const) : ('cancelling' as const),
      ),
      Math.max(0, answerBy - Date.now()),
      'cancelling' as const,
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw refusal(err);
    if (err instanceof WorkflowNotFoundError) {
      // The saga finished between our read and the update: answer from what it wrote.
      const now = await getOrderStatus(deps.db, order.id);
      if (now === 'CANCELLED') return 'cancelled';
      // Still PENDING and no workflow ever ran (not a closed one, say terminated while it
      // booked, which may hold stock and money): its start failed when it was placed and was
      // not retried. It holds nothing; housekeeping closes it.
      const ran = await handle.describe().then(
        () => true,
        (describeErr: unknown) => {
          if (describeErr instanceof WorkflowNotFoundError) return false;
          throw describeErr;
        },
      );
      if (now === OrderStatus.PENDING && !ran) {
        throw new ApiError(
          409,
          'ORDER_NOT_STARTED',
          'the order never started (the workflow service was unreachable when it was placed): nothing is reserved or charged, and it is closed as FAILED unless its start is retried',
        );
      }
      // Not final, yet no running workflow: it ended without settling (failed or terminated).
      if (!FINISHED_ORDER_STATUSES.has(now)) {
        throw new ApiError(
          409,
          'ORDER_STOPPED',
          `the order's workflow has stopped with the order ${now} (failed or terminated): ops reset it from the failed-work list, then it can be cancelled`,
        );
      }
      throw new ApiError(409, 'ORDER_FINISHED', `the order is already ${now} and cannot be cancelled`);
    }
    throw err;
  }
}

function refusal(err: WorkflowUpdateFailedError): ApiError {
  const cause = err.cause as { type?: string; message?: string } | undefined;
  const message = cause?.message ?? err.message;
  if (cause?.type === FailureType.ALREADY_PICKED_UP || message.startsWith(FailureType.ALREADY_PICKED_UP)) {
    // What the cancel did take away before it found the pickup (other parcels' bookings), if anything.
    const done = message.indexOf('; ');
    return new ApiError(
      409,
      'ALREADY_PICKED_UP',
      `a parcel of this order has been picked up by the courier: it can no longer be cancelled (ask for a return instead)${done < 0 ? '' : message.slice(done)}`,
    );
  }
  if (cause?.type === FailureType.FAILED_BEFORE_CANCEL) {
    return new ApiError(409, 'ORDER_FINISHED', message);
  }
  return new ApiError(409, 'NOT_CANCELLABLE', message);
}

export interface RefreshResult {
  /** What became of each shipment's refresh, by shipment id. */
  refreshes: Map<string, ShipmentRefresh>;
  /** Why some shipments are served from the read model, for people; null when all are live or final. */
  message: string | null;
}

/** Who asks: customers spend their live-refresh quota, admins have none (they still get the cooldown). */
export type Refresher = { requestedBy: string; quotaSubject: string | null };

const minutes = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`);
const clock = (at: Date) => `${at.toISOString().slice(11, 19)} UTC`;

/**
 * Live refresh with a cost model. Per shipment, in order:
 * - finished → final data, nothing to ask;
 * - synced less than the refresh cooldown ago (`last_synced_at`) → answered from the read
 *   model, without reaching Temporal: this is most requests;
 * - the customer's quota → one unit per remaining shipment, or all answered from the read model;
 * - the shipment workflow's `refreshNow` update, which owns the last poll time: it polls (or
 *   joins the poll in flight) and answers once the read model holds the result, or answers
 *   from its snapshot within the cooldown. All together within `deadlineMs`.
 * The API never calls a courier itself; a poll that misses the deadline still lands in the
 * read model for the next read.
 */
export async function refreshShipments(
  deps: ApiDeps,
  shipments: { id: string; status: string; last_synced_at: Date | null }[],
  who: Refresher,
  deadlineMs: number,
): Promise<RefreshResult> {
  const refreshes = new Map<string, ShipmentRefresh>();
  const set = (id: string, outcome: RefreshOutcome, nextLiveRefreshAt: Date | null = null) =>
    refreshes.set(id, { outcome, nextLiveRefreshAt });
  const cooldownMs = deps.config.polling.refreshCooldownMs;
  const now = Date.now();

  const ask: string[] = [];
  for (const shipment of shipments) {
    const syncedAt = shipment.last_synced_at?.getTime() ?? null;
    if (isTerminal(shipment.status as ShipmentStatus)) set(shipment.id, RefreshOutcome.FINISHED);
    else if (syncedAt !== null && now - syncedAt < cooldownMs) {
      set(shipment.id, RefreshOutcome.COOLDOWN, new Date(syncedAt + cooldownMs));
    } else ask.push(shipment.id);
  }

  let quotaResetsAt: Date | null = null;
  if (ask.length > 0 && who.quotaSubject !== null) {
    const quota = await takeRefreshQuota(deps.db, {
      subject: who.quotaSubject,
      units: ask.length,
      quota: deps.config.api.refreshQuota,
      windowMs: deps.config.api.refreshQuotaWindowMs,
    });
    if (!quota.granted) {
      quotaResetsAt = quota.resetsAt;
      for (const id of ask.splice(0)) set(id, RefreshOutcome.QUOTA, quota.resetsAt);
    }
  }

  let busy: 'parcel' | 'service' | null = null;
  const attempts = ask.map(async (id) => {
    try {
      const result = await askShipment(deps, id, who.requestedBy);
      const next = result.nextLiveRefreshAt === null ? null : new Date(result.nextLiveRefreshAt);
      set(id, WORKFLOW_ANSWERS[result.source], next !== null && next.getTime() > Date.now() ? next : null);
    } catch (err) {
      const refused = temporalRefusal(err);
      if (isTemporalUnavailable(err)) set(id, RefreshOutcome.TEMPORAL_UNAVAILABLE);
      else if (refused) {
        deps.log.warn({ err, shipmentId: id, cause: refused.cause }, 'refreshNow refused by Temporal');
        busy = refused.oneWorkflow && busy !== 'service' ? 'parcel' : 'service';
        set(id, RefreshOutcome.BUSY);
      } else if (err instanceof WorkflowNotFoundError) set(id, RefreshOutcome.NOT_TRACKING);
      // The validator refuses a finished shipment (it finished after our read); any other
      // refusal is not the parcel's end, and is logged.
      else if (
        err instanceof WorkflowUpdateFailedError &&
        err.cause?.message.startsWith(TRACKING_FINISHED_REFUSAL)
      )
        set(id, RefreshOutcome.FINISHED);
      else {
        deps.log.warn({ err, shipmentId: id }, 'refreshNow failed');
        set(id, RefreshOutcome.COURIER_UNAVAILABLE);
      }
    }
  });
  await within(
    Promise.all(attempts).then(() => true),
    deadlineMs,
    false,
  );
  // Those still out when the deadline passed: their poll lands in the read model later.
  for (const id of ask) if (!refreshes.has(id)) set(id, RefreshOutcome.TIMEOUT);

  const result = new Map(refreshes);
  return {
    refreshes: result,
    message: refreshMessage(result, { cooldownMs, deadlineMs, quotaResetsAt, busy, deps }),
  };
}

/**
 * The `refreshNow` updates this API process has out, by shipment. Refreshes of one parcel that
 * arrive while its update is out share it: its answer is theirs too (the workflow would have
 * given them the same poll), and they do not fill the workflow's limit of updates in flight
 * (10 by default), past which Temporal refuses more. The workflow's log names the first
 * caller only.
 */
const updatesOut = new WeakMap<object, Map<string, Promise<RefreshNowResult>>>();

function askShipment(deps: ApiDeps, shipmentId: string, requestedBy: string): Promise<RefreshNowResult> {
  const client = deps.temporal.client;
  let out = updatesOut.get(client);
  if (!out) updatesOut.set(client, (out = new Map()));
  const pending = out.get(shipmentId);
  if (pending) return pending;
  const asked = client.workflow
    .getHandle(shipmentWorkflowId(shipmentId))
    .executeUpdate(refreshNowUpdate, { args: [{ requestedBy }] })
    .finally(() => out.delete(shipmentId));
  out.set(shipmentId, asked);
  return asked;
}

/** How the workflow's answer shows in the API. */
const WORKFLOW_ANSWERS: Record<RefreshSource, RefreshOutcome> = {
  live: RefreshOutcome.LIVE,
  cooldown: RefreshOutcome.COOLDOWN,
  courier_unavailable: RefreshOutcome.COURIER_UNAVAILABLE,
  budget_exhausted: RefreshOutcome.BUDGET_EXHAUSTED,
  finished: RefreshOutcome.FINISHED,
};

function refreshMessage(
  refreshes: ReadonlyMap<string, ShipmentRefresh>,
  opts: {
    cooldownMs: number;
    deadlineMs: number;
    quotaResetsAt: Date | null;
    /** What refused a refresh for load or a limit, if anything did. */
    busy: 'parcel' | 'service' | null;
    deps: ApiDeps;
  },
): string | null {
  const outcomes = new Set([...refreshes.values()].map((r) => r.outcome));
  outcomes.delete(RefreshOutcome.LIVE);
  outcomes.delete(RefreshOutcome.FINISHED);
  if (outcomes.size === 0) return null;
  const cooldownEnds = [...refreshes.values()]
    .filter((r) => r.outcome === RefreshOutcome.COOLDOWN && r.nextLiveRefreshAt !== null)
    .map((r) => r.nextLiveRefreshAt!.getTime());
  const { api } = opts.deps.config;
  const reasons: Record<Exclude<RefreshOutcome, 'live' | 'finished'>, () => string> = {
    cooldown: () =>
      `the courier was asked less than ${minutes(opts.cooldownMs)} ago` +
      (cooldownEnds.length > 0 ? ` (live again from ${clock(new Date(Math.max(...cooldownEnds)))})` : ''),
    quota: () =>
      `your live refreshes (${api.refreshQuota} per ${minutes(api.refreshQuotaWindowMs)}) are used up until ${clock(opts.quotaResetsAt!)}`,
    temporal_unavailable: () => 'the workflow service is unreachable',
    busy: () =>
      opts.busy === 'parcel'
        ? 'refreshes already under way fill what its tracking takes at once (their answer comes with the next read)'
        : 'the workflow service is busy',
    not_tracking: () =>
      'no tracking runs for it right now (not started yet, just finished, or waiting for a restart)',
    timeout: () => `the courier did not answer within ${Math.round(opts.deadlineMs / 1000)} s`,
    budget_exhausted: () => "today's courier budget is used up",
    courier_unavailable: () => 'the courier could not be asked right now',
  };
  const why = [...outcomes].map((o) => reasons[o as keyof typeof reasons]());
  return `Showing the last stored tracking: ${why.join('; ')}.`;
}
