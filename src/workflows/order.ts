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
import { allHandlersFinished, ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
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
} from './contract';
import { CancelRequested, OrderFailed, OrderSaga } from './order-saga';
import { CustomerIdKey, OrderIdKey, OrderStatusKey } from './search-attributes';
import { upsertChangedSearchAttributes } from './search-attribute-updates';
import { FailureType } from '../domain/failures';

export async function orderWorkflow(input: OrderWorkflowInput): Promise<OrderSnapshot> {
  const saga = new OrderSaga(input);
  listen(saga);
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

/** Queries, milestones from the shipment workflows, and the updates: cancel, resolve, restart tracking. */
function listen(saga: OrderSaga): void {
  setHandler(orderStateQuery, () => saga.snapshot());
  setHandler(shipmentMilestoneSignal, (milestone) => saga.onMilestone(milestone));
  setHandler(
    cancelOrderUpdate,
    async (request) => {
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
    },
    {
      validator: (request: CancelOrderRequest) => {
        if (!request.reason?.trim()) throw new Error('a cancel needs a reason');
        // Cancelling twice is harmless: a second request joins the first.
        if (saga.progress === OrderStatus.CANCELLED || saga.cancelRequest !== null) return;
        if (saga.finished() || saga.ending) {
          const where = saga.finished() ? saga.progress : 'being settled';
          throw new Error(`the order is already ${where} and cannot be cancelled`);
        }
        if (saga.pickedUp()) {
          throw new Error('ALREADY_PICKED_UP: a parcel of this order has been picked up by the courier');
        }
      },
    },
  );
  setHandler(resolveAttentionUpdate, (request) => saga.resolve(request), {
    validator: (request) => saga.attention.validate(request),
  });
  setHandler(restartTrackingUpdate, (request) => saga.restartTracking(request), {
    validator: (request) => saga.validateRestart(request),
  });
  setHandler(trackingEndedSignal, (notice) => saga.heardLate(notice));
}
