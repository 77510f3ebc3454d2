/**
 * The HTTP contract of the admin routes in src/api/routes/admin.ts (refresh, cancel, manual
 * delivery) and admin-queue.ts (the exceptions queue, stats): their limits, requests and
 * answers, as TypeBox schemas that are also the handlers' types and the OpenAPI document's.
 * Schemas the admin route files share are in ./admin.ts.
 */
import { Type } from 'typebox';
import { ShipmentStatus } from '../../domain/status';
import { Id } from './admin';
import {
  Count,
  CourierCodeText,
  DateTime,
  IdText,
  NullableDateTime,
  NullableText,
  Text,
  TrackingNumber,
} from './common';
import { StatusSchema } from '../tracking-view';

/** Most shipments one bulk refresh signals (by ids, or matched by a filter). */
export const BULK_REFRESH_CAP = 500;
/** Signals in flight at once during a bulk refresh: the Temporal frontend is shared. */
export const BULK_REFRESH_CONCURRENCY = 10;
export const PAGE_SIZE_DEFAULT = 50;
const PAGE_SIZE_MAX = 200;
/** Failures listed one by one in a bulk answer (the counts are always complete). */
export const FAILURES_LISTED = 50;

export const ShipmentParams = Type.Object({ shipmentId: Id('Shipment id') });
const Courier = CourierCodeText();
/** Shipments, calls and failures counted: far below 2^31 for any one shop. */
const Tally = (description?: string) => Count(2_147_483_647, description);
const Freshness = Type.Union([Type.Literal('fresh'), Type.Literal('stale'), Type.Literal('expired')]);

export const RefreshAccepted = Type.Object(
  {
    shipmentId: IdText(),
    workflowId: Type.String({ pattern: '^shipment-[A-Za-z0-9_.:-]{1,128}$', maxLength: 137 }),
    signalled: Type.Literal(true),
    requestedBy: Type.String({
      pattern: '^[a-z]+:[A-Za-z0-9_.:@-]{1,128}$',
      maxLength: 140,
      description: 'Who asked, as the audit log names them, e.g. ops:sam',
    }),
    cooldownUntil: Type.Union([DateTime, Type.Null()], {
      description:
        'The courier answered less than the refresh cooldown ago: the workflow polls when the cooldown ends instead of at once. Null: it polls at once',
    }),
  },
  { additionalProperties: false, description: 'The shipment workflow was asked to poll its courier' },
);

export const BulkRefreshBody = Type.Object(
  {
    shipmentIds: Type.Optional(
      Type.Array(Id('Shipment id'), {
        minItems: 1,
        maxItems: BULK_REFRESH_CAP,
        uniqueItems: true,
        description: `Shipments to refresh (1 to ${BULK_REFRESH_CAP}); send this or filter`,
      }),
    ),
    filter: Type.Optional(
      Type.Object(
        {
          status: Type.Optional(Type.Array(StatusSchema, { minItems: 1, maxItems: 12, uniqueItems: true })),
          courier: Type.Optional(Courier),
          stale: Type.Optional(
            Type.Boolean({ description: 'true: only stale or expired data; false: only fresh' }),
          ),
        },
        {
          additionalProperties: false,
          description: `Shipments still being tracked that match; at most ${BULK_REFRESH_CAP}, stalest first`,
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export const BulkRefreshResult = Type.Object(
  {
    matched: Count(BULK_REFRESH_CAP, 'Shipments found for the ids, or matching the filter (up to the cap)'),
    signalled: Count(BULK_REFRESH_CAP, 'Shipment workflows asked to poll'),
    inCooldown: Count(
      BULK_REFRESH_CAP,
      'Of those signalled, shipments whose courier answered less than the refresh cooldown ago: they poll when it ends, not at once',
    ),
    skipped: Count(BULK_REFRESH_CAP, 'Finished shipments (delivered, returned, cancelled, expired)'),
    failed: Count(BULK_REFRESH_CAP, 'Shipments whose workflow could not be signalled'),
    notFound: Type.Array(Id('Shipment id'), {
      maxItems: BULK_REFRESH_CAP,
      description: 'Requested ids with no shipment',
    }),
    capped: Type.Boolean({ description: 'The filter matched more than `cap`: the stalest `cap` were taken' }),
    cap: Count(BULK_REFRESH_CAP),
    failures: Type.Array(
      Type.Object({ shipmentId: IdText(), reason: Text(1000) }, { additionalProperties: false }),
      { maxItems: FAILURES_LISTED, description: `The first ${FAILURES_LISTED} failures` },
    ),
  },
  { additionalProperties: false },
);

export const CancelResult = Type.Object(
  {
    orderId: IdText(),
    status: Type.Union([Type.Literal('CANCELLED'), Type.Literal('CANCELLING')], {
      description: 'CANCELLED: compensations done; CANCELLING: accepted, compensations still running',
    }),
  },
  { additionalProperties: false },
);

export const ListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Array(StatusSchema, {
        minItems: 1,
        maxItems: 12,
        description: 'One or several statuses (repeat the parameter: ?status=EXCEPTION&status=ATTEMPT_FAIL)',
      }),
    ),
    courier: Type.Optional(Courier),
    stale: Type.Optional(
      Type.Boolean({
        description: 'true: stale or expired data (judged against the poll intervals); false: fresh',
      }),
    ),
    exception: Type.Optional(
      Type.Boolean({
        description: 'true: status EXCEPTION or EXPIRED, or a sync error; false: none of them',
      }),
    ),
    noScanForDays: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: 3650,
        description: 'No scan (or, with none yet, no creation) for at least this many days',
      }),
    ),
    orderId: Type.Optional(Id('Order id')),
    limit: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: PAGE_SIZE_MAX,
        default: PAGE_SIZE_DEFAULT,
        description: `Page size (1 to ${PAGE_SIZE_MAX})`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const QueueItem = Type.Object(
  {
    shipmentId: IdText(),
    orderId: Type.Union([IdText(), Type.Null()]),
    courier: Courier,
    trackingNumber: TrackingNumber,
    status: StatusSchema,
    subStatus: Type.Union([Type.String({ pattern: '^[A-Z0-9_]{1,64}$', maxLength: 64 }), Type.Null()]),
    freshness: Freshness,
    lastSyncedAt: NullableDateTime,
    nextPollAt: NullableDateTime,
    lastEventAt: NullableDateTime,
    syncError: NullableText(2000),
    syncFailingSince: NullableDateTime,
    consecutiveFailures: Tally(),
    createdAt: DateTime,
  },
  { additionalProperties: false },
);

export const QueuePage = Type.Object(
  {
    items: Type.Array(QueueItem, { maxItems: PAGE_SIZE_MAX }),
    nextCursor: Type.Union(
      [Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$', maxLength: 512 }), Type.Null()],
      {
        description: 'Pass as `cursor` for the next page; null on the last page',
      },
    ),
  },
  { additionalProperties: false },
);

export const Stats = Type.Object(
  {
    generatedAt: DateTime,
    shipmentsByStatus: Type.Object(
      Object.fromEntries(Object.values(ShipmentStatus).map((s) => [s, Tally()])),
      {
        additionalProperties: false,
        description: 'Every status, zeros included (archived shipments left out)',
      },
    ),
    courierCalls: Type.Object(
      {
        day: Type.String({
          format: 'date',
          maxLength: 10,
          description: 'The UTC day the daily budgets count',
        }),
        couriers: Type.Array(
          Type.Object(
            {
              courier: Courier,
              calls: Tally(),
              failures: Tally(),
              budget: Tally(),
              remaining: Tally(),
              bookingReserve: Type.Integer({
                format: 'int64',
                minimum: 0,
                maximum: 1e12,
                description:
                  'Of the budget, the calls polls leave to bookings: polls stop once remaining reaches it (WAYBILL_COURIER_BOOKING_RESERVE)',
              }),
              requestsPerSecond: Type.Integer({
                format: 'int32',
                minimum: 1,
                maximum: 10_000,
                description:
                  "Requests to this courier started in any second of Postgres's clock, across every worker: they start 1/this s apart, and one whose slot is ahead waits for it (WAYBILL_COURIER_REQUESTS_PER_SECOND)",
              }),
            },
            { additionalProperties: false },
          ),
          { maxItems: 100, description: 'Couriers called today' },
        ),
      },
      { additionalProperties: false },
    ),
    pollFailures: Type.Object(
      {
        failingNow: Tally('Shipments still tracked whose last sync attempt failed'),
        failuresToday: Tally('Failed courier calls today, all couriers'),
      },
      { additionalProperties: false },
    ),
    oldestStale: Type.Union([
      Type.Object(
        {
          shipmentId: IdText(),
          status: StatusSchema,
          courier: Courier,
          lastSyncedAt: NullableDateTime,
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

export const MarkDeliveredResult = Type.Object(
  {
    shipmentId: IdText(),
    outcome: Type.Union([Type.Literal('accepted'), Type.Literal('already_delivered')], {
      description:
        'accepted: the shipment workflow records the delivery and tells the order; already_delivered: an earlier request did',
    }),
    eventKey: Type.String({ pattern: '^manual:delivered:[A-Za-z0-9_.:-]{1,128}$', maxLength: 145 }),
  },
  { additionalProperties: false },
);
