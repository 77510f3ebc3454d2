/**
 * The failure types the order saga throws from its activities and matches in the workflow:
 * one definition for both sides, so a thrower and a matcher cannot drift apart. Pure code
 * (imported by workflows). Types not listed here are infrastructure errors, left to the
 * retry policies.
 */
export const SagaFailure = {
  /** The courier refused a booking for good (invalid request, unknown courier). Final. */
  BOOKING_REJECTED: 'BookingRejected',
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
  /** The payment provider refused for good; details `[{ code }]` say why (PaymentRejection). Final. */
  PAYMENT_REJECTED: 'PaymentRejected',
  /** The payment provider could not be reached or answered 5xx. Retried. */
  PAYMENT_UNAVAILABLE: 'PaymentUnavailable',
  /** The shop's notification endpoint refused the message (4xx). Final: recorded, never retried. */
  NOTIFICATION_REJECTED: 'NotificationRejected',
} as const;
export type SagaFailure = (typeof SagaFailure)[keyof typeof SagaFailure];

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
