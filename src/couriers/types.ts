/**
 * The courier contract: every courier adapter maps its wire format onto these types.
 * Adapters are plain objects created by a factory that takes their settings and `fetch`.
 */
import type { EventSource, ShipmentStatus } from '../domain/status';

export const CourierCode = {
  EASYPARCEL: 'easyparcel',
  BLUEDART: 'bluedart',
  SIMULATOR: 'simulator',
  /** The shop's own vans and drivers (docs/fleet.md): booked into a dispatch queue, never polled. */
  FLEET: 'fleet',
} as const;
export type CourierCode = (typeof CourierCode)[keyof typeof CourierCode];
export const COURIER_CODES = Object.values(CourierCode) as CourierCode[];

export interface EventLocation {
  city: string | null;
  state: string | null;
  country: string | null;
}

/** One normalised scan. `key` is deterministic from courier, raw code, time and location. */
export interface NormalisedEvent {
  key: string;
  status: ShipmentStatus;
  subStatus: string | null;
  rawCode: string | null;
  rawText: string | null;
  /** ISO 8601 in UTC. */
  occurredAt: string;
  /** The courier's own timestamp text, as sent. */
  occurredAtRaw: string | null;
  location: EventLocation;
  source: EventSource;
}

/** What one tracking number looks like at the courier right now. */
export type TrackResult =
  | {
      kind: 'found';
      trackingNumber: string;
      status: ShipmentStatus;
      subStatus: string | null;
      /** ISO 8601 UTC, when the courier gives one. */
      eta: string | null;
      /** Oldest first. */
      events: NormalisedEvent[];
      /**
       * Scans left out because they could not be read (no code, no readable time): the rest
       * of the answer stands, and the poll counts these in `waybill_courier_unknown_scans`.
       */
      skippedScans: number;
      /** The courier's payload for this number with personal data removed (kept for support). */
      raw: unknown;
    }
  | { kind: 'not_found'; trackingNumber: string };

export interface BookingRequest {
  /** Our shipment id: couriers that accept a reference get it, making a retried booking idempotent. */
  reference: string;
  sender: { name: string; city: string; postcode: string; country: string };
  recipient: {
    name: string;
    line1: string;
    city: string;
    state: string | null;
    postcode: string;
    country: string;
    phone: string | null;
  };
  parcel: { weightGrams: number; description: string };
  /**
   * Only find the booking an earlier attempt made (the saga's clean-up after a booking failed);
   * never make a new one. Couriers whose booking is idempotent by reference may book again:
   * they answer the same booking.
   */
  lookupOnly?: boolean;
}

export interface Booking {
  trackingNumber: string;
  /** The courier's own booking id when different from the tracking number. */
  courierRef: string | null;
}

export interface CourierAdapter {
  readonly code: CourierCode;
  /** Largest batch `track` accepts in one call. */
  readonly maxBatch: number;
  /** One courier call for up to `maxBatch` numbers; one result per number, same order. */
  track(trackingNumbers: string[]): Promise<TrackResult[]>;
  book(request: BookingRequest): Promise<Booking>;
  /** Cancels a booking; cancelling one already cancelled succeeds. */
  cancel(trackingNumber: string): Promise<void>;
}

/**
 * A courier answer we cannot use (outage page, malformed body, 5xx, 429). Retryable:
 * the activity's retry policy and then the workflow's backoff deal with it.
 */
export class CourierUnavailableError extends Error {
  override name = 'CourierUnavailableError';
  constructor(
    message: string,
    readonly details: {
      status?: number;
      retryAfterMs?: number;
      bodySnippet?: string;
      /** The request surely never left (connection refused, name not resolved): nothing was done. */
      notSent?: boolean;
    } = {},
  ) {
    super(message);
  }
}

/**
 * A booking the courier may or may not hold, which the adapter cannot find out: it is never
 * submitted again (that could book twice). The saga parks it for an admin (src/couriers/README.md).
 */
export class CourierOutcomeUnknownError extends Error {
  override name = 'CourierOutcomeUnknownError';
  constructor(
    message: string,
    readonly reference: string,
  ) {
    super(message);
  }
}

/**
 * Why a courier refused a booking or a cancel, read from its answer (never guessed from a
 * bare 4xx). The saga acts on each differently: only COLLECTED can lead to a capture.
 */
export const CourierRefusal = {
  /** The courier says, explicitly, that it has the parcel (collected / in transit). Cancel only. */
  COLLECTED: 'collected',
  /** The courier does not know the booking or tracking number (404 or its equivalent). */
  UNKNOWN_BOOKING: 'unknown_booking',
  /** Our credentials were refused (401/403): an incident to retry and alert on, not a parcel's fate. */
  CREDENTIALS: 'credentials',
  /** The request itself was refused for good (400/422: invalid booking or number, or anything else). */
  INVALID: 'invalid',
} as const;
export type CourierRefusal = (typeof CourierRefusal)[keyof typeof CourierRefusal];

/** The courier refused the request; `reason` says how (see {@link CourierRefusal}). Not retried as is. */
export class CourierRejectedError extends Error {
  override name = 'CourierRejectedError';
  constructor(
    message: string,
    readonly reason: CourierRefusal = CourierRefusal.INVALID,
  ) {
    super(message);
  }
}
