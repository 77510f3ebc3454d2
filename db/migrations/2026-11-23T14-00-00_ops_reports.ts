/**
 * Operations: one daily report row per UTC day, and what housekeeping needs on shipments —
 * when a shipment finished (archive and scrub ages count from it) and when personal data
 * was scrubbed from its raw courier payloads. Frozen: add a new migration for later changes.
 */
import { type Kysely, sql } from 'kysely';

const TERMINAL = sql.raw(`'DELIVERED', 'RETURNED', 'CANCELLED', 'EXPIRED'`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('daily_reports')
    .addColumn('day', 'date', (c) => c.primaryKey())
    .addColumn('deliveries', 'integer', (c) => c.notNull())
    .addColumn('exceptions', 'integer', (c) => c.notNull())
    .addColumn('expired', 'integer', (c) => c.notNull())
    .addColumn('median_delivery_seconds', 'integer')
    .addColumn('courier_calls', 'integer', (c) => c.notNull())
    .addColumn('courier_failures', 'integer', (c) => c.notNull())
    .addColumn('courier_budget', 'integer', (c) => c.notNull())
    .addColumn('by_courier', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('generated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .alterTable('shipments')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('pii_scrubbed_at', 'timestamptz')
    .execute();
  // Shipments that finished before this column existed: the best time the row knows.
  await sql`update shipments set finished_at = coalesce(delivered_at, last_event_at, updated_at)
            where status in (${TERMINAL})`.execute(db);
  await db.schema
    .createIndex('shipments_finished_idx')
    .on('shipments')
    .column('finished_at')
    .where(sql.ref('finished_at'), 'is not', null)
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('shipments_finished_idx').ifExists().execute();
  await db.schema.alterTable('shipments').dropColumn('pii_scrubbed_at').dropColumn('finished_at').execute();
  await db.schema.dropTable('daily_reports').ifExists().execute();
}
