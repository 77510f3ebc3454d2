/**
 * courier_tokens: a courier account's OAuth token pair in one row, shared by every worker.
 * EasyParcel rotates refresh tokens (each refresh spends the one used), so workers keeping
 * their own would spend each other's; a refresh runs under this row's lock
 * (src/read-model/courier-tokens.ts).
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('courier_tokens')
    .addColumn('courier', 'text', (c) => c.primaryKey())
    .addColumn('configured_refresh_token', 'text', (c) => c.notNull())
    .addColumn('refresh_token', 'text', (c) => c.notNull())
    .addColumn('access_token', 'text')
    .addColumn('refresh_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('courier_tokens').execute();
}
