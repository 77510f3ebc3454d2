/**
 * Finding an order for staff, from the read model only: by order number, customer e-mail
 * (exact, case-insensitive), tracking number (both typed in any case), status and creation
 * date range, newest first. Pages are keyset pages on (created_at, id), a total order, so a
 * page never repeats or skips an order however many share a creation time.
 *
 * Each filter has an index ending in (created_at, id) (migration
 * 2026-12-04T20-20-00_stock_alerts_order_search), so the filter and the page order come
 * from one index scan; test/api/order-search.test.ts reads the plans:
 * - order number: `orders_number_key` (unique);
 * - e-mail: `orders_email_lower_idx` on (lower(email), created_at, id);
 * - tracking number: `shipments_tracking_number_idx`, then the order's primary key;
 * - status: `orders_status_created_idx` on (status, created_at, id);
 * - date range alone, or nothing: `orders_created_idx` on (created_at, id), read backwards.
 */
import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { Database } from '../../db/database';
import type { OrderStatus } from '../workflows/contract';

export interface OrderSearch {
  /** Compared upper-cased: order numbers are Waybill's own, always upper case (`WB-100001`). */
  orderNumber?: string;
  /** Compared lower-cased with the stored address lower-cased. */
  email?: string;
  /** Matched as given or upper-cased: numbers are stored as the courier issued them, upper case in practice. */
  trackingNumber?: string;
  status?: OrderStatus[];
  /** Created at or after (inclusive). */
  createdFrom?: Date;
  /** Created before (exclusive). */
  createdTo?: Date;
}

/** A position in the results: the last order's creation time (microseconds, as Postgres keeps it) and id. */
export interface SearchCursor {
  createdAt: string;
  id: string;
}

/**
 * What a search answers per order: what support already sees on the order itself, less the
 * address (open the order for that), so a list of matches spreads no more personal data
 * than needed to pick the right one.
 */
export interface OrderMatch {
  orderId: string;
  orderNumber: string;
  status: OrderStatus;
  email: string;
  currency: string;
  totalAmount: number;
  courier: string;
  trackingNumbers: string[];
  createdAt: string;
}

interface SearchOptions {
  search: OrderSearch;
  limit: number;
  after: SearchCursor | null;
}

/** The page's query, unrun: {@link searchOrders} runs it, the index test reads its plan. */
export function orderSearchQuery(db: Kysely<Database>, opts: SearchOptions) {
  const { search, limit, after } = opts;
  return db
    .selectFrom('orders as o')
    .select([
      'o.id',
      'o.number',
      'o.status',
      'o.email',
      'o.currency',
      'o.total_amount',
      'o.courier',
      'o.created_at',
      sql<string>`to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
        'created_at_key',
      ),
      sql<
        string[]
      >`array(select s.tracking_number from shipments s where s.order_id = o.id order by s.id)`.as(
        'tracking_numbers',
      ),
    ])
    .where((eb) => {
      const conditions: Expression<SqlBool>[] = [];
      if (search.orderNumber !== undefined) {
        conditions.push(eb('o.number', '=', search.orderNumber.toUpperCase()));
      }
      if (search.email !== undefined) {
        conditions.push(sql<SqlBool>`lower(o.email) = lower(${search.email})`);
      }
      if (search.trackingNumber !== undefined) {
        conditions.push(
          eb(
            'o.id',
            'in',
            eb
              .selectFrom('shipments')
              .select('order_id')
              .where('tracking_number', 'in', [search.trackingNumber, search.trackingNumber.toUpperCase()])
              .where('order_id', 'is not', null)
              .$narrowType<{ order_id: string }>(),
          ),
        );
      }
      if (search.status && search.status.length > 0) conditions.push(eb('o.status', 'in', search.status));
      if (search.createdFrom) conditions.push(eb('o.created_at', '>=', search.createdFrom));
      if (search.createdTo) conditions.push(eb('o.created_at', '<', search.createdTo));
      if (after) {
        conditions.push(sql<SqlBool>`(o.created_at, o.id) < (${after.createdAt}::timestamptz, ${after.id})`);
      }
      return eb.and(conditions);
    })
    .orderBy('o.created_at', 'desc')
    .orderBy('o.id', 'desc')
    .limit(limit + 1);
}

/** One page of matches, newest first; `next` is where the following page starts. */
export async function searchOrders(
  db: Kysely<Database>,
  opts: SearchOptions,
): Promise<{ items: OrderMatch[]; next: SearchCursor | null }> {
  const { limit } = opts;
  const rows = await orderSearchQuery(db, opts).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      orderId: r.id,
      orderNumber: r.number,
      status: r.status as OrderStatus,
      email: r.email,
      currency: r.currency,
      totalAmount: r.total_amount,
      courier: r.courier,
      trackingNumbers: r.tracking_numbers,
      createdAt: r.created_at.toISOString(),
    })),
    next: rows.length > limit && last ? { createdAt: last.created_at_key, id: last.id } : null,
  };
}
