/**
 * Scans whose code is outside the courier's published table. They are kept, never guessed:
 * the event carries the sub-status {@link UNKNOWN_SUB_STATUS} and its raw code, and the
 * status the parcel already had before it — so an unknown code is never a pickup, never a
 * delivery, never an outage. The adapters count them for `waybill_courier_unknown_scans`.
 */
import { ShipmentStatus } from '../domain/status';
import type { NormalisedEvent } from './types';

/** The sub-status of a scan whose code the courier's table does not have (the raw code says which). */
export const UNKNOWN_SUB_STATUS = 'UNKNOWN';

/** Whether an event was read from a code outside the courier's table. */
export function isUnknownCode(event: Pick<NormalisedEvent, 'subStatus'>): boolean {
  return event.subStatus === UNKNOWN_SUB_STATUS;
}

/**
 * Gives every unknown-code event, in the order given (oldest first), the status of the event
 * before it, or PENDING when none came before: the parcel stays where its known scans put it.
 * Mutates and returns `events`.
 */
export function holdStatusThroughUnknown<T extends Pick<NormalisedEvent, 'status' | 'subStatus'>>(
  events: T[],
): T[] {
  let before: ShipmentStatus = ShipmentStatus.PENDING;
  for (const event of events) {
    if (isUnknownCode(event)) event.status = before;
    else before = event.status;
  }
  return events;
}

/**
 * Sorts `items` oldest first with `compare` (which may look at statuses) while their
 * unknown-code events take their predecessor's status: sorted once with a provisional status,
 * given the status before them, then sorted and given it again so the final order decides.
 */
export function orderWithUnknown<T>(
  items: T[],
  eventOf: (item: T) => Pick<NormalisedEvent, 'status' | 'subStatus'>,
  compare: (a: T, b: T) => number,
): T[] {
  for (let pass = 0; pass < 2; pass++) holdStatusThroughUnknown(items.sort(compare).map(eventOf));
  return items;
}
