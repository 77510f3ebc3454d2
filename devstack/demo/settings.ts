/** What the demo's parts share: its stack's settings, its patience, its refusal, and a pause. */

/** An order in a final status whose parcels are not final yet: how long to wait for them. */
export const PARCELS_GRACE_MS = 30_000;
/** Every parcel final, the order not: how long before the demo asks Temporal whether its workflow still runs. */
export const STUCK_AFTER_MS = 15_000;

/** The demo will not run as asked; the message says why and what to do instead. */
export class Refusal extends Error {
  override name = 'Refusal';
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// Settings

/** One courier hour per real second: the longest lifecycle (return to origin, 5 d 14 h) takes 134 s. */
export const DEMO_TIME_SCALE = 3_600;
/** How long the demo takes the outage courier down (real ms). */
export const DEMO_OUTAGE_MS = 60_000;

/**
 * What the demo's own stack runs with (environment for src/config). Polls every 3 to 15
 * seconds and an expiry of 2 minutes without a scan: at {@link DEMO_TIME_SCALE} the
 * longest quiet stretch of a parcel that is still moving is 44 s (a return on its way
 * back), under two minutes for one caught in the 60 s outage. The courier budget and the rate caps
 * are lifted: ~40 parcels spend about a thousand courier calls in three minutes, and the
 * demo reads every order every two seconds.
 */
export const DEMO_STACK_ENV: Readonly<Record<string, string>> = {
  COURIER_SIMULATOR_TIME_SCALE: String(DEMO_TIME_SCALE),
  WAYBILL_POLL_PENDING: '4s',
  WAYBILL_POLL_INFO_RECEIVED: '4s',
  WAYBILL_POLL_IN_TRANSIT: '8s',
  WAYBILL_POLL_OUT_FOR_DELIVERY: '3s',
  WAYBILL_POLL_AVAILABLE_FOR_PICKUP: '8s',
  WAYBILL_POLL_ATTEMPT_FAIL: '4s',
  WAYBILL_POLL_EXCEPTION: '15s',
  WAYBILL_POLL_BACKOFF_CAP: '5s',
  WAYBILL_EXPIRE_AFTER_NO_SCAN: '2m',
  WAYBILL_TRACKING_MAX_AGE: '1h',
  WAYBILL_COURIER_DAILY_BUDGET: '1000000',
  WAYBILL_COURIER_CONCURRENCY: '10',
  WAYBILL_COURIER_CALLS_PER_SECOND: '50',
  WAYBILL_COURIER_REQUESTS_PER_SECOND: '1000',
  WAYBILL_RATE_LIMIT_PER_MINUTE: '100000',
  LOG_LEVEL: 'info',
};

/**
 * Variables the demo's stack must not inherit: it runs everything embedded and local, so it
 * never writes into the user's database or Temporal, nor calls a real courier, payment
 * provider or shop webhook.
 */
export const DEMO_STACK_UNSET: readonly string[] = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
  'COURIER_SIMULATOR_URL',
  'EASYPARCEL_BASE_URL',
  'BLUEDART_BASE_URL',
  'PAYMENTS_BASE_URL',
  'PAYMENTS_API_KEY',
  'WAYBILL_NOTIFY_WEBHOOK_URL',
  'WAYBILL_NOTIFY_WEBHOOK_SECRET',
];
