/**
 * How current a shipment's cached tracking is, from its last successful sync and the poll
 * interval of its status: what the API tells customers alongside the data.
 */
import { isTerminal, type ShipmentStatus } from '../domain/status';

export type Freshness = 'fresh' | 'stale' | 'expired';

/** A sync counts as fresh up to this share past its interval (polls are not on the second). */
export const GRACE = 1.25;
/** Beyond this many intervals without a sync, the cached data is no longer worth trusting. */
const EXPIRED_AFTER_INTERVALS = 4;

export function freshnessOf(opts: {
  status: ShipmentStatus;
  lastSyncedAt: Date | null;
  intervalMs: number | null;
  nowMs: number;
}): Freshness {
  // A finished shipment will not change: its last sync is as fresh as it gets.
  if (isTerminal(opts.status) && opts.lastSyncedAt !== null) return 'fresh';
  if (opts.lastSyncedAt === null || opts.intervalMs === null) return 'stale';
  const age = opts.nowMs - opts.lastSyncedAt.getTime();
  if (age <= opts.intervalMs * GRACE) return 'fresh';
  if (age <= opts.intervalMs * EXPIRED_AFTER_INTERVALS) return 'stale';
  return 'expired';
}

/** Customer-facing text per status: our words, never the courier's free text (it can name people). */
export const STATUS_TEXT: Record<ShipmentStatus, string> = {
  PENDING: 'Waiting for the courier',
  INFO_RECEIVED: 'The courier has the shipment details',
  IN_TRANSIT: 'On its way',
  OUT_FOR_DELIVERY: 'Out for delivery',
  AVAILABLE_FOR_PICKUP: 'Ready for collection',
  ATTEMPT_FAIL: 'Delivery attempted',
  DELIVERED: 'Delivered',
  EXCEPTION: 'Delayed: the courier reported a problem',
  RETURNING: 'On its way back to the shop',
  RETURNED: 'Returned to the shop',
  CANCELLED: 'Cancelled',
  EXPIRED: 'No further tracking updates',
};
