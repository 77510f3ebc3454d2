/**
 * Order workflow (`order-<orderId>`): the compensating saga. Reserve stock → authorise
 * payment → book one parcel per ship-from place → track each parcel in a child shipment
 * workflow → capture at the first pickup → finish when every parcel is terminal.
 * A step that fails for good, or a cancel accepted before pickup, runs the compensations
 * of the steps done so far in reverse, each retried until it succeeds, in a scope that
 * cannot be cancelled. Deterministic code only.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import { isTerminal, ShipmentStatus } from '../domain/status';
import {
  cancelOrderUpdate,
  cancelShipmentSignal,
  OrderFailure,
  orderShipmentId,
  orderStateQuery,
  OrderStatus,
  shipmentMilestoneSignal,
  shipmentWorkflowId,
  type CancelOrderRequest,
  type OrderLineInput,
  type OrderSnapshot,
  type OrderWorkflowInput,
} from './contract';
import { CustomerIdKey, OrderIdKey, OrderStatusKey } from './search-attributes';
import { shipmentWorkflow } from './shipment';

type Activities = OrderActivities & PaymentActivities & InventoryActivities;

/** A step that failed for good: the saga compensates and the order ends FAILED. */
class OrderFailed extends Error {
  constructor(
    readonly code: OrderFailure,
    message: string,
  ) {
    super(message);
  }
}

const PICKED_UP: ReadonlySet<ShipmentStatus> = new Set([
  ShipmentStatus.IN_TRANSIT,
  ShipmentStatus.OUT_FOR_DELIVERY,
  ShipmentStatus.AVAILABLE_FOR_PICKUP,
  ShipmentStatus.ATTEMPT_FAIL,
  ShipmentStatus.DELIVERED,
  ShipmentStatus.RETURNING,
  ShipmentStatus.RETURNED,
]);

interface Parcel {
  shipmentId: string;
  lines: OrderLineInput[];
  trackingNumber: string | null;
  status: ShipmentStatus;
  returnSettled: boolean;
  /** Its stock moved from reserved to shipped (at its pickup). */
  consumed: boolean;
  bookingCancelled: boolean;
}

function failureType(err: unknown): string | null {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? null) : null;
}

function message(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/** One parcel per ship-from place, in first-seen order (deterministic). */
function groupParcels(orderId: string, lines: OrderLineInput[]): Parcel[] {
  const byPlace = new Map<string, OrderLineInput[]>();
  for (const line of lines) byPlace.set(line.shipFrom, [...(byPlace.get(line.shipFrom) ?? []), line]);
  return [...byPlace.values()].map((group, i) => ({
    shipmentId: orderShipmentId(orderId, i + 1),
    lines: group,
    trackingNumber: null,
    status: ShipmentStatus.PENDING,
    returnSettled: false,
    consumed: false,
    bookingCancelled: false,
  }));
}

export async function orderWorkflow(input: OrderWorkflowInput): Promise<OrderSnapshot> {
  // Forward steps: a few attempts, then the saga compensates.
  const steps = proxyActivities<Activities>({
    startToCloseTimeout: '60s',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ['OutOfStock', 'PaymentRejected', 'BookingRejected'],
    },
  });
  // Compensations and money movements after the point of no return: retried until they succeed.
  const mustHappen = proxyActivities<Activities>({
    startToCloseTimeout: '60s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m' },
  });

  const parcels = groupParcels(input.orderId, input.lines);
  let status: OrderStatus = OrderStatus.PENDING;
  let failureCode: string | null = null;
  let failureMessage: string | null = null;
  let providerRef: string | null = null;
  let captured = false;
  let cancelRequest: CancelOrderRequest | null = null;
  /** Set once the saga has written its last row (status, compensations, notification). */
  let closed = false;
  /** Why an accepted cancel could not be carried out after all (the courier already had a parcel). */
  let cancelRefusal: string | null = null;
  const compensations: { name: string; run: () => Promise<unknown> }[] = [];
  const pickedUp = () => parcels.some((p) => PICKED_UP.has(p.status));
  const finished = () =>
    status === OrderStatus.CANCELLED ||
    status === OrderStatus.FAILED ||
    status === OrderStatus.DELIVERED ||
    status === OrderStatus.RETURNED;

  const snapshot = (): OrderSnapshot => ({
    orderId: input.orderId,
    status,
    failureCode,
    failureMessage,
    shipments: parcels
      .filter((p) => p.trackingNumber !== null)
      .map((p) => ({ shipmentId: p.shipmentId, trackingNumber: p.trackingNumber!, status: p.status })),
    pickedUp: pickedUp(),
    captured,
  });

  /** The read model first, then the workflow's own view: a query never runs ahead of Postgres. */
  async function setStatus(next: OrderStatus, failure?: { code: string; message: string }): Promise<void> {
    await mustHappen.setOrderStatus({
      orderId: input.orderId,
      status: next,
      failureCode: failure?.code ?? null,
      failureMessage: failure?.message ?? null,
    });
    status = next;
    failureCode = failure?.code ?? null;
    failureMessage = failure?.message ?? null;
    upsertSearchAttributes([{ key: OrderStatusKey, value: next }]);
  }

  setHandler(orderStateQuery, snapshot);
  setHandler(shipmentMilestoneSignal, (milestone) => {
    const parcel = parcels.find((p) => p.shipmentId === milestone.shipmentId);
    if (parcel) parcel.status = milestone.status;
  });
  setHandler(
    cancelOrderUpdate,
    async (request) => {
      cancelRequest ??= request;
      await condition(() => closed || cancelRefusal !== null);
      if (!closed && cancelRefusal !== null) {
        throw ApplicationFailure.create({
          type: 'ALREADY_PICKED_UP',
          message: cancelRefusal,
          nonRetryable: true,
        });
      }
      return snapshot();
    },
    {
      validator: (request: CancelOrderRequest) => {
        if (!request.reason?.trim()) throw new Error('a cancel needs a reason');
        if (status === OrderStatus.CANCELLED) return; // cancelling twice is harmless
        if (finished() || failing)
          throw new Error(`the order is already ${failing ? 'FAILED' : status} and cannot be cancelled`);
        if (pickedUp())
          throw new Error('ALREADY_PICKED_UP: a parcel of this order has been picked up by the courier');
      },
    },
  );

  upsertSearchAttributes([
    { key: OrderIdKey, value: input.orderId },
    { key: OrderStatusKey, value: status },
    ...(input.customerId ? [{ key: CustomerIdKey, value: input.customerId }] : []),
  ]);

  async function compensate(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (const step of compensations.splice(0).reverse()) {
        log.info('compensating', { step: step.name });
        await step.run();
      }
    });
  }

  const cancelled = () => cancelRequest !== null;

  async function refundParcel(parcel: Parcel): Promise<void> {
    if (providerRef === null || !captured) return;
    await mustHappen.refundPayment({
      orderId: input.orderId,
      providerRef,
      amount: parcel.lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0),
      step: `refund:${parcel.shipmentId}`,
    });
  }

  /**
   * Carries out an accepted cancel. The courier may already hold a parcel our milestones
   * have not reported yet: bookings are cancelled first, and if the courier refuses one the
   * cancel is refused (the update fails with ALREADY_PICKED_UP) and the order goes on.
   * Returns whether the order ended CANCELLED.
   */
  async function cancelBeforePickup(): Promise<boolean> {
    const request = cancelRequest!;
    if (!pickedUp()) {
      for (const parcel of parcels.filter((p) => p.trackingNumber !== null && !p.bookingCancelled)) {
        try {
          await mustHappen.cancelBooking({
            shipmentId: parcel.shipmentId,
            courier: input.courier,
            trackingNumber: parcel.trackingNumber!,
          });
          parcel.bookingCancelled = true;
        } catch (err) {
          if (failureType(err) !== 'AlreadyPickedUp') throw err;
          // The courier has it: the pickup milestone will follow from the parcel's workflow.
          parcel.status = ShipmentStatus.IN_TRANSIT;
          break;
        }
      }
    }
    if (pickedUp()) {
      cancelRefusal = 'ALREADY_PICKED_UP: a parcel of this order has been picked up by the courier';
      log.info('cancel refused after the fact', { requestedBy: request.requestedBy });
      // Parcels whose booking was cancelled meanwhile stop tracking and are settled at the end.
      for (const parcel of parcels.filter((p) => p.bookingCancelled))
        await stopTracking(parcel, request.reason);
      cancelRequest = null;
      return false;
    }
    await mustHappen.recordAudit({
      key: `cancel:${input.orderId}`,
      actor: request.requestedBy,
      action: 'order.cancel',
      subjectType: 'order',
      subjectId: input.orderId,
      reason: request.reason,
    });
    for (const parcel of parcels.filter((p) => p.trackingNumber !== null))
      await stopTracking(parcel, request.reason);
    await compensate();
    await setStatus(OrderStatus.CANCELLED, {
      code: 'CANCELLED',
      message: `cancelled by ${request.requestedBy}: ${request.reason}`,
    });
    await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'cancelled' });
    return true;
  }

  async function stopTracking(parcel: Parcel, reason: string): Promise<void> {
    await getExternalWorkflowHandle(shipmentWorkflowId(parcel.shipmentId))
      .signal(cancelShipmentSignal, { reason })
      .catch(() => undefined); // not started yet or already finished: nothing to stop
  }

  /**
   * Every parcel is terminal. Delivered ones are done; returned ones were settled; the rest
   * (lost: EXPIRED, or CANCELLED) are refunded line by line. Nothing delivered and nothing
   * returned: the order failed, and whatever is still held is given back (void or refund,
   * release the stock).
   */
  async function finishWhenAllTerminal(): Promise<void> {
    const delivered = parcels.filter((p) => p.status === ShipmentStatus.DELIVERED);
    const returned = parcels.filter((p) => p.status === ShipmentStatus.RETURNED);
    const lost = parcels.filter(
      (p) => p.status !== ShipmentStatus.DELIVERED && p.status !== ShipmentStatus.RETURNED,
    );
    if (delivered.length === 0 && returned.length === 0) {
      // compensate() refunds in full when captured, so no per-parcel refund here.
      await compensate();
      await setStatus(OrderStatus.FAILED, {
        code: OrderFailure.SHIPMENT_LOST,
        message: `no parcel arrived: ${lost.map((p) => `${p.shipmentId} ${p.status}`).join(', ')}`,
      });
      await mustHappen.notifyCustomer({
        orderId: input.orderId,
        milestone: 'failed',
        details: { reason: OrderFailure.SHIPMENT_LOST },
      });
      return;
    }
    for (const parcel of lost) await refundParcel(parcel);
    // Reservations of parcels that never left are released; consumed stock stays consumed.
    await mustHappen.releaseStock({ orderId: input.orderId });
    await setStatus(delivered.length > 0 ? OrderStatus.DELIVERED : OrderStatus.RETURNED);
    if (delivered.length > 0)
      await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'delivered' });
  }
  /** True while a failed order compensates: a cancel then is refused, not answered with FAILED. */
  let failing = false;

  try {
    // 1. Stock
    try {
      await steps.reserveStock({
        orderId: input.orderId,
        lines: input.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
      });
    } catch (err) {
      if (failureType(err) === 'OutOfStock') throw new OrderFailed(OrderFailure.OUT_OF_STOCK, message(err));
      throw err;
    }
    compensations.push({
      name: 'release stock',
      run: () => mustHappen.releaseStock({ orderId: input.orderId }),
    });
    if (!cancelled()) {
      // 2. Payment
      let auth;
      try {
        auth = await steps.authorisePayment({
          orderId: input.orderId,
          amount: input.totalAmount,
          currency: input.currency,
          card: input.payment,
        });
      } catch (err) {
        throw new OrderFailed(
          OrderFailure.PAYMENT_FAILED,
          `payment could not be authorised: ${message(err)}`,
        );
      }
      if (!auth.authorised) {
        throw new OrderFailed(
          OrderFailure.PAYMENT_DECLINED,
          `payment declined (${auth.declineCode}): ${auth.message}`,
        );
      }
      providerRef = auth.providerRef;
      const ref = auth.providerRef;
      compensations.push({
        name: 'void or refund payment',
        run: () =>
          captured
            ? mustHappen.refundPayment({
                orderId: input.orderId,
                providerRef: ref,
                amount: input.totalAmount,
                step: 'refund:cancel',
              })
            : mustHappen.voidPayment({ orderId: input.orderId, providerRef: ref }),
      });
    }
    // 3. Bookings
    for (const parcel of parcels) {
      if (cancelled()) break;
      try {
        const { trackingNumber } = await steps.bookShipment({
          orderId: input.orderId,
          shipmentId: parcel.shipmentId,
          courier: input.courier,
          lineNos: parcel.lines.map((l) => l.lineNo),
        });
        parcel.trackingNumber = trackingNumber;
      } catch (err) {
        throw new OrderFailed(OrderFailure.BOOKING_FAILED, `the courier booking failed: ${message(err)}`);
      }
      const tracking = parcel.trackingNumber;
      compensations.push({
        name: `cancel booking ${parcel.shipmentId}`,
        run: () =>
          mustHappen.cancelBooking({
            shipmentId: parcel.shipmentId,
            courier: input.courier,
            trackingNumber: tracking,
          }),
      });
    }

    if (!cancelled()) {
      await setStatus(OrderStatus.CONFIRMED);
      await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'confirmed' });
      // 4. Track every parcel in its own workflow.
      for (const parcel of parcels) {
        await startChild(shipmentWorkflow, {
          workflowId: shipmentWorkflowId(parcel.shipmentId),
          args: [
            {
              shipmentId: parcel.shipmentId,
              orderId: input.orderId,
              courier: input.courier,
              trackingNumber: parcel.trackingNumber!,
              courierTaskQueue: input.courierTaskQueue,
              policy: input.shipmentPolicy,
            },
          ],
        });
      }
      // Low stock is worth telling ops once the stock is really spoken for.
      await mustHappen.notifyLowStock({ skus: input.lines.map((l) => l.sku) });
    }

    // 5. Follow the parcels.
    for (;;) {
      await condition(
        () =>
          cancelled() ||
          parcels.some((p) => PICKED_UP.has(p.status) && !p.consumed) ||
          parcels.every((p) => isTerminal(p.status)) ||
          parcels.some((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled),
      );
      if (cancelled()) {
        if (await cancelBeforePickup()) break;
        continue;
      }
      const newlyPickedUp = parcels.filter((p) => PICKED_UP.has(p.status) && !p.consumed);
      if (newlyPickedUp.length > 0) {
        if (!captured && providerRef !== null) {
          await mustHappen.capturePayment({ orderId: input.orderId, providerRef, amount: input.totalAmount });
          captured = true;
        }
        for (const parcel of newlyPickedUp) {
          await mustHappen.consumeStock({ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) });
          parcel.consumed = true;
        }
        const next = parcels.every((p) => p.consumed) ? OrderStatus.SHIPPED : OrderStatus.PARTIALLY_SHIPPED;
        if (next !== (status as OrderStatus)) {
          await setStatus(next);
          await mustHappen.notifyCustomer({
            orderId: input.orderId,
            milestone: next === OrderStatus.SHIPPED ? 'shipped' : 'partially-shipped',
          });
        }
        continue;
      }
      for (const parcel of parcels.filter((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled)) {
        // The return leg of the saga: restock this parcel's lines and refund their amount.
        await mustHappen.restockReturned({ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) });
        await refundParcel(parcel);
        parcel.returnSettled = true;
        await mustHappen.notifyCustomer({
          orderId: input.orderId,
          milestone: `returned:${parcel.shipmentId}`,
        });
      }
      if (parcels.every((p) => isTerminal(p.status))) {
        await finishWhenAllTerminal();
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof OrderFailed)) throw err;
    failing = true;
    log.warn('order failed; compensating', { code: err.code, message: err.message });
    await compensate();
    await setStatus(OrderStatus.FAILED, { code: err.code, message: err.message });
    await mustHappen.notifyCustomer({
      orderId: input.orderId,
      milestone: 'failed',
      details: { reason: err.code },
    });
  }

  closed = true;
  await condition(allHandlersFinished);
  return snapshot();
}
