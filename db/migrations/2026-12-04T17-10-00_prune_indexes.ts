/**
 * Housekeeping deletes old rows in small batches, oldest first: idempotency keys by age,
 * courier push dedupe rows by receipt time, and sent or given-up notifications by age. An
 * index on each age keeps every batch's pick off a full scan of a table that only grows
 * until the first prune.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('api_idempotency_keys_created_idx')
    .on('api_idempotency_keys')
    .column('created_at')
    .execute();
  await db.schema
    .createIndex('courier_webhook_events_received_idx')
    .on('courier_webhook_events')
    .column('received_at')
    .execute();
  await db.schema
    .createIndex('notifications_finished_created_idx')
    .on('notifications')
    .column('created_at')
    .where(sql.ref('status'), 'in', sql`('SENT', 'FAILED')`)
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('notifications_finished_created_idx').execute();
  await db.schema.dropIndex('courier_webhook_events_received_idx').execute();
  await db.schema.dropIndex('api_idempotency_keys_created_idx').execute();
}
