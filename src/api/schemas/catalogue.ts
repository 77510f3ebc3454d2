/**
 * The HTTP contract of the catalogue and stock routes (src/api/routes/catalogue.ts): skus,
 * stock received and adjusted, stock levels and low-stock alerts.
 */
import { Type } from 'typebox';
import { Reason } from './admin';
import { Count, Currency, DateTime, Money, NullableDateTime, NullableText, Text } from './common';
import { idempotencyHeaders, Sku } from './orders';

export const STOCK_PAGE_DEFAULT = 50;
export const STOCK_PAGE_MAX = 200;
/** Units one receipt or adjustment may move: far above a pallet, far below int32. */
export const MAX_STOCK_DELTA = 1_000_000;
/** Units counted on hand or held: an int32 column. */
const Units = (description?: string) => Count(2_147_483_647, description);

export const Warehouse = Type.String({
  pattern: '^[A-Za-z0-9_.-]{1,64}$',
  maxLength: 64,
  description: 'Warehouse the sku ships from, e.g. main (WAYBILL_COURIER_BY_WAREHOUSE picks its courier)',
});
const Name = Text(200, { minLength: 1, description: 'Product name as shoppers see it on their order' });
const Threshold = Units('Available units below which a low-stock alert is raised');
const Cursor = Type.Optional(
  Type.String({ minLength: 1, maxLength: 512, description: 'nextCursor of the previous page' }),
);
const NextCursor = Type.Union(
  [Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$', maxLength: 512 }), Type.Null()],
  {
    description: 'Pass as `cursor` for the next page; null on the last page',
  },
);
const Limit = Type.Optional(
  Type.Integer({
    format: 'int32',
    minimum: 1,
    maximum: STOCK_PAGE_MAX,
    default: STOCK_PAGE_DEFAULT,
    description: `Page size (1 to ${STOCK_PAGE_MAX})`,
  }),
);

export const SkuParams = Type.Object({ sku: Sku }, { additionalProperties: false });

export const CreateSkuBody = Type.Object(
  {
    sku: Sku,
    name: Name,
    warehouse: Warehouse,
    unitAmount: Money,
    currency: Currency,
    lowStockThreshold: Type.Optional(Threshold),
    reason: Type.Optional(Reason),
  },
  { additionalProperties: false },
);

export const UpdateSkuBody = Type.Object(
  {
    name: Type.Optional(Name),
    warehouse: Type.Optional(Warehouse),
    unitAmount: Type.Optional(Money),
    currency: Type.Optional(Currency),
    lowStockThreshold: Type.Optional(Threshold),
    reason: Reason,
  },
  { additionalProperties: false, minProperties: 2 },
);

export const StockLevel = Type.Object(
  {
    sku: Sku,
    name: Text(200),
    warehouse: Warehouse,
    onHand: Units('Units in the warehouse'),
    reserved: Units('Units held by orders not yet shipped'),
    available: Units('onHand - reserved: what orders can still reserve'),
    lowStockThreshold: Threshold,
    low: Type.Boolean({ description: 'available is below lowStockThreshold' }),
    unitAmount: Money,
    currency: Currency,
    updatedAt: DateTime,
  },
  { additionalProperties: false },
);

const Reference = Type.String({
  pattern: '^[A-Za-z0-9_.:/-]{1,100}$',
  maxLength: 100,
  description:
    'Your delivery note or count sheet id: the same reference for the same sku is applied once (a retry answers the first change)',
});

export const StockChangeHeaders = idempotencyHeaders(
  'A unique key per stock change (e.g. a UUID); a retry reuses it and gets the first answer back, applied once',
);

export const ReceiveBody = Type.Object(
  {
    quantity: Type.Integer({ format: 'int32', minimum: 1, maximum: MAX_STOCK_DELTA }),
    reason: Reason,
    reference: Type.Optional(Reference),
  },
  { additionalProperties: false },
);

export const AdjustBody = Type.Object(
  {
    delta: Type.Integer({
      format: 'int32',
      minimum: -MAX_STOCK_DELTA,
      maximum: MAX_STOCK_DELTA,
      not: { const: 0 },
      description: 'Units to add (positive) or remove (negative, e.g. damaged or miscounted); not 0',
    }),
    reason: Reason,
    reference: Type.Optional(Reference),
  },
  { additionalProperties: false },
);

const Counts = Type.Object(
  { onHand: Units(), reserved: Units(), available: Units() },
  { additionalProperties: false },
);

export const StockChangeResult = Type.Object(
  {
    sku: Sku,
    outcome: Type.Union([Type.Literal('changed'), Type.Literal('duplicate')], {
      description: 'duplicate: this reference was applied before; nothing changed now',
    }),
    change: Type.Object(
      {
        kind: Type.Union([Type.Literal('receive'), Type.Literal('adjust')]),
        delta: Type.Integer({ format: 'int32', minimum: -MAX_STOCK_DELTA, maximum: MAX_STOCK_DELTA }),
        before: Counts,
        after: Counts,
      },
      { additionalProperties: false, description: 'The change as recorded in the audit log' },
    ),
    level: StockLevel,
  },
  { additionalProperties: false },
);

export const StockQuery = Type.Object(
  {
    warehouse: Type.Optional(Warehouse),
    low: Type.Optional(
      Type.Boolean({ description: 'true: only skus whose available stock is below the threshold' }),
    ),
    limit: Limit,
    cursor: Cursor,
  },
  { additionalProperties: false },
);

export const StockPage = Type.Object(
  { items: Type.Array(StockLevel, { maxItems: STOCK_PAGE_MAX }), nextCursor: NextCursor },
  { additionalProperties: false },
);

export const AlertQuery = Type.Object(
  {
    state: Type.Optional(
      Type.Union([Type.Literal('open'), Type.Literal('acknowledged'), Type.Literal('all')], {
        default: 'open',
      }),
    ),
    warehouse: Type.Optional(Warehouse),
    limit: Limit,
    cursor: Cursor,
  },
  { additionalProperties: false },
);

const AlertId = Type.String({
  pattern: '^[A-Za-z0-9._-]{1,64}:[0-9]{4}-[0-9]{2}-[0-9]{2}$',
  maxLength: 75,
  description:
    'The sku and the UTC day the alert was raised, e.g. KETTLE-1L:2026-12-04 (one alert per sku per day)',
});

export const AlertParams = Type.Object({ alertId: AlertId }, { additionalProperties: false });

export const Alert = Type.Object(
  {
    alertId: AlertId,
    sku: Sku,
    name: Text(200),
    warehouse: Warehouse,
    available: Type.Integer({
      format: 'int32',
      minimum: 0,
      maximum: 2_147_483_647,
      description: 'Available units when it was raised',
    }),
    threshold: Threshold,
    availableNow: Units('Available units now'),
    raisedAt: DateTime,
    acknowledgedAt: NullableDateTime,
    acknowledgedBy: Type.Union([Text(200), Type.Null()], {
      description: 'Who acknowledged it, as the audit log names them, e.g. ops:sam',
    }),
    note: NullableText(500),
  },
  { additionalProperties: false },
);

export const AlertPage = Type.Object(
  { items: Type.Array(Alert, { maxItems: STOCK_PAGE_MAX }), nextCursor: NextCursor },
  { additionalProperties: false },
);

export const AcknowledgeBody = Type.Object(
  {
    note: Type.Optional(
      Text(500, { description: 'What is being done about it (recorded in the audit log)' }),
    ),
  },
  { additionalProperties: false },
);

export const AcknowledgeResult = Type.Object(
  {
    alert: Alert,
    alreadyAcknowledged: Type.Boolean({
      description: 'true: it was acknowledged before; the first acknowledgement stands',
    }),
  },
  { additionalProperties: false },
);
