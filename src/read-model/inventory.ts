/**
 * Stock writes for the order saga: reserve (step 1), release (its compensation), consume
 * (at shipment), restock (a returned parcel). Plain functions on `db` or a caller's
 * transaction; each write is atomic on its own (its own transaction, or a savepoint inside
 * the caller's). Low-stock detection and the reconciliation check are ./stock-checks.ts.
 *
 * Invariants kept here and checked by `stockReconciliation` (./stock-checks.ts):
 * - `inventory_items.reserved` = the sum of RESERVED reservation quantities for that sku;
 * - `0 <= reserved <= on_hand` (also enforced by check constraints).
 *
 * Lock order, in every writer: inventory rows first, in sku order, then the order's
 * reservation rows. Two transactions therefore never wait on each other in a cycle.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/database';

/** The lifecycle of one order's hold on one sku. */
export const ReservationStatus = {
  RESERVED: 'RESERVED',
  RELEASED: 'RELEASED',
  CONSUMED: 'CONSUMED',
  RESTOCKED: 'RESTOCKED',
} as const;
export type ReservationStatus = (typeof ReservationStatus)[keyof typeof ReservationStatus];

export interface StockLine {
  sku: string;
  /** Units, a positive integer. */
  quantity: number;
}

export interface ReserveStockInput {
  orderId: string;
  lines: StockLine[];
}

export interface Shortage {
  sku: string;
  requested: number;
  /** `on_hand - reserved` when the reservation was tried; 0 for an unknown sku. */
  available: number;
}

export type ReserveStockResult = { ok: true } | { ok: false; shortages: Shortage[] };

/** What a release, consume or restock changed: one entry per sku whose reservation moved. */
export interface StockChange {
  changed: StockLine[];
}

/**
 * The order's reservation was already released, consumed or restocked: reserving it again
 * would hold stock that no step of the saga will ever give back.
 */
export class ReservationSettledError extends Error {
  override readonly name = 'ReservationSettledError';
  constructor(
    readonly orderId: string,
    readonly statuses: string[],
  ) {
    super(
      `stock for order ${orderId} was already settled (${statuses.join(', ')}); it is not reserved again`,
    );
  }
}

/** Thrown inside the reserve transaction to roll it back; never leaves this module. */
class ShortageRollback extends Error {
  constructor(readonly shortages: Shortage[]) {
    super('shortage');
  }
}

/** Same-sku lines merged, sorted by sku (the lock order). */
export function mergeLines(lines: StockLine[]): StockLine[] {
  const bySku = new Map<string, number>();
  for (const line of lines) {
    if (!Number.isInteger(line.quantity) || line.quantity <= 0) {
      throw new RangeError(`quantity for sku ${line.sku} must be a positive integer, got ${line.quantity}`);
    }
    bySku.set(line.sku, (bySku.get(line.sku) ?? 0) + line.quantity);
  }
  return [...bySku.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, quantity]) => ({ sku, quantity }));
}

/** The skus once each, in sku order (the lock order). */
export function sortedUnique(skus: Iterable<string>): string[] {
  return [...new Set(skus)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Runs `fn` in a transaction of its own, or, when `db` already is the caller's transaction,
 * inside a savepoint of it: either way a throw undoes exactly what `fn` did.
 */
async function atomically<T>(
  db: Kysely<Database>,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  if (!db.isTransaction) return db.transaction().execute(fn);
  const trx = db as Transaction<Database>;
  await sql`savepoint waybill_stock`.execute(trx);
  try {
    const result = await fn(trx);
    await sql`release savepoint waybill_stock`.execute(trx);
    return result;
  } catch (err) {
    await sql`rollback to savepoint waybill_stock`.execute(trx);
    throw err;
  }
}

/**
 * Locks the inventory rows of these skus in sku order; returns the ones that exist.
 * FOR NO KEY UPDATE (what an UPDATE takes), not FOR UPDATE: it must not conflict with the
 * KEY SHARE locks that order lines take through their foreign key on the sku, or an order
 * written while its skus are being reserved deadlocks (found by the API fuzzer).
 */
async function lockItems(trx: Transaction<Database>, skus: string[]) {
  if (skus.length === 0) return new Map<string, { onHand: number; reserved: number }>();
  const rows = await trx
    .selectFrom('inventory_items')
    .select(['sku', 'on_hand', 'reserved'])
    .where('sku', 'in', skus)
    .orderBy('sku')
    .forNoKeyUpdate()
    .execute();
  return new Map(rows.map((r) => [r.sku, { onHand: r.on_hand, reserved: r.reserved }]));
}

/**
 * Reserves every line of an order, all or nothing. Each sku is taken with a conditional
 * update (`on_hand - reserved >= quantity`), and one RESERVED row per order + sku records
 * the hold; a sku this order already holds is not reserved again, so a retried activity
 * is a no-op. Any shortage (or unknown sku) rolls the whole reservation back.
 *
 * @throws ReservationSettledError when the order's stock was already released or consumed.
 * @throws RangeError for a quantity that is not a positive integer.
 */
export async function reserveStock(
  db: Kysely<Database>,
  input: ReserveStockInput,
): Promise<ReserveStockResult> {
  const lines = mergeLines(input.lines);
  if (lines.length === 0) return { ok: true };

  try {
    await atomically(db, async (trx) => {
      const items = await lockItems(
        trx,
        lines.map((l) => l.sku),
      );

      const settled = await trx
        .selectFrom('inventory_reservations')
        .select('status')
        .distinct()
        .where('order_id', '=', input.orderId)
        .where('status', '!=', ReservationStatus.RESERVED)
        .execute();
      if (settled.length > 0) {
        throw new ReservationSettledError(
          input.orderId,
          settled.map((r) => r.status),
        );
      }

      const shortages: Shortage[] = lines
        .filter((l) => !items.has(l.sku))
        .map((l) => ({ sku: l.sku, requested: l.quantity, available: 0 }));
      const known = lines.filter((l) => items.has(l.sku));
      if (known.length === 0) throw new ShortageRollback(shortages);

      // The primary key (order_id, sku) makes this the idempotency gate: only rows inserted
      // now take stock; a sku this order already holds comes back from neither branch.
      const fresh = await trx
        .insertInto('inventory_reservations')
        .values(known.map((l) => ({ order_id: input.orderId, sku: l.sku, quantity: l.quantity })))
        .onConflict((oc) => oc.columns(['order_id', 'sku']).doNothing())
        .returning('sku')
        .execute();
      const freshSkus = new Set(fresh.map((r) => r.sku));

      for (const line of known) {
        if (!freshSkus.has(line.sku)) continue;
        const taken = await trx
          .updateTable('inventory_items')
          .set({ reserved: sql<number>`reserved + ${line.quantity}`, updated_at: sql<Date>`now()` })
          .where('sku', '=', line.sku)
          .where(sql<boolean>`on_hand - reserved >= ${line.quantity}`)
          .returning('sku')
          .executeTakeFirst();
        if (!taken) {
          const item = items.get(line.sku)!;
          shortages.push({ sku: line.sku, requested: line.quantity, available: item.onHand - item.reserved });
        }
      }

      if (shortages.length > 0) {
        throw new ShortageRollback(shortages.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)));
      }
    });
  } catch (err) {
    if (err instanceof ShortageRollback) return { ok: false, shortages: err.shortages };
    throw err;
  }
  return { ok: true };
}

/**
 * Moves the order's reservations from one status to the next (optionally only these skus)
 * and applies the stock change per moved unit. The status guard makes a second call a no-op.
 */
async function moveReservations(
  db: Kysely<Database>,
  opts: {
    orderId: string;
    skus: string[] | undefined;
    from: ReservationStatus;
    to: ReservationStatus;
    reservedDelta: -1 | 0;
    onHandDelta: -1 | 0 | 1;
  },
): Promise<StockChange> {
  if (opts.skus !== undefined && opts.skus.length === 0) return { changed: [] };
  return atomically(db, async (trx) => {
    // Read without locks to learn which inventory rows to lock first (the global lock order).
    let candidates = trx
      .selectFrom('inventory_reservations')
      .select('sku')
      .where('order_id', '=', opts.orderId)
      .where('status', '=', opts.from);
    if (opts.skus) candidates = candidates.where('sku', 'in', opts.skus);
    const skus = sortedUnique((await candidates.execute()).map((r) => r.sku));
    if (skus.length === 0) return { changed: [] };
    await lockItems(trx, skus);

    const moved = await trx
      .updateTable('inventory_reservations')
      .set({ status: opts.to, updated_at: sql<Date>`now()` })
      .where('order_id', '=', opts.orderId)
      .where('status', '=', opts.from)
      .where('sku', 'in', skus)
      .returning(['sku', 'quantity'])
      .execute();
    const changed = moved
      .map((r) => ({ sku: r.sku, quantity: r.quantity }))
      .sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));

    for (const line of changed) {
      await trx
        .updateTable('inventory_items')
        .set({
          reserved: sql<number>`reserved + ${opts.reservedDelta * line.quantity}`,
          on_hand: sql<number>`on_hand + ${opts.onHandDelta * line.quantity}`,
          updated_at: sql<Date>`now()`,
        })
        .where('sku', '=', line.sku)
        .execute();
    }
    return { changed };
  });
}

/**
 * Gives the order's held stock back (the compensation of {@link reserveStock}): RESERVED →
 * RELEASED, `reserved` goes down. A second call, or an order with no reservation, changes nothing.
 */
export function releaseStock(db: Kysely<Database>, input: { orderId: string }): Promise<StockChange> {
  return moveReservations(db, {
    orderId: input.orderId,
    skus: undefined,
    from: ReservationStatus.RESERVED,
    to: ReservationStatus.RELEASED,
    reservedDelta: -1,
    onHandDelta: 0,
  });
}

/**
 * The goods left the warehouse (at shipment): RESERVED → CONSUMED, both `reserved` and
 * `on_hand` go down. Only `skus` when given (one parcel of several), else every held sku.
 * Idempotent.
 */
export function consumeStock(
  db: Kysely<Database>,
  input: { orderId: string; skus?: string[] },
): Promise<StockChange> {
  return moveReservations(db, {
    orderId: input.orderId,
    skus: input.skus,
    from: ReservationStatus.RESERVED,
    to: ReservationStatus.CONSUMED,
    reservedDelta: -1,
    onHandDelta: -1,
  });
}

/**
 * The courier turned out to have collected a parcel of an order being settled: its goods left.
 * Held units are consumed ({@link consumeStock}), and units a clean-up had already released
 * (the cancel was parked, the release went on, the courier collected meanwhile) are taken off
 * the shelf again: RELEASED → CONSUMED, `on_hand` goes down, as far as the sku still has them
 * unreserved. Units other orders hold since were sold twice: they stay RELEASED and are named
 * in `oversold` (the recall brings them back). Idempotent.
 */
export async function consumeCollected(
  db: Kysely<Database>,
  input: { orderId: string; skus: string[] },
): Promise<StockChange & { oversold: { sku: string; quantity: number }[] }> {
  const held = await consumeStock(db, input);
  if (input.skus.length === 0) return { ...held, oversold: [] };
  return atomically(db, async (trx) => {
    const released = await trx
      .selectFrom('inventory_reservations')
      .select(['sku', 'quantity'])
      .where('order_id', '=', input.orderId)
      .where('status', '=', ReservationStatus.RELEASED)
      .where('sku', 'in', input.skus)
      .execute();
    const items = await lockItems(trx, sortedUnique(released.map((r) => r.sku)));
    const changed: { sku: string; quantity: number }[] = [];
    const oversold: { sku: string; quantity: number }[] = [];
    for (const row of [...released].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0))) {
      const item = items.get(row.sku)!;
      if (item.onHand - item.reserved < row.quantity) {
        oversold.push(row);
        continue;
      }
      await trx
        .updateTable('inventory_reservations')
        .set({ status: ReservationStatus.CONSUMED, updated_at: sql<Date>`now()` })
        .where('order_id', '=', input.orderId)
        .where('sku', '=', row.sku)
        .where('status', '=', ReservationStatus.RELEASED)
        .execute();
      await trx
        .updateTable('inventory_items')
        .set({ on_hand: sql<number>`on_hand - ${row.quantity}`, updated_at: sql<Date>`now()` })
        .where('sku', '=', row.sku)
        .execute();
      item.onHand -= row.quantity;
      changed.push(row);
    }
    return { changed: [...held.changed, ...changed], oversold };
  });
}

/** A returned parcel's goods are back on the shelf: CONSUMED → RESTOCKED, `on_hand` goes up. Idempotent. */
export function restockReturned(
  db: Kysely<Database>,
  input: { orderId: string; skus: string[] },
): Promise<StockChange> {
  return moveReservations(db, {
    orderId: input.orderId,
    skus: input.skus,
    from: ReservationStatus.CONSUMED,
    to: ReservationStatus.RESTOCKED,
    reservedDelta: 0,
    onHandDelta: 1,
  });
}
