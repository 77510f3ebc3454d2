/**
 * courier_request_slots: per courier, the earliest time (Postgres's clock) its next request may
 * start, across every worker. Each request reserves the next slot and moves it on by the
 * spacing `WAYBILL_COURIER_REQUESTS_PER_SECOND` allows (src/read-model/courier-usage.ts
 * `reserveCourierSlot`), so no sliding second holds more than that, where the count per clock
 * second it replaces (`courier_request_seconds`, dropped here; it held no data worth keeping)
 * let a burst across a boundary put twice that into one. Frozen: add a new migration for later
 * changes.
 */
import type { Kysely } from 'kysely';
import { up as createRequestSeconds } from './2026-12-06T17-00-00_courier_request_seconds';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('courier_request_seconds').ifExists().execute();
  await db.schema
    .createTable('courier_request_slots')
    .addColumn('courier', 'text', (c) => c.primaryKey())
    .addColumn('next_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('courier_request_slots').execute();
  await createRequestSeconds(db);
}
