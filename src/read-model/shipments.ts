/**
 * SQL on `shipments` and `tracking_events` for the shipment activities: the courier's raw
 * answer kept for support, the recorded events and the snapshot the workflow decided, and a
 * sync problem. Plain functions on `db` or the caller's transaction; the activities decide
 * what to write and when (src/activities/shipments.ts).
 */
import { sql, type Kysely } from 'kysely';
import { RECENT_EVENTS_LIMIT, type Database } from '../../db/database';
import type { CourierCode } from '../couriers/types';
import { REMOVED } from '../domain/personal-data';
import { ShipmentStatus, TERMINAL_STATUSES } from '../domain/status';
import { writeShipmentEvent } from '../notifications/outbox';
import { ago, apiTimeText } from './time';

/**
 * One entry of `shipments.recent_events` (db/database.ts's RecentEvent) from the
 * `tracking_events` row aliased `e`: its time already in the API's form, so that a read passes
 * it through.
 */
export const recentEventEntry = sql`jsonb_build_object('status', e.status,
  'occurredAt', ${apiTimeText('e.occurred_at')}, 'city', e.location_city, 'country', e.location_country)`;

/** Keeps the courier's latest raw answer, for support, in Postgres only. */
export async function saveRawLatest(db: Kysely<Database>, shipmentId: string, raw: unknown): Promise<void> {
  await db
    .updateTable('shipments')
    .set({ raw_latest: JSON.stringify(raw) })
    .where('id', '=', shipmentId)
    .execute();
}

/** The shipment's status and identity, its row locked until the transaction ends. */
export async function lockShipment(trx: Kysely<Database>, shipmentId: string) {
  return trx
    .selectFrom('shipments')
    .select(['status', 'sub_status', 'order_id', 'courier', 'tracking_number'])
    .where('id', '=', shipmentId)
    .forUpdate()
    .executeTakeFirst();
}

/** What the shipment workflow decided the parcel's row shows now. */
export interface ShipmentSnapshot {
  shipmentId: string;
  status: ShipmentStatus;
  subStatus: string | null;
  eta: string | null;
  nextPollAt: string | null;
  /** The courier answered at this ISO time (clears the sync problem); null: no courier answer. */
  syncedAt: string | null;
  syncError: string | null;
  /** Events newly recorded with this snapshot (refreshes the newest-events copy, bumps the version). */
  eventsAdded: number;
  delivered: boolean;
  pickedUp: boolean;
  finished: boolean;
}

/** Writes the snapshot, with the last event time and newest-events copy; false when no such shipment. */
export async function writeShipmentSnapshot(trx: Kysely<Database>, s: ShipmentSnapshot): Promise<boolean> {
  const lastEvent = await trx
    .selectFrom('tracking_events')
    .select((eb) => eb.fn.max('occurred_at').as('at'))
    .where('shipment_id', '=', s.shipmentId)
    .executeTakeFirst();
  const updated = await trx
    .updateTable('shipments')
    .set(() => ({
      status: s.status,
      sub_status: s.subStatus,
      eta: s.eta,
      last_event_at: lastEvent?.at ?? null,
      // The read routes' copy of the newest events: one row answers a tracking read.
      ...(s.eventsAdded > 0
        ? {
            recent_events: sql<string>`coalesce((
              select jsonb_agg(${recentEventEntry} order by e.occurred_at desc, e.id desc)
              from (select * from tracking_events t where t.shipment_id = ${s.shipmentId}
                    order by t.occurred_at desc, t.id desc limit ${RECENT_EVENTS_LIMIT}) e), '[]'::jsonb)`,
          }
        : {}),
      next_poll_at: s.nextPollAt,
      ...(s.syncedAt
        ? {
            last_synced_at: s.syncedAt,
            sync_error: s.syncError,
            sync_failing_since: null,
            consecutive_failures: 0,
          }
        : {}),
      ...(s.delivered ? { delivered_at: sql<Date>`coalesce(delivered_at, now())` } : {}),
      ...(s.pickedUp ? { picked_up_at: sql<Date>`coalesce(picked_up_at, now())` } : {}),
      // Housekeeping ages (archive, scrub) count from here.
      finished_at: s.finished ? sql<Date>`coalesce(finished_at, now())` : null,
      // A retried write of the same state is not a new version.
      version: sql<number>`version + case when ${s.eventsAdded} > 0 or status is distinct from ${s.status} or sub_status is distinct from ${s.subStatus} then 1 else 0 end`,
      updated_at: sql<Date>`now()`,
    }))
    .where('id', '=', s.shipmentId)
    .executeTakeFirst();
  return updated.numUpdatedRows > 0n;
}

/** A courier call that failed, as the read model shows it (cached data with this error). */
export interface SyncProblem {
  shipmentId: string;
  error: string;
  failingSince: string | null;
  consecutiveFailures: number;
  nextPollAt: string;
}

export async function markSyncProblem(db: Kysely<Database>, p: SyncProblem): Promise<void> {
  await db
    .updateTable('shipments')
    .set({
      sync_error: p.error,
      sync_failing_since: p.failingSince,
      consecutive_failures: p.consecutiveFailures,
      next_poll_at: p.nextPollAt,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', p.shipmentId)
    .execute();
}

/** The courier refused our credentials: shown as the shipment's sync error until a call goes through. */
export async function markCredentialsRefused(
  db: Kysely<Database>,
  shipmentId: string,
  error: string,
): Promise<void> {
  await db
    .updateTable('shipments')
    .set({
      sync_error: error,
      sync_failing_since: sql<Date>`coalesce(sync_failing_since, now())`,
    })
    .where('id', '=', shipmentId)
    .execute();
}

/** A booked parcel: the shipment row (kept as is when it exists) and the order lines it carries. */
export async function insertBookedShipment(
  trx: Kysely<Database>,
  b: {
    shipmentId: string;
    orderId: string;
    courier: CourierCode;
    trackingNumber: string;
    lineNos: number[];
    destination: { city: string; country: string };
  },
): Promise<void> {
  await trx
    .insertInto('shipments')
    .values({
      id: b.shipmentId,
      order_id: b.orderId,
      courier: b.courier,
      tracking_number: b.trackingNumber,
      destination_city: b.destination.city,
      destination_country: b.destination.country,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  await trx
    .updateTable('order_items')
    .set({ shipment_id: b.shipmentId })
    .where('order_id', '=', b.orderId)
    .where('line_no', 'in', b.lineNos)
    .execute();
}

/** A cancelled booking: CANCELLED, no more polls, and any credentials incident over. */
export async function markBookingCancelled(
  trx: Kysely<Database>,
  shipmentId: string,
  subStatus: string,
): Promise<void> {
  await trx
    .updateTable('shipments')
    .set({
      status: 'CANCELLED',
      sub_status: subStatus,
      next_poll_at: null,
      sync_error: null,
      sync_failing_since: null,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', shipmentId)
    .execute();
}

/**
 * The courier has the parcel (its cancel was refused as collected, and its tracking agrees):
 * the row says when it was known to be in the courier's hands. Its status stays the tracking's
 * to write; only the time is set, once.
 */
export async function markCollected(db: Kysely<Database>, shipmentId: string): Promise<void> {
  await db
    .updateTable('shipments')
    .set({ picked_up_at: sql<Date>`coalesce(picked_up_at, now())`, updated_at: sql<Date>`now()` })
    .where('id', '=', shipmentId)
    .execute();
}

// Housekeeping: expiry of untracked parcels, archive and scrub of finished ones.

const TERMINAL = [...TERMINAL_STATUSES];
const lastScan = sql<Date>`coalesce(last_event_at, created_at)`;

/** One keyset page (by id) of unfinished shipments with no scan for longer than the limit. */
export async function unscannedShipmentIds(
  db: Kysely<Database>,
  page: { expireAfterNoScanMs: number; batchSize: number; afterId: string | null },
): Promise<string[]> {
  let query = db
    .selectFrom('shipments')
    .select('id')
    .where('status', 'not in', TERMINAL)
    .where(lastScan, '<', ago(page.expireAfterNoScanMs))
    .orderBy('id')
    .limit(page.batchSize);
  if (page.afterId !== null) query = query.where('id', '>', page.afterId);
  return (await query.execute()).map((r) => r.id);
}

/**
 * Unfinished rows of the query → EXPIRED with `subStatus`, each with its shipment event in
 * the same transaction (only rows the update changed: a repeat writes nothing twice).
 */
function expire(trx: Kysely<Database>, subStatus: string) {
  const update = trx
    .updateTable('shipments')
    .set({
      status: 'EXPIRED',
      sub_status: subStatus,
      next_poll_at: null,
      finished_at: sql<Date>`now()`,
      version: sql<number>`version + 1`,
      updated_at: sql<Date>`now()`,
    })
    .where('status', 'not in', TERMINAL)
    .returning(['id', 'order_id', 'courier', 'tracking_number', 'eta']);
  return async (where: (query: typeof update) => typeof update) => {
    const rows = await where(update).execute();
    for (const row of rows) {
      await writeShipmentEvent(trx, {
        shipmentId: row.id,
        orderId: row.order_id,
        courier: row.courier,
        trackingNumber: row.tracking_number,
        status: ShipmentStatus.EXPIRED,
        subStatus,
        eta: row.eta === null ? null : new Date(row.eta).toISOString(),
      });
    }
    return rows;
  };
}

/** Those of `ids` still unfinished and unscanned → EXPIRED (NO_SCAN) with their events; the rows changed. */
export async function expireUnscanned(trx: Kysely<Database>, ids: string[], expireAfterNoScanMs: number) {
  // Conditions again: a scan or a finish may have landed since the select.
  return expire(
    trx,
    'NO_SCAN',
  )((q) => q.where('id', 'in', ids).where(lastScan, '<', ago(expireAfterNoScanMs)));
}

/** The shipment's status and sub-status as recorded; undefined when there is no such row. */
export async function recordedStatus(db: Kysely<Database>, shipmentId: string) {
  return db
    .selectFrom('shipments')
    .select(['status', 'sub_status'])
    .where('id', '=', shipmentId)
    .executeTakeFirst();
}

/**
 * A parcel its order settled as lost, its tracking having ended without a final status →
 * EXPIRED (TRACKING_LOST) with its event, unless it finished otherwise; the row, when it changed.
 */
export async function expireTrackingLost(trx: Kysely<Database>, shipmentId: string) {
  const [row] = await expire(trx, 'TRACKING_LOST')((q) => q.where('id', '=', shipmentId));
  return row;
}

/** Archives up to `batchSize` shipments finished longer ago than the limit; how many. */
export async function archiveFinished(
  db: Kysely<Database>,
  olderThanMs: number,
  batchSize: number,
): Promise<number> {
  const rows = await db
    .updateTable('shipments')
    .set({ archived_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('shipments')
        .select('id')
        .where('archived_at', 'is', null)
        .where('status', 'in', TERMINAL)
        .where('finished_at', '<', ago(olderThanMs))
        .orderBy('finished_at')
        .limit(batchSize)
        .forUpdate()
        .skipLocked(),
    )
    .returning('id')
    .execute();
  return rows.length;
}

/** Up to `batchSize` finished, unscrubbed shipments older than the limit, locked (others' skipped). */
export async function lockUnscrubbedFinished(trx: Kysely<Database>, olderThanMs: number, batchSize: number) {
  return trx
    .selectFrom('shipments')
    .select(['id', 'raw_latest'])
    .where('pii_scrubbed_at', 'is', null)
    .where('status', 'in', TERMINAL)
    .where('finished_at', '<', ago(olderThanMs))
    .orderBy('finished_at')
    .limit(batchSize)
    .forUpdate()
    .skipLocked()
    .execute();
}

/** The events of these shipments that carry the courier's raw text. */
export async function eventRawTexts(trx: Kysely<Database>, shipmentIds: string[]) {
  return trx
    .selectFrom('tracking_events')
    .select(['id', 'raw_text'])
    .where('shipment_id', 'in', shipmentIds)
    .where('raw_text', 'is not', null)
    .execute();
}

/** Replaces these events' raw text, in one statement. */
export async function setEventRawTexts(
  trx: Kysely<Database>,
  events: { id: number; text: string }[],
): Promise<void> {
  await sql`update tracking_events as t set raw_text = v.raw_text
    from unnest(${events.map((e) => e.id)}::bigint[], ${events.map((e) => e.text)}::text[]) as v(id, raw_text)
    where t.id = v.id`.execute(trx);
}

/** Replaces these shipments' raw answers (JSON text or null, by position) and marks them scrubbed. */
export async function markScrubbed(
  trx: Kysely<Database>,
  ids: string[],
  rawLatest: (string | null)[],
): Promise<void> {
  await sql`update shipments as s set raw_latest = v.raw_latest, pii_scrubbed_at = now()
    from unnest(${ids}::text[], ${rawLatest}::jsonb[]) as v(id, raw_latest)
    where s.id = v.id`.execute(trx);
}

/**
 * The recipient of these shipments' own-fleet bookings (the address and phone the driver
 * needed) reduced to the city; a no-op for shipments of other couriers or already scrubbed.
 */
export async function scrubFleetRecipients(trx: Kysely<Database>, shipmentIds: string[]): Promise<void> {
  await sql`update fleet_parcels set recipient = jsonb_build_object(
      'name', ${REMOVED}::text, 'line1', ${REMOVED}::text, 'city', recipient->'city',
      'postcode', ${REMOVED}::text, 'phone', null)
    where shipment_id = any(${shipmentIds}::text[]) and recipient->>'name' is distinct from ${REMOVED}`.execute(
    trx,
  );
}
