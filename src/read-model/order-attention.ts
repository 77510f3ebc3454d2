/**
 * Steps of an order parked for an admin (`order_attention`): one row per order and item,
 * opened by the saga, closed when retried or resolved. The order activities decide when to
 * raise and close (src/activities/orders.ts, with their audit entries in the same
 * transaction); the attention and failed-work routes list them.
 */
import { sql, type Kysely, type SqlBool } from 'kysely';
import type { Database } from '../../db/database';
import { containing, microsKey } from './time';

export type AttentionStatus = 'OPEN' | 'RETRIED' | 'RESOLVED';

/**
 * Opens the item: a second raise of an open item keeps the first (its opening time), a raise
 * after it was closed opens it again.
 */
export async function openAttention(
  db: Kysely<Database>,
  item: { orderId: string; itemId: string; step: string; reason: string },
): Promise<void> {
  await db
    .insertInto('order_attention')
    .values({ order_id: item.orderId, item_id: item.itemId, step: item.step, reason: item.reason })
    .onConflict((oc) =>
      oc.columns(['order_id', 'item_id']).doUpdateSet({
        status: 'OPEN',
        reason: item.reason,
        opened_at: sql<Date>`case when order_attention.status = 'OPEN' then order_attention.opened_at else now() end`,
        closed_at: null,
        closed_by: null,
        resolution: null,
      }),
    )
    .execute();
}

/** Closes the item if it is open (a closed one is left as it is). */
export async function closeAttention(
  db: Kysely<Database>,
  item: {
    orderId: string;
    itemId: string;
    outcome: Exclude<AttentionStatus, 'OPEN'>;
    by: string;
    resolution: string;
    /** How a resolved capture was settled (null otherwise). */
    settlement: string | null;
  },
): Promise<void> {
  await db
    .updateTable('order_attention')
    .set({
      status: item.outcome,
      closed_at: sql<Date>`now()`,
      closed_by: item.by,
      resolution: item.resolution,
      settlement: item.settlement,
    })
    .where('order_id', '=', item.orderId)
    .where('item_id', '=', item.itemId)
    .where('status', '=', 'OPEN')
    .execute();
}

/** The step of an open item of the order; null when no such item is open. */
export async function openAttentionStep(
  db: Kysely<Database>,
  orderId: string,
  itemId: string,
): Promise<string | null> {
  const row = await db
    .selectFrom('order_attention')
    .select('step')
    .where('order_id', '=', orderId)
    .where('item_id', '=', itemId)
    .where('status', '=', 'OPEN')
    .executeTakeFirst();
  return row?.step ?? null;
}

/** The items in one status with their order's number and status, oldest first (an offset page). */
export async function attentionItems(
  db: Kysely<Database>,
  page: { status: AttentionStatus; limit: number; offset: number },
) {
  return db
    .selectFrom('order_attention as a')
    .innerJoin('orders as o', 'o.id', 'a.order_id')
    .select([
      'a.order_id',
      'o.number',
      'o.status as order_status',
      'a.item_id',
      'a.step',
      'a.reason',
      'a.status',
      'a.opened_at',
      'a.closed_at',
      'a.closed_by',
      'a.resolution',
      'a.settlement',
    ])
    .where('a.status', '=', page.status)
    .orderBy('a.opened_at')
    .orderBy('a.order_id')
    .orderBy('a.item_id')
    .limit(page.limit)
    .offset(page.offset)
    .execute();
}

/**
 * Up to `limit` open items, oldest first, after the keyset position `after` (opened at, to
 * the microsecond, then order and item id); `key` is each row's opening time as a position.
 */
export async function openAttentionKeyset(
  db: Kysely<Database>,
  opts: { openedBy: Date | null; reasonContains: string | undefined; after: string[] | null; limit: number },
) {
  const { openedBy, reasonContains, after } = opts;
  return db
    .selectFrom('order_attention as a')
    .select(['a.order_id', 'a.item_id', 'a.reason', 'a.opened_at', microsKey('a.opened_at').as('key')])
    .where('a.status', '=', 'OPEN')
    .$if(openedBy !== null, (q) => q.where('a.opened_at', '<=', openedBy!))
    .$if(reasonContains !== undefined, (q) => q.where('a.reason', 'ilike', containing(reasonContains!)))
    .$if(after !== null, (q) =>
      q.where(
        sql<SqlBool>`(a.opened_at, a.order_id, a.item_id) > (${after![0]}::timestamptz, ${after![1]}, ${after![2]})`,
      ),
    )
    .orderBy('a.opened_at')
    .orderBy('a.order_id')
    .orderBy('a.item_id')
    .limit(opts.limit)
    .execute();
}
