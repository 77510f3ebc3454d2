/**
 * The shop's own fleet (issue 17, docs/fleet.md): vehicles and drivers, one hashed secret
 * token per driver (revocable), runs (a driver's day with a vehicle), the parcels booked with
 * courier `fleet` (in the dispatch queue until ops put them on a run) and the drivers'
 * reports, whose (driver, report id) makes a retried report a no-op. Frozen: add a new
 * migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('fleet_vehicles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('registration', 'text', (c) => c.notNull().unique())
    .addColumn('label', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('fleet_drivers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('phone', 'text')
    // SHA-256 of the driver's current token (256 random bits): null when none is live.
    .addColumn('token_hash', 'bytea', (c) => c.unique())
    .addColumn('token_issued_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('fleet_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('driver_id', 'text', (c) => c.notNull().references('fleet_drivers.id'))
    .addColumn('vehicle_id', 'text', (c) => c.notNull().references('fleet_vehicles.id'))
    .addColumn('run_date', 'date', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('OPEN'))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('closed_at', 'timestamptz')
    .addColumn('last_report_at', 'timestamptz')
    // Set by the silent-run alarm, cleared by the driver's next report.
    .addColumn('silent_since', 'timestamptz')
    .addColumn('silent_alarms', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // One open run per driver: a driver is on one round at a time.
  await sql`create unique index fleet_runs_one_open on fleet_runs (driver_id) where status = 'OPEN'`.execute(
    db,
  );
  await db.schema
    .createTable('fleet_parcels')
    .addColumn('shipment_id', 'text', (c) => c.primaryKey())
    .addColumn('tracking_number', 'text', (c) => c.notNull().unique())
    // Null: in the dispatch queue.
    .addColumn('run_id', 'text', (c) => c.references('fleet_runs.id'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('INFO_RECEIVED'))
    .addColumn('recipient', 'jsonb', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('proof_ref', 'text')
    .addColumn('last_reason', 'text')
    .addColumn('booked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('assigned_at', 'timestamptz')
    .addColumn('picked_up_at', 'timestamptz')
    .addColumn('cancelled_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('fleet_parcels_run').on('fleet_parcels').column('run_id').execute();
  await sql`create index fleet_parcels_queue on fleet_parcels (booked_at) where run_id is null and status = 'INFO_RECEIVED'`.execute(
    db,
  );
  await db.schema
    .createTable('fleet_reports')
    .addColumn('driver_id', 'text', (c) => c.notNull().references('fleet_drivers.id'))
    .addColumn('report_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull().references('fleet_runs.id'))
    .addColumn('shipment_id', 'text', (c) => c.notNull().references('fleet_parcels.shipment_id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('proof_ref', 'text')
    .addColumn('reason', 'text')
    .addColumn('note', 'text')
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('fleet_reports_pk', ['driver_id', 'report_id'])
    .execute();
  await db.schema
    .createIndex('fleet_reports_shipment')
    .on('fleet_reports')
    .columns(['shipment_id', 'occurred_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('fleet_reports').execute();
  await db.schema.dropTable('fleet_parcels').execute();
  await db.schema.dropTable('fleet_runs').execute();
  await db.schema.dropTable('fleet_drivers').execute();
  await db.schema.dropTable('fleet_vehicles').execute();
}
