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
 * delivery row per endpoint subscribed to its type (the SQL: src/read-model/events.ts); the
 * dispatcher (dispatcher.ts) sends them.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { orderEventType, shipmentEventType } from '../domain/events';
import type { ShipmentStatus } from '../domain/status';
import { insertEvent } from '../read-model/events';

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
  return insertEvent(trx, {
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
  return insertEvent(trx, {
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
