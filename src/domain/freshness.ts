/**
 * How current a shipment's cached tracking is, judged against the schedule its own workflow
 * keeps: the `next_poll_at` it stores in the read model. The workflow knows the interval it
 * runs on (its worker's policy, a courier's own intervals and quiet rule, slot alignment,
 * backoff), so the API needs no copy of the policy to tell whether tracking keeps up.
 *
 * One rule, in two forms that must agree: {@link freshnessOf} here for a row in hand (tracking
 * views, admin rows) and its SQL twin `freshSql` (src/read-model/freshness.ts) for a filter or
 * a count in Postgres (the admin queue's `stale` filter, the stale gauge).
 * test/domain/freshness.test.ts holds them to it.
 */
import { isTerminal, type ShipmentStatus } from './status';

export type Freshness = 'fresh' | 'stale' | 'expired';

/** The rule's two settings (WAYBILL_FRESHNESS_GRACE, WAYBILL_FRESHNESS_EXPIRED_AFTER), in ms. */
export interface FreshnessRule {
  /** A poll may run this late before its parcel reads stale (queues, slots, a busy worker). */
  graceMs: number;
  /** Data not synced for this long, and not kept current by the schedule, reads expired. */
  expiredAfterMs: number;
}

/** What the rule reads of a shipment row. */
export interface FreshnessFacts {
  status: ShipmentStatus;
  lastSyncedAt: Date | null;
  /** When its workflow polls next; null when none is planned. */
  nextPollAt: Date | null;
  /** Since when its polls fail (courier down, budget used up); null while they succeed. */
  syncFailingSince: Date | null;
  createdAt: Date;
}

/**
 * When the parcel was due for the poll that would make its data current: while polls fail,
 * the first failed one (the backoff moves `next_poll_at`, the data stays as old); otherwise
 * `next_poll_at`; a parcel never synced, its creation (its first poll is due at once).
 */
function dueAt(row: FreshnessFacts): Date | null {
  return row.syncFailingSince ?? row.nextPollAt ?? (row.lastSyncedAt === null ? row.createdAt : null);
}

/**
 * - Finished (terminal): fresh once synced, it will not change; never synced, stale.
 * - Otherwise fresh until `graceMs` past {@link dueAt}; then stale, and expired once its
 *   last sync is `expiredAfterMs` old (a parcel never synced has no data to expire: stale).
 * - Synced, still open, no poll planned and none failing: nothing keeps it current, stale.
 */
export function freshnessOf(row: FreshnessFacts, rule: FreshnessRule, nowMs: number): Freshness {
  if (isTerminal(row.status)) return row.lastSyncedAt !== null ? 'fresh' : 'stale';
  const due = dueAt(row);
  if (due !== null && nowMs <= due.getTime() + rule.graceMs) return 'fresh';
  if (row.lastSyncedAt !== null && nowMs - row.lastSyncedAt.getTime() > rule.expiredAfterMs) return 'expired';
  return 'stale';
}
