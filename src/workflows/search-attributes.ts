/**
 * Custom search attributes: what ops filter workflows by in the Temporal UI and CLI
 * (`temporal workflow list --query 'ShipmentStatus="EXCEPTION"'`). The one definition of
 * their names and types: the worker adds them to any Temporal at start
 * (src/search-attributes.ts), the dev and test servers register them when they start,
 * docker-compose runs the worker's command for them (test/docker-compose.test.ts checks it).
 * Kept current by the workflows.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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
