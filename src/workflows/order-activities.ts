/**
 * The order saga's activities, with the retry policy each kind of step needs, and how the
 * saga reads an activity's failure. Deterministic code only.
 */
import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { BookingActivities } from '../activities/bookings';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import type { ShipmentActivities } from '../activities/shipments';
import { activityFailure, FailureType } from '../domain/failures';
import {
  DEFAULT_BOOKING_RETRY_WINDOW_MS,
  DEFAULT_SETTLE_RETRY_WINDOW_MS,
  type OrderWorkflowInput,
} from './contract';

type Activities = OrderActivities &
  BookingActivities &
  PaymentActivities &
  InventoryActivities &
  Pick<ShipmentActivities, 'pollCourier' | 'driverReports' | 'recordTracking'>;

/** The failure type an activity ended with (an ApplicationFailure's `type`), if any. */
export function failureType(err: unknown): string | null {
  return activityFailure(err).type;
}

/** The payment provider's refusal code (PaymentRejection) of a PaymentRejected failure. */
export function rejectionCode(err: unknown): string | null {
  const { type, details } = activityFailure(err);
  if (type !== FailureType.PAYMENT_REJECTED) return null;
  const detail = details[0] as { code?: unknown } | undefined;
  return typeof detail?.code === 'string' ? detail.code : null;
}

/** The message that says why: the last attempt's own error, under any timeout around it. */
export function message(err: unknown): string {
  let cause: unknown = err;
  // An activity out of its retry window fails with a timeout whose cause is the last attempt's error.
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * The saga's retry policies:
 * - `always`: our own database (status, stock, audit); retried until it works.
 * - `stock`: reserving stock; out of stock is final.
 * These two are local activities: short writes to our own Postgres, run by the worker that
 * runs the workflow task, inside that task (no round trip through the server, no workflow
 * task of their own), recorded as markers and never run again on replay. Each is as safe to
 * run twice as before (a local activity is retried inside the task, and again if the task
 * is lost). A local activity holds the task while it runs, so each attempt is cut short at
 * 10 s (a pool wait is 3 s); retries that back off longer than a minute wait on a timer.
 * - `forward`: authorising at the provider (the answer is recorded under `always`, so our own
 *   database being down never uses up these attempts); a few attempts, then the saga compensates.
 * - `booking`: rides out a courier outage (or a used-up courier budget) for a while, then the
 *   saga compensates; a cancel of the order pre-empts it (heartbeat; the workflow waits for the
 *   attempt in flight to end).
 * - `settle`: money at the provider after the order is under way (capture, void, refund):
 *   retried through outages within a window, then parked; a refusal for good is parked at once.
 * - `release`: the same for bookings at the courier (cancel a booking, find one whose answer
 *   was lost).
 * `booking` and `release` run on the courier task queue, under its caps and the daily budget
 * the polls share (src/activities/courier-budget.ts: a release is counted, never refused).
 * - `lastWord`: one courier poll before a parcel whose tracking died is settled as lost,
 *   retried through an outage for up to 30 min, on the courier task queue (a shipment
 *   workflow's polls are its own local activities; this one is the order's)
 *   (a used-up daily budget is final for the activity: the order waits for the budget's next
 *   window and asks once more, see order-tracking.ts).
 * - `notify`: a few attempts; a 4xx from the shop's endpoint is final.
 */
const LOCAL_ATTEMPT = '10s';
/** How long the last poll of a parcel whose tracking died may take, retries included. */
const LAST_WORD_WINDOW = '30m';

export function activityOptions(input: OrderWorkflowInput) {
  const backoff = { initialInterval: '1s', backoffCoefficient: 2 } as const;
  const settle: ActivityOptions = {
    startToCloseTimeout: '60s',
    scheduleToCloseTimeout: input.settleRetryWindowMs ?? DEFAULT_SETTLE_RETRY_WINDOW_MS,
    retry: {
      ...backoff,
      maximumInterval: '2m',
      nonRetryableErrorTypes: [
        FailureType.PAYMENT_REJECTED,
        FailureType.CANCEL_REFUSED,
        FailureType.BOOKING_REJECTED,
      ],
    },
  };
  return {
    always: proxyLocalActivities<Activities>({
      startToCloseTimeout: LOCAL_ATTEMPT,
      retry: { ...backoff, maximumInterval: '2m' },
    }),
    stock: proxyLocalActivities<Activities>({
      startToCloseTimeout: LOCAL_ATTEMPT,
      retry: {
        ...backoff,
        maximumInterval: '1m',
        nonRetryableErrorTypes: [FailureType.OUT_OF_STOCK, FailureType.INVALID_STOCK_REQUEST],
      },
    }),
    forward: proxyActivities<Activities>({
      startToCloseTimeout: '60s',
      retry: {
        ...backoff,
        maximumInterval: '30s',
        maximumAttempts: 5,
        nonRetryableErrorTypes: [FailureType.PAYMENT_REJECTED],
      },
    }),
    booking: proxyActivities<Activities>({
      taskQueue: input.courierTaskQueue,
      startToCloseTimeout: '60s',
      heartbeatTimeout: '30s',
      scheduleToCloseTimeout: input.bookingRetryWindowMs ?? DEFAULT_BOOKING_RETRY_WINDOW_MS,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { ...backoff, maximumInterval: '1m', nonRetryableErrorTypes: [FailureType.BOOKING_REJECTED] },
    }),
    settle: proxyActivities<Activities>(settle),
    release: proxyActivities<Activities>({
      taskQueue: input.courierTaskQueue,
      ...settle,
    }),
    // The courier's last word on a parcel whose tracking died: one poll, retried through an
    // outage for a while (bounded, queue wait included), as the parcel is settled as lost
    // without it.
    lastWord: proxyActivities<Activities>({
      taskQueue: input.courierTaskQueue,
      startToCloseTimeout: '60s',
      heartbeatTimeout: '10s', // the poll heartbeats while it waits for its batch
      scheduleToCloseTimeout: LAST_WORD_WINDOW,
      retry: { ...backoff, maximumInterval: '2m' },
    }),
    notify: proxyActivities<Activities>({
      startToCloseTimeout: '30s',
      retry: {
        initialInterval: '2s',
        backoffCoefficient: 2,
        maximumInterval: '1m',
        maximumAttempts: 6,
        nonRetryableErrorTypes: [FailureType.NOTIFICATION_REJECTED],
      },
    }),
  };
}

export type SagaActivities = ReturnType<typeof activityOptions>;
