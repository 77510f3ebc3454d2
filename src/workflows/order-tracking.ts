/**
 * The order's parcels under tracking: each parcel's shipment workflow is a child the order
 * starts and owns, learning how it ended however it ends. A child that fails, times out or
 * is terminated leaves the parcel's fate unknown: with a restart window the order waits
 * that long for ops to start its tracking again (the `restartTracking` update, from the
 * failed-work API) before it settles the parcel as lost. Deterministic code only.
 */
import {
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  ParentClosePolicy,
  startChild,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { activityFailure, FailureType } from '../domain/failures';
import { BUDGET_WINDOW_SPREAD_MS, budgetWindowFrom } from '../domain/polling';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import {
  shipmentWorkflowId,
  SHIPMENT_WORKFLOW_TASK_TIMEOUT,
  type RestartTrackingRequest,
  type TrackingEndedNotice,
  type RestartTrackingResult,
  type ShipmentState,
} from './contract';
import { message } from './order-activities';
import { noteMarkedDelivered, type Parcel } from './order-parcels';
import type { OrderSaga } from './order-saga';
import { shipmentSearchAttributes } from './search-attributes';
import { shipmentWorkflow } from './shipment';
import { shipmentStaticSummary } from './summaries';

/**
 * Starts the parcel's shipment workflow (again, from `resume`, after a run that did not
 * complete) and owns it. ABANDON: a parcel in a van stays tracked whatever happens to its
 * order workflow (the order itself never closes before its parcels are final).
 */
export async function track(saga: OrderSaga, parcel: Parcel, resume?: ShipmentState): Promise<string> {
  const { input } = saga;
  const child = await startChild(shipmentWorkflow, {
    workflowId: shipmentWorkflowId(parcel.shipmentId),
    workflowTaskTimeout: SHIPMENT_WORKFLOW_TASK_TIMEOUT,
    parentClosePolicy: ParentClosePolicy.ABANDON,
    // A restart is a new run of the same id, only after a run that did not complete.
    ...(resume ? { workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY } : {}),
    staticSummary: shipmentStaticSummary({
      parcel: saga.parcels.indexOf(parcel) + 1,
      parcels: saga.parcels.length,
      orderNumber: input.orderNumber,
      courier: parcel.courier,
      trackingNumber: parcel.trackingNumber!,
    }),
    // Indexed from the start: the workflow then has no attributes of its own to upsert.
    typedSearchAttributes: shipmentSearchAttributes(
      { courier: parcel.courier, trackingNumber: parcel.trackingNumber!, orderId: input.orderId },
      resume?.status ?? ShipmentStatus.PENDING,
    ),
    args: [
      {
        shipmentId: parcel.shipmentId,
        orderId: input.orderId,
        courier: parcel.courier,
        trackingNumber: parcel.trackingNumber!,
        ...(input.shipmentPolicy ? { policy: input.shipmentPolicy } : {}),
        ...(resume ? { state: resume } : {}),
      },
    ],
  });
  parcel.tracked = true;
  saga.children.set(parcel.shipmentId, child);
  // The order hears how this chain of runs ended once: from Temporal, or from the API's notice
  // after a reset (`heardLate`) when the end reached a run of the order that had stopped.
  let heard = false;
  const end = (outcome: TrackingEnd) => {
    if (heard) return;
    heard = true;
    if ('final' in outcome) {
      noteMarkedDelivered(parcel, outcome.subStatus);
      parcelEnded(saga, parcel, outcome.final, null);
    } else trackingDied(saga, parcel, outcome.failure);
  };
  saga.trackingEnds.set(parcel.shipmentId, end);
  child.result().then(
    (final) => end({ final: final.status, subStatus: final.subStatus }),
    (err) => end({ failure: message(err) }),
  );
  return child.firstExecutionRunId;
}

/** How a parcel's shipment workflow ended: its final status, or why it has none. */
export type TrackingEnd = { final: ShipmentStatus; subStatus: string | null } | { failure: string };

/**
 * The `trackingEnded` signal, sent by the API right after it reset this order: the parcel's
 * shipment workflow ended while the order was stopped, so the end went to the stopped run. Taken
 * as if heard then (a completed run settles the parcel by its final status; one that died waits
 * for a restart as usual), unless the order has heard it already or the notice names another
 * chain of runs than the one the order tracks.
 */
export function heardLate(saga: OrderSaga, notice: TrackingEndedNotice): void {
  const end = saga.trackingEnds.get(notice.shipmentId);
  if (!end || saga.children.get(notice.shipmentId)?.firstExecutionRunId !== notice.trackingRunId) {
    log.warn('a notice of ended tracking names a run this order does not track; ignored', { ...notice });
    return;
  }
  log.warn('a shipment workflow ended while the order was stopped; the order takes its end now', {
    ...notice,
  });
  end(
    notice.final !== null
      ? { final: notice.final, subStatus: notice.subStatus ?? null }
      : { failure: `its shipment workflow ended while the order was stopped: ${notice.how}` },
  );
}

/**
 * A shipment workflow closed. Its final status is the courier's last word; a workflow that
 * failed, timed out or was terminated (and was not restarted in time) leaves the parcel's fate
 * unknown, and it is settled like an expired one (booking cancelled unless collected, money
 * back for what did not arrive).
 */
function parcelEnded(saga: OrderSaga, parcel: Parcel, status: ShipmentStatus, failure: string | null): void {
  const settledHere = !isTerminal(parcel.status);
  if (settledHere) {
    parcel.status = isTerminal(status) ? status : ShipmentStatus.EXPIRED;
    if (PICKED_UP_STATUSES.has(status)) parcel.pickedUp = true;
  }
  if (failure !== null) {
    parcel.trackingEnded = failure;
    log.warn('a shipment workflow ended without a final status; its parcel is settled as expired', {
      shipmentId: parcel.shipmentId,
      failure,
    });
    // Nothing tracks a collected parcel any more: its row would show the last scan for days
    // (until housekeeping's no-scan expiry) while the order refunds it. A parcel still at the
    // shipper has its booking cancelled by the settlement, which marks its row CANCELLED.
    if (settledHere && parcel.pickedUp) {
      void saga.queueWrite(() =>
        saga.act.always.settleLostParcel.executeWithOptions(
          { summary: `parcel ${parcel.shipmentId} settled as lost: its row → EXPIRED` },
          [{ orderId: saga.input.orderId, shipmentId: parcel.shipmentId, reason: failure }],
        ),
      );
    }
  }
  saga.showDetails();
}

/**
 * A shipment workflow failed, timed out or was terminated. With a restart window the order
 * waits that long for ops to restart its tracking (`restartTracking`) before it settles the
 * parcel as lost; without one, or once the order is ending, it settles it at once.
 */
function trackingDied(saga: OrderSaga, parcel: Parcel, failure: string): void {
  const windowMs = saga.input.trackingRestartWindowMs ?? 0;
  if (saga.ending || isTerminal(parcel.status)) {
    parcelEnded(saga, parcel, ShipmentStatus.EXPIRED, failure);
    return;
  }
  if (windowMs <= 0) {
    settleUntracked(saga, parcel, failure);
    return;
  }
  parcel.trackingLost = failure;
  const generation = ++parcel.trackingGeneration;
  log.warn('a shipment workflow ended without a final status; waiting for its tracking to be restarted', {
    shipmentId: parcel.shipmentId,
    failure,
    windowMs,
  });
  saga.showDetails();
  void condition(() => parcel.trackingGeneration !== generation, windowMs, {
    summary: `tracking of ${parcel.shipmentId} lost: settled as lost unless restarted`,
  }).then((restarted) => {
    if (!restarted) settleUntracked(saga, parcel, failure);
  });
}

/**
 * A parcel nobody tracks any more is settled: by its courier's (or its driver's) last word
 * when that is final — delivered, returned — else as lost. Without that word a parcel
 * delivered while its tracking was dead would be refunded as lost. No restart from here.
 */
function settleUntracked(saga: OrderSaga, parcel: Parcel, failure: string): void {
  parcel.trackingLost = null;
  parcel.settling = true;
  lastWord(saga, parcel).then(
    (final) => {
      parcel.settling = false;
      if (final === null) {
        parcelEnded(saga, parcel, ShipmentStatus.EXPIRED, failure);
        return;
      }
      log.info("a parcel whose tracking died is settled by its courier's last word", {
        shipmentId: parcel.shipmentId,
        status: final,
        failure,
      });
      parcelEnded(saga, parcel, final, null);
    },
    // Only the workflow's own cancellation gets here: nothing is left to settle for.
    () => undefined,
  );
}

/**
 * The parcel's final status: a delivery or return the read model already holds, else one last
 * poll (the driver's log for the fleet), recorded on the read model; null when it has none or
 * the courier does not answer. A poll refused because the courier's daily budget is used up
 * waits for the next budget window and asks then (once): settled as lost without it, a parcel
 * delivered meanwhile would be refunded.
 */
async function lastWord(saga: OrderSaga, parcel: Parcel): Promise<ShipmentStatus | null> {
  // Its workflow may have recorded the end (a delivery) and died before telling the order:
  // the read model's word comes first, and needs no courier.
  const recorded = await saga.act.always.recordedEnd.executeWithOptions(
    { summary: `what the read model holds of ${parcel.shipmentId}: is it final?` },
    [{ shipmentId: parcel.shipmentId }],
  );
  if (recorded !== null && !isTerminal(parcel.status)) {
    noteMarkedDelivered(parcel, recorded.subStatus);
    return recorded.status;
  }
  for (let waited = false; ; waited = true) {
    try {
      return await askLastWord(saga, parcel);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const windowAt = waited ? null : budgetWindowOf(err);
      if (windowAt !== null) {
        log.warn("the courier's daily budget is used up: the last poll waits for the next window", {
          shipmentId: parcel.shipmentId,
          windowAt: new Date(windowAt).toISOString(),
        });
        // At least a minute (this clock may be ahead), at most a day and a spread: parcels
        // blocked together do not all call when the window opens.
        const waitMs =
          Math.min(Math.max(windowAt - Date.now(), 60_000), DAY_MS) +
          Math.floor(Math.random() * BUDGET_WINDOW_SPREAD_MS);
        await condition(() => false, waitMs, {
          summary: `last poll of ${parcel.shipmentId}: the courier's daily budget is used up; asked when it reopens`,
        });
        continue;
      }
      log.warn('no last word from the courier: the parcel is settled as lost', {
        shipmentId: parcel.shipmentId,
        error: message(err),
      });
      return null;
    }
  }
}

const DAY_MS = 86_400_000;

/** When the courier's budget reopens, from a poll refused because the day's budget is used up; null for any other failure. */
function budgetWindowOf(err: unknown): number | null {
  const { type, details } = activityFailure(err);
  return type === FailureType.BUDGET_EXHAUSTED ? budgetWindowFrom(details, Date.now()) : null;
}

async function askLastWord(saga: OrderSaga, parcel: Parcel): Promise<ShipmentStatus | null> {
  const { shipmentId, courier } = parcel;
  const trackingNumber = parcel.trackingNumber!;
  const found =
    courier === 'fleet'
      ? await saga.act.always.driverReports
          .executeWithOptions({ summary: `the driver's last report of ${trackingNumber}` }, [
            { trackingNumber },
          ])
          .then((events) => (events[0] ? { ...events[0], eta: null, events, syncedAt: null } : null))
      : await saga.act.lastWord.pollCourier
          .executeWithOptions({ summary: `last poll of ${trackingNumber}: is it final?` }, [
            { shipmentId, courier, trackingNumber },
          ])
          .then((outcome) =>
            outcome.kind === 'found' ? { ...outcome, syncedAt: new Date().toISOString() } : null,
          );
  // Final, and the parcel still the courier's to settle (a cancel may have ended it meanwhile).
  if (found === null || !isTerminal(found.status) || isTerminal(parcel.status)) return null;
  await saga.act.always.recordTracking.executeWithOptions(
    { summary: `record ${trackingNumber} ${found.status}: its final status` },
    [
      {
        shipmentId,
        events: found.events,
        status: found.status,
        subStatus: found.subStatus,
        eta: found.eta,
        syncedAt: found.syncedAt,
        nextPollAt: null,
      },
    ],
  );
  return found.status;
}

/** The `restartTracking` update's validator: a parcel of this order, not settled, the order not ending. */
export function validateRestart(saga: OrderSaga, request: RestartTrackingRequest): void {
  if (!request.reason?.trim()) throw new Error('a reason is required');
  const parcel = saga.parcels.find((p) => p.shipmentId === request.shipmentId);
  if (!parcel) throw new Error(`no parcel ${request.shipmentId} on this order`);
  if (parcel.trackingLost === null && isTerminal(parcel.status))
    throw new Error(`parcel ${parcel.shipmentId} is ${parcel.status}: the order has settled it`);
  if (parcel.settling)
    throw new Error(
      `parcel ${parcel.shipmentId} is being settled: its courier is asked for its final status once more`,
    );
  if (saga.ending) throw new Error('the order is being settled: its parcels can no longer be restarted');
}

/** How long a restart waits for the order to learn that the parcel's workflow closed. */
const CHILD_END_NOTICE = '10s';

/** Starts the parcel's shipment workflow again, from the read model's state; the order owns the new run. */
export async function restartTracking(
  saga: OrderSaga,
  request: RestartTrackingRequest,
): Promise<RestartTrackingResult> {
  const parcel = saga.parcels.find((p) => p.shipmentId === request.shipmentId)!;
  // The API asks only after it saw the run closed, but the order learns of a child's end in a
  // workflow task of its own, which may come after this update: it waits for it a moment.
  const noticed = () => parcel.trackingLost !== null || parcel.settling || isTerminal(parcel.status);
  if (!noticed()) await condition(noticed, CHILD_END_NOTICE);
  if (parcel.trackingLost === null) {
    throw ApplicationFailure.create({
      type: FailureType.RESTART_REFUSED,
      message: isTerminal(parcel.status)
        ? `parcel ${parcel.shipmentId} is ${parcel.status}: the order has settled it`
        : parcel.settling
          ? `parcel ${parcel.shipmentId} is being settled: its courier is asked for its final status once more`
          : `parcel ${parcel.shipmentId} is being tracked: its shipment workflow is running`,
      nonRetryable: true,
    });
  }
  const lost = parcel.trackingLost;
  parcel.trackingLost = null;
  parcel.trackingGeneration += 1;
  log.info('tracking restarted', { shipmentId: parcel.shipmentId, requestedBy: request.requestedBy });
  let runId: string;
  try {
    runId = await track(saga, parcel, request.state);
  } catch (err) {
    trackingDied(saga, parcel, lost);
    throw ApplicationFailure.create({
      type: FailureType.RESTART_REFUSED,
      message: `the shipment workflow could not be started again: ${message(err)}`,
      nonRetryable: true,
    });
  }
  saga.showDetails();
  return { shipmentId: parcel.shipmentId, workflowId: shipmentWorkflowId(parcel.shipmentId), runId };
}
