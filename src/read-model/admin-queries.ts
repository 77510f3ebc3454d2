/**
 * The read model's side of the admin views (`shipments`): the exceptions queue's filters and
 * keyset pages, the shipments a bulk refresh targets, and the counts of the stats and the
 * metrics gauges. Staleness is decided in SQL by the freshness rule's twin (./freshness.ts),
 * so a filter and the `freshness` shown on each row never disagree. The API shapes the pages
 * and figures (src/api/admin-queries.ts, src/api/metrics.ts).
 */
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Database } from '../../db/database';
import { TERMINAL_STATUSES, type ShipmentStatus } from '../domain/status';
import type { FreshnessRule } from '../domain/freshness';
import { freshSql } from './freshness';
import { microsKey } from './time';

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
    // A parcel that expired (no scan for days, too old, or its tracking lost) needs a person
    // as much as a courier's exception does.
    const exception = eb.or([
      eb('shipments.status', 'in', ['EXCEPTION', 'EXPIRED']),
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

/**
 * Up to `limit` shipments matching `filter`, oldest first (creation time, then id: a total
 * order), after the keyset position `after`; `created_at_key` is each row's position.
 */
export async function queueRows(
  db: Kysely<Database>,
  opts: {
    filter: ShipmentFilter;
    rule: FreshnessRule;
    now: Date;
    limit: number;
    after: { createdAt: string; id: string } | null;
  },
) {
  const { filter, rule, now, limit, after } = opts;
  return db
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
      microsKey('shipments.created_at').as('created_at_key'),
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
    .limit(limit)
    .execute();
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

/** Shipments not archived, counted by status. */
export async function shipmentCountsByStatus(db: Kysely<Database>) {
  return db
    .selectFrom('shipments')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .where('archived_at', 'is', null)
    .groupBy('status')
    .execute();
}

/** Shipments still being tracked (not archived, not finished). */
const openShipments = (db: Kysely<Database>) =>
  db.selectFrom('shipments').where('archived_at', 'is', null).where('status', 'not in', TERMINAL);

/** Shipments still being tracked whose polls are failing now. */
export async function syncFailingCount(db: Kysely<Database>): Promise<number> {
  const row = await openShipments(db)
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('sync_error', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Shipments still being tracked that read stale or expired by the freshness rule. */
export async function staleCount(db: Kysely<Database>, rule: FreshnessRule, now: Date): Promise<number> {
  const row = await openShipments(db)
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where((eb) => eb.not(freshSql(rule, now)))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** The stalest shipment still being tracked (longest since its last sync, or creation), if any is stale. */
export async function oldestStaleShipment(db: Kysely<Database>, rule: FreshnessRule, now: Date) {
  return db
    .selectFrom('shipments')
    .select(['id', 'status', 'courier', 'last_synced_at'])
    .where((eb) => eb.and(filterConditions(eb, { stale: true, openOnly: true }, rule, now)))
    .orderBy(sql`coalesce(shipments.last_synced_at, shipments.created_at)`, 'asc')
    .orderBy('id', 'asc')
    .limit(1)
    .executeTakeFirst();
}
