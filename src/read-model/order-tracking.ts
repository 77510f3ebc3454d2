/**
 * The read-model queries behind the tracking reads (customer, guest by order number, guest
 * by tracking number). Each read is one SQL statement: the order and its shipments come in
 * one left join, and every shipment row carries its newest events (`recent_events`, kept by
 * the record activity), so a read is one round trip to Postgres.
 *
 * They are compiled once at load time and run with new parameter values, so a request
 * builds and compiles no SQL (Kysely's "build and compile apart from execution"), and sent
 * as named statements (db/prepared.ts), so Postgres parses and plans each once per
 * connection instead of on every read.
 */
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type Compilable,
} from 'kysely';
import type { Database } from '../../db/database';
import { prepareStatement } from '../../db/prepared';

/** The shipment columns a tracking view is built from (plus `recent_events as events`). */
export const SHIPMENT_VIEW_COLUMNS = [
  'id',
  'courier',
  'tracking_number',
  'status',
  'eta',
  'last_synced_at',
  'sync_error',
  // What freshness is judged by (src/domain/freshness.ts).
  'next_poll_at',
  'sync_failing_since',
  'created_at',
] as const;

/**
 * Shipments with their newest events: a tracking read of one shipment is one index lookup
 * of one row. Narrow it with `.where(...)` and order it as the caller needs.
 */
export function selectShipmentViews(db: Kysely<Database>) {
  return db.selectFrom('shipments').select([...SHIPMENT_VIEW_COLUMNS, 'recent_events as events']);
}

export type ShipmentViewRow = Awaited<ReturnType<ReturnType<typeof selectShipmentViews>['execute']>>[number];

/** Builds and compiles queries, never runs them (the queries below are run by the caller's db). */
const compiler = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/**
 * A query compiled once, run with one parameter. The query is built with a marker value,
 * and the compiled parameters must be exactly that marker, so a query that grows another
 * parameter fails at load time instead of running with the wrong values.
 */
function prepared<Row>(build: (db: Kysely<Database>, param: string) => Compilable<Row>) {
  const marker = '\u0000parameter';
  const compiled = build(compiler, marker).compile();
  if (compiled.parameters.length !== 1 || compiled.parameters[0] !== marker) {
    throw new Error(`a prepared read takes exactly one parameter: ${compiled.sql}`);
  }
  prepareStatement(compiled.sql);
  return async (db: Kysely<Database>, param: string): Promise<Row[]> =>
    (await db.executeQuery<Row>({ ...compiled, parameters: [param] })).rows;
}

function selectOrderTracking(db: Kysely<Database>) {
  return db
    .selectFrom('orders as o')
    .leftJoin('shipments as s', 's.order_id', 'o.id')
    .select([
      'o.id as order_id',
      'o.number as order_number',
      'o.status as order_status',
      'o.customer_id as order_customer_id',
      'o.email as order_email',
      'o.postcode as order_postcode',
      's.id',
      's.courier',
      's.tracking_number',
      's.status',
      's.eta',
      's.last_synced_at',
      's.sync_error',
      's.next_poll_at',
      's.sync_failing_since',
      's.created_at',
      's.recent_events as events',
    ])
    .orderBy('s.id');
}

type OrderTrackingRow = Awaited<ReturnType<ReturnType<typeof selectOrderTracking>['execute']>>[number];

export interface OrderTrackingRecord {
  order: {
    id: string;
    number: string;
    status: string;
    customerId: string | null;
    email: string;
    postcode: string | null;
  };
  /** Ordered by shipment id. */
  shipments: ShipmentViewRow[];
}

function toRecord(rows: OrderTrackingRow[]): OrderTrackingRecord | null {
  const first = rows[0];
  if (!first) return null;
  const shipments: ShipmentViewRow[] = [];
  for (const r of rows) {
    // The left join gives one row with null shipment columns for an order without shipments.
    if (r.id === null) continue;
    shipments.push({
      id: r.id,
      courier: r.courier!,
      tracking_number: r.tracking_number!,
      status: r.status!,
      eta: r.eta,
      last_synced_at: r.last_synced_at,
      sync_error: r.sync_error,
      next_poll_at: r.next_poll_at,
      sync_failing_since: r.sync_failing_since,
      created_at: r.created_at!,
      events: r.events!,
    });
  }
  return {
    order: {
      id: first.order_id,
      number: first.order_number,
      status: first.order_status,
      customerId: first.order_customer_id,
      email: first.order_email,
      postcode: first.order_postcode,
    },
    shipments,
  };
}

const byOrderId = prepared((db, id) => selectOrderTracking(db).where('o.id', '=', id));
const byOrderNumber = prepared((db, number) => selectOrderTracking(db).where('o.number', '=', number));
const byTrackingNumber = prepared((db, trackingNumber) =>
  selectShipmentViews(db)
    .where('tracking_number', '=', trackingNumber)
    .where('archived_at', 'is', null)
    .orderBy('created_at', 'desc'),
);

/** An order (by id) with the tracking of its shipments, in one statement; null when there is no such order. */
export async function orderTrackingById(
  db: Kysely<Database>,
  orderId: string,
): Promise<OrderTrackingRecord | null> {
  return toRecord(await byOrderId(db, orderId));
}

/** An order (by its number, as stored: upper case) with the tracking of its shipments, in one statement. */
export async function orderTrackingByNumber(
  db: Kysely<Database>,
  orderNumber: string,
): Promise<OrderTrackingRecord | null> {
  return toRecord(await byOrderNumber(db, orderNumber));
}

/** The newest unarchived shipment with this tracking number, with its events; undefined when none. */
export async function shipmentByTrackingNumber(
  db: Kysely<Database>,
  trackingNumber: string,
): Promise<ShipmentViewRow | undefined> {
  return (await byTrackingNumber(db, trackingNumber))[0];
}

/** The order's shipments with their newest events, by id. */
export async function shipmentViewsOfOrder(
  db: Kysely<Database>,
  orderId: string,
): Promise<ShipmentViewRow[]> {
  return selectShipmentViews(db).where('order_id', '=', orderId).orderBy('id').execute();
}

/** These shipments with their newest events, in no particular order. */
export async function shipmentViewsByIds(
  db: Kysely<Database>,
  shipmentIds: string[],
): Promise<ShipmentViewRow[]> {
  return selectShipmentViews(db).where('id', 'in', shipmentIds).execute();
}

/** The tracking stream's columns: the view's, with the sub-status and the row's version. */
const STREAM_SHIPMENT_COLUMNS = [...SHIPMENT_VIEW_COLUMNS, 'sub_status', 'version'] as const;

/** The order's shipments as the tracking stream compares them between looks, by id. */
export async function streamShipmentsOf(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('shipments')
    .select(STREAM_SHIPMENT_COLUMNS)
    .where('order_id', '=', orderId)
    .orderBy('id')
    .execute();
}

export type StreamShipmentRow = Awaited<ReturnType<typeof streamShipmentsOf>>[number];

/** The highest `tracking_events.id` of each of these shipments that has events. */
export async function lastEventIds(db: Kysely<Database>, shipmentIds: string[]) {
  return db
    .selectFrom('tracking_events')
    .select(['shipment_id', (eb) => eb.fn.max('id').as('max')])
    .where('shipment_id', 'in', shipmentIds)
    .groupBy('shipment_id')
    .execute();
}

/** Each shipment's events after the given event id, in id order (the order they were written). */
export async function eventsAfter(db: Kysely<Database>, after: { shipmentId: string; eventId: number }[]) {
  return db
    .selectFrom('tracking_events')
    .select(['id', 'shipment_id', 'status', 'occurred_at', 'location_city', 'location_country'])
    .where((eb) =>
      eb.or(after.map((a) => eb.and([eb('shipment_id', '=', a.shipmentId), eb('id', '>', a.eventId)]))),
    )
    .orderBy('id')
    .execute();
}
