/**
 * The domain events a shop can subscribe to (docs/events.md): what each one means, and which
 * read-model change writes it. Pure code: the activities, the dispatcher and the API share it.
 */
import type { ShipmentStatus } from './status';

export const EventType = {
  /** The order was accepted by the API (status PENDING): the saga is about to run. */
  ORDER_CREATED: 'order.created',
  /** Stock reserved, payment authorised, parcels booked: the order will ship. */
  ORDER_CONFIRMED: 'order.confirmed',
  /** Some of the order's parcels have been collected by the courier, not all yet. */
  ORDER_PARTIALLY_SHIPPED: 'order.partially_shipped',
  /** Every parcel of the order has been collected by the courier. */
  ORDER_SHIPPED: 'order.shipped',
  /** Every parcel of the order has been delivered. */
  ORDER_DELIVERED: 'order.delivered',
  /** Cancelled before pickup (by the customer or an admin); money and stock given back. */
  ORDER_CANCELLED: 'order.cancelled',
  /** A saga step failed for good; `failureCode` and `failureMessage` say which and why. */
  ORDER_FAILED: 'order.failed',
  /** The parcels came back to the shop; refunded and restocked. */
  ORDER_RETURNED: 'order.returned',
  /** Parked for an admin: a step the payment provider or courier refused for good. */
  ORDER_NEEDS_ATTENTION: 'order.needs_attention',
  /** The courier has the parcel's details (label printed), not the parcel yet. */
  SHIPMENT_INFO_RECEIVED: 'shipment.info_received',
  /** Collected by the courier and on its way. */
  SHIPMENT_IN_TRANSIT: 'shipment.in_transit',
  /** With the driver for delivery today. */
  SHIPMENT_OUT_FOR_DELIVERY: 'shipment.out_for_delivery',
  /** Waiting for the customer at a pickup point. */
  SHIPMENT_AVAILABLE_FOR_PICKUP: 'shipment.available_for_pickup',
  /** Delivered to the customer. */
  SHIPMENT_DELIVERED: 'shipment.delivered',
  /** On its way back to the shop. */
  SHIPMENT_RETURNING: 'shipment.returning',
  /** Back at the shop. */
  SHIPMENT_RETURNED: 'shipment.returned',
  /** The booking was cancelled (the order was cancelled or failed before pickup). */
  SHIPMENT_CANCELLED: 'shipment.cancelled',
  /**
   * Something went wrong on the way: a failed delivery attempt (ATTEMPT_FAIL), a courier
   * exception (EXCEPTION), or no scan for too long (EXPIRED); `status` says which.
   */
  SHIPMENT_EXCEPTION: 'shipment.exception',
  /**
   * One of the shop's own fleet runs has gone silent: no driver report for the configured time
   * while parcels are still to be delivered (docs/fleet.md). Once per silence.
   */
  FLEET_RUN_SILENT: 'fleet.run_silent',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];
export const EVENT_TYPES = Object.values(EventType) as EventType[];

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as string[]).includes(value);
}

/** The event an order entering `status` writes; null for none. */
export function orderEventType(status: string): EventType | null {
  const type = `order.${status.toLowerCase()}`;
  return status === 'PENDING' ? EventType.ORDER_CREATED : isEventType(type) ? type : null;
}

const SHIPMENT_EXCEPTIONS: ReadonlySet<string> = new Set(['ATTEMPT_FAIL', 'EXCEPTION', 'EXPIRED']);

/** The event a parcel entering `status` writes; null for none (PENDING: booked, nothing to say yet). */
export function shipmentEventType(status: ShipmentStatus): EventType | null {
  if (SHIPMENT_EXCEPTIONS.has(status)) return EventType.SHIPMENT_EXCEPTION;
  const type = `shipment.${status.toLowerCase()}`;
  return isEventType(type) ? type : null;
}
