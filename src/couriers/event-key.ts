import { createHash } from 'node:crypto';
import type { EventLocation } from './types';

const hashed = (parts: readonly string[]) =>
  createHash('sha256').update(parts.join('|').toLowerCase()).digest('hex').slice(0, 32);

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
  return hashed([
    courier,
    rawCode ?? '',
    occurredAtIso,
    location.city ?? '',
    location.state ?? '',
    location.country ?? '',
  ]);
}

/**
 * An EasyParcel event's key: code, UTC time and status text, without the place. EasyParcel's
 * webhook log has no place while its tracking answer gives the couriers' scans one, so a key
 * with the place would make a pushed scan and the same scan polled later two rows. The text
 * (trimmed, spaces collapsed, case ignored) keeps apart two entries of one code and second that
 * the place used to tell apart: EasyParcel's own "Schedule In Arrangement" and a courier's
 * "Data Submitted" stamped in the same second.
 */
export function easyParcelEventKey(rawCode: string, occurredAtIso: string, text: string | null): string {
  return hashed(['easyparcel', rawCode, occurredAtIso, normalisedText(text)]);
}

/**
 * A pushed report's key when the sender names each report (the shop's own fleet: a driver's
 * report id): the same report sent again is the same event, whatever time it carries.
 */
export function reportEventKey(courier: string, senderId: string, reportId: string): string {
  return hashed([courier, 'report', senderId, reportId]);
}

/** A courier's status text as compared in keys: trimmed, inner spaces collapsed (case is ignored by the hash). */
export function normalisedText(text: string | null): string {
  return (text ?? '').trim().replace(/\s+/g, ' ');
}
