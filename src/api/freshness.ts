/**
 * What the API tells customers about a shipment's status in its own words. How current the
 * data is (`freshness`) is the rule in src/domain/freshness.ts.
 */
import type { ShipmentStatus } from '../domain/status';

/** Customer-facing text per status: our words, never the courier's free text (it can name people). */
export const STATUS_TEXT: Record<ShipmentStatus, string> = {
  PENDING: 'Waiting for the courier',
  INFO_RECEIVED: 'The courier has the shipment details',
  IN_TRANSIT: 'On its way',
  OUT_FOR_DELIVERY: 'Out for delivery',
  AVAILABLE_FOR_PICKUP: 'Ready for collection',
  ATTEMPT_FAIL: 'Delivery attempted',
  DELIVERED: 'Delivered',
  EXCEPTION: 'Delayed: the courier reported a problem',
  RETURNING: 'On its way back to the shop',
  RETURNED: 'Returned to the shop',
  CANCELLED: 'Cancelled',
  EXPIRED: 'No further tracking updates',
};
