/**
 * What EasyParcel's answers mean: its status codes (read with the code table of the API
 * version spoken), the statuses only its free text carries, its dates (EasyParcel's own
 * events in UTC, the couriers' scans in Malaysia time) and its places. Pure: the adapter
 * (easyparcel.ts) reads the JSON and asks here.
 */
import { ShipmentStatus } from '../domain/status';
import { EasyParcelCodeTable } from './easyparcel-versions';
import { MYT_OFFSET_MINUTES, parseIsoInstant, parseSqlLocal } from './time';
import { type EventLocation } from './types';

/** EasyParcel's shipment status codes (`shipment_status_code`), in the current (0-11) table. */
export const EasyParcelCode = {
  CANCELLED: 0,
  TO_BE_COLLECTED: 2,
  COLLECTED: 3,
  IN_TRANSIT: 4,
  DELIVERED: 5,
  RETURNED: 6,
  SCHEDULED: 7,
  ON_HOLD: 8,
  DROP_OFF: 11,
} as const;
export type EasyParcelCode = (typeof EasyParcelCode)[keyof typeof EasyParcelCode];

/** A status code read as Waybill's status and sub-status. */
export interface Mapped {
  status: ShipmentStatus;
  subStatus: string | null;
}

const S = ShipmentStatus;
const m = (status: ShipmentStatus, subStatus: string | null = null): Mapped => ({ status, subStatus });

/** What each code of a table means when its text says nothing more specific. */
const BY_CODE: Readonly<Record<EasyParcelCodeTable, Readonly<Record<number, Mapped>>>> = {
  [EasyParcelCodeTable.CURRENT]: {
    [EasyParcelCode.CANCELLED]: m(S.CANCELLED),
    // Booked; the courier has the details and will come for the parcel.
    [EasyParcelCode.TO_BE_COLLECTED]: m(S.INFO_RECEIVED, 'TO_BE_COLLECTED'),
    [EasyParcelCode.COLLECTED]: m(S.IN_TRANSIT, 'PICKED_UP'),
    [EasyParcelCode.IN_TRANSIT]: m(S.IN_TRANSIT),
    [EasyParcelCode.DELIVERED]: m(S.DELIVERED),
    [EasyParcelCode.RETURNED]: m(S.RETURNED),
    // "Schedule In Arrangement", "Shipment information sent to City-Link", "Data Submitted -
    // Awaiting Parcel Handover": the courier has the shipment's data, not the parcel.
    [EasyParcelCode.SCHEDULED]: m(S.INFO_RECEIVED, 'SCHEDULED'),
    [EasyParcelCode.ON_HOLD]: m(S.EXCEPTION, 'ON_HOLD'),
    // The shipper handed the parcel in at a drop-off point: the courier has it, like "collected".
    [EasyParcelCode.DROP_OFF]: m(S.IN_TRANSIT, 'DROP_OFF'),
  },
  [EasyParcelCodeTable.OLDER]: {
    1: m(S.PENDING, 'ORDER_CREATED'),
    2: m(S.PENDING, 'PAYMENT_CONFIRMED'),
    3: m(S.INFO_RECEIVED, 'TO_BE_COLLECTED'),
    4: m(S.IN_TRANSIT, 'PICKED_UP'),
    5: m(S.IN_TRANSIT),
    6: m(S.IN_TRANSIT, 'ARRIVED_AT_HUB'),
    7: m(S.INFO_RECEIVED, 'SCHEDULED'),
    8: m(S.OUT_FOR_DELIVERY),
    9: m(S.DELIVERED),
    10: m(S.ATTEMPT_FAIL),
    // "Return to Sender": on its way back; only "returned" (restock, refund) would be final.
    11: m(S.RETURNING, 'RETURN_TO_SENDER'),
  },
};

// Statuses the current table only tells in its free text (`tracking_status`), on codes 4 and 8.
const RETURN_TEXT = /\breturn/i;
const OUT_FOR_DELIVERY_TEXT = /out for delivery|with courier for delivery/i;
const FAILED_ATTEMPT_TEXT =
  /attempt|not available|unavailable|absent|unsuccessful|unable to deliver|undeliver/i;
const RECIPIENT_ABSENT_TEXT = /not available|unavailable|absent|not at home|nobody|no one/i;
/** A cancelled shipment: code 8 with the text "Cancelled" (EasyParcel's tracking sample). */
const CANCELLED_TEXT = /^\s*(shipment\s+)?cancell?ed\b/i;

/**
 * A code and its text in taxonomy terms, in `table` (default the current 0-11 one). The code
 * wins, except where the current table has no code of its own: a cancellation (8 with
 * "Cancelled"), a return in progress (4 or 8 with "return" in the text), out for delivery (4
 * with "Out for delivery"), a failed attempt (8 with "attempt failed", "not available"). Null
 * for a code the table does not have.
 */
export function mapEasyParcelStatus(
  code: number,
  text: string | null,
  table: EasyParcelCodeTable = EasyParcelCodeTable.CURRENT,
): Mapped | null {
  const mapped = BY_CODE[table][code];
  if (!mapped || table !== EasyParcelCodeTable.CURRENT) return mapped ?? null;
  const t = text ?? '';
  if (code === EasyParcelCode.ON_HOLD && CANCELLED_TEXT.test(t)) return m(S.CANCELLED);
  if ((code === EasyParcelCode.IN_TRANSIT || code === EasyParcelCode.ON_HOLD) && RETURN_TEXT.test(t)) {
    return m(S.RETURNING);
  }
  if (code === EasyParcelCode.IN_TRANSIT && OUT_FOR_DELIVERY_TEXT.test(t)) return m(S.OUT_FOR_DELIVERY);
  if (code === EasyParcelCode.ON_HOLD && FAILED_ATTEMPT_TEXT.test(t)) {
    return m(S.ATTEMPT_FAIL, RECIPIENT_ABSENT_TEXT.test(t) ? 'RECIPIENT_ABSENT' : null);
  }
  return mapped;
}

/**
 * EasyParcel's own events, as opposed to the couriers' scans it relays. Its docs say dates are
 * UTC, and its own "Schedule In Arrangement" is (the same instant as the courier's "Data
 * Submitted" eight hours later on the clock, in its tracking samples); the couriers' scans in
 * the same log are Malaysia time.
 */
const OWN_EVENT_TEXT = /^\s*schedule in arrangement\s*$/i;

/**
 * An EasyParcel date: ISO 8601 with its zone, or `YYYY-MM-DD HH:mm:ss` without one, which is
 * UTC for EasyParcel's own events (`trackingStatus` "Schedule In Arrangement") and Malaysia
 * time (UTC+8) for the couriers' scans. Null when it is neither.
 */
export function parseEasyParcelDate(text: string, trackingStatus: string | null = null): Date | null {
  const offset = trackingStatus !== null && OWN_EVENT_TEXT.test(trackingStatus) ? 0 : MYT_OFFSET_MINUTES;
  return parseIsoInstant(text) ?? parseSqlLocal(text, offset);
}

/**
 * A location as EasyParcel writes it, read from the right: `"Kuala Lumpur Hub, Kuala Lumpur, MY"`
 * is the place, then the state, then the country code (empty parts, as in
 * `"BAYAN BARU, PENANG,, PIN, MY"`, are dropped; the place keeps whatever is left). Without a
 * country code the country is unknown, not Malaysia; null or blank: nothing known.
 */
export function parseEasyParcelLocation(text: string | null): EventLocation {
  const parts = (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  const country = parts.length > 1 && /^[A-Za-z]{2}$/.test(parts.at(-1)!) ? parts.pop()!.toUpperCase() : null;
  const state = parts.length > 1 ? parts.pop()! : null;
  const city = parts.length > 0 ? parts.join(', ') : null;
  return { city, state, country };
}

// Same-second events (status_log has no order of its own) are ordered by how far along the
// parcel each puts it, so the snapshot never depends on the order EasyParcel happened to use.
const PROGRESS: readonly ShipmentStatus[] = [
  S.PENDING,
  S.INFO_RECEIVED,
  S.IN_TRANSIT,
  S.OUT_FOR_DELIVERY,
  S.ATTEMPT_FAIL,
  S.AVAILABLE_FOR_PICKUP,
  S.EXCEPTION,
  S.DELIVERED,
  S.RETURNING,
  S.RETURNED,
  S.CANCELLED,
  S.EXPIRED,
];

/** Orders two statuses seen in the same second by how far along a parcel they come. */
export function compareProgress(a: ShipmentStatus, b: ShipmentStatus): number {
  return PROGRESS.indexOf(a) - PROGRESS.indexOf(b);
}

/** A status code as a number: EasyParcel sends numbers, sometimes numeric strings; null otherwise. */
export function codeOf(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value.trim());
  return null;
}

/** Text or null; undefined when the value is neither. */
export function textOrNull(value: unknown): string | null | undefined {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : undefined;
}
