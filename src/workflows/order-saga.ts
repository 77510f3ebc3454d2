/**
 * The order saga's state and steps; src/workflows/order.ts tells the story with them.
 * Each forward step is idempotent (it skips what is done), so after a refused cancel the
 * story simply runs again from the top. Money movements and compensations at the payment
 * provider or the courier never abort the saga: a step refused for good, or out of its retry
 * window, is parked for an admin (NEEDS_ATTENTION) and the remaining steps still run.
 * Deterministic code only.
 *
 * Longer than most files (~650 lines) on purpose: one class holds the saga's state and every
 * step reads and writes it; the parts with state of their own live beside it (the money in
 * ./order-payment.ts, parked steps in ./order-attention.ts, notifications, parcels, policies).
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  ParentClosePolicy,
  setCurrentDetails,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { CancelOutcome, FailureType } from '../domain/failures';
import { isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { count, Metrics } from '../metrics';
import {
  AttentionStep,
  cancelShipmentSignal,
  OrderFailure,
  OrderStatus,
  shipmentWorkflowId,
  type CancelOrderRequest,
  type OrderSnapshot,
  type OrderWorkflowInput,
  type ResolveAttentionRequest,
  type ResolveAttentionResult,
  type RestartTrackingRequest,
  type RestartTrackingResult,
  type ShipmentMilestone,
  type ShipmentState,
} from './contract';
import { activityOptions, failureType, message, type SagaActivities } from './order-activities';
import { AttentionDesk } from './order-attention';
import { NotificationQueue } from './order-notifications';
import { groupParcels, lineValue, type Parcel } from './order-parcels';
import { OrderPayment } from './order-payment';
import { OrderStatusKey } from './search-attributes';
import { shipmentWorkflow } from './shipment';
import { courierName, money, shipmentStaticSummary } from './summaries';

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

/** One undo in the saga's stack. `kind` labels the compensations metric. */
interface Compensation {
  id: string;
  step: AttentionStep | null;
  kind: 'release_stock' | 'void_or_refund_payment' | 'cancel_booking';
  run: () => Promise<void>;
}

export class OrderSaga {
  readonly parcels: Parcel[];
  /** Where the order is, whatever is parked. */
  progress: OrderStatus = OrderStatus.PENDING;
  failureCode: string | null = null;
  failureMessage: string | null = null;
  stockReserved = false;
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
  readonly attention: AttentionDesk;
  readonly payment: OrderPayment;
  private readonly compensations: Compensation[] = [];
  private readonly children = new Map<string, ChildWorkflowHandle<typeof shipmentWorkflow>>();
  private readonly notifications: NotificationQueue;
  /** Status writes are serialised; each writes what is true when it runs. */
  private statusWrites: Promise<void> = Promise.resolve();
  private readonly act: SagaActivities;

  constructor(readonly input: OrderWorkflowInput) {
    this.act = activityOptions(input);
    this.payment = new OrderPayment(input, this.act);
    this.notifications = new NotificationQueue(input.orderId, this.act);
    this.attention = new AttentionDesk(input.orderId, this.act, () => this.publish());
    this.parcels = groupParcels(input);
  }

  // --- What the order looks like ---------------------------------------------------------

  get status(): OrderStatus {
    return this.attention.empty ? this.progress : OrderStatus.NEEDS_ATTENTION;
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
      captured: this.payment.captured,
      attention: this.attention.items,
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
      const attention = this.attention.items.map((a) => `${a.id}: ${a.reason}`).join('; ');
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
    if (!this.attention.empty) parts.push(`parked: ${this.attention.items.map((a) => a.id).join(', ')}`);
    else if (this.failureMessage !== null) parts.push(this.failureMessage);
    const booked = this.parcels.filter((p) => p.trackingNumber !== null);
    if (booked.length > 0)
      parts.push(
        booked
          .map(
            (p) =>
              `${p.shipmentId.slice(input.orderId.length + 1)} ${p.status}${p.trackingLost ? ' (tracking lost)' : ''}`,
          )
          .join(', '),
      );
    const held = this.payment.describe();
    if (held !== null) parts.push(held);
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
      if (failureType(err) === FailureType.OUT_OF_STOCK)
        throw new OrderFailed(OrderFailure.OUT_OF_STOCK, message(err));
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
    if (this.payment.answered) return;
    this.throwIfCancelled();
    let auth;
    try {
      auth = await this.payment.authorise();
    } catch (err) {
      // Every attempt failed, but the provider may have authorised before an answer was lost.
      this.compensations.push({
        id: AttentionStep.VOID_OR_REFUND,
        step: AttentionStep.VOID_OR_REFUND,
        kind: 'void_or_refund_payment',
        run: () => this.payment.voidUnknown(),
      });
      throw new OrderFailed(OrderFailure.PAYMENT_FAILED, `payment could not be authorised: ${message(err)}`);
    }
    if (!auth.authorised) throw new OrderFailed(OrderFailure.PAYMENT_DECLINED, auth.reason);
    this.compensations.push({
      id: AttentionStep.VOID_OR_REFUND,
      step: AttentionStep.VOID_OR_REFUND,
      kind: 'void_or_refund_payment',
      run: () => this.payment.giveBack(),
    });
    this.showDetails();
  }

  /**
   * Books every parcel not booked yet, all at once (they are independent); a cancel pre-empts
   * the bookings in flight. Every booking settles, its undo registered, before the saga goes
   * on or compensates; one that fails for good stops the others (whose undo then looks for a
   * booking made before the answer was lost), and the order fails with its reason.
   */
  async bookParcels(): Promise<void> {
    const todo = this.parcels.filter((p) => p.trackingNumber === null && !p.bookingCancelled);
    if (todo.length === 0) return;
    this.throwIfCancelled();
    let failed = false;
    const results = await Promise.allSettled(
      todo.map((parcel) =>
        this.bookParcel(parcel, () => failed).catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (errors.length > 0) throw errors.find((e) => e instanceof OrderFailed) ?? errors[0];
  }

  private async bookParcel(parcel: Parcel, siblingFailed: () => boolean): Promise<void> {
    const { input } = this;
    const booking = {
      orderId: input.orderId,
      shipmentId: parcel.shipmentId,
      courier: parcel.courier,
      lineNos: parcel.lines.map((l) => l.lineNo),
    };
    try {
      const { trackingNumber } = await this.untilCancelled(
        () =>
          this.act.booking.bookShipment.executeWithOptions(
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
              if (failureType(bookErr) === FailureType.BOOKING_REJECTED) return; // the courier holds nothing
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

  /** Runs `work` in a scope that an accepted cancel, or `stop()`, cancels (the activity learns it at its heartbeat). */
  private async untilCancelled<T>(work: () => Promise<T>, stop: () => boolean): Promise<T> {
    const scope = new CancellationScope();
    const watcher = new CancellationScope();
    void watcher
      .run(() => condition(() => this.cancelRequest !== null || stop()))
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
    const toTrack: Parcel[] = [];
    for (const parcel of this.parcels) {
      if (parcel.tracked) continue;
      if (parcel.bookingCancelled) {
        // Cancelled by a cancel that was then refused for another parcel: it is settled at the end.
        parcel.status = ShipmentStatus.CANCELLED;
        continue;
      }
      toTrack.push(parcel);
    }
    // The parcels' workflows are independent: started together, in one workflow task.
    await Promise.all(toTrack.map((parcel) => this.track(parcel)));
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
  private async track(parcel: Parcel, resume?: ShipmentState): Promise<string> {
    const { input } = this;
    const child = await startChild(shipmentWorkflow, {
      workflowId: shipmentWorkflowId(parcel.shipmentId),
      parentClosePolicy: ParentClosePolicy.ABANDON,
      // A restart is a new run of the same id, only after a run that did not complete.
      ...(resume ? { workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY } : {}),
      staticSummary: shipmentStaticSummary({
        parcel: this.parcels.indexOf(parcel) + 1,
        parcels: this.parcels.length,
        orderNumber: input.orderNumber,
        courier: parcel.courier,
        trackingNumber: parcel.trackingNumber!,
      }),
      args: [
        {
          shipmentId: parcel.shipmentId,
          orderId: input.orderId,
          courier: parcel.courier,
          trackingNumber: parcel.trackingNumber!,
          courierTaskQueue: input.courierTaskQueue,
          ...(input.shipmentPolicy ? { policy: input.shipmentPolicy } : {}),
          ...(resume ? { state: resume } : {}),
        },
      ],
    });
    parcel.tracked = true;
    this.children.set(parcel.shipmentId, child);
    child.result().then(
      (final) => this.parcelEnded(parcel, final.status, null),
      (err) => this.trackingDied(parcel, message(err)),
    );
    return child.firstExecutionRunId;
  }

  /**
   * A shipment workflow failed, timed out or was terminated. With a restart window the order
   * waits that long for ops to restart its tracking (`restartTracking`) before it settles the
   * parcel as lost; without one, or once the order is ending, it settles it at once.
   */
  private trackingDied(parcel: Parcel, failure: string): void {
    const windowMs = this.input.trackingRestartWindowMs ?? 0;
    if (windowMs <= 0 || this.ending || isTerminal(parcel.status)) {
      this.parcelEnded(parcel, ShipmentStatus.EXPIRED, failure);
      return;
    }
    parcel.trackingLost = failure;
    const generation = ++parcel.trackingGeneration;
    log.warn('a shipment workflow ended without a final status; waiting for its tracking to be restarted', {
      shipmentId: parcel.shipmentId,
      failure,
      windowMs,
    });
    this.showDetails();
    void condition(() => parcel.trackingGeneration !== generation, windowMs, {
      summary: `tracking of ${parcel.shipmentId} lost: settled as lost unless restarted`,
    }).then((restarted) => {
      if (restarted) return;
      parcel.trackingLost = null;
      this.parcelEnded(parcel, ShipmentStatus.EXPIRED, failure);
    });
  }

  /** The `restartTracking` update's validator: a parcel of this order whose tracking is lost, not yet settled. */
  validateRestart(request: RestartTrackingRequest): void {
    if (!request.reason?.trim()) throw new Error('a reason is required');
    const parcel = this.parcels.find((p) => p.shipmentId === request.shipmentId);
    if (!parcel) throw new Error(`no parcel ${request.shipmentId} on this order`);
    if (parcel.trackingLost === null) {
      throw new Error(
        isTerminal(parcel.status)
          ? `parcel ${parcel.shipmentId} is ${parcel.status}: the order has settled it`
          : `parcel ${parcel.shipmentId} is being tracked: its shipment workflow is running`,
      );
    }
    if (this.ending) throw new Error('the order is being settled: its parcels can no longer be restarted');
  }

  /** Starts the parcel's shipment workflow again, from the read model's state; the order owns the new run. */
  async restartTracking(request: RestartTrackingRequest): Promise<RestartTrackingResult> {
    const parcel = this.parcels.find((p) => p.shipmentId === request.shipmentId)!;
    const lost = parcel.trackingLost!;
    parcel.trackingLost = null;
    parcel.trackingGeneration += 1;
    log.info('tracking restarted', { shipmentId: parcel.shipmentId, requestedBy: request.requestedBy });
    let runId: string;
    try {
      runId = await this.track(parcel, request.state);
    } catch (err) {
      this.trackingDied(parcel, lost);
      throw ApplicationFailure.create({
        type: 'RESTART_REFUSED',
        message: `the shipment workflow could not be started again: ${message(err)}`,
        nonRetryable: true,
      });
    }
    this.showDetails();
    return { shipmentId: parcel.shipmentId, workflowId: shipmentWorkflowId(parcel.shipmentId), runId };
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
    if (this.payment.capturable && !this.attention.has(AttentionStep.CAPTURE)) {
      await this.attention.runOrPark(AttentionStep.CAPTURE, AttentionStep.CAPTURE, () => this.capture());
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
    await this.payment.capture();
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
        await this.attention.runOrPark(
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
      await this.attention.park(
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
        if (this.attention.has(step.id)) continue; // parked already, with its own retry
        log.info('compensating', { step: step.id });
        if (step.step === null)
          await step.run(); // our own database: retried until it works
        else if (!(await this.attention.runOrPark(step.id, step.step, step.run))) continue;
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
    const { outcome } = await this.act.settle.cancelBooking.executeWithOptions(
      { summary: `cancel booking ${courierName(parcel.courier)} ${parcel.trackingNumber}` },
      [{ shipmentId: parcel.shipmentId, courier: parcel.courier, trackingNumber: parcel.trackingNumber! }],
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

  /** Refunds the lines of a parcel that did not arrive or came back (nothing when nothing was captured). */
  private async refundParcel(parcel: Parcel): Promise<void> {
    if (!this.payment.captured) return;
    const amount = lineValue(parcel.lines);
    await this.attention.runOrPark(
      `${AttentionStep.REFUND_PARCEL}:${parcel.shipmentId}`,
      AttentionStep.REFUND_PARCEL,
      () =>
        this.payment.refund(
          amount,
          `refund:${parcel.shipmentId}`,
          `refund ${money(amount, this.input.currency)} for parcel ${parcel.shipmentId}`,
        ),
    );
  }

  private async releaseStock(summary: string): Promise<void> {
    await this.act.always.releaseStock.executeWithOptions({ summary }, [{ orderId: this.input.orderId }]);
  }

  /** An admin retries a parked step or resolves it with a reason (the `resolveAttention` update). */
  async resolve(request: ResolveAttentionRequest): Promise<ResolveAttentionResult> {
    return { ...(await this.attention.resolve(request)), order: this.snapshot() };
  }

  /** Waits until nothing is parked and every notification has gone out (or been given up). */
  async settle(): Promise<void> {
    await this.attention.clear();
    await this.notifications.drained();
    await this.statusWrites;
  }

  /** Queues a customer notification (never in the way of the saga). */
  private notify(milestone: string, details?: Record<string, unknown>): void {
    this.notifications.send(milestone, details);
  }
}
