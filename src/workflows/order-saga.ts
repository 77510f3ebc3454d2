/**
 * The order saga's state and steps; src/workflows/order.ts tells the story with them.
 * Each forward step is idempotent (it skips what is done), so after a refused cancel the
 * story simply runs again from the top. Money movements and compensations at the payment
 * provider or the courier never abort the saga: a step refused for good, or out of its retry
 * window, is parked for an admin (NEEDS_ATTENTION) and the remaining steps still run.
 * Deterministic code only.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import { CancelOutcome, SagaFailure } from '../domain/failures';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { count, Metrics } from '../metrics';
import { PaymentRejection } from '../payments/types';
import {
  AttentionStep,
  cancelShipmentSignal,
  DEFAULT_BOOKING_RETRY_WINDOW_MS,
  DEFAULT_SETTLE_RETRY_WINDOW_MS,
  OrderFailure,
  orderShipmentId,
  OrderStatus,
  shipmentWorkflowId,
  type AttentionItem,
  type CancelOrderRequest,
  type OrderLineInput,
  type OrderSnapshot,
  type OrderWorkflowInput,
  type ResolveAttentionRequest,
  type ResolveAttentionResult,
  type ShipmentMilestone,
} from './contract';
import { OrderStatusKey } from './search-attributes';
import { shipmentWorkflow } from './shipment';
import { courierName, money, shipmentStaticSummary } from './summaries';

type Activities = OrderActivities & PaymentActivities & InventoryActivities;

/** A forward step failed for good: the saga compensates and the order ends FAILED. */
export class OrderFailed extends Error {
  constructor(
    readonly code: OrderFailure,
    message: string,
  ) {
    super(message);
  }
}

/** A cancel was accepted: the forward path stops where it is and the workflow carries it out. */
export class CancelRequested extends Error {}

export interface Parcel {
  shipmentId: string;
  lines: OrderLineInput[];
  trackingNumber: string | null;
  status: ShipmentStatus;
  /** The courier has had it at some point (a later EXCEPTION or EXPIRED does not undo that). */
  pickedUp: boolean;
  /** Its stock moved from reserved to shipped (at its pickup). */
  consumed: boolean;
  returnSettled: boolean;
  /** Its booking is gone at the courier (cancelled, or unknown there). */
  bookingCancelled: boolean;
  /** Its shipment workflow has been started. */
  tracked: boolean;
  /** Why tracking ended without the courier's final word (the child failed or was terminated). */
  trackingEnded: string | null;
}

/** One undo in the saga's stack. `kind` labels the compensations metric. */
interface Compensation {
  id: string;
  step: AttentionStep | null;
  kind: 'release_stock' | 'void_or_refund_payment' | 'cancel_booking';
  run: () => Promise<void>;
}

interface Parked {
  item: AttentionItem;
  run: () => Promise<void>;
  /** An admin's retry is running. */
  busy: boolean;
}

export function failureType(err: unknown): string | null {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? null) : null;
}

/** The payment provider's refusal code (PaymentRejection) of a PaymentRejected failure. */
function rejectionCode(err: unknown): string | null {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || cause.type !== SagaFailure.PAYMENT_REJECTED) return null;
  const detail = cause.details?.[0] as { code?: unknown } | undefined;
  return typeof detail?.code === 'string' ? detail.code : null;
}

export function message(err: unknown): string {
  let cause: unknown = err;
  // An activity out of its retry window fails with a timeout whose cause is the last attempt's error.
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

const lineValue = (lines: OrderLineInput[]) => lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0);

export class OrderSaga {
  readonly parcels: Parcel[];
  /** Where the order is, whatever is parked. */
  progress: OrderStatus = OrderStatus.PENDING;
  failureCode: string | null = null;
  failureMessage: string | null = null;
  stockReserved = false;
  paymentSettled = false;
  providerRef: string | null = null;
  captured = false;
  /** Minor units refunded so far. */
  refunded = 0;
  tracking = false;
  cancelRequest: CancelOrderRequest | null = null;
  /** Why an accepted cancel could not be carried out after all (the courier already had a parcel). */
  cancelRefusal: string | null = null;
  /** The accepted cancel has run its compensations (the order is CANCELLED or parked). */
  cancelSettled = false;
  /** The final status has been written to the read model (what an update may answer with). */
  ended = false;
  /** The order is failing or cancelling: no new cancel is taken. */
  ending = false;
  readonly parked: Parked[] = [];
  private readonly compensations: Compensation[] = [];
  private readonly children = new Map<string, ChildWorkflowHandle<typeof shipmentWorkflow>>();
  /** Notifications go out one after another in the background: they never hold up money or stock. */
  private notifications: Promise<void> = Promise.resolve();
  /** Status writes are serialised; each writes what is true when it runs. */
  private statusWrites: Promise<void> = Promise.resolve();
  private readonly act: ReturnType<typeof activityOptions>;

  constructor(readonly input: OrderWorkflowInput) {
    this.act = activityOptions(input);
    const byPlace = new Map<string, OrderLineInput[]>();
    for (const line of input.lines) byPlace.set(line.shipFrom, [...(byPlace.get(line.shipFrom) ?? []), line]);
    this.parcels = [...byPlace.values()].map((lines, i) => ({
      shipmentId: orderShipmentId(input.orderId, i + 1),
      lines,
      trackingNumber: null,
      status: ShipmentStatus.PENDING,
      pickedUp: false,
      consumed: false,
      returnSettled: false,
      bookingCancelled: false,
      tracked: false,
      trackingEnded: null,
    }));
  }

  // --- What the order looks like ---------------------------------------------------------

  get status(): OrderStatus {
    return this.parked.length > 0 ? OrderStatus.NEEDS_ATTENTION : this.progress;
  }

  pickedUp(): boolean {
    return this.parcels.some((p) => p.pickedUp || PICKED_UP_STATUSES.has(p.status));
  }

  finished(): boolean {
    const final: OrderStatus[] = [
      OrderStatus.CANCELLED,
      OrderStatus.FAILED,
      OrderStatus.DELIVERED,
      OrderStatus.RETURNED,
    ];
    return final.includes(this.progress);
  }

  snapshot(): OrderSnapshot {
    return {
      orderId: this.input.orderId,
      status: this.status,
      failureCode: this.failureCode,
      failureMessage: this.failureMessage,
      shipments: this.parcels
        .filter((p) => p.trackingNumber !== null)
        .map((p) => ({ shipmentId: p.shipmentId, trackingNumber: p.trackingNumber!, status: p.status })),
      pickedUp: this.pickedUp(),
      captured: this.captured,
      attention: this.parked.map((p) => ({ ...p.item })),
    };
  }

  /** The read model first, then what queries and the UI show: a query never runs ahead of Postgres. */
  async setProgress(next: OrderStatus, failure?: { code: string; message: string }): Promise<void> {
    this.progress = next;
    this.failureCode = failure?.code ?? null;
    this.failureMessage = failure?.message ?? null;
    if (this.finished()) count(metricMeter, Metrics.ordersFinished, { status: next });
    await this.publish();
  }

  /** Writes the status shown (NEEDS_ATTENTION while anything is parked) to the read model and search attributes. */
  publish(): Promise<void> {
    const write = async () => {
      const status = this.status;
      const attention = this.parked.map((p) => `${p.item.id}: ${p.item.reason}`).join('; ');
      await this.act.always.setOrderStatus.executeWithOptions({ summary: `order → ${status}` }, [
        {
          orderId: this.input.orderId,
          status,
          failureCode:
            status === OrderStatus.NEEDS_ATTENTION ? OrderStatus.NEEDS_ATTENTION : this.failureCode,
          failureMessage: status === OrderStatus.NEEDS_ATTENTION ? attention : this.failureMessage,
        },
      ]);
      upsertSearchAttributes([{ key: OrderStatusKey, value: status }]);
      this.showDetails();
    };
    this.statusWrites = this.statusWrites.then(write);
    return this.statusWrites;
  }

  /** What the UI shows as the order's current details: `SHIPPED · p1 IN_TRANSIT, p2 DELIVERED · captured`. */
  showDetails(): void {
    const { input } = this;
    const parts: string[] = [this.status];
    if (this.parked.length > 0) parts.push(`parked: ${this.parked.map((p) => p.item.id).join(', ')}`);
    else if (this.failureMessage !== null) parts.push(this.failureMessage);
    const booked = this.parcels.filter((p) => p.trackingNumber !== null);
    if (booked.length > 0)
      parts.push(booked.map((p) => `${p.shipmentId.slice(input.orderId.length + 1)} ${p.status}`).join(', '));
    if (this.captured) parts.push(`${money(input.totalAmount, input.currency)} captured`);
    else if (this.providerRef !== null) parts.push(`${money(input.totalAmount, input.currency)} authorised`);
    setCurrentDetails(`Order ${input.orderNumber} · ${parts.join(' · ')}`);
  }

  /** A shipment workflow reported a milestone (pickup, exception, delivery…). */
  onMilestone(milestone: ShipmentMilestone): void {
    const parcel = this.parcels.find((p) => p.shipmentId === milestone.shipmentId);
    if (!parcel || isTerminal(parcel.status)) return;
    parcel.status = milestone.status;
    if (PICKED_UP_STATUSES.has(milestone.status)) parcel.pickedUp = true;
    this.showDetails();
  }

  throwIfCancelled(): void {
    if (this.cancelRequest !== null) throw new CancelRequested();
  }

  // --- Forward steps ------------------------------------------------------------------------

  async reserveStock(): Promise<void> {
    if (this.stockReserved) return;
    this.throwIfCancelled();
    const { input } = this;
    try {
      await this.act.stock.reserveStock.executeWithOptions(
        { summary: `reserve stock: ${input.lines.map((l) => `${l.quantity}× ${l.sku}`).join(', ')}` },
        [{ orderId: input.orderId, lines: input.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })) }],
      );
    } catch (err) {
      if (failureType(err) === 'OutOfStock') throw new OrderFailed(OrderFailure.OUT_OF_STOCK, message(err));
      throw new OrderFailed(OrderFailure.STOCK_FAILED, `stock could not be reserved: ${message(err)}`);
    }
    this.stockReserved = true;
    this.compensations.push({
      id: 'release_stock',
      step: null,
      kind: 'release_stock',
      run: () => this.releaseStock('compensate: release the reserved stock'),
    });
  }

  async authorisePayment(): Promise<void> {
    if (this.paymentSettled) return;
    this.throwIfCancelled();
    const { input } = this;
    const total = money(input.totalAmount, input.currency);
    const request = {
      orderId: input.orderId,
      amount: input.totalAmount,
      currency: input.currency,
      card: input.payment,
    };
    let auth;
    try {
      auth = await this.act.forward.authorisePayment.executeWithOptions({ summary: `authorise ${total}` }, [
        request,
      ]);
    } catch (err) {
      // Every attempt failed, but the provider may have authorised before an answer was lost:
      // ask it again under the same key and void whatever it holds.
      this.compensations.push({
        id: AttentionStep.VOID_OR_REFUND,
        step: AttentionStep.VOID_OR_REFUND,
        kind: 'void_or_refund_payment',
        run: async () => {
          await this.act.settle.voidUnknownAuthorisation.executeWithOptions(
            { summary: 'compensate: void any authorisation made before the answer was lost' },
            [request],
          );
        },
      });
      throw new OrderFailed(OrderFailure.PAYMENT_FAILED, `payment could not be authorised: ${message(err)}`);
    }
    this.paymentSettled = true;
    if (!auth.authorised) {
      throw new OrderFailed(
        OrderFailure.PAYMENT_DECLINED,
        `payment declined (${auth.declineCode}): ${auth.message}`,
      );
    }
    this.providerRef = auth.providerRef;
    this.compensations.push({
      id: AttentionStep.VOID_OR_REFUND,
      step: AttentionStep.VOID_OR_REFUND,
      kind: 'void_or_refund_payment',
      run: () => this.giveMoneyBack(),
    });
    this.showDetails();
  }

  /** Books every parcel not booked yet; a cancel pre-empts the booking in flight. */
  async bookParcels(): Promise<void> {
    for (const parcel of this.parcels) {
      if (parcel.trackingNumber !== null || parcel.bookingCancelled) continue;
      this.throwIfCancelled();
      await this.bookParcel(parcel);
    }
  }

  private async bookParcel(parcel: Parcel): Promise<void> {
    const { input } = this;
    const booking = {
      orderId: input.orderId,
      shipmentId: parcel.shipmentId,
      courier: input.courier,
      lineNos: parcel.lines.map((l) => l.lineNo),
    };
    try {
      const { trackingNumber } = await this.untilCancelled(() =>
        this.act.booking.bookShipment.executeWithOptions(
          { summary: `book parcel ${parcel.shipmentId} with ${courierName(input.courier)}` },
          [booking],
        ),
      );
      parcel.trackingNumber = trackingNumber;
    } catch (err) {
      // Unless the courier refused it, the booking may exist with its answer lost: book again
      // under the same reference (the courier answers with that booking, or makes one) and
      // cancel it, so no courier comes for a parcel of a failed or cancelled order.
      if (failureType(err) !== SagaFailure.BOOKING_REJECTED) {
        this.compensations.push({
          id: `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
          step: AttentionStep.CANCEL_BOOKING,
          kind: 'cancel_booking',
          run: async () => {
            if (parcel.bookingCancelled) return;
            try {
              const found = await this.act.settle.bookShipment.executeWithOptions(
                {
                  summary: `compensate: find any booking of ${parcel.shipmentId} made before the answer was lost`,
                },
                [booking],
              );
              parcel.trackingNumber = found.trackingNumber;
            } catch (bookErr) {
              if (failureType(bookErr) === SagaFailure.BOOKING_REJECTED) return; // the courier holds nothing
              throw bookErr;
            }
            await this.cancelBookingForGood(parcel);
          },
        });
      }
      if (isCancellation(err)) throw new CancelRequested();
      throw new OrderFailed(OrderFailure.BOOKING_FAILED, `the courier booking failed: ${message(err)}`);
    }
    this.compensations.push({
      id: `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
      step: AttentionStep.CANCEL_BOOKING,
      kind: 'cancel_booking',
      // A parcel the courier has had (and then lost) has no booking left to cancel.
      run: () =>
        parcel.pickedUp || parcel.bookingCancelled ? Promise.resolve() : this.cancelBookingForGood(parcel),
    });
  }

  /** Runs `work` in a scope that an accepted cancel cancels (the activity learns it at its heartbeat). */
  private async untilCancelled<T>(work: () => Promise<T>): Promise<T> {
    const scope = new CancellationScope();
    const watcher = new CancellationScope();
    void watcher
      .run(() => condition(() => this.cancelRequest !== null))
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
  async startTracking(): Promise<void> {
    this.throwIfCancelled();
    if (this.progress === OrderStatus.PENDING) await this.setProgress(OrderStatus.CONFIRMED);
    for (const parcel of this.parcels) {
      if (parcel.tracked) continue;
      if (parcel.bookingCancelled) {
        // Cancelled by a cancel that was then refused for another parcel: it is settled at the end.
        parcel.status = ShipmentStatus.CANCELLED;
        continue;
      }
      await this.track(parcel);
    }
    if (!this.tracking) {
      this.tracking = true;
      this.notify('confirmed');
      // Low stock is worth telling ops once the stock is really spoken for.
      await this.act.always.notifyLowStock.executeWithOptions(
        { summary: 'tell ops about low stock, if any' },
        [{ skus: this.input.lines.map((l) => l.sku) }],
      );
    }
  }

  /**
   * Starts the parcel's shipment workflow and owns it: the order learns how it ended however
   * it ends. ABANDON: a parcel in a van stays tracked whatever happens to its order workflow
   * (the order itself never closes before its parcels are final).
   */
  private async track(parcel: Parcel): Promise<void> {
    const { input } = this;
    const child = await startChild(shipmentWorkflow, {
      workflowId: shipmentWorkflowId(parcel.shipmentId),
      parentClosePolicy: ParentClosePolicy.ABANDON,
      staticSummary: shipmentStaticSummary({
        parcel: this.parcels.indexOf(parcel) + 1,
        parcels: this.parcels.length,
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
    this.children.set(parcel.shipmentId, child);
    child.result().then(
      (final) => this.parcelEnded(parcel, final.status, null),
      (err) => this.parcelEnded(parcel, ShipmentStatus.EXPIRED, message(err)),
    );
  }

  /**
   * A shipment workflow closed. Its final status is the courier's last word; a workflow that
   * failed, timed out or was terminated leaves the parcel's fate unknown, and it is settled
   * like an expired one (booking cancelled unless collected, money back for what did not arrive).
   */
  private parcelEnded(parcel: Parcel, status: ShipmentStatus, failure: string | null): void {
    if (!isTerminal(parcel.status)) {
      parcel.status = isTerminal(status) ? status : ShipmentStatus.EXPIRED;
      if (PICKED_UP_STATUSES.has(status)) parcel.pickedUp = true;
    }
    if (failure !== null) {
      parcel.trackingEnded = failure;
      log.warn('a shipment workflow ended without a final status; its parcel is settled as expired', {
        shipmentId: parcel.shipmentId,
        failure,
      });
    }
    this.showDetails();
  }

  /** Follows the parcels: capture at the first pickup, settle returns, until every parcel is final. */
  async followParcels(): Promise<void> {
    const newlyPickedUp = () =>
      this.parcels.filter((p) => (p.pickedUp || PICKED_UP_STATUSES.has(p.status)) && !p.consumed);
    const unsettledReturns = () =>
      this.parcels.filter((p) => p.status === ShipmentStatus.RETURNED && !p.returnSettled);
    const allFinal = () => this.parcels.every((p) => isTerminal(p.status));
    for (;;) {
      await condition(
        () =>
          this.cancelRequest !== null ||
          newlyPickedUp().length > 0 ||
          unsettledReturns().length > 0 ||
          allFinal(),
      );
      this.throwIfCancelled();
      const picked = newlyPickedUp();
      if (picked.length > 0) await this.onPickup(picked);
      for (const parcel of unsettledReturns()) await this.settleReturn(parcel);
      if (allFinal() && newlyPickedUp().length === 0) return;
    }
  }

  /** The point of no return: capture once (at the first pickup) and ship the stock. */
  private async onPickup(parcels: Parcel[]): Promise<void> {
    const { input } = this;
    for (const p of parcels) p.pickedUp = true;
    if (
      !this.captured &&
      this.providerRef !== null &&
      !this.parked.some((p) => p.item.id === AttentionStep.CAPTURE)
    ) {
      await this.runOrPark(AttentionStep.CAPTURE, AttentionStep.CAPTURE, () => this.capture());
    }
    for (const parcel of parcels) {
      await this.act.always.consumeStock.executeWithOptions(
        { summary: `stock of parcel ${parcel.shipmentId} has left` },
        [{ orderId: input.orderId, skus: parcel.lines.map((l) => l.sku) }],
      );
      parcel.consumed = true;
    }
    const next = this.parcels.every((p) => p.consumed) ? OrderStatus.SHIPPED : OrderStatus.PARTIALLY_SHIPPED;
    if (next !== this.progress) {
      await this.setProgress(next);
      this.notify(next === OrderStatus.SHIPPED ? 'shipped' : 'partially-shipped');
    }
  }

  private async capture(): Promise<void> {
    const { input } = this;
    try {
      await this.act.settle.capturePayment.executeWithOptions(
        { summary: `capture ${money(input.totalAmount, input.currency)} at the first pickup` },
        [{ orderId: input.orderId, providerRef: this.providerRef!, amount: input.totalAmount }],
      );
    } catch (err) {
      // Captured before, under another key: the provider's books say the money is ours.
      if (rejectionCode(err) !== PaymentRejection.ALREADY_CAPTURED) throw err;
    }
    this.captured = true;
    this.showDetails();
  }

  /** The return leg of the saga: restock this parcel's lines and refund their amount. */
  private async settleReturn(parcel: Parcel): Promise<void> {
    await this.act.always.restockReturned.executeWithOptions(
      { summary: `restock returned parcel ${parcel.shipmentId}` },
      [{ orderId: this.input.orderId, skus: parcel.lines.map((l) => l.sku) }],
    );
    parcel.returnSettled = true;
    await this.refundParcel(parcel);
    this.notify(`returned:${parcel.shipmentId}`);
  }

  /**
   * Every parcel is final. Nothing delivered and nothing returned: the order failed (the
   * compensations give everything back). Otherwise parcels that did not arrive are refunded
   * line by line, their bookings cancelled if the courier never collected them, and the
   * stock of parcels that never left released.
   */
  async finish(): Promise<void> {
    const delivered = this.parcels.filter((p) => p.status === ShipmentStatus.DELIVERED);
    const returned = this.parcels.filter((p) => p.status === ShipmentStatus.RETURNED);
    const lost = this.parcels.filter((p) => !delivered.includes(p) && !returned.includes(p));
    if (delivered.length === 0 && returned.length === 0) {
      const why = lost.map(
        (p) => `${p.shipmentId} ${p.status}${p.trackingEnded ? ` (${p.trackingEnded})` : ''}`,
      );
      throw new OrderFailed(OrderFailure.SHIPMENT_LOST, `no parcel arrived: ${why.join(', ')}`);
    }
    this.ending = true;
    for (const parcel of lost) {
      if (!parcel.pickedUp && !parcel.bookingCancelled && parcel.trackingNumber !== null) {
        await this.runOrPark(
          `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
          AttentionStep.CANCEL_BOOKING,
          () => this.cancelBookingForGood(parcel),
        );
      }
      await this.refundParcel(parcel);
    }
    await this.releaseStock('release the stock of parcels that never left');
    await this.setProgress(delivered.length > 0 ? OrderStatus.DELIVERED : OrderStatus.RETURNED);
    this.ended = true;
    if (delivered.length > 0) this.notify('delivered');
  }

  // --- Cancel and failure -------------------------------------------------------------------

  /**
   * Carries out an accepted cancel. The courier may already hold a parcel our milestones have
   * not reported yet, so bookings are cancelled first: if the courier has collected one (its
   * explicit answer, confirmed by tracking), the cancel is refused (the update fails with
   * ALREADY_PICKED_UP) and the order goes on. Returns whether the order was cancelled.
   */
  async cancel(): Promise<boolean> {
    const request = this.cancelRequest!;
    const notCancelled: { parcel: Parcel; err: unknown }[] = [];
    for (const parcel of this.parcels) {
      if (this.pickedUp()) break;
      if (parcel.trackingNumber === null || parcel.bookingCancelled) continue;
      try {
        if ((await this.cancelBooking(parcel)) === CancelOutcome.COLLECTED) {
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
    if (this.pickedUp()) {
      this.cancelRefusal = 'ALREADY_PICKED_UP: a parcel of this order has been picked up by the courier';
      log.info('cancel refused after the fact', { requestedBy: request.requestedBy });
      // Parcels whose booking was cancelled meanwhile stop tracking and are settled at the end.
      for (const parcel of this.parcels.filter((p) => p.bookingCancelled)) {
        if (!isTerminal(parcel.status)) parcel.status = ShipmentStatus.CANCELLED;
        await this.stopTracking(parcel, request.reason);
      }
      this.cancelRequest = null;
      return false;
    }
    this.ending = true;
    await this.act.always.recordAudit.executeWithOptions(
      { summary: `audit: cancelled by ${request.requestedBy}` },
      [
        {
          key: `cancel:${this.input.orderId}`,
          actor: request.requestedBy,
          action: 'order.cancel',
          subjectType: 'order',
          subjectId: this.input.orderId,
          reason: request.reason,
        },
      ],
    );
    for (const parcel of this.parcels) await this.stopTracking(parcel, request.reason);
    for (const { parcel, err } of notCancelled) {
      await this.park(
        `${AttentionStep.CANCEL_BOOKING}:${parcel.shipmentId}`,
        AttentionStep.CANCEL_BOOKING,
        err,
        () => this.cancelBookingForGood(parcel),
      );
    }
    await this.compensate('cancelled');
    await this.setProgress(OrderStatus.CANCELLED, {
      code: 'CANCELLED',
      message: `cancelled by ${request.requestedBy}: ${request.reason}`,
    });
    this.cancelSettled = true;
    this.ended = true;
    this.notify('cancelled');
    return true;
  }

  async fail(err: OrderFailed): Promise<void> {
    this.ending = true;
    log.warn('order failed; compensating', { code: err.code, message: err.message });
    for (const parcel of this.parcels) if (parcel.tracked) await this.stopTracking(parcel, err.message);
    await this.compensate(err.code === OrderFailure.SHIPMENT_LOST ? 'lost' : 'failed');
    await this.setProgress(OrderStatus.FAILED, { code: err.code, message: err.message });
    this.ended = true;
    this.notify('failed', { reason: err.code });
  }

  /** Runs the compensations done so far, in reverse; each runs to its end or is parked. */
  private async compensate(reason: 'failed' | 'cancelled' | 'lost'): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (const step of this.compensations.splice(0).reverse()) {
        if (this.parked.some((p) => p.item.id === step.id)) continue; // parked already, with its own retry
        log.info('compensating', { step: step.id });
        if (step.step === null)
          await step.run(); // our own database: retried until it works
        else if (!(await this.runOrPark(step.id, step.step, step.run))) continue;
        count(metricMeter, Metrics.compensations, { step: step.kind, reason });
      }
    });
  }

  private async stopTracking(parcel: Parcel, reason: string): Promise<void> {
    const child = this.children.get(parcel.shipmentId);
    if (!child) return;
    await child.signal(cancelShipmentSignal, { reason }).catch(() => undefined); // already finished
  }

  // --- Money and bookings, classified -------------------------------------------------------

  /** One cancel at the courier, its answer classified; a cancelled or unknown booking is gone. */
  private async cancelBooking(parcel: Parcel): Promise<CancelOutcome> {
    const { input } = this;
    const { outcome } = await this.act.settle.cancelBooking.executeWithOptions(
      { summary: `cancel booking ${courierName(input.courier)} ${parcel.trackingNumber}` },
      [{ shipmentId: parcel.shipmentId, courier: input.courier, trackingNumber: parcel.trackingNumber! }],
    );
    if (outcome !== CancelOutcome.COLLECTED) {
      parcel.bookingCancelled = true;
      if (!isTerminal(parcel.status)) parcel.status = ShipmentStatus.CANCELLED;
    }
    return outcome;
  }

  /** Cancels a booking that must not stay live; a parcel the courier collected anyway must be recalled. */
  private async cancelBookingForGood(parcel: Parcel): Promise<void> {
    if ((await this.cancelBooking(parcel)) === CancelOutcome.COLLECTED) {
      parcel.pickedUp = true;
      throw ApplicationFailure.create({
        type: AttentionStep.RECALL_PARCEL,
        message: `the courier has collected parcel ${parcel.shipmentId} (${parcel.trackingNumber}) of an order that will not be delivered: recall it`,
      });
    }
  }

  /**
   * Whatever the shopper's card holds goes back: the authorisation voided, or the capture
   * refunded. The provider's answer decides when our view was behind (a void of a captured
   * payment becomes a refund; a lapsed or voided authorisation holds nothing).
   */
  private async giveMoneyBack(): Promise<void> {
    const { input } = this;
    const total = money(input.totalAmount, input.currency);
    if (!this.captured) {
      try {
        await this.act.settle.voidPayment.executeWithOptions(
          { summary: `compensate: void the ${total} authorisation` },
          [{ orderId: input.orderId, providerRef: this.providerRef! }],
        );
        return;
      } catch (err) {
        const code = rejectionCode(err);
        if (code === PaymentRejection.VOIDED || code === PaymentRejection.AUTHORISATION_EXPIRED) return;
        if (code !== PaymentRejection.ALREADY_CAPTURED) throw err;
        this.captured = true;
      }
    }
    await this.refund(
      input.totalAmount - this.refunded,
      'refund:cancel',
      `compensate: refund what is left of ${total}`,
    );
  }

  /** Refunds the lines of a parcel that did not arrive or came back (nothing when nothing was captured). */
  private async refundParcel(parcel: Parcel): Promise<void> {
    if (!this.captured || this.providerRef === null) return;
    const amount = lineValue(parcel.lines);
    await this.runOrPark(
      `${AttentionStep.REFUND_PARCEL}:${parcel.shipmentId}`,
      AttentionStep.REFUND_PARCEL,
      () =>
        this.refund(
          amount,
          `refund:${parcel.shipmentId}`,
          `refund ${money(amount, this.input.currency)} for parcel ${parcel.shipmentId}`,
        ),
    );
  }

  private async refund(amount: number, step: string, summary: string): Promise<void> {
    if (amount <= 0) return;
    await this.act.settle.refundPayment.executeWithOptions({ summary }, [
      { orderId: this.input.orderId, providerRef: this.providerRef!, amount, step },
    ]);
    this.refunded += amount;
  }

  private async releaseStock(summary: string): Promise<void> {
    await this.act.always.releaseStock.executeWithOptions({ summary }, [{ orderId: this.input.orderId }]);
  }

  // --- Parked steps -------------------------------------------------------------------------

  /** Runs a step at the provider or the courier; refused for good or out of retries, it is parked. */
  private async runOrPark(id: string, step: AttentionStep, run: () => Promise<void>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      await this.park(id, step, err, run);
      return false;
    }
  }

  private async park(id: string, step: AttentionStep, err: unknown, run: () => Promise<void>): Promise<void> {
    const reason = message(err);
    const existing = this.parked.find((p) => p.item.id === id);
    if (existing) existing.item.reason = reason;
    else this.parked.push({ item: { id, step, reason, since: new Date().toISOString() }, run, busy: false });
    log.error('order needs attention', { itemId: id, reason });
    count(metricMeter, Metrics.ordersNeedingAttention, { step });
    await this.act.always.raiseAttention.executeWithOptions({ summary: `needs attention: ${id}` }, [
      {
        orderId: this.input.orderId,
        itemId: id,
        step,
        reason,
        raiseKey: `${id}:${workflowInfo().historyLength}`,
      },
    ]);
    await this.publish();
  }

  validateResolve(request: ResolveAttentionRequest): void {
    if (!request.reason?.trim()) throw new Error('a reason is required');
    const parked = this.parked.find((p) => p.item.id === request.itemId);
    if (!parked) {
      const open = this.parked.map((p) => p.item.id).join(', ') || 'none';
      throw new Error(`no open attention item "${request.itemId}" on this order (open: ${open})`);
    }
    if (parked.busy) throw new Error(`attention item "${request.itemId}" is being retried already`);
  }

  /** An admin retries a parked step or resolves it with a reason; audited either way. */
  async resolve(request: ResolveAttentionRequest): Promise<ResolveAttentionResult> {
    const parked = this.parked.find((p) => p.item.id === request.itemId)!;
    const close = async (outcome: 'RETRIED' | 'RESOLVED') => {
      this.parked.splice(this.parked.indexOf(parked), 1);
      await this.act.always.closeAttention.executeWithOptions(
        { summary: `attention ${outcome.toLowerCase()}: ${parked.item.id}` },
        [
          {
            orderId: this.input.orderId,
            itemId: parked.item.id,
            outcome,
            by: request.requestedBy,
            resolution: request.reason,
            actionKey: `${parked.item.id}:${workflowInfo().historyLength}`,
          },
        ],
      );
      await this.publish();
    };
    if (request.action === 'resolve') {
      await close('RESOLVED');
      return { itemId: request.itemId, outcome: 'resolved', reason: null, order: this.snapshot() };
    }
    parked.busy = true;
    try {
      await parked.run();
    } catch (err) {
      parked.busy = false;
      if (isCancellation(err)) throw err;
      parked.item.reason = message(err);
      await this.act.always.raiseAttention.executeWithOptions(
        { summary: `still needs attention: ${parked.item.id}` },
        [
          {
            orderId: this.input.orderId,
            itemId: parked.item.id,
            step: parked.item.step,
            reason: parked.item.reason,
            raiseKey: `${parked.item.id}:${workflowInfo().historyLength}`,
          },
        ],
      );
      return {
        itemId: request.itemId,
        outcome: 'still_failing',
        reason: parked.item.reason,
        order: this.snapshot(),
      };
    }
    await close('RETRIED');
    return { itemId: request.itemId, outcome: 'retried', reason: null, order: this.snapshot() };
  }

  /** Waits until nothing is parked and every notification has gone out (or been given up). */
  async settle(): Promise<void> {
    await condition(() => this.parked.length === 0);
    await this.notifications;
    await this.statusWrites;
  }

  // --- Notifications ------------------------------------------------------------------------

  /** Queues a customer notification: bounded retries, a 4xx final, never in the way of the saga. */
  notify(milestone: string, details?: Record<string, unknown>): void {
    const { input } = this;
    const send = async () => {
      try {
        await this.act.notify.notifyCustomer.executeWithOptions(
          { summary: `notify the customer: ${milestone}` },
          [{ orderId: input.orderId, milestone, ...(details ? { details } : {}) }],
        );
      } catch (err) {
        await this.act.always.recordNotificationFailed.executeWithOptions(
          { summary: `notification given up: ${milestone}` },
          [{ orderId: input.orderId, milestone, error: message(err) }],
        );
      }
    };
    this.notifications = this.notifications.then(send);
  }
}

/**
 * The saga's retry policies:
 * - `always`: our own database (status, stock, audit); retried until it works.
 * - `stock`: reserving stock; out of stock is final.
 * - `forward`: authorising; a few attempts, then the saga compensates.
 * - `booking`: rides out a courier outage for a while, then the saga compensates; a cancel of
 *   the order pre-empts it (heartbeat; the workflow waits for the attempt in flight to end).
 * - `settle`: money and bookings at the provider or the courier after the order is under way
 *   (capture, void, refund, cancel a booking): retried through outages within a window, then
 *   parked; a refusal for good is parked at once.
 * - `notify`: a few attempts; a 4xx from the shop's endpoint is final.
 */
function activityOptions(input: OrderWorkflowInput) {
  const backoff = { initialInterval: '1s', backoffCoefficient: 2 } as const;
  return {
    always: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      retry: { ...backoff, maximumInterval: '2m' },
    }),
    stock: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      retry: {
        ...backoff,
        maximumInterval: '1m',
        nonRetryableErrorTypes: ['OutOfStock', 'InvalidStockRequest'],
      },
    }),
    forward: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      retry: {
        ...backoff,
        maximumInterval: '30s',
        maximumAttempts: 5,
        nonRetryableErrorTypes: [SagaFailure.PAYMENT_REJECTED],
      },
    }),
    booking: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      heartbeatTimeout: '30s',
      scheduleToCloseTimeout: input.bookingRetryWindowMs ?? DEFAULT_BOOKING_RETRY_WINDOW_MS,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { ...backoff, maximumInterval: '1m', nonRetryableErrorTypes: [SagaFailure.BOOKING_REJECTED] },
    }),
    settle: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      scheduleToCloseTimeout: input.settleRetryWindowMs ?? DEFAULT_SETTLE_RETRY_WINDOW_MS,
      retry: {
        ...backoff,
        maximumInterval: '2m',
        nonRetryableErrorTypes: [
          SagaFailure.PAYMENT_REJECTED,
          SagaFailure.CANCEL_REFUSED,
          SagaFailure.BOOKING_REJECTED,
        ],
      },
    }),
    notify: proxyActivities<Activities>({
      startToCloseTimeout: '30s',
      retry: {
        initialInterval: '2s',
        backoffCoefficient: 2,
        maximumInterval: '1m',
        maximumAttempts: 6,
        nonRetryableErrorTypes: [SagaFailure.NOTIFICATION_REJECTED],
      },
    }),
  };
}
