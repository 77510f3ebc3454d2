/**
 * Read-model queries behind the admin routes: the exceptions queue (filters, keyset
 * pages), the shipments a bulk refresh targets, and the stats. Staleness is decided in SQL
 * by the twin of {@link freshnessOf} (src/domain/freshness.ts), so a filter and the
 * `freshness` shown on each row never disagree.
 */
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Database } from '../../db/database';
import { COURIER_CODES } from '../couriers/types';
import { SHIPMENT_STATUSES, TERMINAL_STATUSES, type ShipmentStatus } from '../domain/status';
import { freshnessOf, type Freshness, type FreshnessRule } from '../domain/freshness';
import { freshSql } from '../read-model/freshness';
import { budgetDay } from '../domain/polling';
import { courierUsageOn } from '../read-model/courier-usage';

const TERMINAL = [...TERMINAL_STATUSES];

export interface ShipmentFilter {
  /** Any of these statuses. */
  status?: ShipmentStatus[];
  courier?: string;
  /** true: freshness stale or expired; false: fresh. */
  stale?: boolean;
  /** true: status EXCEPTION or a sync error on the row; false: neither. */
  exception?: boolean;
  /** No scan (last event, or creation when there is none) for at least this many days. */
  noScanForDays?: number;
  orderId?: string;
  /** Only shipments still being tracked (not DELIVERED / RETURNED / CANCELLED / EXPIRED). */
  openOnly?: boolean;
}

type ShipmentsEb = ExpressionBuilder<Database, 'shipments'>;

function filterConditions(
  eb: ShipmentsEb,
  filter: ShipmentFilter,
  rule: FreshnessRule,
  now: Date,
): Expression<SqlBool>[] {
  // Archived rows are history, out of every admin view.
  const conditions: Expression<SqlBool>[] = [eb('shipments.archived_at', 'is', null)];
  if (filter.status && filter.status.length > 0) conditions.push(eb('shipments.status', 'in', filter.status));
  if (filter.courier !== undefined) conditions.push(eb('shipments.courier', '=', filter.courier));
  if (filter.orderId !== undefined) conditions.push(eb('shipments.order_id', '=', filter.orderId));
  if (filter.openOnly) conditions.push(eb('shipments.status', 'not in', TERMINAL));
  if (filter.stale !== undefined) {
    const fresh = freshSql(rule, now);
    conditions.push(filter.stale ? eb.not(fresh) : fresh);
  }
  if (filter.exception !== undefined) {
    const exception = eb.or([
      eb('shipments.status', '=', 'EXCEPTION'),
      eb('shipments.sync_error', 'is not', null),
    ]);
    conditions.push(filter.exception ? exception : eb.not(exception));
  }
  if (filter.noScanForDays !== undefined) {
    conditions.push(
      sql<SqlBool>`coalesce(shipments.last_event_at, shipments.created_at) <= ${now.toISOString()}::timestamptz - ${filter.noScanForDays} * interval '1 day'`,
    );
  }
  return conditions;
}

/** A position in the queue: the last row's creation time (microseconds, as Postgres keeps it) and id. */
export interface QueueCursor {
  createdAt: string;
  id: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
// eslint-disable-next-line no-control-regex -- control characters (NUL above all) are what it refuses
const CURSOR_ID = /^[^\u0000-\u001f]{1,200}$/;

export function encodeCursor(cursor: QueueCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

/** The cursor, or null when it is not one this API handed out. */
export function decodeCursor(text: string): QueueCursor | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [createdAt, id] = value as unknown[];
    if (typeof createdAt !== 'string' || !CURSOR_TIME.test(createdAt)) return null;
    // A real instant (no 30 February): Postgres would refuse it with an error, not a 400.
    const ms = `${createdAt.slice(0, 23)}Z`;
    if (Number.isNaN(Date.parse(ms)) || new Date(ms).toISOString() !== ms) return null;
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
  const rows = await db
    .selectFrom('shipments')
    .select([
      'id',
      'order_id',
      'courier',
      'tracking_number',
      'status',
      'sub_status',
      'last_synced_at',
      'next_poll_at',
      'last_event_at',
      'sync_error',
      'sync_failing_since',
      'consecutive_failures',
      'created_at',
      sql<string>`to_char(shipments.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
        'created_at_key',
      ),
    ])
    .where((eb) => {
      const conditions = filterConditions(eb, filter, rule, now);
      if (after) {
        conditions.push(
          sql<SqlBool>`(shipments.created_at, shipments.id) > (${after.createdAt}::timestamptz, ${after.id})`,
        );
      }
      return eb.and(conditions);
    })
    .orderBy('created_at', 'asc')
    .orderBy('id', 'asc')
    .limit(limit + 1)
    .execute();
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

/**
 * Shipments still being tracked that match `filter`, stalest first (longest since their
 * last sync, or since creation when never synced), at most `cap`; `capped` when more match.
 */
export async function openShipmentsMatching(
  db: Kysely<Database>,
  opts: { filter: ShipmentFilter; rule: FreshnessRule; now: Date; cap: number },
): Promise<{ ids: string[]; capped: boolean }> {
  const rows = await db
    .selectFrom('shipments')
    .select('id')
    .where((eb) => eb.and(filterConditions(eb, { ...opts.filter, openOnly: true }, opts.rule, opts.now)))
    .orderBy(sql`coalesce(shipments.last_synced_at, shipments.created_at)`, 'asc')
    .orderBy('id', 'asc')
    .limit(opts.cap + 1)
    .execute();
  return { ids: rows.slice(0, opts.cap).map((r) => r.id), capped: rows.length > opts.cap };
}

export interface CourierUsage {
  courier: string;
  calls: number;
  failures: number;
  budget: number;
  remaining: number;
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
  opts: { rule: FreshnessRule; now: Date; dailyBudget: number },
): Promise<AdminStats> {
  const { rule, now, dailyBudget } = opts;
  const day = budgetDay(now.getTime());
  const [byStatus, usage, failing, oldestStale] = await Promise.all([
    db
      .selectFrom('shipments')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .where('archived_at', 'is', null)
      .groupBy('status')
      .execute(),
    courierUsageOn(db, day),
    db
      .selectFrom('shipments')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('archived_at', 'is', null)
      .where('sync_error', 'is not', null)
      .where('status', 'not in', TERMINAL)
      .executeTakeFirstOrThrow(),
    // The alarm is about tracking that fell behind: finished shipments cannot be refreshed.
    db
      .selectFrom('shipments')
      .select(['id', 'status', 'courier', 'last_synced_at'])
      .where((eb) => eb.and(filterConditions(eb, { stale: true, openOnly: true }, rule, now)))
      .orderBy(sql`coalesce(shipments.last_synced_at, shipments.created_at)`, 'asc')
      .orderBy('id', 'asc')
      .limit(1)
      .executeTakeFirst(),
  ]);

  const shipmentsByStatus = Object.fromEntries(SHIPMENT_STATUSES.map((s) => [s, 0])) as Record<
    ShipmentStatus,
    number
  >;
  for (const row of byStatus) {
    if (row.status in shipmentsByStatus) shipmentsByStatus[row.status as ShipmentStatus] = Number(row.count);
  }
  // Every courier we know appears (zero calls included), plus any other the usage table names.
  const couriers = [...new Set([...COURIER_CODES, ...usage.map((u) => u.courier)])].sort();
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
        };
      }),
    },
    pollFailures: {
      failingNow: Number(failing.count),
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
