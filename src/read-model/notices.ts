/**
 * Notices to customers and ops (`notifications`): one row per dedupe key (an order and
 * milestone, a low-stock sku and day), with its delivery's status, attempts and last error.
 * The order and stock activities decide when to send and what a failure means
 * (src/activities/orders.ts, inventory.ts); the event outbox and its deliveries to the shop's
 * endpoints are src/notifications.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';

/** Writes the notice PENDING once per dedupe key, then returns the stored row (a retry finds the first). */
export async function storeNotice(
  db: Kysely<Database>,
  notice: {
    dedupeKey: string;
    orderId: string;
    kind: string;
    channel: string;
    recipient: string;
    payload: Record<string, unknown>;
  },
) {
  await db
    .insertInto('notifications')
    .values({
      dedupe_key: notice.dedupeKey,
      order_id: notice.orderId,
      kind: notice.kind,
      channel: notice.channel,
      recipient: notice.recipient,
      payload: JSON.stringify(notice.payload),
      status: 'PENDING',
      attempts: 0,
      sent_at: null,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .execute();
  return db
    .selectFrom('notifications')
    .select(['status', 'payload', 'recipient'])
    .where('dedupe_key', '=', notice.dedupeKey)
    .executeTakeFirstOrThrow();
}

/** Counts a failed delivery with its error; `refused` marks the notice FAILED for good. */
export async function noticeAttemptFailed(
  db: Kysely<Database>,
  dedupeKey: string,
  error: string,
  refused: boolean,
): Promise<void> {
  await db
    .updateTable('notifications')
    .set({
      attempts: sql<number>`attempts + 1`,
      last_error: error,
      ...(refused ? { status: 'FAILED' } : {}),
    })
    .where('dedupe_key', '=', dedupeKey)
    .execute();
}

/** Counts the delivery that succeeded and marks the notice SENT. */
export async function noticeSent(db: Kysely<Database>, dedupeKey: string): Promise<void> {
  await db
    .updateTable('notifications')
    .set({ status: 'SENT', attempts: sql<number>`attempts + 1`, last_error: null, sent_at: new Date() })
    .where('dedupe_key', '=', dedupeKey)
    .execute();
}

/** Marks a still PENDING notice FAILED with the error it was given up on. */
export async function noticeGivenUp(db: Kysely<Database>, dedupeKey: string, error: string): Promise<void> {
  await db
    .updateTable('notifications')
    .set({ status: 'FAILED', last_error: error })
    .where('dedupe_key', '=', dedupeKey)
    .where('status', '=', 'PENDING')
    .execute();
}

/** Writes these ops notices PENDING, once per dedupe key; the keys written now (not before). */
export async function storeOpsNotices(
  db: Kysely<Database>,
  notices: { dedupeKey: string; kind: string; payload: Record<string, unknown> }[],
): Promise<Set<string>> {
  const rows = await db
    .insertInto('notifications')
    .values(
      notices.map((n) => ({
        dedupe_key: n.dedupeKey,
        order_id: null,
        kind: n.kind,
        channel: 'ops',
        recipient: 'ops',
        payload: JSON.stringify(n.payload),
      })),
    )
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('dedupe_key')
    .execute();
  return new Set(rows.map((r) => r.dedupe_key));
}
