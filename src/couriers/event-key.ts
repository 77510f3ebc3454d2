import { createHash } from 'node:crypto';
import type { EventLocation } from './types';

/**
 * Couriers whose scans are keyed without their place: EasyParcel's webhook status log has no
 * location while its tracking answer has one, and a pushed entry and the polled one must be
 * one event (one code at one second of one parcel's log is one entry either way).
 */
const KEYED_WITHOUT_PLACE: ReadonlySet<string> = new Set(['easyparcel']);

/**
 * The dedupe key of a tracking event: the same scan seen twice (a retried poll, a push
 * and a poll of the same scan) gives the same key, so `ON CONFLICT` keeps one row.
 */
export function eventKey(
  courier: string,
  rawCode: string | null,
  occurredAtIso: string,
  location: EventLocation,
): string {
  const place = KEYED_WITHOUT_PLACE.has(courier)
    ? ['', '', '']
    : [location.city ?? '', location.state ?? '', location.country ?? ''];
  const parts = [courier, rawCode ?? '', occurredAtIso, ...place];
  return createHash('sha256').update(parts.join('|').toLowerCase()).digest('hex').slice(0, 32);
}
