/**
 * The SQL behind the CSV exports: one query per export over one UTC date range, each in a
 * total order (time, then id) so an export read twice lists the same rows in the same
 * order. Queries are built with Kysely and compiled, never run here: the export route runs
 * them through a server-side cursor and streams the rows out as they come (see
 * src/api/routes/exports.ts). Money is in minor units beside its currency, as everywhere.
 */
import { sql, type CompiledQuery, type Kysely } from 'kysely';
import type { Database } from '../../db/database';

export const EXPORT_KINDS = ['deliveries', 'exceptions', 'courier-usage', 'orders'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

/** Half-open UTC range [from, to): from the first day's midnight to the midnight after the last. */
export interface ExportRange {
  from: Date;
  to: Date;
  /** The days themselves, 'YYYY-MM-DD' (courier usage is kept per day). */
  firstDay: string;
  lastDay: string;
}

export interface ExportColumn {
  /** The row's field (the query's alias). */
  key: string;
  /** The CSV header. */
  header: string;
}

export interface ExportQuery {
  columns: readonly ExportColumn[];
  query: CompiledQuery;
}

const col = (key: string, header = key): ExportColumn => ({ key, header });

/** The UTC day a timestamp falls in, as text: the `day` column of every export. */
const utcDay = (column: string) =>
  sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD')`.as('day');

/**
 * Every parcel booked in the range (one row each): its courier and status now, and how long
 * it took from pickup to delivery when it has been delivered.
 */
function deliveries(db: Kysely<Database>, range: ExportRange): ExportQuery {
  const query = db
    .selectFrom('shipments as s')
    .leftJoin('orders as o', 'o.id', 's.order_id')
    .select([
      utcDay('s.created_at'),
      's.id as shipment_id',
      's.tracking_number',
      'o.number as order_number',
      's.courier',
      's.status',
      's.sub_status',
      sql<string | null>`o.shipping_address->>'name'`.as('recipient'),
      's.destination_city',
      's.destination_country',
      's.created_at',
      's.picked_up_at',
      's.delivered_at',
      's.eta',
      sql<number | null>`round(extract(epoch from s.delivered_at - s.picked_up_at))::integer`.as(
        'pickup_to_delivery_seconds',
      ),
      sql<boolean | null>`case when s.delivered_at is null or s.eta is null then null
                               else s.delivered_at > s.eta end`.as('late'),
    ])
    .where('s.created_at', '>=', range.from)
    .where('s.created_at', '<', range.to)
    .orderBy('s.created_at')
    .orderBy('s.id')
    .compile();
  return {
    query,
    columns: [
      col('day'),
      col('shipment_id'),
      col('tracking_number'),
      col('order_number'),
      col('courier'),
      col('status'),
      col('sub_status'),
      col('recipient'),
      col('destination_city'),
      col('destination_country'),
      col('created_at'),
      col('picked_up_at'),
      col('delivered_at'),
      col('eta'),
      col('pickup_to_delivery_seconds'),
      col('late'),
    ],
  };
}

/** Every exception scan in the range, with its parcel and what the courier said. */
function exceptions(db: Kysely<Database>, range: ExportRange): ExportQuery {
  const query = db
    .selectFrom('tracking_events as e')
    .innerJoin('shipments as s', 's.id', 'e.shipment_id')
    .leftJoin('orders as o', 'o.id', 's.order_id')
    .select([
      utcDay('e.occurred_at'),
      'e.occurred_at',
      's.courier',
      's.id as shipment_id',
      's.tracking_number',
      'o.number as order_number',
      's.status as shipment_status_now',
      'e.sub_status',
      'e.raw_code',
      'e.raw_text',
      'e.location_city',
      'e.location_state',
      'e.location_country',
      'e.source',
    ])
    .where('e.status', '=', 'EXCEPTION')
    .where('e.occurred_at', '>=', range.from)
    .where('e.occurred_at', '<', range.to)
    .orderBy('e.occurred_at')
    .orderBy('e.id')
    .compile();
  return {
    query,
    columns: [
      col('day'),
      col('occurred_at'),
      col('courier'),
      col('shipment_id'),
      col('tracking_number'),
      col('order_number'),
      col('shipment_status_now'),
      col('sub_status'),
      col('raw_code'),
      col('raw_text'),
      col('location_city'),
      col('location_state'),
      col('location_country'),
      col('source'),
    ],
  };
}

/**
 * Courier API calls per courier and UTC day against the daily budget: the budget the day's
 * report recorded, else `currentBudget` (WAYBILL_COURIER_DAILY_BUDGET now).
 */
function courierUsage(db: Kysely<Database>, range: ExportRange, currentBudget: number): ExportQuery {
  const budget = sql<number>`coalesce(r.courier_budget, ${currentBudget}::integer)`;
  const query = db
    .selectFrom('courier_api_usage as u')
    .leftJoin('daily_reports as r', 'r.day', 'u.day')
    .select([
      sql<string>`u.day::text`.as('day'),
      'u.courier',
      'u.calls',
      'u.failures',
      budget.as('budget'),
      sql<number>`greatest(0, ${budget} - u.calls)`.as('remaining'),
      sql<number>`round(100.0 * u.calls / nullif(${budget}, 0), 1)::float8`.as('used_percent'),
      sql<boolean>`u.calls > ${budget}`.as('over_budget'),
    ])
    .where('u.day', '>=', range.firstDay)
    .where('u.day', '<=', range.lastDay)
    .orderBy('u.day')
    .orderBy('u.courier')
    .compile();
  return {
    query,
    columns: [
      col('day'),
      col('courier'),
      col('calls'),
      col('failures'),
      col('budget'),
      col('remaining'),
      col('used_percent'),
      col('over_budget'),
    ],
  };
}

/**
 * Every order placed in the range with its money: the total, and what its payment (the
 * newest, as the order view shows it) authorised, captured and refunded.
 */
function orders(db: Kysely<Database>, range: ExportRange): ExportQuery {
  const query = db
    .selectFrom('orders as o')
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('payments')
          .select(['status', 'amount_authorised', 'amount_captured', 'amount_refunded'])
          .whereRef('payments.order_id', '=', 'o.id')
          .orderBy('created_at', 'desc')
          .limit(1)
          .as('p'),
      (join) => join.onTrue(),
    )
    .select([
      utcDay('o.created_at'),
      'o.created_at',
      'o.id as order_id',
      'o.number as order_number',
      'o.status',
      'o.customer_id',
      'o.email',
      sql<string>`o.shipping_address->>'name'`.as('customer_name'),
      sql<string>`o.shipping_address->>'city'`.as('city'),
      sql<string>`o.shipping_address->>'country'`.as('country'),
      'o.courier',
      'o.currency',
      'o.total_amount',
      'p.status as payment_status',
      sql<number>`coalesce(p.amount_authorised, 0)`.as('authorised_amount'),
      sql<number>`coalesce(p.amount_captured, 0)`.as('captured_amount'),
      sql<number>`coalesce(p.amount_refunded, 0)`.as('refunded_amount'),
    ])
    .where('o.created_at', '>=', range.from)
    .where('o.created_at', '<', range.to)
    .orderBy('o.created_at')
    .orderBy('o.id')
    .compile();
  return {
    query,
    columns: [
      col('day'),
      col('created_at'),
      col('order_id'),
      col('order_number'),
      col('status'),
      col('customer_id'),
      col('email'),
      col('customer_name'),
      col('city'),
      col('country'),
      col('courier'),
      col('currency'),
      col('total_amount', 'total_minor'),
      col('payment_status'),
      col('authorised_amount', 'authorised_minor'),
      col('captured_amount', 'captured_minor'),
      col('refunded_amount', 'refunded_minor'),
    ],
  };
}

/** The query and CSV columns of one export over one range. */
export function exportQuery(
  db: Kysely<Database>,
  kind: ExportKind,
  range: ExportRange,
  opts: { dailyBudget: number },
): ExportQuery {
  switch (kind) {
    case 'deliveries':
      return deliveries(db, range);
    case 'exceptions':
      return exceptions(db, range);
    case 'courier-usage':
      return courierUsage(db, range, opts.dailyBudget);
    case 'orders':
      return orders(db, range);
  }
}
