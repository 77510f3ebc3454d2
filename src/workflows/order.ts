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
      await condition(() => closed);
      return snapshot();
    },
    {
      validator: (request: CancelOrderRequest) => {
        if (!request.reason?.trim()) throw new Error('a cancel needs a reason');
        if (status === OrderStatus.CANCELLED) return; // cancelling twice is harmless
        if (finished()) throw new Error(`the order is already ${status} and cannot be cancelled`);
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
          (pickedUp() && !captured) ||
          parcels.every((p) => isTerminal(p.status)) ||
          parcels.some((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled),
      );
      if (cancelled() && !pickedUp()) {
        for (const parcel of parcels.filter((p) => p.trackingNumber !== null)) {
          await getExternalWorkflowHandle(shipmentWorkflowId(parcel.shipmentId))
            .signal(cancelShipmentSignal, { reason: cancelRequest!.reason })
            .catch(() => undefined); // not started yet or already finished: nothing to stop
        }
        await mustHappen.recordAudit({
          key: `cancel:${input.orderId}`,
          actor: cancelRequest!.requestedBy,
          action: 'order.cancel',
          subjectType: 'order',
          subjectId: input.orderId,
          reason: cancelRequest!.reason,
        });
        await compensate();
        await setStatus(OrderStatus.CANCELLED, {
          code: 'CANCELLED',
          message: `cancelled by ${cancelRequest!.requestedBy}: ${cancelRequest!.reason}`,
        });
        await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'cancelled' });
        break;
      }
      if (pickedUp() && !captured && providerRef !== null) {
        await mustHappen.capturePayment({ orderId: input.orderId, providerRef, amount: input.totalAmount });
        captured = true;
        for (const parcel of parcels.filter((p) => PICKED_UP.has(p.status))) {
          await mustHappen.consumeStock({ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) });
        }
        await setStatus(
          parcels.every((p) => PICKED_UP.has(p.status)) ? OrderStatus.SHIPPED : OrderStatus.PARTIALLY_SHIPPED,
        );
        await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'shipped' });
        continue;
      }
      for (const parcel of parcels.filter((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled)) {
        // The return leg of the saga: restock this parcel's lines and refund their amount.
        const skus = parcel.lines.map((l) => l.sku);
        await mustHappen.consumeStock({ orderId: input.orderId, skus });
        await mustHappen.restockReturned({ orderId: input.orderId, skus });
        if (providerRef !== null && captured) {
          await mustHappen.refundPayment({
            orderId: input.orderId,
            providerRef,
            amount: parcel.lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0),
            step: `refund:${parcel.shipmentId}`,
          });
        }
        parcel.returnSettled = true;
        await mustHappen.notifyCustomer({
          orderId: input.orderId,
          milestone: `returned:${parcel.shipmentId}`,
        });
      }
      if (parcels.every((p) => isTerminal(p.status))) {
        const allReturned = parcels.every((p) => p.status === ShipmentStatus.RETURNED);
        const delivered = parcels.some((p) => p.status === ShipmentStatus.DELIVERED);
        await setStatus(
          allReturned ? OrderStatus.RETURNED : delivered ? OrderStatus.DELIVERED : OrderStatus.FAILED,
        );
        if (delivered) await mustHappen.notifyCustomer({ orderId: input.orderId, milestone: 'delivered' });
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof OrderFailed)) throw err;
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
