/**
 * Order lookups and actions shared by the customer and admin routes: who may see an
 * order, cancelling through the order workflow's `cancel` update, and asking shipment
 * workflows for a fresh poll with a deadline.
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
} from '../workflows/contract';
import { can, Permission } from './access';
import type { ApiDeps } from './app';
import type { Principal } from './auth';
import { ApiError, isTemporalUnavailable } from './errors';

export const FINISHED_ORDER_STATUSES: ReadonlySet<string> = new Set([
  'DELIVERED',
  'CANCELLED',
  'FAILED',
  'RETURNED',
]);

const notFound = (orderId: string) => new ApiError(404, 'NOT_FOUND', `no order ${orderId}`);

/**
 * The order if this caller may see it: its customer, or staff who may read any order. Anyone
 * else gets the same 404 as for an id that does not exist, so ids cannot be probed.
 */
export async function orderVisibleTo(deps: ApiDeps, principal: Principal, orderId: string): Promise<Order> {
  const order = await deps.db.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirst();
  if (!order) throw notFound(orderId);
  if (principal.kind === 'staff' && can(principal.role, Permission.READ_ORDERS)) return order;
  if (principal.kind === 'customer' && order.customer_id === principal.customerId) return order;
  throw notFound(orderId);
}

/** Resolves to the value, or to `timedOut` when the deadline passes first (the work goes on). */
async function within<T, U>(work: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
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

/** One cancel per order: every request joins the same update (Temporal dedupes by id). */
export const CANCEL_UPDATE_ID = 'cancel';

/**
 * Cancels through the order workflow's `cancel` update. Refusals become 409s with the
 * workflow's reason; cancelling a cancelled order again is harmless.
 */
export async function cancelOrder(
  deps: ApiDeps,
  opts: { order: Order; requestedBy: string; reason: string; waitMs?: number; acceptWithinMs?: number },
): Promise<CancelOutcome> {
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
      .withDeadline(Date.now() + acceptWithinMs, () =>
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
    return await within(
      update.result().then((order) => {
        if (order.status === OrderStatus.CANCELLED) return 'cancelled' as const;
        if (order.status === OrderStatus.FAILED) {
          throw new ApiError(
            409,
            'ORDER_FINISHED',
            'the order failed before the cancel could be carried out; everything it held has been given back',
          );
        }
        // NEEDS_ATTENTION: cancelled, but a compensation waits for an admin.
        return 'cancelling' as const;
      }),
      opts.waitMs ?? 10_000,
      'cancelling' as const,
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw refusal(err);
    if (err instanceof WorkflowNotFoundError) {
      // The saga finished between our read and the update: answer from what it wrote.
      const now = await deps.db
        .selectFrom('orders')
        .select('status')
        .where('id', '=', order.id)
        .executeTakeFirstOrThrow();
      if (now.status === 'CANCELLED') return 'cancelled';
      throw new ApiError(409, 'ORDER_FINISHED', `the order is already ${now.status} and cannot be cancelled`);
    }
    throw err;
  }
}

function refusal(err: WorkflowUpdateFailedError): ApiError {
  const cause = err.cause as { type?: string; message?: string } | undefined;
  const message = cause?.message ?? err.message;
  if (cause?.type === 'ALREADY_PICKED_UP' || message.startsWith('ALREADY_PICKED_UP')) {
    return new ApiError(
      409,
      'ALREADY_PICKED_UP',
      'a parcel of this order has been picked up by the courier: it can no longer be cancelled (ask for a return instead)',
    );
  }
  return new ApiError(409, 'NOT_CANCELLABLE', message);
}

export interface RefreshResult {
  /** Shipments whose workflow polled the courier within the deadline. */
  live: Set<string>;
  /** Why the others are served from cache (courier slow or down, Temporal unreachable). */
  message: string | null;
}

/**
 * Asks each unfinished shipment's workflow to poll now (`refreshNow` update) and waits up
 * to `deadlineMs` for all of them together. The API never calls a courier itself; a poll
 * that misses the deadline still lands in the read model for the next read.
 */
export async function refreshShipments(
  deps: ApiDeps,
  shipments: { id: string; status: string }[],
  requestedBy: string,
  deadlineMs: number,
): Promise<RefreshResult> {
  const live = new Set<string>();
  const open = shipments.filter((s) => !isTerminal(s.status as ShipmentStatus));
  if (open.length === 0) return { live, message: null };
  let temporalDown = false;
  let courierFailed = false;
  let notTracking = false;
  const attempts = open.map(async (shipment) => {
    try {
      const snapshot = await deps.temporal.client.workflow
        .getHandle(shipmentWorkflowId(shipment.id))
        .executeUpdate(refreshNowUpdate, { args: [{ requestedBy }] });
      // The workflow answers even when its poll failed; the snapshot says whether it did.
      if (snapshot.syncError === null) live.add(shipment.id);
      else courierFailed = true;
    } catch (err) {
      if (isTemporalUnavailable(err)) temporalDown = true;
      else if (err instanceof WorkflowNotFoundError) notTracking = true;
      else {
        courierFailed = true;
        deps.log.warn({ err, shipmentId: shipment.id }, 'refreshNow failed');
      }
    }
  });
  const finished = await within(
    Promise.all(attempts).then(() => true),
    deadlineMs,
    false,
  );
  if (live.size === open.length) return { live: new Set(live), message: null };
  const reason = temporalDown
    ? 'the workflow service is unreachable'
    : notTracking
      ? 'tracking has not started yet'
      : !finished
        ? `the courier did not answer within ${Math.round(deadlineMs / 1000)} s`
        : courierFailed
          ? 'the courier could not be asked right now'
          : 'the courier did not answer';
  return { live: new Set(live), message: `Showing the last stored tracking: ${reason}.` };
}
