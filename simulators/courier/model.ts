/**
 * The courier simulator's model, shared by its core (scenarios, clock, faults: server.ts and
 * friends) and its wire-format renderers (formats/*.ts). Renderers turn what a parcel has
 * "done so far" into exactly what that courier's API would answer.
 */
import type { ShipmentStatus } from '../../src/domain/status';

/** Wire formats the simulator speaks. `native` is the simulator's own JSON format. */
export type SimFormat = 'native' | 'easyparcel' | 'bluedart';
export const SIM_FORMATS: readonly SimFormat[] = ['native', 'easyparcel', 'bluedart'];

export interface SimLocation {
  city: string;
  state: string | null;
  country: string;
}

/** One scan the simulated courier has recorded, in taxonomy terms. */
export interface SimScan {
  status: ShipmentStatus;
  /** Finer detail, e.g. 'RECIPIENT_ABSENT' for ATTEMPT_FAIL, 'LOST' for EXCEPTION. */
  subStatus: string | null;
  /** Human text as a courier would write it ("Out for delivery", "Consignee not available"). */
  text: string;
  at: Date;
  location: SimLocation;
}

export interface SimRecipient {
  name: string;
  line1: string;
  city: string;
  state: string | null;
  postcode: string;
  country: string;
  phone: string | null;
}

/** A parcel as one tracking call sees it at the simulator's current (scaled) time. */
export interface SimShipmentView {
  trackingNumber: string;
  /** The shop's reference given at booking (our shipment id), if booked through the simulator. */
  reference: string | null;
  recipient: SimRecipient;
  /** Scans visible at this moment, oldest first. Empty: booked, never scanned. */
  scans: SimScan[];
  eta: Date | null;
  /** Set once the parcel is being returned to the sender: the return leg's own number. */
  returnTrackingNumber: string | null;
  /** Scans of the return leg (oldest first) when `returnTrackingNumber` is set. */
  returnScans: SimScan[];
}

export type SimTrackingItem =
  { found: true; view: SimShipmentView } | { found: false; trackingNumber: string };

export interface RenderedResponse {
  status: number;
  contentType: string;
  body: string;
}

/** A booking as the simulator records it (any format books through the same backend). */
export interface SimBookingRequest {
  /** Idempotency: the same reference returns the same tracking number. */
  reference: string;
  recipient: SimRecipient;
  weightGrams: number;
}

/**
 * What the simulator core offers the wire-format routes. The core owns the clock,
 * scenarios, faults and call counting; the format routes only translate.
 */
/**
 * EasyParcel booking behaviours its docs allow or do not rule out, off by default and switched
 * on through the control API (`PUT /control/easyparcel/booking`) to test the adapter against them.
 */
export interface EasyParcelBookingQuirks {
  /** A booking answers `awb_number: null`; `shipment/details` gives the AWB after this many look-ups. 0: at once. */
  awbAfterLookups: number;
  /** A repeated `reference` books again (a second, separate paid booking) instead of finding the first. */
  repeatBooksAgain: boolean;
  /** The next this many submits book, then answer an unreadable 200 (the answer is lost). */
  unreadableAnswers: number;
}

export interface SimBackend {
  /** Current view of each number at the simulator's (scaled) now; unknown numbers are not found. */
  track(format: SimFormat, trackingNumbers: string[]): SimTrackingItem[];
  book(format: SimFormat, request: SimBookingRequest): { trackingNumber: string };
  cancel(format: SimFormat, trackingNumber: string): 'cancelled' | 'already_picked_up' | 'not_found';
  /**
   * The HTTP status a book or cancel call must answer instead of running, in the format's
   * own refusal shape (a scripted answer: answers.ts), or null to run it. A backend without
   * scripted answers may leave it out.
   */
  scriptedAnswer?(
    format: SimFormat,
    operation: 'book' | 'cancel',
    subject: { trackingNumber?: string; reference?: string },
  ): number | null;
  /** A new booking even when the reference has one (EasyParcelBookingQuirks.repeatBooksAgain). */
  bookAgain?(format: SimFormat, request: SimBookingRequest): { trackingNumber: string };
  /** EasyParcel's booking behaviours; absent: none. */
  readonly easyParcelBooking?: EasyParcelBookingQuirks;
}
