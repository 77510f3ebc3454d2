import { createHash } from 'node:crypto';
import type { EventLocation } from './types';

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
  const parts = [
    courier,
    rawCode ?? '',
    occurredAtIso,
    location.city ?? '',
    location.state ?? '',
    location.country ?? '',
  ];
  return createHash('sha256').update(parts.join('|').toLowerCase()).digest('hex').slice(0, 32);
}
