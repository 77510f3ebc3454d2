/**
 * How the order saga ends when it does not deliver: an accepted cancel carried out (or refused
 * after the fact because the courier has a parcel), a failure compensated, and the money and
 * booking moves both use (cancel a booking, refund a parcel, release the stock).
 * Deterministic code only.
 */
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  metricMeter,
} from '@temporalio/workflow';
import { CancelOutcome, FailureType } from '../domain/failures';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { count, Metrics } from '../metrics';
import {
  AttentionStep,
  cancelShipmentSignal,
  OrderFailure,
  OrderStatus,
  type CancelOrderRequest,
} from './contract';
import { lineValue, type Parcel } from './order-parcels';
import { courierName, money } from './summaries';
import type { OrderSaga } from './order-saga';
import type { OrderFailed } from './order-errors';

/**
 * Carries out an accepted cancel. The courier may already hold a parcel our milestones have
 * not reported yet, so bookings are cancelled first: if the courier has collected one (its
 * explicit answer, confirmed by tracking), the cancel is refused (the update fails with
 * ALREADY_PICKED_UP) and the order goes on. Returns whether the order was cancelled.
 */
export async function cancel(saga: OrderSaga): Promise<boolean> {
  const request = saga.cancelRequest!;
  const notCancelled: { parcel: Parcel; err: unknown }[] = [];
  for (const parcel of saga.parcels) {
    if (saga.pickedUp()) break;
    if (parcel.trackingNumber === null || parcel.bookingCancelled) continue;
    try {
      if ((await cancelBooking(saga, parcel)) === CancelOutcome.COLLECTED) {
        parcel.pickedUp = true;
        // A milestone that arrived meanwhile (even DELIVERED) is newer than this and is kept.
        if (!PICKED_UP_STATUSES.has(parcel.status) && !isTerminal(parcel.status)) {
          parcel.status = ShipmentStatus.IN_TRANSIT;
        }
      }
    } catch (err) {
      if (isCancellation(err)) throw err;
      notCancelled.push({ parcel, err });
    }
  }
  if (saga.pickedUp()) {
    // Bookings this cancel did take away stay cancelled: those parcels are refunded at the end.
    const cancelled = saga.parcels.filter((p) => p.bookingCancelled).map((p) => p.shipmentId);
    saga.cancelRefusal = `${FailureType.ALREADY_PICKED_UP}: a parcel of this order has been picked up by the courier${
      cancelled.length > 0
        ? `; the bookings of ${cancelled.join(', ')} (not collected) were cancelled: those parcels will not come, and their lines are refunded`
        : ''
    }`;
    log.info('cancel refused after the fact', { requestedBy: request.requestedBy });
    // Parcels whose booking was cancelled meanwhile stop tracking and are settled at the end.
    for (const parcel of saga.parcels.filter((p) => p.bookingCancelled)) {
      if (!isTerminal(parcel.status)) parcel.status = ShipmentStatus.CANCELLED;
      await stopTracking(saga, parcel, request.reason);
    }
    saga.cancelRequest = null;
    if (saga.temporalCancelPending) {
      // A cancellation requested in Temporal started or joined this cancel: refused with it, on record.
      saga.temporalCancelPending = false;
      await refuseTemporalCancel(saga, saga.cancelRefusal);
    }
    return false;
  }
  saga.ending = true;
  await saga.act.always.recordAudit.executeWithOptions(
    { summary: `audit: cancelled by ${request.requestedBy}` },
    [
      {
        key: `cancel:${saga.input.orderId}`,
        actor: request.requestedBy,
        action: 'order.cancel',
        subjectType: 'order',
        subjectId: saga.input.orderId,
        reason: request.reason,
      },
    ],
  );
  for (const parcel of saga.parcels) await stopTracking(saga, parcel, request.reason);
  for (const { parcel, err } of notCancelled) {
    await saga.attention.park(
      `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
      AttentionStep.CANCEL_BOOKING,
      err,
      () => cancelBookingForGood(saga, parcel),
    );
  }
  await compensate(saga, 'cancelled');
  await saga.setProgress(OrderStatus.CANCELLED, {
    code: 'CANCELLED',
    message: `cancelled by ${request.requestedBy}: ${request.reason}`,
  });
  saga.cancelSettled = true;
  saga.ended = true;
  saga.notify('cancelled');
  return true;
}

/** Who a cancellation requested in Temporal is from, in the order's records. */
export const TEMPORAL_CANCEL: CancelOrderRequest = {
  requestedBy: 'ops:temporal',
  reason: 'cancellation requested in Temporal (the UI or `temporal workflow cancel`)',
};

/** A cancellation requested in Temporal that is not carried out, written to the audit log (and so the history). */
export async function refuseTemporalCancel(saga: OrderSaga, refusal: string): Promise<void> {
  log.warn('a cancellation requested in Temporal is not carried out', { refusal });
  await saga.act.always.recordAudit.executeWithOptions(
    { summary: `audit: Temporal cancellation refused: ${refusal}` },
    [
      {
        key: `temporal-cancel-refused:${saga.input.orderId}`,
        actor: TEMPORAL_CANCEL.requestedBy,
        action: 'order.cancel_refused',
        subjectType: 'order',
        subjectId: saga.input.orderId,
        reason: refusal,
      },
    ],
  );
}

export async function fail(saga: OrderSaga, err: OrderFailed): Promise<void> {
  saga.ending = true;
  log.warn('order failed; compensating', { code: err.code, message: err.message });
  for (const parcel of saga.parcels) if (parcel.tracked) await stopTracking(saga, parcel, err.message);
  await compensate(saga, err.code === OrderFailure.SHIPMENT_LOST ? 'lost' : 'failed');
  await saga.setProgress(OrderStatus.FAILED, { code: err.code, message: err.message });
  saga.ended = true;
  if (saga.temporalCancelPending) {
    // A cancellation requested in Temporal was waiting on a cancel this failure came before.
    saga.temporalCancelPending = false;
    await refuseTemporalCancel(
      saga,
      `the order failed before the cancel could be carried out (${err.code}); what it held was given back`,
    );
  }
  saga.notify('failed', { reason: err.code });
}

/** Runs the compensations done so far, in reverse; each runs to its end or is parked. */
async function compensate(saga: OrderSaga, reason: 'failed' | 'cancelled' | 'lost'): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    for (const step of saga.compensations.splice(0).reverse()) {
      if (saga.attention.has(step.id)) continue; // parked already, with its own retry
      log.info('compensating', { step: step.id });
      if (step.step === null)
        await step.run(); // our own database: retried until it works
      else if (!(await saga.attention.runOrPark(step.id, step.step, step.run))) continue;
      count(metricMeter, Metrics.compensations, { step: step.kind, reason });
    }
  });
}

async function stopTracking(saga: OrderSaga, parcel: Parcel, reason: string): Promise<void> {
  const child = saga.children.get(parcel.shipmentId);
  if (!child) return;
  await child.signal(cancelShipmentSignal, { reason, byOrder: true }).catch(() => undefined); // already finished
}

/** One cancel at the courier, its answer classified; a cancelled or unknown booking is gone. */
async function cancelBooking(saga: OrderSaga, parcel: Parcel): Promise<CancelOutcome> {
  const { outcome } = await saga.act.release.cancelBooking.executeWithOptions(
    { summary: `cancel booking ${courierName(parcel.courier)} ${parcel.trackingNumber}` },
    [{ shipmentId: parcel.shipmentId, courier: parcel.courier, trackingNumber: parcel.trackingNumber! }],
  );
  if (outcome !== CancelOutcome.COLLECTED) {
    parcel.bookingCancelled = true;
    if (!isTerminal(parcel.status)) parcel.status = ShipmentStatus.CANCELLED;
  }
  return outcome;
}

/**
 * Releases the booking of a parcel an admin marked delivered: cancelled at the courier, or
 * nothing to do when the courier says it collected the parcel (then it carried it).
 */
export async function releaseHandDelivered(saga: OrderSaga, parcel: Parcel): Promise<void> {
  await cancelBooking(saga, parcel);
}

/**
 * Cancels a booking that must not stay live; a parcel the courier collected anyway must be
 * recalled ({@link recallCollected}).
 */
export async function cancelBookingForGood(saga: OrderSaga, parcel: Parcel): Promise<void> {
  if ((await cancelBooking(saga, parcel)) === CancelOutcome.COLLECTED) await recallCollected(saga, parcel);
}

/**
 * A parcel the courier has collected, of an order that will not be delivered: it must be
 * recalled (always throws, to park that for an admin). Its goods have left: their stock is
 * consumed first, so the release that follows does not offer them for sale again (they go
 * back on the shelf by hand once recalled).
 */
export async function recallCollected(saga: OrderSaga, parcel: Parcel): Promise<never> {
  parcel.pickedUp = true;
  let soldAgain = '';
  if (!parcel.consumed) {
    // Held, or already released by a clean-up that went on while this cancel was parked.
    const { oversold } = await saga.act.always.consumeCollectedStock.executeWithOptions(
      { summary: `stock of parcel ${parcel.shipmentId} has left with the courier` },
      [{ orderId: saga.input.orderId, skus: parcel.lines.map((l) => l.sku) }],
    );
    parcel.consumed = true;
    if (oversold.length > 0)
      soldAgain = `; ${oversold.map((o) => `${o.quantity} × ${o.sku}`).join(', ')} sold again meanwhile: only the recall can cover them`;
  }
  throw ApplicationFailure.create({
    type: AttentionStep.RECALL_PARCEL,
    message: `the courier has collected parcel ${parcel.shipmentId} (${parcel.trackingNumber}) of an order that will not be delivered: recall it (its stock counts as shipped; put it back on the shelf when it is back${soldAgain})`,
  });
}

/**
 * Refunds the lines of a parcel that did not arrive or came back. With nothing captured yet
 * there is nothing to refund, but the refund is owed should a parked capture succeed later
 * (see {@link payOwedRefunds}).
 */
export async function refundParcel(saga: OrderSaga, parcel: Parcel): Promise<void> {
  if (saga.payment.waived) return; // nothing was charged
  if (!saga.payment.captured) {
    parcel.refundOwed = true;
    return;
  }
  parcel.refundOwed = false;
  const amount = lineValue(parcel.lines);
  await saga.attention.runOrPark(
    `${AttentionStep.REFUND_PARCEL}:${parcel.shipmentId}`,
    AttentionStep.REFUND_PARCEL,
    () =>
      saga.payment.refund(
        amount,
        `refund:${parcel.shipmentId}`,
        `refund ${money(amount, saga.input.currency)} for parcel ${parcel.shipmentId}`,
      ),
  );
}

/**
 * After a capture: the parcels that came back or were lost while it waited (parked) had
 * nothing to refund then, and the capture took the whole total: their refunds are paid now.
 */
export async function payOwedRefunds(saga: OrderSaga): Promise<void> {
  // Asked parcel by parcel: one may have been refunded meanwhile (a return settled while this awaited).
  for (const parcel of saga.parcels) if (parcel.refundOwed) await refundParcel(saga, parcel);
}

export async function releaseStock(saga: OrderSaga, summary: string): Promise<void> {
  await saga.act.always.releaseStock.executeWithOptions({ summary }, [{ orderId: saga.input.orderId }]);
}
