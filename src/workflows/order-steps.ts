/**
 * The order saga's forward steps, in the story's order (src/workflows/order.ts): reserve the
 * stock, authorise the payment, book each parcel, track each parcel, follow them to the end,
 * finish. Each is idempotent (it skips what is done), so after a refused cancel the story
 * simply runs again from the top; each registers its undo on the saga's stack as it
 * succeeds. Deterministic code only.
 */
import { ActivityFailure, CancellationScope, condition, isCancellation } from '@temporalio/workflow';
import { FailureType } from '../domain/failures';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { AttentionStep, CaptureSettlement, OrderFailure, OrderStatus } from './contract';
import { failureType, message } from './order-activities';
import type { Parcel } from './order-parcels';
import { courierName } from './summaries';
import type { OrderSaga } from './order-saga';
import {
  cancelBookingForGood,
  payOwedRefunds,
  recallCollected,
  refundParcel,
  releaseHandDelivered,
  releaseStock,
} from './order-ending';
import { CancelRequested, OrderFailed } from './order-errors';
import { track } from './order-tracking';

export async function reserveStock(saga: OrderSaga): Promise<void> {
  if (saga.stockReserved) return;
  // Its undo is registered first. The reserve is a local activity: it can commit and then be
  // lost with its workflow task (a worker that dies before completing it), and the task's
  // retry can bring a cancel before the reserve runs again. Releasing what is not held
  // changes nothing.
  if (!saga.compensations.some((c) => c.id === 'release_stock')) {
    saga.compensations.push({
      id: 'release_stock',
      step: null,
      kind: 'release_stock',
      run: () => releaseStock(saga, 'compensate: release the reserved stock'),
    });
  }
  saga.throwIfCancelled();
  const { input } = saga;
  try {
    await saga.act.stock.reserveStock.executeWithOptions(
      { summary: `reserve stock: ${input.lines.map((l) => `${l.quantity}× ${l.sku}`).join(', ')}` },
      [{ orderId: input.orderId, lines: input.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })) }],
    );
  } catch (err) {
    if (failureType(err) === FailureType.OUT_OF_STOCK)
      throw new OrderFailed(OrderFailure.OUT_OF_STOCK, message(err));
    throw new OrderFailed(OrderFailure.STOCK_FAILED, `stock could not be reserved: ${message(err)}`);
  }
  saga.stockReserved = true;
}

export async function authorisePayment(saga: OrderSaga): Promise<void> {
  if (saga.payment.answered) return;
  saga.throwIfCancelled();
  let auth;
  try {
    auth = await saga.payment.authorise();
  } catch (err) {
    // Every attempt at the provider failed (its record, retried until our database takes it,
    // fails only if the workflow is cancelled), but the provider may have authorised before an
    // answer was lost: whatever it holds is voided.
    saga.compensations.push({
      id: AttentionStep.VOID_OR_REFUND,
      step: AttentionStep.VOID_OR_REFUND,
      kind: 'void_or_refund_payment',
      run: () => saga.payment.voidUnknown(),
    });
    throw new OrderFailed(OrderFailure.PAYMENT_FAILED, `payment could not be authorised: ${message(err)}`);
  }
  if (!auth.authorised) throw new OrderFailed(OrderFailure.PAYMENT_DECLINED, auth.reason);
  saga.compensations.push({
    id: AttentionStep.VOID_OR_REFUND,
    step: AttentionStep.VOID_OR_REFUND,
    kind: 'void_or_refund_payment',
    run: () => saga.payment.giveBack(),
  });
  saga.showDetails();
}

/**
 * Books every parcel not booked yet, all at once (they are independent); a cancel pre-empts
 * the bookings in flight. Every booking settles, its undo registered, before the saga goes
 * on or compensates; one that fails for good stops the others (whose undo then looks for a
 * booking made before the answer was lost), and the order fails with its reason.
 */
export async function bookParcels(saga: OrderSaga): Promise<void> {
  const todo = saga.parcels.filter((p) => p.trackingNumber === null && !p.bookingCancelled);
  if (todo.length === 0) return;
  saga.throwIfCancelled();
  let failed = false;
  const results = await Promise.allSettled(
    todo.map((parcel) =>
      bookParcel(saga, parcel, () => failed).catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (errors.length > 0) throw errors.find((e) => e instanceof OrderFailed) ?? errors[0];
}

async function bookParcel(saga: OrderSaga, parcel: Parcel, siblingFailed: () => boolean): Promise<void> {
  const { input } = saga;
  const booking = {
    orderId: input.orderId,
    shipmentId: parcel.shipmentId,
    courier: parcel.courier,
    lineNos: parcel.lines.map((l) => l.lineNo),
  };
  try {
    const { trackingNumber } = await untilCancelled(
      saga,
      () =>
        saga.act.booking.bookShipment.executeWithOptions(
          { summary: `book parcel ${parcel.shipmentId} with ${courierName(parcel.courier)}` },
          [booking],
        ),
      siblingFailed,
    );
    parcel.trackingNumber = trackingNumber;
  } catch (err) {
    // Unless the courier refused it, the booking may exist with its answer lost: book again
    // under the same reference (the courier answers with that booking, or makes one) and
    // cancel it, so no courier comes for a parcel of a failed or cancelled order.
    if (failureType(err) !== FailureType.BOOKING_REJECTED) {
      saga.compensations.push({
        id: `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
        step: AttentionStep.CANCEL_BOOKING,
        kind: 'cancel_booking',
        run: async () => {
          if (parcel.bookingCancelled) return;
          try {
            const found = await saga.act.release.bookShipment.executeWithOptions(
              {
                summary: `compensate: find any booking of ${parcel.shipmentId} made before the answer was lost`,
              },
              [{ ...booking, release: true }],
            );
            parcel.trackingNumber = found.trackingNumber;
          } catch (bookErr) {
            if (failureType(bookErr) === FailureType.BOOKING_REJECTED) return; // the courier holds nothing
            throw bookErr;
          }
          await cancelBookingForGood(saga, parcel);
        },
      });
    }
    // Stopped by us (a cancel accepted, or a sibling's failure): also when the attempt out then
    // failed on its own, which the server retries no more (the courier timing out is not why the
    // order ends). A booking that failed for good before that is a failure, which wins over a cancel.
    if (isCancellation(err) || stoppedAfterAttempt(err)) throw new CancelRequested();
    throw new OrderFailed(OrderFailure.BOOKING_FAILED, `the courier booking failed: ${message(err)}`);
  }
  saga.compensations.push({
    id: `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
    step: AttentionStep.CANCEL_BOOKING,
    kind: 'cancel_booking',
    run: async () => {
      if (parcel.bookingCancelled) return;
      if (!parcel.pickedUp) return cancelBookingForGood(saga, parcel);
      // A parcel the courier has had and then lost has no booking left to cancel. One it has
      // now (its collection is why a cancel was refused, and then a sibling's booking failed
      // for good) is on its way to a shopper who will not pay: recall it.
      if (!isTerminal(parcel.status)) await recallCollected(saga, parcel);
    },
  });
}

/** An activity we asked to stop whose attempt out then failed: the server gave up its retries for the stop. */
const stoppedAfterAttempt = (err: unknown) =>
  err instanceof ActivityFailure && err.retryState === 'CANCEL_REQUESTED';

/** Runs `work` in a scope that an accepted cancel, or `stop()`, cancels (the activity learns it at its heartbeat). */
async function untilCancelled<T>(saga: OrderSaga, work: () => Promise<T>, stop: () => boolean): Promise<T> {
  const scope = new CancellationScope();
  const watcher = new CancellationScope();
  void watcher
    .run(() => condition(() => saga.cancelRequest !== null || stop()))
    .then(
      () => scope.cancel(),
      () => undefined,
    );
  try {
    return await scope.run(work);
  } finally {
    watcher.cancel();
  }
}

/** CONFIRMED, then one child shipment workflow per booked parcel, then the confirmation goes out. */
export async function startTracking(saga: OrderSaga): Promise<void> {
  saga.throwIfCancelled();
  if (saga.progress === OrderStatus.PENDING) await saga.setProgress(OrderStatus.CONFIRMED);
  // A cancel taken while that write ran (a slow database: the workflow task completed meanwhile)
  // goes first: no parcel tracked for it, no "confirmed" sent to a shopper who has cancelled.
  saga.throwIfCancelled();
  const toTrack: Parcel[] = [];
  for (const parcel of saga.parcels) {
    if (parcel.tracked) continue;
    if (parcel.bookingCancelled) {
      // Cancelled by a cancel that was then refused for another parcel: it is settled at the end.
      parcel.status = ShipmentStatus.CANCELLED;
      continue;
    }
    toTrack.push(parcel);
  }
  // The parcels' workflows are independent: started together, in one workflow task.
  await Promise.all(toTrack.map((parcel) => track(saga, parcel)));
  if (!saga.tracking) {
    saga.tracking = true;
    saga.notify('confirmed');
    // Low stock is worth telling ops once the stock is really spoken for.
    await saga.act.always.notifyLowStock.executeWithOptions({ summary: 'tell ops about low stock, if any' }, [
      { skus: saga.input.lines.map((l) => l.sku) },
    ]);
  }
}

/** Follows the parcels: capture at the first pickup, settle returns, until every parcel is final. */
export async function followParcels(saga: OrderSaga): Promise<void> {
  const newlyPickedUp = () =>
    saga.parcels.filter((p) => (p.pickedUp || PICKED_UP_STATUSES.has(p.status)) && !p.consumed);
  const unsettledReturns = () =>
    saga.parcels.filter((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled);
  const allFinal = () => saga.parcels.every((p) => isTerminal(p.status));
  for (;;) {
    await condition(
      () =>
        saga.cancelRequest !== null ||
        newlyPickedUp().length > 0 ||
        unsettledReturns().length > 0 ||
        allFinal(),
    );
    saga.throwIfCancelled();
    const picked = newlyPickedUp();
    if (picked.length > 0) await onPickup(saga, picked);
    for (const parcel of unsettledReturns()) await settleReturn(saga, parcel);
    // A parcel may have come back (or been picked up) while those awaited: the loop takes it.
    if (allFinal() && newlyPickedUp().length === 0 && unsettledReturns().length === 0) return;
  }
}

/** The point of no return: capture once (at the first pickup) and ship the stock. */
async function onPickup(saga: OrderSaga, parcels: Parcel[]): Promise<void> {
  const { input } = saga;
  for (const p of parcels) p.pickedUp = true;
  if (saga.payment.capturable && !saga.attention.has(AttentionStep.CAPTURE)) {
    await saga.attention.runOrPark(AttentionStep.CAPTURE, AttentionStep.CAPTURE, () => capture(saga));
  }
  for (const parcel of parcels) {
    await saga.act.always.consumeStock.executeWithOptions(
      { summary: `stock of parcel ${parcel.shipmentId} has left` },
      [{ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) }],
    );
    parcel.consumed = true;
  }
  const next = saga.parcels.every((p) => p.consumed) ? OrderStatus.SHIPPED : OrderStatus.PARTIALLY_SHIPPED;
  if (next !== saga.progress) {
    await saga.setProgress(next);
    saga.notify(next === OrderStatus.SHIPPED ? 'shipped' : 'partially-shipped');
  }
}

async function capture(saga: OrderSaga): Promise<void> {
  await saga.payment.capture();
  saga.showDetails();
  await payOwedRefunds(saga);
}

/**
 * An admin resolved the parked capture. Made by hand: the order counts as captured from the
 * provider's books, and the refunds owed meanwhile are paid (less what was given back by
 * hand). Not charged: the authorisation is voided and nothing is owed back any more.
 */
export async function settleParkedCapture(saga: OrderSaga, settlement: string): Promise<void> {
  if (settlement === CaptureSettlement.CAPTURED_BY_HAND) {
    await saga.payment.takeCaptureMadeByHand();
    saga.showDetails();
    await payOwedRefunds(saga);
    return;
  }
  await saga.payment.waive();
  for (const parcel of saga.parcels) parcel.refundOwed = false;
  saga.showDetails();
}

/** The return leg of the saga: restock this parcel's lines and refund their amount. */
async function settleReturn(saga: OrderSaga, parcel: Parcel): Promise<void> {
  await saga.act.always.restockReturned.executeWithOptions(
    { summary: `restock returned parcel ${parcel.shipmentId}` },
    [{ orderId: saga.input.orderId, skus: parcel.lines.map((l) => l.sku) }],
  );
  parcel.returnSettled = true;
  await refundParcel(saga, parcel);
  saga.notify(`returned:${parcel.shipmentId}`);
}

/**
 * Every parcel is final. Nothing delivered and nothing returned: the order failed (the
 * compensations give everything back). Otherwise parcels that did not arrive are refunded
 * line by line, their bookings cancelled if the courier never collected them, and the
 * stock of parcels that never left released. A parcel an admin marked delivered has its
 * booking released too: the courier may never have collected it (the shop delivered it
 * itself), and a booking left live would have it call for a parcel that is gone.
 */
export async function finish(saga: OrderSaga): Promise<void> {
  const delivered = saga.parcels.filter((p) => p.status === ShipmentStatus.DELIVERED);
  const returned = saga.parcels.filter((p) => p.status === ShipmentStatus.RETURNED);
  const lost = saga.parcels.filter((p) => !delivered.includes(p) && !returned.includes(p));
  if (delivered.length === 0 && returned.length === 0) {
    const why = lost.map(
      (p) => `${p.shipmentId} ${p.status}${p.trackingEnded ? ` (${p.trackingEnded})` : ''}`,
    );
    throw new OrderFailed(OrderFailure.SHIPMENT_LOST, `no parcel arrived: ${why.join(', ')}`);
  }
  saga.ending = true;
  for (const parcel of lost) {
    if (!parcel.pickedUp && !parcel.bookingCancelled && parcel.trackingNumber !== null) {
      await saga.attention.runOrPark(
        `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
        AttentionStep.CANCEL_BOOKING,
        () => cancelBookingForGood(saga, parcel),
      );
    }
    await refundParcel(saga, parcel);
  }
  for (const parcel of delivered.filter((p) => p.markedDelivered && !p.bookingCancelled)) {
    await saga.attention.runOrPark(
      `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
      AttentionStep.CANCEL_BOOKING,
      () => releaseHandDelivered(saga, parcel),
    );
  }
  await releaseStock(saga, 'release the stock of parcels that never left');
  await saga.setProgress(delivered.length > 0 ? OrderStatus.DELIVERED : OrderStatus.RETURNED);
  saga.ended = true;
  if (delivered.length > 0) saga.notify('delivered');
}
