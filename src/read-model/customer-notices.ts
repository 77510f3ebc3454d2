/**
 * Customer notifications (`notifications`): one row per order and milestone (its dedupe key),
 * with its delivery's status, attempts and last error. The order activities decide when to
 * send and what a failure means (src/activities/orders.ts); the event outbox and its
 * deliveries to the shop's endpoints are src/notifications.
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
