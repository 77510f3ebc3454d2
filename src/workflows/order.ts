/**
 * Order workflow (`order-<orderId>`): the compensating saga, as its story. The state lives in
 * ./order-saga.ts, the forward steps in ./order-steps.ts, cancel and failure (the
 * compensations) in ./order-ending.ts; each step registers its undo, and each is idempotent, so a
 * cancel the courier turns down (it has a parcel already) resumes the story from the top.
 *
 *   reserve stock → authorise → book each parcel → track each parcel → follow them → finish
 *   undo, in reverse: cancel bookings, void or refund, release stock
 *
 * A cancel accepted before pickup stops the story where it is (pre-empting a booking in
 * flight) and compensates; a step that fails for good compensates and ends FAILED. A money
 * movement or compensation the provider or courier refuses for good is parked for an admin
 * (NEEDS_ATTENTION) and the rest still runs; the workflow closes once nothing is parked.
 * Deterministic code only.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  setHandler,
} from '@temporalio/workflow';
import {
  cancelOrderUpdate,
  orderStateQuery,
  OrderStatus,
  resolveAttentionUpdate,
  restartTrackingUpdate,
  trackingEndedSignal,
  shipmentMilestoneSignal,
  type CancelOrderRequest,
  type OrderSnapshot,
  type OrderWorkflowInput,
  type ResolveAttentionRequest,
  type RestartTrackingRequest,
  type TrackingEndedNotice,
} from './contract';
import { refuseTemporalCancel, TEMPORAL_CANCEL } from './order-ending';
import { CancelRequested, OrderFailed, OrderSaga } from './order-saga';
import { CustomerIdKey, OrderIdKey, OrderStatusKey } from './search-attributes';
import { upsertChangedSearchAttributes } from './search-attribute-updates';
import { FailureType } from '../domain/failures';

export async function orderWorkflow(input: OrderWorkflowInput): Promise<OrderSnapshot> {
  const saga = new OrderSaga(input);
  listen(saga);
  // A cancellation requested in Temporal (the UI's "Request Cancellation", `temporal workflow
  // cancel`) never cuts a step short: that would end the workflow with the card authorised, the
  // stock reserved and the booking live. It is taken as a cancel of the order instead, carried
  // out by the saga like the cancel update when a cancel could be, and otherwise left on record.
  CancellationScope.current().cancelRequested.catch(() => cancelFromTemporal(saga));
  return CancellationScope.nonCancellable(() => story(saga, input));
}

/** The saga from its first step to its settled end. */
async function story(saga: OrderSaga, input: OrderWorkflowInput): Promise<OrderSnapshot> {
  upsertChangedSearchAttributes([
    { key: OrderIdKey, value: input.orderId },
    { key: OrderStatusKey, value: OrderStatus.PENDING },
    ...(input.customerId ? [{ key: CustomerIdKey, value: input.customerId }] : []),
  ]);

  for (;;) {
    try {
      await saga.reserveStock(); // undo: release the stock
      await saga.authorisePayment(); // undo: void, or refund once captured
      await saga.bookParcels(); // undo: cancel each booking
      await saga.startTracking(); // CONFIRMED; one shipment workflow per parcel
      await saga.followParcels(); // capture at the first pickup; restock and refund returns
      await saga.finish(); // DELIVERED or RETURNED; nothing arrived → OrderFailed
      break;
    } catch (err) {
      if (err instanceof CancelRequested) {
        if (await saga.cancel()) break; // CANCELLED
        continue; // refused: the courier has a parcel, so the order carries on
      }
      if (err instanceof OrderFailed) {
        await saga.fail(err); // compensate, FAILED
        break;
      }
      throw err;
    }
  }

  await saga.settle(); // NEEDS_ATTENTION until an admin retries or resolves every parked step
  await condition(allHandlersFinished);
  return saga.snapshot();
}

/**
 * Why a cancel cannot be carried out now, or null when it can (or one is already under way:
 * a second request joins the first).
 */
function whyNotCancellable(saga: OrderSaga): string | null {
  if (saga.progress === OrderStatus.CANCELLED || saga.cancelRequest !== null) return null;
  if (saga.finished() || saga.ending) return alreadyEnding(saga);
  if (saga.pickedUp()) return 'ALREADY_PICKED_UP: a parcel of this order has been picked up by the courier';
  return null;
}

/** The refusal of a cancel that comes once the order is finished or being settled. */
const alreadyEnding = (saga: OrderSaga) =>
  `the order is already ${saga.finished() ? saga.progress : 'being settled'} and cannot be cancelled`;

/**
 * A cancellation requested in Temporal: the order's cancel when one is possible; otherwise
 * the order goes on (a parcel is with the courier, or the order is already ending) and the
 * refusal is written to the audit log, and so to the history, for whoever asked. Taken on, it
 * is pending until the order is cancelled; if the cancel it started or joined is refused
 * after the fact, or the order fails first, the refusal is written then.
 */
function cancelFromTemporal(saga: OrderSaga): void {
  if (saga.cancelSettled || saga.progress === OrderStatus.CANCELLED) return; // cancelled already
  let refusal: string | null;
  if (saga.finished()) refusal = alreadyEnding(saga);
  else if (saga.cancelRequest !== null)
    refusal = null; // joins the cancel under way
  else refusal = whyNotCancellable(saga);
  if (refusal === null) {
    saga.cancelRequest ??= TEMPORAL_CANCEL;
    saga.temporalCancelPending = true;
    return;
  }
  void CancellationScope.nonCancellable(() => refuseTemporalCancel(saga, refusal));
}

/**
 * A handler's work, shielded from a cancellation requested in Temporal like the story is: a
 * money step an admin's resolve runs, or a cancel waiting for its outcome, is not cut short.
 */
const shielded =
  <A extends unknown[], R>(handler: (...args: A) => R | Promise<R>) =>
  (...args: A): Promise<R> =>
    CancellationScope.nonCancellable(async () => handler(...args));

/** Queries, milestones from the shipment workflows, and the updates: cancel, resolve, restart tracking. */
function listen(saga: OrderSaga): void {
  setHandler(orderStateQuery, () => saga.snapshot());
  setHandler(shipmentMilestoneSignal, (milestone) => saga.onMilestone(milestone));
  setHandler(
    cancelOrderUpdate,
    shielded(async (request: CancelOrderRequest) => {
      saga.cancelRequest ??= request;
      await condition(() => saga.cancelSettled || saga.cancelRefusal !== null || saga.ended);
      if (saga.cancelSettled) return saga.snapshot();
      if (saga.cancelRefusal !== null) {
        throw ApplicationFailure.create({
          type: FailureType.ALREADY_PICKED_UP,
          message: saga.cancelRefusal,
          nonRetryable: true,
        });
      }
      // Ended without carrying the cancel out: a step failed for good first (a failure wins
      // over a cancel) and the order compensated as FAILED, perhaps with a step parked.
      throw ApplicationFailure.create({
        type: FailureType.FAILED_BEFORE_CANCEL,
        // The code only: the failure's text may quote a provider or courier (staff see it).
        message: `the order failed before the cancel could be carried out (${saga.failureCode}); what it held is being given back`,
        nonRetryable: true,
      });
    }),
    {
      validator: (request: CancelOrderRequest) => {
        if (!request.reason?.trim()) throw new Error('a cancel needs a reason');
        const refusal = whyNotCancellable(saga);
        if (refusal !== null) throw new Error(refusal);
      },
    },
  );
  setHandler(
    resolveAttentionUpdate,
    shielded((request: ResolveAttentionRequest) => saga.resolve(request)),
    { validator: (request) => saga.attention.validate(request) },
  );
  setHandler(
    restartTrackingUpdate,
    shielded((request: RestartTrackingRequest) => saga.restartTracking(request)),
    { validator: (request) => saga.validateRestart(request) },
  );
  // Shielded too: the end it hands on may start a restart window, a last poll and a write.
  setHandler(
    trackingEndedSignal,
    shielded((notice: TrackingEndedNotice) => saga.heardLate(notice)),
  );
}
