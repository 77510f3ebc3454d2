/**
 * The one shipment status taxonomy, shared by couriers, workflows, activities and the API.
 * Pure code: safe inside the workflow sandbox.
 */
export const ShipmentStatus = {
  PENDING: 'PENDING',
  INFO_RECEIVED: 'INFO_RECEIVED',
  IN_TRANSIT: 'IN_TRANSIT',
  OUT_FOR_DELIVERY: 'OUT_FOR_DELIVERY',
  AVAILABLE_FOR_PICKUP: 'AVAILABLE_FOR_PICKUP',
  ATTEMPT_FAIL: 'ATTEMPT_FAIL',
  DELIVERED: 'DELIVERED',
  EXCEPTION: 'EXCEPTION',
  RETURNING: 'RETURNING',
  RETURNED: 'RETURNED',
  CANCELLED: 'CANCELLED',
  EXPIRED: 'EXPIRED',
} as const;
export type ShipmentStatus = (typeof ShipmentStatus)[keyof typeof ShipmentStatus];
export const SHIPMENT_STATUSES = Object.values(ShipmentStatus) as ShipmentStatus[];

/** Statuses after which the shipment workflow stops polling. */
export const TERMINAL_STATUSES: ReadonlySet<ShipmentStatus> = new Set([
  ShipmentStatus.DELIVERED,
  ShipmentStatus.RETURNED,
  ShipmentStatus.CANCELLED,
  ShipmentStatus.EXPIRED,
]);

/**
 * Statuses that mean the courier has had the parcel: the saga's pickup moment (capture,
 * stock shipped, no more cancels). A later EXCEPTION or EXPIRED does not undo a pickup.
 */
export const PICKED_UP_STATUSES: ReadonlySet<ShipmentStatus> = new Set([
  ShipmentStatus.IN_TRANSIT,
  ShipmentStatus.OUT_FOR_DELIVERY,
  ShipmentStatus.AVAILABLE_FOR_PICKUP,
  ShipmentStatus.ATTEMPT_FAIL,
  ShipmentStatus.DELIVERED,
  ShipmentStatus.RETURNING,
  ShipmentStatus.RETURNED,
]);

export function isPickedUpStatus(status: string): boolean {
  return (PICKED_UP_STATUSES as ReadonlySet<string>).has(status);
}

export function isTerminal(status: ShipmentStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export function isShipmentStatus(value: unknown): value is ShipmentStatus {
  return typeof value === 'string' && (SHIPMENT_STATUSES as string[]).includes(value);
}

/**
 * Whether the snapshot may move from `from` to `to`. A delivered parcel only ever moves on
 * into a return; finished shipments (returned, cancelled, expired) never move again.
 */
export function canTransition(from: ShipmentStatus, to: ShipmentStatus): boolean {
  if (from === to) return true;
  if (from === ShipmentStatus.DELIVERED)
    return to === ShipmentStatus.RETURNING || to === ShipmentStatus.RETURNED;
  if (from === ShipmentStatus.RETURNED || from === ShipmentStatus.CANCELLED) return false;
  return true;
}

/** Where a tracking event came from. */
export const EventSource = { POLL: 'poll', PUSH: 'push', MANUAL: 'manual' } as const;
export type EventSource = (typeof EventSource)[keyof typeof EventSource];
