/**
 * The contract between the API, the worker and the workflows: workflow ids, inputs,
 * signals, updates and queries. One definition, imported on both sides. Pure code only.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CourierCode, NormalisedEvent } from '../couriers/types';
import type { ShipmentStatus } from '../domain/status';
import type { CourierChoice } from '../domain/courier-choice';
import type { PollPolicy } from '../domain/polling';

export const shipmentWorkflowId = (shipmentId: string): string => `shipment-${shipmentId}`;
export const orderWorkflowId = (orderId: string): string => `order-${orderId}`;

/**
 * A shipment workflow's task timeout, set by every start (continue-as-new keeps it). A poll
 * holds its workflow task while its bulk call gathers and runs (the batch window, then the
 * courier, up to its timeout) and the read model is written. On a busy worker that passed the
 * server's default 10 s: the server took the task back, the courier's answer was thrown away,
 * and the run was replayed from the non-sticky queue, behind every other such task, which
 * loaded the worker more (bench:scale on the real server: 819 timeouts while a run settled;
 * with 30 s, 1 in the hold, and 17.9 polls/s where 10 s held 14.2). A worker killed mid-task now
 * costs a parcel's poll 30 s instead of 10, nothing beside the minutes between its polls.
 */
export const SHIPMENT_WORKFLOW_TASK_TIMEOUT = '30s';

/** State carried across continue-as-new; the first run starts from {@link initialShipmentState}. */
export interface ShipmentState {
  status: ShipmentStatus;
  subStatus: string | null;
  eta: string | null;
  /** Epoch ms when tracking began (first run). */
  startedAtMs: number;
  /** Epoch ms of the newest scan's time, or of the start while there is none. */
  lastScanAtMs: number;
  /**
   * Epoch ms of the newest scan known (polled or pushed); null while there is none. A pushed
   * scan older than it adds history but no status; with none known, every scan is news.
   */
  newestScanAtMs: number | null;
  /**
   * Epoch ms the no-scan expiry counts from: the newest scan (or the start), moved later by
   * every stretch in which the courier could not be asked, so only answered silence counts.
   */
  quietSinceMs: number;
  /** Epoch ms of the first poll cycle in a row the courier did not answer; null while it answers. */
  unansweredSinceMs: number | null;
  /** Epoch ms the last poll cycle ended (answered or not): the refresh cooldown counts from it. */
  lastPolledAtMs: number | null;
  /**
   * Epoch ms the courier last pushed scans about this parcel (its webhook); null or absent:
   * never. Its poll policy may poll rarely while pushes keep coming (`CourierPollPolicy.push`).
   */
  lastPushAtMs?: number | null;
  lastSyncedAt: string | null;
  /** Poll cycles done in all runs. */
  polls: number;
  /** Poll cycles in a row whose activity gave up (courier down); drives the backoff. */
  consecutiveFailures: number;
  failingSince: string | null;
  notFoundCount: number;
  /** Event keys are not kept here (unbounded); the read model dedupes. Count is informative. */
  eventsRecorded: number;
  /** Milestones already reported to the parent order workflow. */
  reported: ShipmentStatus[];
}

export interface ShipmentWorkflowInput {
  shipmentId: string;
  orderId: string | null;
  courier: CourierCode;
  trackingNumber: string;
  /**
   * A poll policy pinned by whoever starts the workflow (tests and benchmarks shrink every
   * delay to milliseconds). Absent in production: each run asks the worker for its own
   * (`pollPolicy` local activity), so the worker's `WAYBILL_POLL_*` settings apply.
   */
  policy?: PollPolicy;
  /** Present after continue-as-new. */
  state?: ShipmentState;
  /** Epoch ms of the poll scheduled before continue-as-new; the new run keeps that schedule. */
  nextPollAtMs?: number | null;
  /** The courier problem shown before continue-as-new, until the next poll clears it. */
  syncError?: string | null;
}

/** What the API and the order workflow see of a shipment. */
export interface ShipmentSnapshot {
  shipmentId: string;
  courier: CourierCode;
  trackingNumber: string;
  status: ShipmentStatus;
  subStatus: string | null;
  eta: string | null;
  lastSyncedAt: string | null;
  /** When the last poll cycle ended, answered or not. */
  lastPolledAt: string | null;
  nextPollAt: string | null;
  syncError: string | null;
  polls: number;
  finished: boolean;
}

export interface RefreshRequest {
  /** Who asked (admin id, 'customer', 'api'); recorded in the history for ops. */
  requestedBy: string;
}

export interface CancelShipmentRequest {
  reason: string;
  /** Sent by the parcel's own order (cancelled or failed): the shipment ends CANCELLED. */
  byOrder?: boolean;
}

/** How a `refreshNow` was answered. */
/** How the refreshNow validator's refusal of a finished shipment begins (the API tells it from other failures). */
export const TRACKING_FINISHED_REFUSAL = 'tracking has finished';

export const RefreshSource = {
  /** The courier answered a poll that ended after the request arrived; the read model holds it. */
  LIVE: 'live',
  /** The last poll ended less than the cooldown ago: answered from the current snapshot, no courier call. */
  COOLDOWN: 'cooldown',
  /** The poll failed (courier unreachable or refusing, retries exhausted). */
  COURIER_UNAVAILABLE: 'courier_unavailable',
  /** Today's courier budget is used up: no call was made. */
  BUDGET_EXHAUSTED: 'budget_exhausted',
  /** Tracking finished (delivered, returned, cancelled, expired) before a poll answered. */
  FINISHED: 'finished',
} as const;
export type RefreshSource = (typeof RefreshSource)[keyof typeof RefreshSource];

/** The answer to `refreshNow`, given only once the read model holds what the snapshot says. */
export interface RefreshNowResult {
  snapshot: ShipmentSnapshot;
  source: RefreshSource;
  /** When a refresh can next poll the courier (the end of the cooldown); null once finished. */
  nextLiveRefreshAt: string | null;
}

/** Wakes the workflow for a poll: at once, or when the refresh cooldown ends (budget permitting). */
export const refreshSignal = defineSignal<[RefreshRequest]>('refresh');
/** Events pushed by the courier (webhook): recorded without a courier call. */
export const courierEventsSignal = defineSignal<[{ events: NormalisedEvent[] }]>('courierEvents');
/**
 * Stops tracking: the shipment ends CANCELLED ({@link STOPPED_BY_SHOP}). Its order sends it
 * (`byOrder`) when the order is cancelled or fails. From anyone else (ops, `temporal workflow
 * signal`), the run of a parcel an order follows fails instead ({@link FailureType.TRACKING_STOPPED}):
 * the stop says nothing of where the parcel is, so the order takes it like tracking that died
 * (a restart from failed work, else the courier's last word), never as the parcel's end.
 */
export const cancelShipmentSignal = defineSignal<[CancelShipmentRequest]>('cancel');
/** The sub-status of a shipment whose tracking was stopped ({@link cancelShipmentSignal}). */
export const STOPPED_BY_SHOP = 'CANCELLED_BY_SHOP';
/** The sub-status of a delivery an admin marked (the API's mark-delivered), not the courier's scan. */
export const MARKED_BY_ADMIN = 'MARKED_BY_ADMIN';
/**
 * Polls now (or joins the poll in flight) and answers once the read model holds the result;
 * within the refresh cooldown it answers the current snapshot without a courier call.
 * Rejected on a finished shipment.
 */
export const refreshNowUpdate = defineUpdate<RefreshNowResult, [RefreshRequest]>('refreshNow');
export const shipmentStateQuery = defineQuery<ShipmentSnapshot>('state');

/** Sent by a shipment workflow to its parent order at DELIVERED / RETURNED / EXCEPTION / EXPIRED / CANCELLED. */
export interface ShipmentMilestone {
  shipmentId: string;
  status: ShipmentStatus;
  subStatus: string | null;
  at: string;
}
export const shipmentMilestoneSignal = defineSignal<[ShipmentMilestone]>('shipmentMilestone');

// --- Orders ---------------------------------------------------------------------------

export const OrderStatus = {
  PENDING: 'PENDING',
  CONFIRMED: 'CONFIRMED',
  PARTIALLY_SHIPPED: 'PARTIALLY_SHIPPED',
  SHIPPED: 'SHIPPED',
  DELIVERED: 'DELIVERED',
  CANCELLED: 'CANCELLED',
  FAILED: 'FAILED',
  RETURNED: 'RETURNED',
  /**
   * Parked for an admin: a step the payment provider or the courier refused for good (or
   * that outlasted its retry window). Every other step has still run; the order leaves this
   * status when each parked step is retried successfully or resolved with a reason.
   */
  NEEDS_ATTENTION: 'NEEDS_ATTENTION',
} as const;
export type OrderStatus = (typeof OrderStatus)[keyof typeof OrderStatus];

/** Why an order failed, machine-readable (the read model's `failure_code`). */
export const OrderFailure = {
  OUT_OF_STOCK: 'OUT_OF_STOCK',
  /** Stock could not be reserved for another reason (an invalid line); nothing was held. */
  STOCK_FAILED: 'STOCK_FAILED',
  PAYMENT_DECLINED: 'PAYMENT_DECLINED',
  PAYMENT_FAILED: 'PAYMENT_FAILED',
  BOOKING_FAILED: 'BOOKING_FAILED',
  /** Every parcel ended without arriving (expired / lost, or cancelled by the courier). */
  SHIPMENT_LOST: 'SHIPMENT_LOST',
  /** The order workflow never started (Temporal unreachable at creation, no retry); closed by housekeeping. */
  NOT_STARTED: 'NOT_STARTED',
} as const;
export type OrderFailure = (typeof OrderFailure)[keyof typeof OrderFailure];

export interface OrderLineInput {
  lineNo: number;
  sku: string;
  quantity: number;
  /** Minor units. */
  unitAmount: number;
  /** Where the sku ships from: lines from different places travel as different parcels. */
  shipFrom: string;
}

export interface OrderWorkflowInput extends CourierChoice {
  orderId: string;
  orderNumber: string;
  customerId: string | null;
  currency: string;
  /** Minor units: what is authorised and, at the first pickup, captured. */
  totalAmount: number;
  // courier and courierByShipFrom come from CourierChoice: the server's courier for each
  // place this order's lines ship from (WAYBILL_COURIER_BY_WAREHOUSE), and the default.
  lines: OrderLineInput[];
  /**
   * The payment provider's token from checkout; passed to the provider only. Never card
   * details: this input is stored in Temporal history (the API refuses card numbers).
   */
  payment: { token: string };
  /** Pins the parcels' poll policy (tests); absent, the shipment workflows use the worker's. */
  shipmentPolicy?: PollPolicy;
  courierTaskQueue: string;
  /**
   * How long booking retries ride out a courier outage before the order fails (ms). Absent
   * in orders started before it existed: {@link DEFAULT_BOOKING_RETRY_WINDOW_MS}.
   */
  bookingRetryWindowMs?: number;
  /**
   * How long a money movement or compensation at the provider or the courier (capture, void,
   * refund, cancel a booking) is retried through outages before the order is parked as
   * NEEDS_ATTENTION (ms). Absent: {@link DEFAULT_SETTLE_RETRY_WINDOW_MS}.
   */
  settleRetryWindowMs?: number;
  /**
   * How long the saga waits, after a parcel's shipment workflow ended without the courier's
   * final word (failed, terminated, timed out), for ops to restart its tracking
   * (`restartTracking`) before it settles the parcel as lost (ms). Absent (orders started
   * before it existed) or 0: settled at once.
   */
  trackingRestartWindowMs?: number;
}

export const DEFAULT_SETTLE_RETRY_WINDOW_MS = 60 * 60_000;

export const DEFAULT_BOOKING_RETRY_WINDOW_MS = 30 * 60_000;

/** The restart window the API gives new orders: a working day for ops to see and act on it. */
export const DEFAULT_TRACKING_RESTART_WINDOW_MS = 8 * 60 * 60_000;

export interface CancelOrderRequest {
  /** 'customer:<id>' or 'admin:<id>'. */
  requestedBy: string;
  reason: string;
}

/** The kinds of saga step that can be parked for an admin. */
export const AttentionStep = {
  CAPTURE: 'capture',
  VOID_OR_REFUND: 'void_or_refund',
  REFUND_PARCEL: 'refund_parcel',
  CANCEL_BOOKING: 'cancel_booking',
  /** A parcel of a cancelled or failed order the courier collected anyway: recall it. */
  RECALL_PARCEL: 'recall_parcel',
} as const;
export type AttentionStep = (typeof AttentionStep)[keyof typeof AttentionStep];

/** One parked step: what it was, why it stopped, since when (ISO). */
export interface AttentionItem {
  /** Unique within the order, stable across retries: `capture`, `cancel_booking:<shipmentId>`. */
  id: string;
  step: AttentionStep;
  reason: string;
  since: string;
}

export interface OrderSnapshot {
  orderId: string;
  status: OrderStatus;
  failureCode: string | null;
  failureMessage: string | null;
  shipments: { shipmentId: string; trackingNumber: string; status: ShipmentStatus }[];
  pickedUp: boolean;
  captured: boolean;
  /** Steps parked for an admin; the order is NEEDS_ATTENTION while this is not empty. */
  attention: AttentionItem[];
}

/**
 * How an admin settled a parked `capture` outside Waybill; a resolve of that step must say.
 * - `captured_by_hand`: the payment was captured in the provider's dashboard. Waybill reads
 *   the provider's books (it refuses when they hold no capture), counts what was refunded
 *   there, and pays the refunds still owed for parcels that did not arrive.
 * - `not_charged`: the shopper is not charged on this payment (the charge is waived, or taken
 *   another way). Waybill voids what the card still holds (it refuses when the provider says
 *   the payment was captured) and captures and refunds nothing more on it.
 */
export const CaptureSettlement = {
  CAPTURED_BY_HAND: 'captured_by_hand',
  NOT_CHARGED: 'not_charged',
} as const;
export type CaptureSettlement = (typeof CaptureSettlement)[keyof typeof CaptureSettlement];
export const CAPTURE_SETTLEMENTS = Object.values(CaptureSettlement) as CaptureSettlement[];

/** What a refusal of a resolve starts with when its settlement is missing or wrong (the API answers 400 with it). */
export const SettlementRefusal = {
  REQUIRED: 'SETTLEMENT_REQUIRED',
  INVALID: 'SETTLEMENT_INVALID',
} as const;

export interface ResolveAttentionRequest {
  itemId: string;
  /** `retry`: run the step again now. `resolve`: an admin settled it outside Waybill (say how). */
  action: 'retry' | 'resolve';
  reason: string;
  /** Required to resolve a parked `capture`, and only that (see {@link CaptureSettlement}). */
  settlement?: CaptureSettlement;
  /** 'admin:<id>'. */
  requestedBy: string;
}

/** The outcome of one admin action on a parked step. */
export interface ResolveAttentionResult {
  itemId: string;
  /** `retried`: the step ran and succeeded. `still_failing`: it ran and failed again (see reason). */
  outcome: 'retried' | 'resolved' | 'still_failing';
  reason: string | null;
  order: OrderSnapshot;
}

/** Retries or resolves one parked step; refused for an unknown or closed item or an empty reason. */
export const resolveAttentionUpdate = defineUpdate<ResolveAttentionResult, [ResolveAttentionRequest]>(
  'resolveAttention',
);

/** Ops bring a parcel whose shipment workflow died back under tracking, from the read model's state. */
export interface RestartTrackingRequest {
  shipmentId: string;
  /** 'ops:<id>', as the audit log names them. */
  requestedBy: string;
  reason: string;
  /** Where tracking continues from: the parcel as the read model last knew it. */
  state: ShipmentState;
}

export interface RestartTrackingResult {
  shipmentId: string;
  workflowId: string;
  /** The new run of the shipment workflow. */
  runId: string;
}

/**
 * Starts the parcel's shipment workflow again (same id, a new run) while the order still waits
 * for it: accepted only for a parcel whose workflow ended without a final status and that the
 * order has not settled yet (see `trackingRestartWindowMs`).
 */
export const restartTrackingUpdate = defineUpdate<RestartTrackingResult, [RestartTrackingRequest]>(
  'restartTracking',
);

/**
 * Sent by the API to an order workflow it has just reset: the parcel's shipment workflow (the
 * chain of runs this order started) ended while the order was stopped, so its end never reached
 * the order. The order takes it as if it had heard it then; a later notice of the same end, or
 * one about another chain, changes nothing.
 */
export interface TrackingEndedNotice {
  shipmentId: string;
  /** The first run of the chain the order started (continue-as-new keeps it). */
  trackingRunId: string;
  /** The shipment workflow's final status when it completed; null when it failed, was terminated or timed out. */
  final: ShipmentStatus | null;
  /**
   * The final status's sub-status (e.g. an admin's mark, {@link MARKED_BY_ADMIN}); null or absent
   * when it has none or the run did not complete.
   */
  subStatus?: string | null;
  /** How it ended, for the order's log and details, e.g. "TERMINATED while the order was stopped". */
  how: string;
}
export const trackingEndedSignal = defineSignal<[TrackingEndedNotice]>('trackingEnded');

/** Accepted before any parcel is picked up; refused after (the API answers 409 with the reason). */
export const cancelOrderUpdate = defineUpdate<OrderSnapshot, [CancelOrderRequest]>('cancel');
export const orderStateQuery = defineQuery<OrderSnapshot>('state');

/** The shipment id of the n-th parcel of an order: deterministic, so a retried booking is the same parcel. */
export const orderShipmentId = (orderId: string, parcel: number): string => `${orderId}-p${parcel}`;

// --- Operations (Temporal Schedules) ---------------------------------------------------

/** Schedule ids: what ops look for in the UI (Schedules) and with `temporal schedule …`. */
export const DAILY_REPORT_SCHEDULE_ID = 'waybill-daily-report';
export const HOUSEKEEPING_SCHEDULE_ID = 'waybill-housekeeping';

export interface DailyReportInput {
  /** UTC day 'YYYY-MM-DD'. Default: the UTC day before the run's scheduled time. */
  day?: string;
}

/** Limits are carried in the input (set from config by the schedule), so tests can shrink them. */
export interface HousekeepingInput {
  /** Unfinished shipments with no scan for this long and no running workflow → EXPIRED (ms). */
  expireAfterNoScanMs: number;
  /**
   * A shipment whose tracking ended without finishing (failed, terminated, timed out) less than
   * this long ago is left to its order, which may still restart it (ms; default
   * {@link DEFAULT_TRACKING_RESTART_WINDOW_MS}, the orders' restart window).
   */
  trackingRestartWindowMs?: number;
  /** Finished shipments are archived after this long (ms). */
  archiveAfterMs: number;
  /** Personal data is scrubbed from raw courier payloads this long after a shipment finished (ms). */
  scrubPersonalDataAfterMs: number;
  batchSize: number;
  /** Batches per step in one run: the bound on a run's work; the next run carries on. */
  maxBatches: number;
  /** PENDING orders older than this with no order workflow → FAILED / NOT_STARTED (ms). */
  orderStartGraceMs: number;
  /** Rows deleted after these ages (ms): finished Idempotency-Key records, courier push dedupe rows, sent or given-up notifications. */
  pruneIdempotencyKeysAfterMs: number;
  pruneWebhookEventsAfterMs: number;
  pruneNotificationsAfterMs: number;
  /**
   * Domain events no enabled endpoint waits for, with their deliveries and attempts, and settled
   * EasyParcel submissions (the AWB known, the order finished) (ms).
   */
  pruneEventsAfterMs: number;
}

export interface HousekeepingResult {
  expired: number;
  /** Stale shipments left alone because their workflow is running (it expires them itself). */
  skippedRunning: number;
  archived: number;
  scrubbed: number;
  /** Lines of old finished parcel imports whose e-mail, postcode and order reference were removed. */
  scrubbedImportLines: number;
  /** PENDING orders whose workflow never started, closed as FAILED / NOT_STARTED. */
  ordersNotStarted: number;
  /** Rows deleted for their age, per kind. */
  prunedIdempotencyKeys: number;
  prunedWebhookEvents: number;
  prunedNotifications: number;
  /** Domain events (with their deliveries and attempts). */
  prunedEvents: number;
  /** Settled EasyParcel booking journal rows (`easyparcel_submissions`). */
  prunedEasyParcelSubmissions: number;
  /** False when a step stopped at maxBatches with more to do. */
  caughtUp: boolean;
}
