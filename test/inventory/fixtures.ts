/** Shared set-up for the stock tests: orders and items with ids of their own, row readers, a row lock. */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { createDb } from '../../db/client';
import type { Database } from '../../db/database';

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A PENDING order (reservations reference it). */
export async function newOrder(db: Kysely<Database>, status = 'PENDING'): Promise<string> {
  const id = uniqueId('ord');
  await db
    .insertInto('orders')
    .values({
      id,
      number: id.toUpperCase(),
      customer_id: null,
      email: 'shopper@example.com',
      postcode: '10115',
      status,
      failure_code: null,
      failure_message: null,
      currency: 'EUR',
      total_amount: 1000,
      courier: 'simulator',
      shipping_address: JSON.stringify({
        name: 'A Shopper',
        line1: '1 Test Street',
        city: 'Berlin',
        postcode: '10115',
        country: 'DE',
      }),
    })
    .execute();
  return id;
}

/** A stocked item with a sku of its own. */
export async function newItem(
  db: Kysely<Database>,
  opts: { onHand: number; threshold?: number; prefix?: string },
): Promise<string> {
  const sku = uniqueId(opts.prefix ?? 'SKU').toUpperCase();
  await db
    .insertInto('inventory_items')
    .values({ sku, name: `Item ${sku}`, on_hand: opts.onHand, low_stock_threshold: opts.threshold ?? 0 })
    .execute();
  return sku;
}

export async function stockOf(db: Kysely<Database>, sku: string) {
  const row = await db
    .selectFrom('inventory_items')
    .select(['on_hand', 'reserved'])
    .where('sku', '=', sku)
    .executeTakeFirstOrThrow();
  return { onHand: row.on_hand, reserved: row.reserved };
}

export async function reservationsOf(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('inventory_reservations')
    .select(['sku', 'quantity', 'status'])
    .where('order_id', '=', orderId)
    .orderBy('sku')
    .execute();
}

/**
 * Holds a row lock on `sku` from a connection of its own while `run` starts, waits until
 * `waiters` sessions are blocked on locks, then lets go: whatever `run` started is then
 * truly concurrent, all released at the same instant.
 */
export async function raceBehindLock<T>(
  url: string,
  sku: string,
  waiters: number,
  run: () => Promise<T>,
): Promise<T> {
  // One connection holds the lock, the other watches pg_stat_activity.
  const holder = createDb({ url, poolMax: 2 });
  let letGo!: () => void;
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  let markLocked!: () => void;
  const locked = new Promise<void>((resolve) => (markLocked = resolve));
  const holding = holder.transaction().execute(async (trx) => {
    await trx.selectFrom('inventory_items').select('sku').where('sku', '=', sku).forUpdate().execute();
    markLocked();
    await gate;
  });
  try {
    await locked;
    const running = run();
    // A rejection is awaited below; this only keeps it from being reported as unhandled meanwhile.
    running.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'`.execute(holder);
      const n = rows[0]?.n ?? 0;
      if (n >= waiters) break;
      if (Date.now() > deadline) throw new Error(`only ${n} of ${waiters} sessions waited on the lock`);
      await new Promise((r) => setTimeout(r, 20));
    }
    letGo();
    await holding;
    return await running;
  } finally {
    letGo();
    await holding.catch(() => undefined);
    await holder.destroy();
  }
}
