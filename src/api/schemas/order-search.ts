/**
 * The HTTP contract of the staff order search (src/api/routes/order-search.ts). The search
 * is a POST with a JSON body, not a GET: a customer's e-mail stays out of URLs, access logs
 * and proxies' logs.
 */
import { Type } from 'typebox';
import { OrderStatus } from '../../workflows/contract';
import {
  Currency,
  CourierCodeText,
  DateTime,
  IdText,
  Money,
  OrderNumber,
  OrderStatusName,
  TrackingNumber,
} from './common';

export const SEARCH_PAGE_DEFAULT = 25;
export const SEARCH_PAGE_MAX = 100;

export const SearchBody = Type.Object(
  {
    orderNumber: Type.Optional(OrderNumber),
    email: Type.Optional(
      Type.String({
        format: 'email',
        maxLength: 254,
        description: 'The whole address, any case (exact match, case-insensitive; no partial matches)',
      }),
    ),
    trackingNumber: Type.Optional(TrackingNumber),
    status: Type.Optional(
      Type.Array(OrderStatusName, {
        minItems: 1,
        maxItems: Object.values(OrderStatus).length,
        uniqueItems: true,
      }),
    ),
    createdFrom: Type.Optional(
      Type.String({ format: 'date-time', maxLength: 30, description: 'Created at or after' }),
    ),
    createdTo: Type.Optional(
      Type.String({ format: 'date-time', maxLength: 30, description: 'Created before' }),
    ),
    limit: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: SEARCH_PAGE_MAX,
        default: SEARCH_PAGE_DEFAULT,
        description: `Page size (1 to ${SEARCH_PAGE_MAX})`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description: 'nextCursor of the previous page (same filters)',
      }),
    ),
  },
  { additionalProperties: false },
);

const OrderMatch = Type.Object(
  {
    orderId: IdText(),
    orderNumber: OrderNumber,
    status: OrderStatusName,
    email: Type.String({ format: 'email', maxLength: 254 }),
    currency: Currency,
    totalAmount: Money,
    courier: CourierCodeText(),
    trackingNumbers: Type.Array(TrackingNumber, { maxItems: 100 }),
    createdAt: DateTime,
  },
  {
    additionalProperties: false,
    description:
      'What GET /v1/orders/{orderId} shows support, less the address and lines: open the order for those',
  },
);

export const SearchPage = Type.Object(
  {
    items: Type.Array(OrderMatch, { maxItems: SEARCH_PAGE_MAX }),
    nextCursor: Type.Union(
      [Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$', maxLength: 512 }), Type.Null()],
      {
        description: 'Pass as `cursor` (with the same filters) for the next page; null on the last page',
      },
    ),
  },
  { additionalProperties: false },
);
