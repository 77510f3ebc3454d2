/**
 * Importing parcels already in flight: one row per import (a list an admin sent), one row
 * per line of it with its result once processed, and one first-poll cursor per courier that
 * spreads imported parcels' first polls over time (so an import of thousands does not spend
 * a courier's daily budget at once). Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('parcel_imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('RUNNING'))
    .addColumn('total', 'integer', (c) => c.notNull().check(sql`total > 0`))
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema
    .createTable('parcel_import_lines')
    .addColumn('import_id', 'text', (c) => c.notNull().references('parcel_imports.id').onDelete('cascade'))
    .addColumn('line_no', 'integer', (c) => c.notNull())
    // As sent (trimmed): what the admin reads back next to the result.
    .addColumn('courier', 'text')
    .addColumn('tracking_number', 'text')
    .addColumn('order_reference', 'text')
    .addColumn('email', 'text')
    .addColumn('postcode', 'text')
    // Null until processed: STARTED, ALREADY_TRACKED or REJECTED.
    .addColumn('result', 'text')
    .addColumn('reason', 'text')
    .addColumn('shipment_id', 'text')
    .addColumn('first_poll_at', 'timestamptz')
    .addColumn('processed_at', 'timestamptz')
    .addPrimaryKeyConstraint('parcel_import_lines_pk', ['import_id', 'line_no'])
    .execute();
  await db.schema
    .createTable('import_poll_cursors')
    .addColumn('courier', 'text', (c) => c.primaryKey())
    .addColumn('next_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('import_poll_cursors').execute();
  await db.schema.dropTable('parcel_import_lines').execute();
  await db.schema.dropTable('parcel_imports').execute();
}
