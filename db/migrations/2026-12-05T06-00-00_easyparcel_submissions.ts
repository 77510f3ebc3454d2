/**
 * easyparcel_submissions: what EasyParcel answered to each booking we submitted, keyed by our
 * booking reference (the shipment id), so a retried booking never submits twice
 * (src/couriers/easyparcel-bookings.ts, src/read-model/easyparcel-submissions.ts). A row with
 * no shipment number is a submit that went out with no answer read: its outcome is unknown.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('easyparcel_submissions')
    .addColumn('reference', 'text', (c) => c.primaryKey())
    .addColumn('shipment_number', 'text')
    .addColumn('awb_number', 'text')
    .addColumn('submitted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('answered_at', 'timestamptz')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('easyparcel_submissions').execute();
}
