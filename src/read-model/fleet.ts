/**
 * SQL of the shop's own fleet (docs/fleet.md): vehicles, drivers and their hashed tokens,
 * runs, the parcels booked with courier `fleet` (the dispatch queue is those on no run), the
 * drivers' reports, and the silent-run alarm's one transaction. Callers: the fleet routes, the
 * driver API, the fleet courier adapter (booking and cancel are rows here), the fleet activity
 * and the money ledger.
 *
 * Longer than most files (~570 lines) on purpose: every statement of the fleet's tables is
 * here, one place to read them (the read model keeps its SQL by table group), and the
 * fleet's tables are one group.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { EventType } from '../domain/events';
import { ShipmentStatus } from '../domain/status';
import { writeStreamEvent } from '../notifications/outbox';
import { writeAudit } from './audit';

export const RunStatus = { OPEN: 'OPEN', CLOSED: 'CLOSED' } as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** A parcel the driver no longer has to do anything about. */
const DONE: readonly string[] = [ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED, ShipmentStatus.CANCELLED];

const UNIQUE_VIOLATION = '23505';
const isUnique = (err: unknown, constraint?: string) =>
  (err as { code?: string }).code === UNIQUE_VIOLATION &&
  (constraint === undefined || (err as { constraint?: string }).constraint === constraint);

// --- Vehicles and drivers ----------------------------------------------------------------

/** The new vehicle; undefined when the registration is taken. */
export function insertVehicle(
  db: Kysely<Database>,
  v: { id: string; registration: string; label: string | null },
) {
  return db
    .insertInto('fleet_vehicles')
    .values(v)
    .onConflict((oc) => oc.column('registration').doNothing())
    .returning(['id', 'registration', 'label', 'created_at'])
    .executeTakeFirst();
}

export function listVehicles(db: Kysely<Database>) {
  return db
    .selectFrom('fleet_vehicles')
    .select(['id', 'registration', 'label', 'created_at'])
    .orderBy('registration')
    .execute();
}

export async function insertDriver(
  db: Kysely<Database>,
  d: { id: string; name: string; phone: string | null },
): Promise<void> {
  await db.insertInto('fleet_drivers').values(d).execute();
}

/** Every driver, whether a token is live, and the open run if any. */
export function listDrivers(db: Kysely<Database>) {
  return db
    .selectFrom('fleet_drivers as d')
    .leftJoin('fleet_runs as r', (j) =>
      j.onRef('r.driver_id', '=', 'd.id').on('r.status', '=', RunStatus.OPEN),
    )
    .select([
      'd.id',
      'd.name',
      'd.phone',
      'd.token_issued_at',
      sql<boolean>`d.token_hash is not null`.as('has_token'),
      'r.id as open_run_id',
    ])
    .orderBy('d.name')
    .orderBy('d.id')
    .execute();
}

/** Replaces the driver's token (null: revokes it); false when there is no such driver. */
export async function setDriverToken(
  db: Kysely<Database>,
  driverId: string,
  hash: Buffer | null,
): Promise<boolean> {
  const row = await db
    .updateTable('fleet_drivers')
    .set({ token_hash: hash, token_issued_at: hash === null ? null : sql<Date>`now()` })
    .where('id', '=', driverId)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export function driverByTokenHash(db: Kysely<Database>, hash: Buffer) {
  return db
    .selectFrom('fleet_drivers')
    .select(['id', 'name'])
    .where('token_hash', '=', hash)
    .executeTakeFirst();
}

export async function driverAndVehicleExist(
  db: Kysely<Database>,
  driverId: string,
  vehicleId: string,
): Promise<{ driver: boolean; vehicle: boolean }> {
  const [driver, vehicle] = await Promise.all([
    db.selectFrom('fleet_drivers').select('id').where('id', '=', driverId).executeTakeFirst(),
    db.selectFrom('fleet_vehicles').select('id').where('id', '=', vehicleId).executeTakeFirst(),
  ]);
  return { driver: driver !== undefined, vehicle: vehicle !== undefined };
}

// --- Runs ----------------------------------------------------------------------------------

/** 'driver_busy' when the driver already has an open run (one round at a time). */
export async function insertRun(
  db: Kysely<Database>,
  run: { id: string; driverId: string; vehicleId: string; runDate: string; createdBy: string },
): Promise<'created' | 'driver_busy'> {
  try {
    await db
      .insertInto('fleet_runs')
      .values({
        id: run.id,
        driver_id: run.driverId,
        vehicle_id: run.vehicleId,
        run_date: run.runDate,
        created_by: run.createdBy,
      })
      .execute();
    return 'created';
  } catch (err) {
    if (isUnique(err, 'fleet_runs_one_open')) return 'driver_busy';
    throw err;
  }
}

function runsWithCounts(db: Kysely<Database>) {
  return db
    .selectFrom('fleet_runs as r')
    .innerJoin('fleet_drivers as d', 'd.id', 'r.driver_id')
    .innerJoin('fleet_vehicles as v', 'v.id', 'r.vehicle_id')
    .select((eb) => [
      'r.id',
      'r.driver_id',
      'd.name as driver_name',
      'r.vehicle_id',
      'v.registration',
      'r.run_date',
      'r.status',
      'r.created_at',
      'r.closed_at',
      'r.last_report_at',
      'r.silent_since',
      'r.silent_alarms',
      eb
        .selectFrom('fleet_parcels as p')
        .select(sql<number>`count(*)::int`.as('n'))
        .whereRef('p.run_id', '=', 'r.id')
        .as('parcels'),
      eb
        .selectFrom('fleet_parcels as p')
        .select(sql<number>`count(*)::int`.as('n'))
        .whereRef('p.run_id', '=', 'r.id')
        .where('p.status', 'not in', DONE)
        .as('in_hand'),
    ]);
}

export function listRuns(
  db: Kysely<Database>,
  filter: { status?: RunStatus; silent?: boolean; limit: number },
) {
  let query = runsWithCounts(db);
  if (filter.status) query = query.where('r.status', '=', filter.status);
  if (filter.silent === true) query = query.where('r.silent_since', 'is not', null);
  if (filter.silent === false) query = query.where('r.silent_since', 'is', null);
  return query.orderBy('r.created_at', 'desc').orderBy('r.id').limit(filter.limit).execute();
}

export function findRun(db: Kysely<Database>, runId: string) {
  return runsWithCounts(db).where('r.id', '=', runId).executeTakeFirst();
}

export function openRunOfDriver(db: Kysely<Database>, driverId: string) {
  return runsWithCounts(db)
    .where('r.driver_id', '=', driverId)
    .where('r.status', '=', RunStatus.OPEN)
    .executeTakeFirst();
}

const PARCEL_COLUMNS = [
  'p.shipment_id',
  'p.tracking_number',
  'p.run_id',
  'p.status',
  'p.recipient',
  'p.description',
  'p.proof_ref',
  'p.last_reason',
  'p.booked_at',
  'p.assigned_at',
  'p.picked_up_at',
  'p.updated_at',
] as const;

export function runParcels(db: Kysely<Database>, runId: string) {
  return db
    .selectFrom('fleet_parcels as p')
    .select(PARCEL_COLUMNS)
    .where('p.run_id', '=', runId)
    .orderBy('p.assigned_at')
    .orderBy('p.tracking_number')
    .execute();
}

/** The dispatch queue: booked parcels on no run, oldest first. */
export function dispatchQueue(db: Kysely<Database>, limit: number) {
  return db
    .selectFrom('fleet_parcels as p')
    .select(PARCEL_COLUMNS)
    .where('p.run_id', 'is', null)
    .where('p.status', '=', ShipmentStatus.INFO_RECEIVED)
    .orderBy('p.booked_at')
    .orderBy('p.tracking_number')
    .limit(limit)
    .execute();
}

const lockRun = (trx: Kysely<Database>, runId: string) =>
  trx.selectFrom('fleet_runs').select('status').where('id', '=', runId).forUpdate().executeTakeFirst();

export const AssignResult = {
  ASSIGNED: 'assigned',
  ALREADY_ON_RUN: 'already_on_run',
  UNKNOWN: 'unknown',
  PICKED_UP: 'picked_up',
  CANCELLED: 'cancelled',
} as const;
export type AssignResult = (typeof AssignResult)[keyof typeof AssignResult];

/**
 * Puts parcels on an open run, from the queue or from another run they were not picked up
 * from; one result per number, in one transaction. Null when the run is not open.
 */
export async function assignToRun(
  db: Kysely<Database>,
  runId: string,
  trackingNumbers: readonly string[],
): Promise<Map<string, AssignResult> | null> {
  return db.transaction().execute(async (trx) => {
    const run = await lockRun(trx, runId);
    if (run?.status !== RunStatus.OPEN) return null;
    const parcels = await trx
      .selectFrom('fleet_parcels')
      .select(['tracking_number', 'run_id', 'status'])
      .where('tracking_number', 'in', [...trackingNumbers])
      .orderBy('tracking_number')
      .forUpdate()
      .execute();
    const byNumber = new Map(parcels.map((p) => [p.tracking_number, p]));
    const results = new Map<string, AssignResult>();
    const move: string[] = [];
    for (const number of trackingNumbers) {
      const p = byNumber.get(number);
      if (!p) results.set(number, AssignResult.UNKNOWN);
      else if (p.status === ShipmentStatus.CANCELLED) results.set(number, AssignResult.CANCELLED);
      else if (p.run_id === runId) results.set(number, AssignResult.ALREADY_ON_RUN);
      else if (p.status !== ShipmentStatus.INFO_RECEIVED) results.set(number, AssignResult.PICKED_UP);
      else {
        results.set(number, AssignResult.ASSIGNED);
        move.push(number);
      }
    }
    if (move.length > 0) {
      await trx
        .updateTable('fleet_parcels')
        .set({ run_id: runId, assigned_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
        .where('tracking_number', 'in', move)
        .execute();
    }
    return results;
  });
}

/**
 * Closes an open run: parcels never picked up go back to the queue. 'in_hand' (nothing
 * changed) when the driver still has parcels picked up and not delivered or returned.
 */
export async function closeRun(
  db: Kysely<Database>,
  runId: string,
): Promise<'closed' | 'not_found' | 'already_closed' | { inHand: string[] }> {
  return db.transaction().execute(async (trx) => {
    const run = await lockRun(trx, runId);
    if (!run) return 'not_found';
    if (run.status !== RunStatus.OPEN) return 'already_closed';
    const inHand = await trx
      .selectFrom('fleet_parcels')
      .select('tracking_number')
      .where('run_id', '=', runId)
      .where('status', 'not in', [...DONE, ShipmentStatus.INFO_RECEIVED])
      .orderBy('tracking_number')
      .execute();
    if (inHand.length > 0) return { inHand: inHand.map((p) => p.tracking_number) };
    await trx
      .updateTable('fleet_parcels')
      .set({ run_id: null, assigned_at: null, updated_at: sql<Date>`now()` })
      .where('run_id', '=', runId)
      .where('status', '=', ShipmentStatus.INFO_RECEIVED)
      .execute();
    await trx
      .updateTable('fleet_runs')
      .set({ status: RunStatus.CLOSED, closed_at: sql<Date>`now()`, silent_since: null })
      .where('id', '=', runId)
      .execute();
    return 'closed';
  });
}

// --- Booking and cancelling (the fleet courier adapter) ------------------------------------

/**
 * Books a parcel into the dispatch queue; the same shipment again answers its first tracking
 * number (a retried booking is one parcel).
 */
export async function bookFleetParcel(
  db: Kysely<Database>,
  parcel: {
    shipmentId: string;
    trackingNumber: string;
    recipient: { name: string; line1: string; city: string; postcode: string; phone: string | null };
    description: string;
  },
): Promise<string> {
  await db
    .insertInto('fleet_parcels')
    .values({
      shipment_id: parcel.shipmentId,
      tracking_number: parcel.trackingNumber,
      recipient: JSON.stringify(parcel.recipient),
      description: parcel.description,
    })
    .onConflict((oc) => oc.column('shipment_id').doNothing())
    .execute();
  const row = await db
    .selectFrom('fleet_parcels')
    .select('tracking_number')
    .where('shipment_id', '=', parcel.shipmentId)
    .executeTakeFirstOrThrow();
  return row.tracking_number;
}

/**
 * Cancels a booking: it leaves its run (the driver no longer sees it) and is CANCELLED.
 * Cancelling twice is 'cancelled' again; a parcel the driver has picked up is 'collected'.
 */
export async function cancelFleetParcel(
  db: Kysely<Database>,
  trackingNumber: string,
): Promise<'cancelled' | 'unknown' | 'collected'> {
  return db.transaction().execute(async (trx) => {
    const parcel = await trx
      .selectFrom('fleet_parcels')
      .select(['status'])
      .where('tracking_number', '=', trackingNumber)
      .forUpdate()
      .executeTakeFirst();
    if (!parcel) return 'unknown';
    if (parcel.status === ShipmentStatus.CANCELLED) return 'cancelled';
    if (parcel.status !== ShipmentStatus.INFO_RECEIVED) return 'collected';
    await trx
      .updateTable('fleet_parcels')
      .set({
        status: ShipmentStatus.CANCELLED,
        run_id: null,
        cancelled_at: sql<Date>`now()`,
        updated_at: sql<Date>`now()`,
      })
      .where('tracking_number', '=', trackingNumber)
      .execute();
    return 'cancelled';
  });
}

/** A parcel and its reports, oldest first (what the adapter's `track` answers). */
export async function fleetParcelView(db: Kysely<Database>, trackingNumber: string) {
  const parcel = await db
    .selectFrom('fleet_parcels')
    .select(['shipment_id', 'status'])
    .where('tracking_number', '=', trackingNumber)
    .executeTakeFirst();
  if (!parcel) return null;
  const reports = await db
    .selectFrom('fleet_reports')
    .select(['driver_id', 'report_id', 'kind', 'occurred_at', 'proof_ref', 'reason', 'note'])
    .where('shipment_id', '=', parcel.shipment_id)
    .orderBy('occurred_at')
    .orderBy('received_at')
    .execute();
  return { shipmentId: parcel.shipment_id, status: parcel.status, reports };
}

// --- Driver reports ------------------------------------------------------------------------

export function findReport(db: Kysely<Database>, driverId: string, reportId: string) {
  return db
    .selectFrom('fleet_reports as f')
    .innerJoin('fleet_parcels as p', 'p.shipment_id', 'f.shipment_id')
    .select(['f.kind', 'f.occurred_at', 'p.tracking_number', 'p.status'])
    .where('f.driver_id', '=', driverId)
    .where('f.report_id', '=', reportId)
    .executeTakeFirst();
}

/**
 * The parcel a report is about, locked, with its run's driver and status, when its latest
 * report happened (null: none yet) and its tracking's status in the read model.
 */
export function lockReportedParcel(trx: Kysely<Database>, trackingNumber: string) {
  return trx
    .selectFrom('fleet_parcels as p')
    .leftJoin('fleet_runs as r', 'r.id', 'p.run_id')
    .leftJoin('shipments as s', 's.id', 'p.shipment_id')
    .select((eb) => [
      'p.shipment_id',
      'p.status',
      'p.run_id',
      'p.assigned_at',
      'r.driver_id',
      'r.status as run_status',
      's.status as tracking_status',
      eb
        .selectFrom('fleet_reports as f')
        .select((e) => e.fn.max('f.occurred_at').as('at'))
        .whereRef('f.shipment_id', '=', 'p.shipment_id')
        .as('latest_report_at'),
    ])
    .where('p.tracking_number', '=', trackingNumber)
    .forUpdate('p')
    .executeTakeFirst();
}

/**
 * Records a report and what it does to the parcel and its run (the run is heard from: its
 * silent-run alarm, if raised, is over). False, and nothing written, when the driver sent
 * this report id before.
 */
export async function recordReport(
  trx: Kysely<Database>,
  report: {
    driverId: string;
    reportId: string;
    runId: string;
    shipmentId: string;
    kind: string;
    occurredAt: string;
    proofRef: string | null;
    reason: string | null;
    note: string | null;
    status: string;
  },
): Promise<boolean> {
  const inserted = await trx
    .insertInto('fleet_reports')
    .values({
      driver_id: report.driverId,
      report_id: report.reportId,
      run_id: report.runId,
      shipment_id: report.shipmentId,
      kind: report.kind,
      occurred_at: report.occurredAt,
      proof_ref: report.proofRef,
      reason: report.reason,
      note: report.note,
    })
    .onConflict((oc) => oc.columns(['driver_id', 'report_id']).doNothing())
    .returning('report_id')
    .executeTakeFirst();
  if (!inserted) return false;
  await trx
    .updateTable('fleet_parcels')
    .set((eb) => ({
      status: report.status,
      proof_ref: report.proofRef ?? eb.ref('proof_ref'),
      last_reason: report.reason ?? eb.ref('last_reason'),
      picked_up_at: eb.fn.coalesce('picked_up_at', sql<Date>`${report.occurredAt}::timestamptz`),
      updated_at: sql<Date>`now()`,
    }))
    .where('shipment_id', '=', report.shipmentId)
    .execute();
  await trx
    .updateTable('fleet_runs')
    .set({ last_report_at: sql<Date>`now()`, silent_since: null })
    .where('id', '=', report.runId)
    .execute();
  return true;
}

// --- The silent-run alarm ------------------------------------------------------------------

export type SilentRunCheck =
  | { state: 'closed' }
  | { state: 'silent'; raised: boolean; alarms: number }
  | { state: 'heard'; quietForMs: number; inHand: number };

/**
 * One look at a run, by Postgres's clock: closed; silent (no report for `silentAfterMs` since
 * the last one, or since it opened, with parcels still to deliver), raising the alarm once per
 * silence — the run's `silent_since`, an audit entry and the `fleet.run_silent` domain event
 * in one transaction —; or heard from recently enough (or nothing left to do).
 */
export async function checkSilentRun(
  db: Kysely<Database>,
  runId: string,
  silentAfterMs: number,
): Promise<SilentRunCheck> {
  return db.transaction().execute(async (trx): Promise<SilentRunCheck> => {
    const run = await trx
      .selectFrom('fleet_runs')
      .select([
        'id',
        'driver_id',
        'vehicle_id',
        'status',
        'silent_since',
        'silent_alarms',
        'last_report_at',
        sql<number>`(extract(epoch from now() - coalesce(last_report_at, created_at)) * 1000)::float8`.as(
          'quiet_ms',
        ),
      ])
      .where('id', '=', runId)
      .forUpdate()
      .executeTakeFirst();
    if (!run || run.status !== RunStatus.OPEN) return { state: 'closed' };
    if (run.silent_since !== null) return { state: 'silent', raised: false, alarms: run.silent_alarms };
    const { n: inHand } = await trx
      .selectFrom('fleet_parcels')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('run_id', '=', runId)
      .where('status', 'not in', DONE)
      .executeTakeFirstOrThrow();
    const quietForMs = Number(run.quiet_ms);
    if (quietForMs < silentAfterMs || inHand === 0) return { state: 'heard', quietForMs, inHand };
    const alarms = run.silent_alarms + 1;
    const raised = await trx
      .updateTable('fleet_runs')
      .set({ silent_since: sql<Date>`now()`, silent_alarms: alarms })
      .where('id', '=', runId)
      .returning('silent_since')
      .executeTakeFirstOrThrow();
    const data = {
      runId,
      driverId: run.driver_id,
      vehicleId: run.vehicle_id,
      silentSince: raised.silent_since!.toISOString(),
      lastReportAt: run.last_report_at?.toISOString() ?? null,
      quietForSeconds: Math.round(quietForMs / 1000),
      parcelsInHand: inHand,
      alarm: alarms,
    };
    await writeAudit(trx, [
      {
        actor: 'system:fleet-watch',
        action: 'fleet.run_silent',
        subjectType: 'fleet_run',
        subjectId: runId,
        reason: `no driver report for ${Math.round(quietForMs / 60_000)} min with ${inHand} parcel(s) to deliver`,
        details: data,
        dedupeKey: `fleet.run_silent:${runId}:${alarms}`,
      },
    ]);
    await writeStreamEvent(trx, {
      type: EventType.FLEET_RUN_SILENT,
      stream: `fleet_run:${runId}`,
      keyPrefix: `fleet_run:${runId}:silent`,
      data,
    });
    return { state: 'silent', raised: true, alarms };
  });
}

// --- The money ledger ----------------------------------------------------------------------

/** The fleet bookings of these shipments, as the ledger's `live-booking` rule reads them. */
export function fleetBookings(db: Kysely<Database>, shipmentIds: readonly string[]) {
  if (shipmentIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('fleet_parcels')
    .select(['shipment_id', 'tracking_number', 'status', 'run_id'])
    .where('shipment_id', 'in', [...shipmentIds])
    .execute();
}
