/**
 * Stock reads that check the saga's stock (`inventory_items`, `inventory_reservations`): the
 * skus below their low-stock threshold, and the reconciliation check of the invariants the
 * writers of ./inventory.ts keep. The stock activities decide what to do with them.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { ReservationStatus, sortedUnique } from './inventory';

/** Order statuses after which an order must hold no RESERVED stock (and its saga runs no more steps). */
export const FINISHED_ORDER_STATUSES = ['DELIVERED', 'CANCELLED', 'FAILED', 'RETURNED'] as const;

export interface LowStock {
  sku: string;
  /** `on_hand - reserved`. */
  available: number;
  threshold: number;
}

export interface StockDiscrepancy {
  sku: string;
  onHand: number;
  reserved: number;
  /** Sum of RESERVED reservation quantities for the sku. */
  reservedByReservations: number;
  /** Part of the above held by orders that are already DELIVERED, CANCELLED, FAILED or RETURNED. */
  heldByFinishedOrders: number;
  problems: string[];
}

/** Which of these skus have less available stock (`on_hand - reserved`) than their threshold, by sku. */
export async function lowStockSkus(db: Kysely<Database>, skus: string[]): Promise<LowStock[]> {
  const unique = sortedUnique(skus);
  if (unique.length === 0) return [];
  const rows = await db
    .selectFrom('inventory_items')
    .select(['sku', 'low_stock_threshold as threshold'])
    .select(sql<number>`on_hand - reserved`.as('available'))
    .where('sku', 'in', unique)
    .where(sql<boolean>`on_hand - reserved < low_stock_threshold`)
    .orderBy('sku')
    .execute();
  return rows.map((r) => ({ sku: r.sku, available: r.available, threshold: r.threshold }));
}

/**
 * The stock consistency check: every sku whose counters do not match the reservations.
 * Empty means consistent. A sku is listed when `reserved` differs from the sum of its
 * RESERVED reservations, when a counter is negative or `reserved > on_hand`, or when a
 * finished order still holds some of it (stock that no saga step will release).
 */
export async function stockReconciliation(db: Kysely<Database>): Promise<StockDiscrepancy[]> {
  const finished = sql.join([...FINISHED_ORDER_STATUSES]);
  const { rows } = await sql<{
    sku: string;
    on_hand: number;
    reserved: number;
    held: number;
    held_by_finished: number;
  }>`
    with held as (
      select r.sku,
             sum(r.quantity)::int as held,
             (sum(r.quantity) filter (where o.status in (${finished})))::int as held_by_finished
        from inventory_reservations r
        join orders o on o.id = r.order_id
       where r.status = ${ReservationStatus.RESERVED}
       group by r.sku
    )
    select i.sku, i.on_hand, i.reserved,
           coalesce(h.held, 0) as held,
           coalesce(h.held_by_finished, 0) as held_by_finished
      from inventory_items i
      left join held h on h.sku = i.sku
     where i.reserved <> coalesce(h.held, 0)
        or i.on_hand < 0
        or i.reserved < 0
        or i.reserved > i.on_hand
        or coalesce(h.held_by_finished, 0) > 0
     order by i.sku`.execute(db);

  return rows.map((r) => {
    const problems: string[] = [];
    if (r.reserved !== r.held) problems.push(`reserved ${r.reserved} but reservations hold ${r.held}`);
    if (r.on_hand < 0) problems.push(`on_hand is negative (${r.on_hand})`);
    if (r.reserved < 0) problems.push(`reserved is negative (${r.reserved})`);
    if (r.reserved > r.on_hand) problems.push(`reserved ${r.reserved} exceeds on_hand ${r.on_hand}`);
    if (r.held_by_finished > 0) problems.push(`${r.held_by_finished} still reserved by finished orders`);
    return {
      sku: r.sku,
      onHand: r.on_hand,
      reserved: r.reserved,
      reservedByReservations: r.held,
      heldByFinishedOrders: r.held_by_finished,
      problems,
    };
  });
}
