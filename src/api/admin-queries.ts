/**
 * The admin routes' views of the read model: the exceptions queue's pages (cursor, rows with
 * their freshness) and the stats' figures. Their SQL (filters, keyset reads, counts) is
 * src/read-model/admin-queries.ts; the freshness shown on each row is {@link freshnessOf}.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { COURIER_CODES } from '../couriers/types';
import { isPolledCourier } from '../domain/polling';
import { SHIPMENT_STATUSES, type ShipmentStatus } from '../domain/status';
import { freshnessOf, type Freshness, type FreshnessRule } from '../domain/freshness';
import { budgetDay } from '../domain/polling';
import {
  oldestStaleShipment,
  queueRows,
  shipmentCountsByStatus,
  syncFailingCount,
  type ShipmentFilter,
} from '../read-model/admin-queries';
import { courierUsageOn } from '../read-model/courier-usage';

/** A position in the queue: the last row's creation time (microseconds, as Postgres keeps it) and id. */
export interface QueueCursor {
  createdAt: string;
  id: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
// eslint-disable-next-line no-control-regex -- control characters (NUL above all) are what it refuses
const CURSOR_ID = /^[^\u0000-\u001f]{1,200}$/;

/**
 * True when `text` is a cursor's time (UTC, microseconds) that Postgres takes: a real instant
 * (no 30 February) from year 1 on (Postgres has no year 0). Postgres would refuse any other
 * with an error, not a 400.
 */
export function isCursorTime(text: string): boolean {
  if (!CURSOR_TIME.test(text) || text.startsWith('0000')) return false;
  const ms = `${text.slice(0, 23)}Z`;
  return !Number.isNaN(Date.parse(ms)) && new Date(ms).toISOString() === ms;
}

export function encodeCursor(cursor: QueueCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

/** The cursor, or null when it is not one this API handed out. */
export function decodeCursor(text: string): QueueCursor | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [createdAt, id] = value as unknown[];
    if (typeof createdAt !== 'string' || !isCursorTime(createdAt)) return null;
    if (typeof id !== 'string' || !CURSOR_ID.test(id)) return null;
    return { createdAt, id };
  } catch {
    return null;
  }
}

export interface QueueItem {
  shipmentId: string;
  orderId: string | null;
  courier: string;
  trackingNumber: string;
  status: ShipmentStatus;
  subStatus: string | null;
  freshness: Freshness;
  lastSyncedAt: string | null;
  nextPollAt: string | null;
  lastEventAt: string | null;
  syncError: string | null;
  syncFailingSince: string | null;
  consecutiveFailures: number;
  createdAt: string;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * One page of the exceptions queue, oldest shipment first (creation time, then id: a total
 * order, so pages never overlap or skip a row even when rows share a creation time).
 */
export async function shipmentQueuePage(
  db: Kysely<Database>,
  opts: { filter: ShipmentFilter; rule: FreshnessRule; now: Date; limit: number; after: QueueCursor | null },
): Promise<{ items: QueueItem[]; next: QueueCursor | null }> {
  const { filter, rule, now, limit, after } = opts;
  const rows = await queueRows(db, { filter, rule, now, limit: limit + 1, after });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((row) => {
      const status = row.status as ShipmentStatus;
      return {
        shipmentId: row.id,
        orderId: row.order_id,
        courier: row.courier,
        trackingNumber: row.tracking_number,
        status,
        subStatus: row.sub_status,
        freshness: freshnessOf(
          {
            status,
            lastSyncedAt: row.last_synced_at,
            nextPollAt: row.next_poll_at,
            syncFailingSince: row.sync_failing_since,
            createdAt: row.created_at,
          },
          rule,
          now.getTime(),
        ),
        lastSyncedAt: iso(row.last_synced_at),
        nextPollAt: iso(row.next_poll_at),
        lastEventAt: iso(row.last_event_at),
        syncError: row.sync_error,
        syncFailingSince: iso(row.sync_failing_since),
        consecutiveFailures: row.consecutive_failures,
        createdAt: row.created_at.toISOString(),
      };
    }),
    next: rows.length > limit && last ? { createdAt: last.created_at_key, id: last.id } : null,
  };
}

export interface CourierUsage {
  courier: string;
  calls: number;
  failures: number;
  budget: number;
  remaining: number;
  /** Of the budget, the calls polls leave to bookings. */
  bookingReserve: number;
  /** Requests started in any second of Postgres's clock, across every worker. */
  requestsPerSecond: number;
}

export interface AdminStats {
  generatedAt: string;
  shipmentsByStatus: Record<ShipmentStatus, number>;
  courierCalls: { day: string; couriers: CourierUsage[] };
  pollFailures: { failingNow: number; failuresToday: number };
  oldestStale: {
    shipmentId: string;
    status: ShipmentStatus;
    courier: string;
    lastSyncedAt: string | null;
  } | null;
}

/** The figures of `GET /v1/admin/stats`; "today" is the courier budget's UTC day. */
export async function adminStats(
  db: Kysely<Database>,
  opts: {
    rule: FreshnessRule;
    now: Date;
    dailyBudget: number;
    bookingReserve: number;
    requestsPerSecond: number;
  },
): Promise<AdminStats> {
  const { rule, now, dailyBudget, bookingReserve, requestsPerSecond } = opts;
  const day = budgetDay(now.getTime());
  const [byStatus, usage, failingNow, oldestStale] = await Promise.all([
    shipmentCountsByStatus(db),
    courierUsageOn(db, day),
    syncFailingCount(db),
    // The alarm is about tracking that fell behind: finished shipments cannot be refreshed.
    oldestStaleShipment(db, rule, now),
  ]);

  const shipmentsByStatus = Object.fromEntries(SHIPMENT_STATUSES.map((s) => [s, 0])) as Record<
    ShipmentStatus,
    number
  >;
  for (const row of byStatus) {
    if (row.status in shipmentsByStatus) shipmentsByStatus[row.status as ShipmentStatus] = Number(row.count);
  }
  // Every courier we call appears (zero calls included), plus any other the usage table names;
  // the shop's own fleet is never called and has no budget.
  const couriers = [
    ...new Set([...COURIER_CODES.filter(isPolledCourier), ...usage.map((u) => u.courier)]),
  ].sort();
  return {
    generatedAt: now.toISOString(),
    shipmentsByStatus,
    courierCalls: {
      day,
      couriers: couriers.map((courier) => {
        const row = usage.find((u) => u.courier === courier);
        const calls = row?.calls ?? 0;
        return {
          courier,
          calls,
          failures: row?.failures ?? 0,
          budget: dailyBudget,
          remaining: Math.max(0, dailyBudget - calls),
          bookingReserve,
          requestsPerSecond,
        };
      }),
    },
    pollFailures: {
      failingNow,
      failuresToday: usage.reduce((sum, u) => sum + u.failures, 0),
    },
    oldestStale: oldestStale
      ? {
          shipmentId: oldestStale.id,
          status: oldestStale.status as ShipmentStatus,
          courier: oldestStale.courier,
          lastSyncedAt: iso(oldestStale.last_synced_at),
        }
      : null,
  };
}
