/**
 * Custom search attributes: what ops filter workflows by in the Temporal UI and CLI
 * (`temporal workflow list --query 'ShipmentStatus="EXCEPTION"'`). The one definition of
 * their names and types: the worker adds them to any Temporal at start
 * (src/search-attributes.ts), the dev and test servers register them when they start,
 * docker-compose runs the worker's command for them (test/docker-compose.test.ts checks it).
 * Kept current by the workflows.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { ShipmentStatus } from '../domain/status';
import type { ShipmentWorkflowInput } from './contract';

export const OrderIdKey = defineSearchAttributeKey('OrderId', SearchAttributeType.KEYWORD);
export const ShipmentStatusKey = defineSearchAttributeKey('ShipmentStatus', SearchAttributeType.KEYWORD);
export const CourierKey = defineSearchAttributeKey('Courier', SearchAttributeType.KEYWORD);
export const TrackingNumberKey = defineSearchAttributeKey('TrackingNumber', SearchAttributeType.KEYWORD);
export const OrderStatusKey = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [
  OrderIdKey,
  ShipmentStatusKey,
  CourierKey,
  TrackingNumberKey,
  OrderStatusKey,
  CustomerIdKey,
] as const;

/** A parcel's attributes: set by whoever starts its workflow, kept current by the workflow. */
export function shipmentSearchAttributes(
  input: Pick<ShipmentWorkflowInput, 'courier' | 'trackingNumber'> & { orderId?: string | null },
  status: ShipmentStatus,
): SearchAttributePair[] {
  return [
    { key: ShipmentStatusKey, value: status },
    { key: CourierKey, value: input.courier },
    { key: TrackingNumberKey, value: input.trackingNumber },
    ...(input.orderId ? [{ key: OrderIdKey, value: input.orderId }] : []),
  ];
}
