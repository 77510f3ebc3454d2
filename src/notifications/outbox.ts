/**
 * The outbox: a domain event is a row written in the same transaction as the read-model
 * change it reports, so a change committed always has its event and a change rolled back
 * never does. The caller passes its transaction and writes the event only when the status
 * really changed (a retried activity finds it already changed and writes nothing); the
 * event's key (the subject, the status, and how many times the subject entered it before)
 * is unique, so even a racing second write of the same change is refused.
 *
 * The event gets the next sequence number of its stream (its order, or its parcel when it
 * has none) under a row lock, so the events of one order commit in sequence order, and one
 * delivery row per endpoint subscribed to its type; the dispatcher (dispatcher.ts) sends them.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { orderEventType, shipmentEventType, type EventType } from '../domain/events';
import type { ShipmentStatus } from '../domain/status';

interface NewEvent {
  type: EventType;
  /** `<subject>:<status>`: the change's key is this plus the subject's count of entries into it. */
  keyPrefix: string;
  orderId: string | null;
  shipmentId: string | null;
  data: Record<string, unknown>;
}

/** Writes one event and its deliveries in `trx`; answers its id, or null when its key was taken. */
async function writeEvent(trx: Kysely<Database>, event: NewEvent): Promise<number | null> {
  const stream = event.orderId ?? `shipment:${event.shipmentId}`;
  const seq = await nextSeq(trx, stream);
  // Counted under the stream's lock: two writers of one order never count the same number.
  const prefix = `${event.keyPrefix}:`;
  const { n } = await trx
    .selectFrom('event_outbox')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where(event.orderId !== null ? 'order_id' : 'shipment_id', '=', event.orderId ?? event.shipmentId)
    .where(sql<boolean>`starts_with(event_key, ${prefix})`)
    .executeTakeFirstOrThrow();
  return insertEvent(trx, { ...event, key: `${prefix}${Number(n) + 1}`, stream, seq });
}

/** The next sequence number of `stream`, its row locked until the transaction ends. */
async function nextSeq(trx: Kysely<Database>, stream: string): Promise<number> {
  const { last_seq: seq } = await trx
    .insertInto('event_streams')
    .values({ stream, last_seq: 1 })
    .onConflict((oc) =>
      oc.column('stream').doUpdateSet({ last_seq: sql<number>`event_streams.last_seq + 1` }),
    )
    .returning('last_seq')
    .executeTakeFirstOrThrow();
  return seq;
}

async function insertEvent(
  trx: Kysely<Database>,
  event: Omit<NewEvent, 'keyPrefix'> & { key: string; stream: string; seq: number },
): Promise<number | null> {
  const { stream, seq } = event;
  const inserted = await trx
    .insertInto('event_outbox')
    .values({
      event_key: event.key,
      type: event.type,
      stream,
      seq,
      order_id: event.orderId,
      shipment_id: event.shipmentId,
      data: JSON.stringify(event.data),
    })
    .onConflict((oc) => oc.column('event_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) return null;
  // Disabled endpoints too: their backlog goes out, in order, once an admin enables them again.
  await sql`
    insert into event_deliveries (endpoint_id, event_id, stream, seq)
    select id, ${inserted.id}, ${stream}, ${seq} from event_endpoints where ${event.type} = any(event_types)`.execute(
    trx,
  );
  return inserted.id;
}

/**
 * An event of neither an order nor a parcel (a fleet run's alarm), on its own stream, with
 * the key the caller makes unique per occurrence; null when that key was written before.
 */
export async function writeStreamEvent(
  trx: Kysely<Database>,
  event: { type: EventType; stream: string; key: string; data: Record<string, unknown> },
): Promise<number | null> {
  const seq = await nextSeq(trx, event.stream);
  return insertEvent(trx, { ...event, orderId: null, shipmentId: null, seq });
}

/** The event of an order entering `status` (none for a status without one). */
export async function writeOrderEvent(
  trx: Kysely<Database>,
  change: {
    orderId: string;
    orderNumber: string;
    status: string;
    failureCode: string | null;
    failureMessage: string | null;
  },
): Promise<number | null> {
  const type = orderEventType(change.status);
  if (type === null) return null;
  return writeEvent(trx, {
    type,
    keyPrefix: `order:${change.orderId}:${change.status}`,
    orderId: change.orderId,
    shipmentId: null,
    data: {
      orderNumber: change.orderNumber,
      status: change.status,
      failureCode: change.failureCode,
      failureMessage: change.failureMessage,
    },
  });
}

/** The event of a parcel entering `status` (none for a status without one). */
export async function writeShipmentEvent(
  trx: Kysely<Database>,
  change: {
    shipmentId: string;
    orderId: string | null;
    courier: string;
    trackingNumber: string;
    status: ShipmentStatus;
    subStatus: string | null;
    eta: string | null;
  },
): Promise<number | null> {
  const type = shipmentEventType(change.status);
  if (type === null) return null;
  return writeEvent(trx, {
    type,
    keyPrefix: `shipment:${change.shipmentId}:${change.status}`,
    orderId: change.orderId,
    shipmentId: change.shipmentId,
    data: {
      courier: change.courier,
      trackingNumber: change.trackingNumber,
      status: change.status,
      subStatus: change.subStatus,
      eta: change.eta,
    },
  });
}
