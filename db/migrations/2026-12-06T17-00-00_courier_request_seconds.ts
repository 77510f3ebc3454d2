/**
 * courier_request_seconds: per courier, the second (Postgres's clock, truncated) its latest
 * requests were started in and how many, across every worker: `WAYBILL_COURIER_REQUESTS_PER_SECOND`
 * holds for the courier account, however many workers call it (src/read-model/courier-usage.ts
 * `takeCourierSecond`). One row per courier, overwritten as seconds pass. Frozen: add a new
 * migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('courier_request_seconds')
    .addColumn('courier', 'text', (c) => c.primaryKey())
    .addColumn('second_at', 'timestamptz', (c) => c.notNull())
    .addColumn('requests', 'integer', (c) => c.notNull().check(sql`requests > 0`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('courier_request_seconds').execute();
}
