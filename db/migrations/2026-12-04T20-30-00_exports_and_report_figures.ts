/**
 * CSV exports and the daily report's new figures. Each export reads one date range in
 * creation (or scan) order through a server-side cursor: an index on that time lets the
 * cursor hand out its first rows at once instead of sorting the whole range first (orders
 * have theirs already: `orders_created_idx`, from the order search migration before this). The
 * report keeps parcels delivered after their ETA, the average time in each status and the
 * exceptions by courier and reason.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('shipments_created_idx')
    .on('shipments')
    .columns(['created_at', 'id'])
    .execute();
  await db.schema
    .createIndex('tracking_events_exception_time_idx')
    .on('tracking_events')
    .columns(['occurred_at', 'id'])
    .where(sql.ref('status'), '=', 'EXCEPTION')
    .execute();
  await db.schema
    .alterTable('daily_reports')
    .addColumn('late_deliveries', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status_seconds', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('exceptions_by_reason', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('daily_reports')
    .dropColumn('exceptions_by_reason')
    .dropColumn('status_seconds')
    .dropColumn('late_deliveries')
    .execute();
  await db.schema.dropIndex('tracking_events_exception_time_idx').execute();
  await db.schema.dropIndex('shipments_created_idx').execute();
}
