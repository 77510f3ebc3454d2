/**
 * An order's parcels as the saga sees them: one per place its lines ship from, and what
 * happened to each so far. Deterministic code only.
 */
import type { CourierCode } from '../couriers/types';
import { courierFor, type CourierChoice } from '../domain/courier-choice';
import { ShipmentStatus } from '../domain/status';
import { MARKED_BY_ADMIN, orderShipmentId, type OrderLineInput, type OrderWorkflowInput } from './contract';

export interface Parcel {
  shipmentId: string;
  /** Who carries it: the server's courier for its ship-from place. */
  courier: CourierCode;
  lines: OrderLineInput[];
  trackingNumber: string | null;
  status: ShipmentStatus;
  /** The courier has had it at some point (a later EXCEPTION or EXPIRED does not undo that). */
  pickedUp: boolean;
  /** Its stock moved from reserved to shipped (at its pickup). */
  consumed: boolean;
  returnSettled: boolean;
  /**
   * It came back or never arrived while nothing was captured yet (the capture parked): its
   * refund is owed if a capture succeeds later (an admin's retry takes the whole total).
   */
  refundOwed: boolean;
  /** Its booking is gone at the courier (cancelled, or unknown there). */
  bookingCancelled: boolean;
  /** Its shipment workflow has been started. */
  tracked: boolean;
  /** Why tracking ended without the courier's final word (the child failed or was terminated). */
  trackingEnded: string | null;
  /** Its shipment workflow ended without a final status and the order waits for a restart (why it ended). */
  trackingLost: string | null;
  /** Counts deaths and restarts of its tracking: a stale restart window never settles a restarted parcel. */
  trackingGeneration: number;
  /** Its tracking died and was not restarted: the courier is asked once more before it is settled. */
  settling: boolean;
  /**
   * An admin marked it delivered with no pickup reported before: the courier may never have
   * collected it (the shop took it round), so its booking is released when the order finishes.
   * A parcel the courier was seen to collect keeps its booking (a cancel would be refused).
   */
  markedDelivered: boolean;
}

/** One parcel per ship-from place, in first-seen order (deterministic), with its courier. */
export function groupParcels(input: Pick<OrderWorkflowInput, 'orderId' | 'lines'> & CourierChoice): Parcel[] {
  const byPlace = new Map<string, OrderLineInput[]>();
  for (const line of input.lines) {
    byPlace.set(line.shipFrom, [...(byPlace.get(line.shipFrom) ?? []), line]);
  }
  return [...byPlace].map(([shipFrom, group], i) => ({
    shipmentId: orderShipmentId(input.orderId, i + 1),
    courier: courierFor(input, shipFrom),
    lines: group,
    trackingNumber: null,
    status: ShipmentStatus.PENDING,
    pickedUp: false,
    consumed: false,
    returnSettled: false,
    refundOwed: false,
    bookingCancelled: false,
    tracked: false,
    trackingEnded: null,
    trackingLost: null,
    trackingGeneration: 0,
    settling: false,
    markedDelivered: false,
  }));
}

/**
 * Takes the sub-status of the parcel's end (a milestone, its workflow's result, or the read
 * model's word): an admin's mark with no pickup reported before sets {@link Parcel.markedDelivered}.
 * Call it before the end's status marks the parcel picked up.
 */
export function noteMarkedDelivered(parcel: Parcel, subStatus: string | null): void {
  if (subStatus === MARKED_BY_ADMIN && !parcel.pickedUp) parcel.markedDelivered = true;
}

/** Minor units: what these lines cost. */
export const lineValue = (lines: OrderLineInput[]) =>
  lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0);
