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
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { count, Metrics } from '../metrics';
import {
  cancelOrderUpdate,
  cancelShipmentSignal,
  DEFAULT_BOOKING_RETRY_WINDOW_MS,
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
import { courierName, money, shipmentStaticSummary } from './summaries';

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

interface Parcel {
  shipmentId: string;
  lines: OrderLineInput[];
  trackingNumber: string | null;
  status: ShipmentStatus;
  returnSettled: boolean;
  /** Its stock moved from reserved to shipped (at its pickup). */
  consumed: boolean;
  /** The courier has had it at some point (a later EXCEPTION or EXPIRED does not undo that). */
  pickedUp: boolean;
  bookingCancelled: boolean;
  /** Its shipment workflow has been started. */
  tracked: boolean;
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
    pickedUp: false,
    bookingCancelled: false,
    tracked: false,
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
  // Booking rides out a courier outage for a while (a 2-minute outage used to fail every
  // order booked during it after ~15 s of attempts), then the saga compensates.
  const patientBooking = proxyActivities<Activities>({
    startToCloseTimeout: '60s',
    scheduleToCloseTimeout: input.bookingRetryWindowMs ?? DEFAULT_BOOKING_RETRY_WINDOW_MS,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '1m',
      nonRetryableErrorTypes: ['BookingRejected'],
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
  /** `kind` labels the compensations metric (the name carries ids). */
  const compensations: {
    name: string;
    kind: 'release_stock' | 'void_or_refund_payment' | 'cancel_booking';
    run: () => Promise<unknown>;
  }[] = [];
  // Runs started after this patch remember a pickup even when a later milestone (EXCEPTION,
  // EXPIRED) replaces the parcel's status; older runs keep judging by the status alone.
  const stickyPickup = patched('sticky-pickup');
  const isPickedUp = (p: Parcel) => PICKED_UP_STATUSES.has(p.status) || (stickyPickup && p.pickedUp);
  const pickedUp = () => parcels.some(isPickedUp);
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
    await mustHappen.setOrderStatus.executeWithOptions({ summary: `order → ${next}` }, [
      {
        orderId: input.orderId,
        status: next,
        failureCode: failure?.code ?? null,
        failureMessage: failure?.message ?? null,
      },
    ]);
    status = next;
    failureCode = failure?.code ?? null;
    failureMessage = failure?.message ?? null;
    upsertSearchAttributes([{ key: OrderStatusKey, value: next }]);
    if (finished()) count(metricMeter, Metrics.ordersFinished, { status: next });
    showDetails();
  }

  /** What the UI shows as the order's current details: `SHIPPED · p1 IN_TRANSIT, p2 DELIVERED · captured`. */
  function showDetails(): void {
    const parts: string[] = [status];
    if (failureMessage !== null) parts.push(failureMessage);
    const booked = parcels.filter((p) => p.trackingNumber !== null);
    if (booked.length > 0)
      parts.push(booked.map((p) => `${p.shipmentId.slice(input.orderId.length + 1)} ${p.status}`).join(', '));
    if (captured) parts.push(`${money(input.totalAmount, input.currency)} captured`);
    else if (providerRef !== null) parts.push(`${money(input.totalAmount, input.currency)} authorised`);
    setCurrentDetails(`Order ${input.orderNumber} · ${parts.join(' · ')}`);
  }

  setHandler(orderStateQuery, snapshot);
  setHandler(shipmentMilestoneSignal, (milestone) => {
    const parcel = parcels.find((p) => p.shipmentId === milestone.shipmentId);
    if (parcel) {
      parcel.status = milestone.status;
      if (PICKED_UP_STATUSES.has(milestone.status)) parcel.pickedUp = true;
    }
    showDetails();
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

  /** `reason` labels the metric: why the saga unwinds. */
  async function compensate(reason: 'failed' | 'cancelled' | 'lost'): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (const step of compensations.splice(0).reverse()) {
        log.info('compensating', { step: step.name });
        await step.run();
        count(metricMeter, Metrics.compensations, { step: step.kind, reason });
      }
    });
  }

  const cancelled = () => cancelRequest !== null;

  async function refundParcel(parcel: Parcel): Promise<void> {
    if (providerRef === null || !captured) return;
    const amount = parcel.lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0);
    await mustHappen.refundPayment.executeWithOptions(
      { summary: `refund ${money(amount, input.currency)} for parcel ${parcel.shipmentId}` },
      [{ orderId: input.orderId, providerRef, amount, step: `refund:${parcel.shipmentId}` }],
    );
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
          await mustHappen.cancelBooking.executeWithOptions(
            { summary: `cancel booking ${courierName(input.courier)} ${parcel.trackingNumber}` },
            [
              {
                shipmentId: parcel.shipmentId,
                courier: input.courier,
                trackingNumber: parcel.trackingNumber!,
              },
            ],
          );
          parcel.bookingCancelled = true;
        } catch (err) {
          if (failureType(err) !== 'AlreadyPickedUp') throw err;
          // The courier has it: the pickup milestone will follow from the parcel's workflow.
          // A milestone that arrived while the cancel was retrying (even DELIVERED, from a
          // workflow that has finished) is newer than this, and is kept.
          const reported = isPickedUp(parcel) || isTerminal(parcel.status);
          if (!reported || !patched('refused-cancel-keeps-reported-status')) {
            parcel.status = ShipmentStatus.IN_TRANSIT;
          }
          parcel.pickedUp = true;
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
    await mustHappen.recordAudit.executeWithOptions(
      { summary: `audit: cancelled by ${request.requestedBy}` },
      [
        {
          key: `cancel:${input.orderId}`,
          actor: request.requestedBy,
          action: 'order.cancel',
          subjectType: 'order',
          subjectId: input.orderId,
          reason: request.reason,
        },
      ],
    );
    for (const parcel of parcels.filter((p) => p.trackingNumber !== null))
      await stopTracking(parcel, request.reason);
    await compensate('cancelled');
    await setStatus(OrderStatus.CANCELLED, {
      code: 'CANCELLED',
      message: `cancelled by ${request.requestedBy}: ${request.reason}`,
    });
    await notify('cancelled');
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
      await compensate('lost');
      await setStatus(OrderStatus.FAILED, {
        code: OrderFailure.SHIPMENT_LOST,
        message: `no parcel arrived: ${lost.map((p) => `${p.shipmentId} ${p.status}`).join(', ')}`,
      });
      await notify('failed', { reason: OrderFailure.SHIPMENT_LOST });
      return;
    }
    for (const parcel of lost) await refundParcel(parcel);
    // Reservations of parcels that never left are released; consumed stock stays consumed.
    await mustHappen.releaseStock.executeWithOptions(
      { summary: 'release the stock of parcels that never left' },
      [{ orderId: input.orderId }],
    );
    await setStatus(delivered.length > 0 ? OrderStatus.DELIVERED : OrderStatus.RETURNED);
    if (delivered.length > 0) await notify('delivered');
  }
  /** Books one parcel and registers the compensation that cancels its booking. */
  async function bookParcel(parcel: Parcel): Promise<void> {
    try {
      const book = patched('booking-rides-out-outages') ? patientBooking : steps;
      const { trackingNumber } = await book.bookShipment.executeWithOptions(
        { summary: `book parcel ${parcel.shipmentId} with ${courierName(input.courier)}` },
        [
          {
            orderId: input.orderId,
            shipmentId: parcel.shipmentId,
            courier: input.courier,
            lineNos: parcel.lines.map((l) => l.lineNo),
          },
        ],
      );
      parcel.trackingNumber = trackingNumber;
    } catch (err) {
      // Unless the courier refused it, the booking may exist with its answer lost: book
      // again under the same reference (the courier answers with that booking, or makes
      // one) and cancel it, so no courier comes for a parcel of a failed order.
      if (failureType(err) !== 'BookingRejected' && patched('cancel-unknown-booking')) {
        const booking = {
          orderId: input.orderId,
          shipmentId: parcel.shipmentId,
          courier: input.courier,
          lineNos: parcel.lines.map((l) => l.lineNo),
        };
        compensations.push({
          name: `cancel a booking ${parcel.shipmentId} the courier may hold`,
          kind: 'cancel_booking',
          run: async () => {
            const summary = `compensate: cancel any booking of ${parcel.shipmentId} made before the answer was lost`;
            let found: { trackingNumber: string };
            try {
              found = await mustHappen.bookShipment.executeWithOptions({ summary }, [booking]);
            } catch (bookErr) {
              if (failureType(bookErr) === 'BookingRejected') return; // the courier holds nothing
              throw bookErr;
            }
            try {
              await mustHappen.cancelBooking.executeWithOptions({ summary }, [
                {
                  shipmentId: parcel.shipmentId,
                  courier: input.courier,
                  trackingNumber: found.trackingNumber,
                },
              ]);
            } catch (cancelErr) {
              if (failureType(cancelErr) !== 'AlreadyPickedUp') throw cancelErr;
              // Collected before anyone knew it was booked: nothing to cancel; ops see this line.
              log.warn('the courier collected a parcel of a failed order', {
                shipmentId: parcel.shipmentId,
              });
            }
          },
        });
      }
      throw new OrderFailed(OrderFailure.BOOKING_FAILED, `the courier booking failed: ${message(err)}`);
    }
    const tracking = parcel.trackingNumber;
    compensations.push({
      name: `cancel booking ${parcel.shipmentId}`,
      kind: 'cancel_booking',
      run: async () => {
        try {
          await mustHappen.cancelBooking.executeWithOptions(
            { summary: `compensate: cancel booking ${courierName(input.courier)} ${tracking}` },
            [{ shipmentId: parcel.shipmentId, courier: input.courier, trackingNumber: tracking }],
          );
        } catch (err) {
          // A parcel the courier picked up (and then lost) has no booking left to cancel:
          // the other compensations (refund, stock) must still run.
          if (failureType(err) === 'AlreadyPickedUp' && patched('compensation-skips-picked-up-parcels')) {
            log.info('nothing to cancel: the courier picked the parcel up', {
              shipmentId: parcel.shipmentId,
            });
            return;
          }
          throw err;
        }
      },
    });
  }

  /** Starts the parcel's own shipment workflow, which polls its courier and reports milestones. */
  async function startTracking(parcel: Parcel): Promise<void> {
    await startChild(shipmentWorkflow, {
      workflowId: shipmentWorkflowId(parcel.shipmentId),
      staticSummary: shipmentStaticSummary({
        parcel: parcels.indexOf(parcel) + 1,
        parcels: parcels.length,
        orderNumber: input.orderNumber,
        courier: input.courier,
        trackingNumber: parcel.trackingNumber!,
      }),
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
    parcel.tracked = true;
  }

  /**
   * A cancel accepted before tracking started (while a booking was under way) and then
   * refused (the courier already had a parcel) skipped the rest of the forward path: book
   * what is still unbooked and start tracking, or the order would wait forever for
   * milestones no workflow sends. Parcels whose booking the cancel did cancel are finished.
   */
  async function resumeAfterRefusedCancel(): Promise<void> {
    for (const parcel of parcels) {
      if (parcel.trackingNumber === null && !parcel.bookingCancelled) await bookParcel(parcel);
    }
    for (const parcel of parcels) {
      if (parcel.tracked) continue;
      if (parcel.bookingCancelled) parcel.status = ShipmentStatus.CANCELLED;
      else await startTracking(parcel);
    }
  }

  /** True while a failed order compensates: a cancel then is refused, not answered with FAILED. */
  let failing = false;

  async function notify(milestone: string, details?: Record<string, unknown>): Promise<void> {
    await mustHappen.notifyCustomer.executeWithOptions({ summary: `notify the customer: ${milestone}` }, [
      { orderId: input.orderId, milestone, ...(details ? { details } : {}) },
    ]);
  }

  try {
    // 1. Stock
    try {
      await steps.reserveStock.executeWithOptions(
        { summary: `reserve stock: ${input.lines.map((l) => `${l.quantity}× ${l.sku}`).join(', ')}` },
        [{ orderId: input.orderId, lines: input.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })) }],
      );
    } catch (err) {
      if (failureType(err) === 'OutOfStock') throw new OrderFailed(OrderFailure.OUT_OF_STOCK, message(err));
      throw err;
    }
    compensations.push({
      name: 'release stock',
      kind: 'release_stock',
      run: () =>
        mustHappen.releaseStock.executeWithOptions({ summary: 'compensate: release the reserved stock' }, [
          { orderId: input.orderId },
        ]),
    });
    if (!cancelled()) {
      // 2. Payment
      let auth;
      try {
        auth = await steps.authorisePayment.executeWithOptions(
          { summary: `authorise ${money(input.totalAmount, input.currency)}` },
          [
            {
              orderId: input.orderId,
              amount: input.totalAmount,
              currency: input.currency,
              card: input.payment,
            },
          ],
        );
      } catch (err) {
        // Every attempt failed, but the provider may have authorised before an answer was
        // lost: ask it again under the same key and void whatever it holds.
        if (patched('void-unknown-authorisation')) {
          compensations.push({
            name: 'void an authorisation the provider may hold',
            kind: 'void_or_refund_payment',
            run: () =>
              mustHappen.voidUnknownAuthorisation.executeWithOptions(
                { summary: 'compensate: void any authorisation made before the answer was lost' },
                [
                  {
                    orderId: input.orderId,
                    amount: input.totalAmount,
                    currency: input.currency,
                    card: input.payment,
                  },
                ],
              ),
          });
        }
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
      const total = money(input.totalAmount, input.currency);
      compensations.push({
        name: 'void or refund payment',
        kind: 'void_or_refund_payment',
        run: () =>
          captured
            ? mustHappen.refundPayment.executeWithOptions({ summary: `compensate: refund ${total}` }, [
                {
                  orderId: input.orderId,
                  providerRef: ref,
                  amount: input.totalAmount,
                  step: 'refund:cancel',
                },
              ])
            : mustHappen.voidPayment.executeWithOptions(
                { summary: `compensate: void the ${total} authorisation` },
                [{ orderId: input.orderId, providerRef: ref }],
              ),
      });
    }
    // 3. Bookings
    for (const parcel of parcels) {
      if (cancelled()) break;
      await bookParcel(parcel);
    }

    if (!cancelled()) {
      await setStatus(OrderStatus.CONFIRMED);
      await notify('confirmed');
      // 4. Track every parcel in its own workflow.
      for (const parcel of parcels) await startTracking(parcel);
      // Low stock is worth telling ops once the stock is really spoken for.
      await mustHappen.notifyLowStock.executeWithOptions({ summary: 'tell ops about low stock, if any' }, [
        { skus: input.lines.map((l) => l.sku) },
      ]);
    }

    // 5. Follow the parcels.
    for (;;) {
      await condition(
        () =>
          cancelled() ||
          parcels.some((p) => isPickedUp(p) && !p.consumed) ||
          parcels.every((p) => isTerminal(p.status)) ||
          parcels.some((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled),
      );
      if (cancelled()) {
        if (await cancelBeforePickup()) break;
        if (patched('resume-after-refused-cancel')) await resumeAfterRefusedCancel();
        continue;
      }
      const newlyPickedUp = parcels.filter((p) => isPickedUp(p) && !p.consumed);
      if (newlyPickedUp.length > 0) {
        if (!captured && providerRef !== null) {
          await mustHappen.capturePayment.executeWithOptions(
            { summary: `capture ${money(input.totalAmount, input.currency)} at the first pickup` },
            [{ orderId: input.orderId, providerRef, amount: input.totalAmount }],
          );
          captured = true;
        }
        for (const parcel of newlyPickedUp) {
          await mustHappen.consumeStock.executeWithOptions(
            { summary: `stock of parcel ${parcel.shipmentId} has left` },
            [{ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) }],
          );
          parcel.consumed = true;
        }
        const next = parcels.every((p) => p.consumed) ? OrderStatus.SHIPPED : OrderStatus.PARTIALLY_SHIPPED;
        if (next !== (status as OrderStatus)) {
          await setStatus(next);
          await notify(next === OrderStatus.SHIPPED ? 'shipped' : 'partially-shipped');
        }
        continue;
      }
      for (const parcel of parcels.filter((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled)) {
        // The return leg of the saga: restock this parcel's lines and refund their amount.
        await mustHappen.restockReturned.executeWithOptions(
          { summary: `restock returned parcel ${parcel.shipmentId}` },
          [{ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) }],
        );
        await refundParcel(parcel);
        parcel.returnSettled = true;
        await notify(`returned:${parcel.shipmentId}`);
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
    await compensate('failed');
    await setStatus(OrderStatus.FAILED, { code: err.code, message: err.message });
    await notify('failed', { reason: err.code });
  }

  closed = true;
  await condition(allHandlersFinished);
  return snapshot();
}
