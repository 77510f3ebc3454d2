/**
 * Which courier carries a parcel: the server's choice for the warehouse it ships from, else
 * the order's default. The API records it on the order, the saga books each parcel with it.
 * Pure code: safe inside the workflow sandbox.
 */
import type { CourierCode } from '../couriers/types';

export interface CourierChoice {
  /** The courier of every parcel whose ship-from place has no entry in `courierByShipFrom`. */
  courier: CourierCode;
  /** The courier per ship-from place (warehouse), as configured; absent: `courier` for all. */
  courierByShipFrom?: Record<string, CourierCode>;
}

export function courierFor(choice: CourierChoice, shipFrom: string): CourierCode {
  const byPlace = choice.courierByShipFrom;
  return byPlace && Object.hasOwn(byPlace, shipFrom) ? byPlace[shipFrom]! : choice.courier;
}
