/**
 * The read-model queries behind the tracking reads (customer, guest by order number, guest
 * by tracking number). Each read is one SQL statement answering one JSON value, of one row:
 * the order with its shipments' view kept on it (`orders.tracking_view`, by triggers on
 * `shipments`), or the shipment (each carrying its newest events, `recent_events`, kept by the
 * record activity), times as epoch ms, so a read is one round trip and one index lookup, and
 * the driver parses one value (one `JSON.parse`) instead of a row per shipment with a text
 * timestamp to parse per column.
 *
 * They are compiled once at load time and run with new parameter values, so a request
 * builds and compiles no SQL, and sent as named statements (db/prepared.ts), so Postgres
 * parses and plans each once per connection instead of on every read.
 */
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type CompiledQuery,
} from 'kysely';
import type { Database, RecentEvent } from '../../db/database';
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

/** A shipment as a tracking view is built from: its view columns, times as epoch ms. */
export interface TrackingShipment {
  id: string;
  courier: string;
  trackingNumber: string;
  status: string;
  eta: number | null;
  lastSyncedAt: number | null;
  syncError: string | null;
  nextPollAt: number | null;
  syncFailingSince: number | null;
  createdAt: number;
  /** Newest first. */
  events: RecentEvent[];
}

const ms = (date: Date | null) => (date === null ? null : date.getTime());

/** A row of {@link selectShipmentViews} as a {@link TrackingShipment}. */
export function trackingShipmentOf(row: ShipmentViewRow): TrackingShipment {
  return {
    id: row.id,
    courier: row.courier,
    trackingNumber: row.tracking_number,
    status: row.status,
    eta: ms(row.eta),
    lastSyncedAt: ms(row.last_synced_at),
    syncError: row.sync_error,
    nextPollAt: ms(row.next_poll_at),
    syncFailingSince: ms(row.sync_failing_since),
    createdAt: row.created_at.getTime(),
    events: row.events,
  };
}

/** Compiles SQL, never runs it (the statements below are run by the caller's db). */
const compiler = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/**
 * A statement answering at most one row of one JSON column `t`, compiled once and run with
 * one parameter. It is built with a marker value, and the compiled parameters must be
 * exactly that marker, so a statement that grows another parameter fails at load time
 * instead of running with the wrong values.
 */
function jsonRead<T>(build: (param: string) => { compile(db: Kysely<Database>): CompiledQuery }) {
  const marker = '\u0000parameter';
  const compiled = build(marker).compile(compiler);
  if (compiled.parameters.length !== 1 || compiled.parameters[0] !== marker) {
    throw new Error(`a prepared read takes exactly one parameter: ${compiled.sql}`);
  }
  prepareStatement(compiled.sql);
  const { sql: text, query } = compiled;
  return async (db: Kysely<Database>, param: string): Promise<T | null> => {
    const { rows } = await db.executeQuery<{ t: T }>({
      sql: text,
      query,
      parameters: [param],
      queryId: compiled.queryId,
    });
    return rows[0]?.t ?? null;
  };
}

/** Epoch ms of a timestamptz (truncated, as a JS Date keeps it), or null. */
const epochMs = (column: string) => sql`floor(extract(epoch from ${sql.ref(column)}) * 1000)`;

/**
 * One shipment row `s` as a {@link TrackingShipment}. The order's view (`orders.tracking_view`,
 * kept by triggers) builds each shipment the same way, in SQL of its own
 * (`waybill_order_tracking_view`); test/read-model/order-tracking-view.test.ts holds the two to
 * each other.
 */
export const shipmentJson = sql`json_build_object(
  'id', s.id, 'courier', s.courier, 'trackingNumber', s.tracking_number, 'status', s.status,
  'eta', ${epochMs('s.eta')}, 'lastSyncedAt', ${epochMs('s.last_synced_at')}, 'syncError', s.sync_error,
  'nextPollAt', ${epochMs('s.next_poll_at')}, 'syncFailingSince', ${epochMs('s.sync_failing_since')},
  'createdAt', ${epochMs('s.created_at')}, 'events', s.recent_events)`;

/**
 * The order (by the column named) with its shipments, ordered by id, as one
 * {@link OrderTrackingRecord}: one row, its shipments' view kept on it by triggers, so a read
 * is one index lookup and no join or aggregate (about a third of Postgres's time per read).
 */
const orderJson = (column: 'id' | 'number', value: string) => sql`
  select json_build_object(
    'order', json_build_object('id', o.id, 'number', o.number, 'status', o.status,
                               'customerId', o.customer_id, 'email', o.email, 'postcode', o.postcode),
    'shipments', o.tracking_view) as t
  from orders o where ${sql.ref(`o.${column}`)} = ${value}`;

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
  shipments: TrackingShipment[];
}

const byOrderId = jsonRead<OrderTrackingRecord>((id) => orderJson('id', id));
const byOrderNumber = jsonRead<OrderTrackingRecord>((number) => orderJson('number', number));
const byTrackingNumber = jsonRead<TrackingShipment>(
  (trackingNumber) => sql`
    select ${shipmentJson} as t from shipments s
    where s.tracking_number = ${trackingNumber} and s.archived_at is null
    order by s.created_at desc limit 1`,
);

/** An order (by id) with the tracking of its shipments, in one statement; null when there is no such order. */
export async function orderTrackingById(
  db: Kysely<Database>,
  orderId: string,
): Promise<OrderTrackingRecord | null> {
  return byOrderId(db, orderId);
}

/** An order (by its number, as stored: upper case) with the tracking of its shipments, in one statement. */
export async function orderTrackingByNumber(
  db: Kysely<Database>,
  orderNumber: string,
): Promise<OrderTrackingRecord | null> {
  return byOrderNumber(db, orderNumber);
}

/** The newest unarchived shipment with this tracking number, with its events; null when none. */
export async function shipmentByTrackingNumber(
  db: Kysely<Database>,
  trackingNumber: string,
): Promise<TrackingShipment | null> {
  return byTrackingNumber(db, trackingNumber);
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
