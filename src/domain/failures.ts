/**
 * Failure types: the names an activity or a workflow gives the ApplicationFailure it throws,
 * and that workflows (their retry policies' `nonRetryableErrorTypes`), the API and tests
 * match on. One definition for every thrower and matcher, so the two cannot drift apart.
 * Pure code (imported by workflows). Types not listed here are infrastructure errors, left
 * to the retry policies.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

export const FailureType = {
  // Courier bookings and cancels (the order saga).
  /** The courier refused a booking for good (invalid request, unknown courier). Final. */
  BOOKING_REJECTED: 'BookingRejected',
  /**
   * The courier may hold the booking but cannot say (its answer was lost, and it has no
   * look-up by our reference): never booked again, parked for an admin. Final.
   */
  BOOKING_OUTCOME_UNKNOWN: 'BookingOutcomeUnknown',
  /** The courier refused our credentials (401/403): an incident, retried with backoff. */
  COURIER_CREDENTIALS_REFUSED: 'CourierCredentialsRefused',
  /** The courier could not be reached or answered 5xx / 429 / garbage. Retried. */
  COURIER_UNAVAILABLE: 'CourierUnavailableError',
  /** The courier refused a cancel for a reason that is not "collected" or "unknown". Final. */
  CANCEL_REFUSED: 'CourierCancelRefused',
  /**
   * The courier said it has collected the parcel, but a tracking poll does not show it
   * picked up: not believed yet, retried until the two agree.
   */
  COLLECTED_UNCONFIRMED: 'CollectedUnconfirmed',
  // Tracking polls (the shipment workflow).
  /** Today's call budget for the courier is used up: retrying before the next window cannot help. */
  BUDGET_EXHAUSTED: 'BudgetExhausted',
  /** The courier refused the tracking request for good (4xx other than not-found). */
  COURIER_REJECTED: 'CourierRejectedError',
  /** The read model has no row for the shipment a workflow records. Final. */
  SHIPMENT_NOT_FOUND: 'ShipmentNotFound',
  // Payments.
  /** The payment provider refused for good; details `[{ code }]` say why (PaymentRejection). Final. */
  PAYMENT_REJECTED: 'PaymentRejected',
  /** The payment provider could not be reached or answered 5xx. Retried. */
  PAYMENT_UNAVAILABLE: 'PaymentUnavailable',
  // Stock.
  /** Details: `[Shortage[]]`. Final. */
  OUT_OF_STOCK: 'OutOfStock',
  /** The order's stock was already released or consumed; it is not reserved again. */
  RESERVATION_SETTLED: 'ReservationSettled',
  /** A line with a quantity that is not a positive integer. Final. */
  INVALID_STOCK_REQUEST: 'InvalidStockRequest',
  // Notifications.
  /** The shop's notification endpoint refused the message (4xx). Final: recorded, never retried. */
  NOTIFICATION_REJECTED: 'NotificationRejected',
  // Order updates.
  /** A parcel's shipment workflow could not be started again (restartTracking). Final. */
  RESTART_REFUSED: 'RESTART_REFUSED',
  /** A cancel refused because a parcel of the order is picked up (the API answers 409 with this code). */
  ALREADY_PICKED_UP: 'ALREADY_PICKED_UP',
  /** A cancel overtaken by the order's own failure: it failed (and gave back what it held) before the cancel was carried out. */
  FAILED_BEFORE_CANCEL: 'FAILED_BEFORE_CANCEL',
  /**
   * An admin's resolve of a parked step that the provider's books contradict (a capture said
   * to be made by hand that the provider does not hold, a charge waived that was captured).
   * The item stays open. Final.
   */
  SETTLEMENT_REFUSED: 'SETTLEMENT_REFUSED',
  /** An admin's resolve that could not be carried out (the provider unreachable for the step's whole window). */
  SETTLEMENT_FAILED: 'SETTLEMENT_FAILED',
  // Scheduled jobs.
  /**
   * A parcel's tracking stopped (the shipment's cancel signal) by someone other than its order:
   * its run fails, so the order waits for a restart (failed work) like tracking that died.
   */
  TRACKING_STOPPED: 'TrackingStopped',
  /** A report workflow started with input it cannot use. Final. */
  INVALID_INPUT: 'InvalidInput',
  /** A housekeeping step needs a dependency this worker was not given. Final. */
  NOT_CONFIGURED: 'NotConfigured',
  /** A housekeeping run ended with steps that failed. */
  HOUSEKEEPING_INCOMPLETE: 'HousekeepingIncomplete',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** How a workflow reads an activity's failure: what the activity threw, from under Temporal's wrapper. */
export interface FailureInfo {
  type: string | null;
  message: string;
  details: unknown[];
}

/** The ApplicationFailure an activity threw (its type, message and details) from under ActivityFailure. */
export function activityFailure(err: unknown): FailureInfo {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    return { type: cause.type ?? null, message: cause.message, details: cause.details ?? [] };
  }
  return { type: null, message: cause instanceof Error ? cause.message : String(cause), details: [] };
}

/** What the courier did with a cancel, once classified (the cancelBooking activity's answer). */
export const CancelOutcome = {
  /** The booking is cancelled (now or before). */
  CANCELLED: 'cancelled',
  /** The courier does not know the booking: nothing is live there. */
  UNKNOWN_BOOKING: 'unknown_booking',
  /** The courier has the parcel, by its explicit answer and a tracking poll that agrees. */
  COLLECTED: 'collected',
} as const;
export type CancelOutcome = (typeof CancelOutcome)[keyof typeof CancelOutcome];
