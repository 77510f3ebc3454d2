/**
 * Pruning the domain events (housekeeping deletes delivered and abandoned events after an
 * age, their deliveries and attempts with them by cascade):
 * - `event_key_entries`: how many times a subject entered a status, kept apart from the
 *   outbox. An event's key counts these entries (`order:<id>:SHIPPED:2`); counted from the
 *   outbox rows, a pruned entry would hand a later change a key receivers already saw.
 *   Backfilled from the outbox.
 * - indexes on `event_id` of deliveries and attempts, so the cascade of one event's delete
 *   is an index probe, not a scan of every attempt.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_key_entries')
    // `<subject>:<status>`, e.g. `order:ord_1:SHIPPED`.
    .addColumn('key_prefix', 'text', (c) => c.primaryKey())
    .addColumn('entries', 'integer', (c) => c.notNull())
    .execute();
  await sql`
    insert into event_key_entries (key_prefix, entries)
    select regexp_replace(event_key, ':[0-9]+$', ''), max(substring(event_key from ':([0-9]+)$')::integer)
    from event_outbox group by 1`.execute(db);
  await db.schema
    .createIndex('event_deliveries_event_idx')
    .on('event_deliveries')
    .column('event_id')
    .execute();
  await db.schema
    .createIndex('event_delivery_attempts_event_idx')
    .on('event_delivery_attempts')
    .column('event_id')
    .execute();
  // Pruning walks the outbox oldest first.
  await db.schema.createIndex('event_outbox_occurred_idx').on('event_outbox').column('occurred_at').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('event_outbox_occurred_idx').execute();
  await db.schema.dropIndex('event_delivery_attempts_event_idx').execute();
  await db.schema.dropIndex('event_deliveries_event_idx').execute();
  await db.schema.dropTable('event_key_entries').execute();
}
