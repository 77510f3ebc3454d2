/**
 * The order saga's state: what the order looks like (status, snapshot, details, the read
 * model) and what every step reads and writes; src/workflows/order.ts tells the story with
 * it. The steps are defined beside it: forward in ./order-steps.ts, cancel and failure with
 * their compensations in ./order-ending.ts; the parts with state of their own live beside
 * it too (the money in ./order-payment.ts, parked steps in ./order-attention.ts,
 * notifications, parcels). Money movements and compensations at the payment provider or the
 * courier never abort the saga: a step refused for good, or out of its retry window, is
 * parked for an admin (NEEDS_ATTENTION) and the remaining steps still run.
 * Deterministic code only.
 */
import {
  metricMeter,
  setCurrentDetails,
  upsertSearchAttributes,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { isTerminal, PICKED_UP_STATUSES } from '../domain/status';
import { count, Metrics } from '../metrics';
import {
  AttentionStep,
  CAPTURE_SETTLEMENTS,
  OrderStatus,
  type CancelOrderRequest,
  type OrderSnapshot,
  type OrderWorkflowInput,
  type ResolveAttentionRequest,
  type ResolveAttentionResult,
  type RestartTrackingRequest,
  type TrackingEndedNotice,
  type RestartTrackingResult,
  type ShipmentMilestone,
} from './contract';
import { activityOptions, type SagaActivities } from './order-activities';
import { AttentionDesk } from './order-attention';
import { NotificationQueue } from './order-notifications';
import { groupParcels, noteMarkedDelivered, type Parcel } from './order-parcels';
import { OrderPayment } from './order-payment';
import { OrderStatusKey } from './search-attributes';
import type { shipmentWorkflow } from './shipment';
import * as ending from './order-ending';
import { CancelRequested, OrderFailed, type Compensation } from './order-errors';
import * as steps from './order-steps';
import * as tracking from './order-tracking';

export { CancelRequested, OrderFailed };

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
  /**
   * A cancellation requested in Temporal was taken on (it started the cancel under way, or
   * joined it) and has no outcome yet: refused on record if that cancel is, or if the order fails.
   */
  temporalCancelPending = false;
  /** The accepted cancel has run its compensations (the order is CANCELLED or parked). */
  cancelSettled = false;
  /** The final status has been written to the read model (what an update may answer with). */
  ended = false;
  /** The order is failing or cancelling: no new cancel is taken. */
  ending = false;
  readonly attention: AttentionDesk;
  readonly payment: OrderPayment;
  readonly compensations: Compensation[] = [];
  readonly children = new Map<string, ChildWorkflowHandle<typeof shipmentWorkflow>>();
  /** Per parcel: how to take the end of the chain of runs in `children` (once). */
  readonly trackingEnds = new Map<string, (outcome: tracking.TrackingEnd) => void>();
  readonly notifications: NotificationQueue;
  /** Read-model writes (the status, a parcel settled as lost) are serialised; each writes what is true when it runs. */
  private writes: Promise<void> = Promise.resolve();
  readonly act: SagaActivities;

  constructor(readonly input: OrderWorkflowInput) {
    this.act = activityOptions(input);
    this.payment = new OrderPayment(input, this.act);
    this.notifications = new NotificationQueue(input.orderId, this.act);
    this.attention = new AttentionDesk(input.orderId, this.act, () => this.publish());
    this.attention.settledBy(AttentionStep.CAPTURE, {
      settlements: CAPTURE_SETTLEMENTS,
      help: 'captured_by_hand (captured in the provider dashboard: Waybill reads it there and pays back what is owed) or not_charged (the shopper is not charged on this payment: Waybill voids it)',
      settle: (settlement) => steps.settleParkedCapture(this, settlement),
    });
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
    return this.queueWrite(write);
  }

  /** Queues a read-model write behind the ones before it; {@link settle} waits for them all. */
  queueWrite(write: () => Promise<void>): Promise<void> {
    this.writes = this.writes.then(write);
    return this.writes;
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
    noteMarkedDelivered(parcel, milestone.subStatus);
    parcel.status = milestone.status;
    if (PICKED_UP_STATUSES.has(milestone.status)) parcel.pickedUp = true;
    this.showDetails();
  }

  throwIfCancelled(): void {
    if (this.cancelRequest !== null) throw new CancelRequested();
  }

  // --- The story's steps: ./order-steps.ts (forward), ./order-ending.ts (cancel, failure) ---

  reserveStock(): Promise<void> {
    return steps.reserveStock(this);
  }
  authorisePayment(): Promise<void> {
    return steps.authorisePayment(this);
  }
  bookParcels(): Promise<void> {
    return steps.bookParcels(this);
  }
  startTracking(): Promise<void> {
    return steps.startTracking(this);
  }
  followParcels(): Promise<void> {
    return steps.followParcels(this);
  }
  finish(): Promise<void> {
    return steps.finish(this);
  }
  cancel(): Promise<boolean> {
    return ending.cancel(this);
  }
  fail(err: OrderFailed): Promise<void> {
    return ending.fail(this, err);
  }

  /** The `restartTracking` update (failed work): a parcel whose shipment workflow died, tracked again. */
  validateRestart(request: RestartTrackingRequest): void {
    tracking.validateRestart(this, request);
  }
  restartTracking(request: RestartTrackingRequest): Promise<RestartTrackingResult> {
    return tracking.restartTracking(this, request);
  }
  /** The `trackingEnded` signal: a parcel's tracking ended while the order was stopped (sent after a reset). */
  heardLate(notice: TrackingEndedNotice): void {
    tracking.heardLate(this, notice);
  }

  /** An admin retries a parked step or resolves it with a reason (the `resolveAttention` update). */
  async resolve(request: ResolveAttentionRequest): Promise<ResolveAttentionResult> {
    return { ...(await this.attention.resolve(request)), order: this.snapshot() };
  }

  /** Waits until nothing is parked and every notification has gone out (or been given up). */
  async settle(): Promise<void> {
    await this.attention.clear();
    await this.notifications.drained();
    // A write queued while the last ones ran (a parcel settled meanwhile) is waited for too.
    for (let seen = this.writes; ; seen = this.writes) {
      await seen;
      if (seen === this.writes) break;
    }
  }

  /** Queues a customer notification (never in the way of the saga). */
  notify(milestone: string, details?: Record<string, unknown>): void {
    this.notifications.send(milestone, details);
  }
}
