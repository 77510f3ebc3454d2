/**
 * Housekeeping's expiry steps, one bounded batch per call: shipments nobody tracks any more
 * → EXPIRED (their orders told), and orders whose workflow never started → FAILED /
 * NOT_STARTED. Both ask Temporal before they act. The aging steps (archive, scrub, prune)
 * are in housekeeping.ts, which composes both into the worker's activities.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { writeAudit } from '../read-model/audit';
import { expireUnscanned, unscannedShipmentIds } from '../read-model/shipments';
import {
  closeOrderFailed,
  lockOrderKeysHeld,
  lockPendingOrder,
  orderTouchedStockOrMoney,
  pendingOrderIdsOlderThan,
} from '../read-model/unstarted-orders';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import {
  OrderFailure,
  orderWorkflowId,
  shipmentMilestoneSignal,
  shipmentWorkflowId,
} from '../workflows/contract';
import { activityMeter } from './meter';
import { FailureType } from '../domain/failures';
import type { HousekeepingActivityDeps } from './housekeeping';

export interface ExpireBatchInput {
  /** No scan (last_event_at, else created_at) for this long → EXPIRED (ms). */
  expireAfterNoScanMs: number;
  /** A tracking run that ended unfinished less than this long ago holds its parcel (ms; see {@link trackingHeld}). */
  restartWindowMs: number;
  batchSize: number;
  /** Shipment ids are visited in order; the next batch starts after this one. */
  afterId: string | null;
}

export interface ExpireBatchResult {
  expired: number;
  /** Stale rows their tracking still holds: a running workflow (it expires them itself), or one that ended unfinished within the restart window (its order may restart it). */
  skippedRunning: number;
  /** Where the next batch starts; null when this batch was the last. */
  nextAfterId: string | null;
}

export interface UnstartedOrdersInput {
  /** PENDING orders created longer ago than this (ms). */
  olderThanMs: number;
  batchSize: number;
  /** Order ids are visited in order; the next batch starts after this one. */
  afterId: string | null;
}

export interface UnstartedOrdersResult {
  /** Closed as FAILED / NOT_STARTED. */
  failed: number;
  /** Left alone: their workflow exists, a request holds their key, or stock or money was touched. */
  skipped: number;
  nextAfterId: string | null;
}

/** Describes run at once against Temporal while checking a batch. */
const DESCRIBE_CONCURRENCY = 8;

/** The latest run of the workflow id, or null when there is none. */
async function latestRun(temporal: Client, workflowId: string) {
  try {
    return await temporal.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The workflow's status name (RUNNING, COMPLETED, TERMINATED, …), or null when there is none. */
async function workflowStatus(temporal: Client, workflowId: string): Promise<string | null> {
  return (await latestRun(temporal, workflowId))?.status.name ?? null;
}

/**
 * Whether a parcel's tracking still holds it: its workflow runs, or its last run ended
 * without finishing (failed, terminated, timed out) less than `restartWindowMs` ago, so its
 * order may still restart it (src/workflows/order-tracking.ts); expiring it then would settle
 * the parcel under the order and make the restart refuse a finished shipment.
 */
async function trackingHeld(temporal: Client, workflowId: string, restartWindowMs: number): Promise<boolean> {
  const run = await latestRun(temporal, workflowId);
  if (run === null) return false;
  if (run.status.name === 'RUNNING') return true;
  return (
    run.status.name !== 'COMPLETED' &&
    run.closeTime !== undefined &&
    Date.now() - run.closeTime.getTime() < restartWindowMs
  );
}

function needsTemporal(temporal: Client | undefined, what: string): Client {
  if (temporal) return temporal;
  throw ApplicationFailure.create({
    type: FailureType.NOT_CONFIGURED,
    message: `housekeeping needs a Temporal client to ${what}`,
    nonRetryable: true,
  });
}

/** What the order of a shipment housekeeping expired learns: what its workflow would have sent. */
async function tellOrderExpired(
  temporal: Client,
  shipment: { id: string; order_id: string },
  log: Logger,
): Promise<void> {
  try {
    await temporal.workflow.getHandle(orderWorkflowId(shipment.order_id)).signal(shipmentMilestoneSignal, {
      shipmentId: shipment.id,
      status: 'EXPIRED',
      subStatus: 'NO_SCAN',
      at: new Date().toISOString(),
    });
  } catch (err) {
    // The order has finished (or never ran): nothing waits for this parcel any more.
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    log.info(
      { shipmentId: shipment.id, orderId: shipment.order_id },
      'expired shipment: its order has finished',
    );
  }
}
export function createExpiryActivities(deps: HousekeepingActivityDeps) {
  const { db, log } = deps;

  /**
   * Closes one order if its workflow never started. The order row and its idempotency key
   * are locked first: a client retry of the create waits on the key (and then finds the
   * order closed), and one already holding the key (starting the workflow right now) makes
   * this leave the order alone. Only then is Temporal asked, so no start slips in between.
   */
  async function failIfNeverStarted(
    temporal: Client,
    orderId: string,
    olderThanMs: number,
  ): Promise<boolean> {
    return db.transaction().execute(async (trx) => {
      const order = await lockPendingOrder(trx, orderId, olderThanMs);
      if (!order) return false;
      if (await lockOrderKeysHeld(trx, orderId)) return false;
      if (await orderTouchedStockOrMoney(trx, orderId)) {
        log.error(
          { orderId },
          'a PENDING order with no workflow holds stock or a payment: left for a person',
        );
        return false;
      }
      // Any run at all (running or closed) means the saga started: not ours to close.
      if ((await workflowStatus(temporal, orderWorkflowId(orderId))) !== null) return false;

      await closeOrderFailed(
        trx,
        orderId,
        OrderFailure.NOT_STARTED,
        'The order could not be started (the workflow service was unreachable when it was placed) and was closed; nothing was reserved or charged. Place it again.',
      );
      await writeAudit(trx, [
        {
          actor: 'system:housekeeping',
          action: 'order.fail_not_started',
          subjectType: 'order',
          subjectId: orderId,
          reason:
            'PENDING past the start grace with no order workflow: its start failed and was never retried',
          details: { createdAt: order.created_at.toISOString(), graceMs: olderThanMs },
          dedupeKey: `housekeeping:order-not-started:${orderId}`,
        },
      ]);
      return true;
    });
  }

  return {
    /** One batch of unscanned, untracked shipments → EXPIRED (sub-status NO_SCAN), audited. */
    async expireUnscannedShipments(input: ExpireBatchInput): Promise<ExpireBatchResult> {
      const candidates = await unscannedShipmentIds(db, input);

      const temporal =
        candidates.length === 0
          ? null
          : needsTemporal(deps.temporal, 'tell untracked shipments from tracked ones');
      const untracked: string[] = [];
      for (let i = 0; i < candidates.length; i += DESCRIBE_CONCURRENCY) {
        const slice = candidates.slice(i, i + DESCRIBE_CONCURRENCY);
        const running = await Promise.all(
          slice.map((id) => trackingHeld(temporal!, shipmentWorkflowId(id), input.restartWindowMs)),
        );
        slice.forEach((id, j) => {
          if (!running[j]) untracked.push(id);
        });
      }

      let expired: string[] = [];
      if (untracked.length > 0) {
        expired = await db.transaction().execute(async (trx) => {
          // With each parcel's event (the update only matched unfinished ones).
          const rows = await expireUnscanned(trx, untracked, input.expireAfterNoScanMs);
          await writeAudit(
            trx,
            rows.map((row) => ({
              actor: 'system:housekeeping',
              action: 'shipment.expire',
              subjectType: 'shipment',
              subjectId: row.id,
              reason: 'no scan within the expiry limit and no shipment workflow tracking it',
              details: { expireAfterNoScanMs: input.expireAfterNoScanMs },
              dedupeKey: `housekeeping:expire:${row.id}`,
            })),
          );
          // Before the commit: if telling an order fails, the expiry rolls back and the retry
          // does both again (a second EXPIRED milestone is harmless to the order).
          const ofOrders = rows.flatMap((r) =>
            r.order_id === null ? [] : [{ id: r.id, order_id: r.order_id }],
          );
          for (let i = 0; i < ofOrders.length; i += DESCRIBE_CONCURRENCY) {
            await Promise.all(
              ofOrders.slice(i, i + DESCRIBE_CONCURRENCY).map((row) => tellOrderExpired(temporal!, row, log)),
            );
          }
          return rows.map((r) => r.id);
        });
      }

      const skippedRunning = candidates.length - untracked.length;
      const meter = activityMeter();
      count(meter, Metrics.housekeepingShipments, { action: 'expired' }, expired.length);
      count(meter, Metrics.housekeepingShipments, { action: 'expiry_skipped_running' }, skippedRunning);
      if (expired.length > 0)
        log.info({ shipments: expired }, `housekeeping expired ${expired.length} shipments`);
      return {
        expired: expired.length,
        skippedRunning,
        nextAfterId: candidates.length === input.batchSize ? candidates[candidates.length - 1]! : null,
      };
    },

    /**
     * One batch of PENDING orders older than the grace whose order workflow never started →
     * FAILED / NOT_STARTED, audited. Nothing else to undo: stock is reserved and payment
     * authorised only by the order workflow's own activities, so an order it never ran for
     * holds neither (checked again here: one that does is left alone and logged).
     */
    async failUnstartedOrders(input: UnstartedOrdersInput): Promise<UnstartedOrdersResult> {
      const candidates = await pendingOrderIdsOlderThan(db, input);
      const failed: string[] = [];
      if (candidates.length > 0) {
        const temporal = needsTemporal(deps.temporal, 'tell orders that never started from running ones');
        // One at a time: each holds its order's rows while Temporal is asked (a few per run).
        for (const orderId of candidates) {
          if (await failIfNeverStarted(temporal, orderId, input.olderThanMs)) failed.push(orderId);
        }
      }
      const skipped = candidates.length - failed.length;
      const meter = activityMeter();
      count(meter, Metrics.housekeepingOrders, { action: 'failed_not_started' }, failed.length);
      count(meter, Metrics.housekeepingOrders, { action: 'skipped' }, skipped);
      if (failed.length > 0) {
        log.warn(
          { orders: failed },
          `housekeeping closed ${failed.length} orders whose workflow never started`,
        );
      }
      return {
        failed: failed.length,
        skipped,
        nextAfterId: candidates.length === input.batchSize ? candidates[candidates.length - 1]! : null,
      };
    },
  };
}
