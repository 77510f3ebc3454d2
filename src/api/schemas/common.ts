/**
 * Bounded building blocks of the HTTP contract. Every string has a maximum length and every
 * integer a range (the OWASP rules Spectral checks the served document with, see
 * .spectral.yaml): in requests they are enforced, in responses they tell clients what
 * to expect. The bounds are the real ones: column sizes, what the routes accept, or what
 * our own messages can reach.
 */
import { Type } from 'typebox';
import { OrderStatus } from '../../workflows/contract';

/** Ids we issue (order, shipment, attention item): `ord_…`, `shp_…`-style, at most 128 characters. */
export const IdText = (description?: string) =>
  Type.String({
    pattern: '^[A-Za-z0-9_.:-]{1,128}$',
    maxLength: 128,
    ...(description ? { description } : {}),
  });

/** An ISO 8601 timestamp as `Date.toISOString()` writes it (24 characters; 27 for far years). */
export const DateTime = Type.String({ format: 'date-time', maxLength: 30 });
// Nullable values as a type list, not anyOf: the response serialiser (fast-json-stringify)
// writes a type list with one typeof check, but tries each anyOf branch with a validator.
export const NullableDateTime = Type.Unsafe<string | null>({
  type: ['string', 'null'],
  format: 'date-time',
  maxLength: 30,
});

/** A courier's tracking number as stored (letters, digits, dashes). */
export const TrackingNumber = Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$', maxLength: 64 });

/** A courier code as the read model stores it, e.g. easyparcel. */
export const CourierCodeText = (description = 'Courier code, e.g. easyparcel') =>
  Type.String({ pattern: '^[a-z0-9_-]{1,40}$', maxLength: 40, description });

export const OrderStatusName = Type.Unsafe<OrderStatus>({ type: 'string', enum: Object.values(OrderStatus) });

/** The order number shoppers see, e.g. WB-100001. */
export const OrderNumber = Type.String({
  pattern: '^[A-Za-z0-9-]{3,32}$',
  maxLength: 32,
  description: 'e.g. WB-100001',
});

/** ISO 4217, e.g. MYR. */
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', maxLength: 3 });

/** Free text of at most `maxLength` characters: names, addresses, our own sentences. */
export const Text = (maxLength: number, options: { description?: string; minLength?: number } = {}) =>
  Type.String({ maxLength, ...options });
export const NullableText = (maxLength: number) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength });

/** A count from 0 to `maximum` (int32). */
export const Count = (maximum: number, description?: string) =>
  Type.Integer({ format: 'int32', minimum: 0, maximum, ...(description ? { description } : {}) });

/** Minor units (cents): a bigint column, read as a safe JavaScript integer. */
export const Money = Type.Integer({
  format: 'int64',
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: 'Minor units (cents)',
});
