/**
 * SQL of housekeeping's "orders that never started" step (`orders`, with the
 * `api_idempotency_keys`, `inventory_reservations` and `payments` rows it checks): PENDING
 * orders past the start grace, each locked with its keys before it is closed FAILED /
 * NOT_STARTED (src/activities/housekeeping-expiry.ts decides).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { ago } from './time';

/** One page of PENDING orders created longer ago than `olderThanMs`, by id, after `afterId`. */
export async function pendingOrderIdsOlderThan(
  db: Kysely<Database>,
  input: { olderThanMs: number; batchSize: number; afterId: string | null },
): Promise<string[]> {
  let query = db
    .selectFrom('orders')
    .select('id')
    .where('status', '=', 'PENDING')
    .where('created_at', '<', ago(input.olderThanMs))
    .orderBy('id')
    .limit(input.batchSize);
  if (input.afterId !== null) query = query.where('id', '>', input.afterId);
  return (await query.execute()).map((r) => r.id);
}

/** Locks the order if it is still PENDING and older than `olderThanMs`; undefined when not (or held). */
export async function lockPendingOrder(
  trx: Kysely<Database>,
  orderId: string,
  olderThanMs: number,
): Promise<{ id: string; created_at: Date } | undefined> {
  return trx
    .selectFrom('orders')
    .select(['id', 'created_at'])
    .where('id', '=', orderId)
    .where('status', '=', 'PENDING')
    .where('created_at', '<', ago(olderThanMs))
    .forUpdate()
    .skipLocked()
    .executeTakeFirst();
}

/** Locks the order's idempotency keys; true when a request holds one right now. */
export async function lockOrderKeysHeld(trx: Kysely<Database>, orderId: string): Promise<boolean> {
  const keys = await trx
    .selectFrom('api_idempotency_keys')
    .select(sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'))
    .where('resource_id', '=', orderId)
    .forUpdate()
    .execute();
  return keys.some((k) => k.locked);
}

/** Whether the order holds any stock reservation or payment. */
export async function orderTouchedStockOrMoney(trx: Kysely<Database>, orderId: string): Promise<boolean> {
  const touched = await trx
    .selectFrom('inventory_reservations')
    .select('order_id')
    .where('order_id', '=', orderId)
    .union(trx.selectFrom('payments').select('order_id').where('order_id', '=', orderId))
    .executeTakeFirst();
  return touched !== undefined;
}

/** Closes the order as FAILED with `failureCode` and the shopper-facing `message`. */
export async function closeOrderFailed(
  trx: Kysely<Database>,
  orderId: string,
  failureCode: string,
  message: string,
): Promise<void> {
  await trx
    .updateTable('orders')
    .set({
      status: 'FAILED',
      failure_code: failureCode,
      failure_message: message,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', orderId)
    .execute();
}
