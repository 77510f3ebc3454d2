/**
 * Reads of `shipments` (and a parcel's manual event in `tracking_events`) for the API: a
 * shipment by id or by its courier's tracking number, the rows an admin action or a bulk
 * refresh looks at, an order's parcels as its view lists them, and the failed-work list's
 * sync errors. The routes decide what a missing or finished shipment means. The activities'
 * writes are ./shipments.ts; the tracking reads ./order-tracking.ts.
 */
import { sql, type Kysely, type SqlBool } from 'kysely';
import type { Database, Shipment } from '../../db/database';
import { TERMINAL_STATUSES } from '../domain/status';
import { containing, microsKey } from './time';

/** The shipment's row, or undefined when there is none. */
export async function findShipment(db: Kysely<Database>, shipmentId: string): Promise<Shipment | undefined> {
  return db.selectFrom('shipments').selectAll().where('id', '=', shipmentId).executeTakeFirst();
}

/** What an admin action on one shipment checks first: its order, status and last scan and sync. */
export async function shipmentForAction(db: Kysely<Database>, shipmentId: string) {
  return db
    .selectFrom('shipments')
    .select(['id', 'order_id', 'status', 'last_event_at', 'last_synced_at'])
    .where('id', '=', shipmentId)
    .executeTakeFirst();
}

/** The status of each of these shipments that exists. */
export async function shipmentStatuses(db: Kysely<Database>, shipmentIds: string[]) {
  return db.selectFrom('shipments').select(['id', 'status']).where('id', 'in', shipmentIds).execute();
}

/** When each of these shipments was last synced. */
export async function lastSyncTimes(db: Kysely<Database>, shipmentIds: string[]) {
  return db.selectFrom('shipments').select('last_synced_at').where('id', 'in', shipmentIds).execute();
}

/** Whether the shipment has the event with this key (a manual delivery, say). */
export async function hasTrackingEvent(db: Kysely<Database>, shipmentId: string, eventKey: string) {
  const row = await db
    .selectFrom('tracking_events')
    .select('id')
    .where('shipment_id', '=', shipmentId)
    .where('event_key', '=', eventKey)
    .executeTakeFirst();
  return row !== undefined;
}

/** The shipment a courier's push names (its courier and tracking number), archived or not. */
export async function shipmentByCourierNumber(db: Kysely<Database>, courier: string, trackingNumber: string) {
  return db
    .selectFrom('shipments')
    .select(['id', 'status'])
    .where('courier', '=', courier)
    .where('tracking_number', '=', trackingNumber)
    .executeTakeFirst();
}

/** The order's parcels as its view lists them, by id. */
export async function orderParcels(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('shipments')
    .select(['id', 'courier', 'tracking_number', 'status', 'eta', 'last_synced_at'])
    .where('order_id', '=', orderId)
    .orderBy('id')
    .execute();
}

/**
 * Up to `limit` shipments still being tracked whose polls fail, oldest first, after the
 * keyset position `after` (created at, to the microsecond, then id); `key` is each row's
 * position. `failingBy`: failing (or, without a first failure, updated) by then.
 */
export async function syncErrorKeyset(
  db: Kysely<Database>,
  opts: {
    courier: string | undefined;
    failingBy: Date | null;
    errorContains: string | undefined;
    after: string[] | null;
    limit: number;
  },
) {
  const { courier, failingBy, errorContains, after } = opts;
  return db
    .selectFrom('shipments as s')
    .select([
      's.id',
      's.order_id',
      's.courier',
      's.sync_error',
      's.sync_failing_since',
      's.updated_at',
      microsKey('s.created_at').as('key'),
    ])
    .where('s.sync_error', 'is not', null)
    .where('s.archived_at', 'is', null)
    .where('s.status', 'not in', [...TERMINAL_STATUSES])
    .$if(courier !== undefined, (q) => q.where('s.courier', '=', courier!))
    .$if(failingBy !== null, (q) =>
      q.where(
        sql<SqlBool>`coalesce(s.sync_failing_since, s.updated_at) <= ${failingBy!.toISOString()}::timestamptz`,
      ),
    )
    .$if(errorContains !== undefined, (q) => q.where('s.sync_error', 'ilike', containing(errorContains!)))
    .$if(after !== null, (q) =>
      q.where(sql<SqlBool>`(s.created_at, s.id) > (${after![0]}::timestamptz, ${after![1]})`),
    )
    .orderBy('s.created_at')
    .orderBy('s.id')
    .limit(opts.limit)
    .execute();
}
