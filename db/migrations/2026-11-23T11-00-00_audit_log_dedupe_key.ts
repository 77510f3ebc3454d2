/**
 * Audit entries written by workflow activities carry a dedupe key, so an activity that
 * runs twice records the action once. Frozen: add a new migration for later changes.
 */
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('audit_log')
    .addColumn('dedupe_key', 'text', (c) => c.unique())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit_log').dropColumn('dedupe_key').execute();
}
