/**
 * The HTTP contract of the customers' order routes (src/api/routes/orders.ts and
 * order-create.ts): what a request may carry and what each answer holds, as TypeBox schemas
 * that are also the handlers' types and the OpenAPI document's.
 */
import { Type, type Static } from 'typebox';
import { COURIER_CODES, type CourierCode } from '../../couriers/types';
import {
  CourierCodeText,
  Currency,
  DateTime,
  IdText,
  Money,
  NullableDateTime,
  OrderNumber,
  OrderStatusName as OrderStatusSchema,
  Text,
  TrackingNumber,
} from './common';
import { ShipmentTrackingView, StatusSchema } from '../tracking-view';

/** Lines an order may have; it has at most as many parcels (one per ship-from place). */
const MAX_LINES = 50;
const MAX_QUANTITY = 1000;
const OrderId = IdText('The order id, e.g. ord_…');
export const Sku = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', maxLength: 64 });
/** A path of this API, e.g. /v1/orders/ord_…/tracking. */
const Link = Type.String({ pattern: '^/v1/[A-Za-z0-9/_-]{1,200}$', maxLength: 204 });

export const OrderIdParams = Type.Object({
  orderId: Type.String({
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    maxLength: 64,
    description: 'The order id returned at creation',
  }),
});

const Address = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    line1: Type.String({ minLength: 1, maxLength: 200 }),
    line2: Type.Optional(Type.String({ maxLength: 200 })),
    city: Type.String({ minLength: 1, maxLength: 100 }),
    state: Type.Optional(Type.String({ maxLength: 100 })),
    postcode: Type.String({ pattern: '^[A-Za-z0-9 -]{2,12}$', maxLength: 12 }),
    country: Type.String({ pattern: '^[A-Z]{2}$', maxLength: 2, description: 'ISO 3166-1 alpha-2, e.g. MY' }),
    phone: Type.Optional(Type.String({ pattern: '^\\+?[0-9 ()-]{5,20}$', maxLength: 21 })),
  },
  { additionalProperties: false },
);

export const CreateOrderBody = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254 }),
    shippingAddress: Address,
    lines: Type.Array(
      Type.Object(
        {
          sku: Sku,
          quantity: Type.Integer({ format: 'int32', minimum: 1, maximum: MAX_QUANTITY }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_LINES },
    ),
    courier: Type.Optional(
      Type.Unsafe<CourierCode>({
        type: 'string',
        enum: COURIER_CODES,
        description:
          'Development only (WAYBILL_ENV=development: demos and tests): every parcel goes with this courier. Elsewhere refused with 400 COURIER_NOT_CHOOSABLE: the server picks each parcel’s courier from the warehouse it ships from.',
      }),
    ),
    payment: Type.Object(
      {
        token: Type.String({
          pattern: '^[A-Za-z0-9_]{3,128}$',
          maxLength: 128,
          description:
            "A payment token from the shop's checkout (e.g. tok_visa with the simulator). A card number (13–19 digits passing Luhn, spaces or dashes allowed) is refused with 400 CARD_DATA_REFUSED.",
        }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, $id: 'CreateOrder' },
);
export type CreateOrderBody = Static<typeof CreateOrderBody>;

/** The `Idempotency-Key` header (required), described for one kind of request. */
export const idempotencyHeaders = (description: string) =>
  Type.Object({
    'idempotency-key': Type.String({ pattern: '^[A-Za-z0-9_-]{8,128}$', maxLength: 128, description }),
  });

export const IdempotencyHeaders = idempotencyHeaders(
  'A unique key per order attempt (e.g. a UUID); retries reuse it',
);

export const OrderCreated = Type.Object(
  {
    orderId: OrderId,
    orderNumber: OrderNumber,
    status: OrderStatusSchema,
    links: Type.Object({ self: Link, tracking: Link }),
  },
  { additionalProperties: false, $id: 'OrderCreated' },
);

export const OrderView = Type.Object(
  {
    orderId: OrderId,
    orderNumber: OrderNumber,
    status: OrderStatusSchema,
    failure: Type.Union([
      Type.Object(
        {
          code: Type.String({
            pattern: '^[A-Z][A-Z0-9_]*$',
            maxLength: 64,
            description: 'e.g. PAYMENT_DECLINED, OUT_OF_STOCK, NEEDS_ATTENTION',
          }),
          message: Text(1000, { description: 'Our own sentence for the customer' }),
          detail: Type.Optional(
            Text(2000, { description: "The payment provider's or courier's own text; staff only" }),
          ),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    email: Type.String({ format: 'email', maxLength: 254 }),
    currency: Currency,
    totalAmount: Money,
    courier: CourierCodeText("The courier of the order's first parcel; each shipment names its own"),
    shippingAddress: Address,
    createdAt: DateTime,
    updatedAt: DateTime,
    lines: Type.Array(
      Type.Object({
        lineNo: Type.Integer({ format: 'int32', minimum: 1, maximum: MAX_LINES }),
        sku: Sku,
        name: Text(200),
        quantity: Type.Integer({ format: 'int32', minimum: 1, maximum: MAX_QUANTITY }),
        unitAmount: Money,
        shipmentId: Type.Union([IdText(), Type.Null()]),
      }),
      { maxItems: MAX_LINES },
    ),
    shipments: Type.Array(
      Type.Object({
        shipmentId: IdText(),
        courier: CourierCodeText(),
        trackingNumber: TrackingNumber,
        status: StatusSchema,
        eta: NullableDateTime,
        lastUpdatedAt: NullableDateTime,
      }),
      { maxItems: MAX_LINES, description: 'One per place the lines ship from' },
    ),
    payment: Type.Union([
      Type.Object({
        status: Type.String({
          pattern: '^[A-Z_]{1,32}$',
          maxLength: 32,
          description: 'e.g. AUTHORISED, CAPTURED',
        }),
        amountAuthorised: Money,
        amountCaptured: Money,
        amountRefunded: Money,
      }),
      Type.Null(),
    ]),
  },
  { additionalProperties: false, $id: 'Order' },
);

export const OrderTracking = Type.Object(
  {
    orderId: OrderId,
    orderNumber: OrderNumber,
    status: OrderStatusSchema,
    shipments: Type.Array(ShipmentTrackingView, { maxItems: MAX_LINES }),
    message: Type.Unsafe<string | null>({
      type: ['string', 'null'],
      maxLength: 1000,
      description: 'Why the data is not live when a refresh was asked for',
    }),
  },
  { additionalProperties: false, $id: 'OrderTracking' },
);

export const GuestOrderTracking = Type.Object(
  {
    orderNumber: OrderNumber,
    status: OrderStatusSchema,
    shipments: Type.Array(Type.Omit(ShipmentTrackingView, ['shipmentId']), { maxItems: MAX_LINES }),
  },
  { additionalProperties: false, $id: 'GuestOrderTracking' },
);

export const GuestLookupBody = Type.Object(
  {
    orderNumber: Type.String({ pattern: '^[A-Za-z0-9-]{3,32}$', maxLength: 32 }),
    email: Type.Optional(Type.String({ maxLength: 254, minLength: 3 })),
    postcode: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9 -]{2,12}$', maxLength: 12 })),
  },
  { additionalProperties: false },
);

export const CancelBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) },
  { additionalProperties: false },
);

export const CancelResult = Type.Object(
  {
    orderId: OrderId,
    status: Type.Union([Type.Literal('CANCELLED'), Type.Literal('CANCELLING')]),
    message: Text(200),
  },
  { additionalProperties: false, $id: 'CancelResult' },
);
