/**
 * Per-customer quota of live tracking refreshes (`?refresh=true`): one row per subject
 * (`customer:<id>`), a fixed window restarted in place by the first refresh after it ends,
 * so the table holds one row per customer who ever refreshed and needs no pruning.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('refresh_quota')
    .addColumn('subject', 'text', (c) => c.primaryKey())
    .addColumn('window_started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('used', 'integer', (c) => c.notNull().check(sql`used >= 0`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refresh_quota').execute();
}
