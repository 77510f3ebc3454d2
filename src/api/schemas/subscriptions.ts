/**
 * The HTTP contract of the event subscription routes (routes/subscriptions.ts): endpoints,
 * their deliveries and attempts, and the resend.
 */
import { Type } from 'typebox';
import { EVENT_TYPES, type EventType } from '../../domain/events';
import { Id } from './admin';
import { Count, DateTime, IdText, NullableDateTime, NullableText, Text } from './common';

export const PAGE_SIZE_DEFAULT = 50;
export const PAGE_SIZE_MAX = 200;

const EventTypeName = Type.Unsafe<EventType>({
  type: 'string',
  enum: EVENT_TYPES,
  description: 'A domain event type (docs/events.md)',
});
const EventTypes = Type.Array(EventTypeName, {
  minItems: 1,
  maxItems: EVENT_TYPES.length,
  uniqueItems: true,
  description: 'The event types this endpoint receives',
});
const Url = Type.String({
  format: 'uri',
  minLength: 8,
  maxLength: 2000,
  description:
    'Where events are POSTed: an http:// or https:// URL (plain http:// only where WAYBILL_EVENTS_ALLOW_HTTP allows it), no user name or password in it',
});
const Description = Type.Union([Text(200), Type.Null()], { description: 'What the endpoint is for' });
const EndpointStatus = Type.Union([Type.Literal('ENABLED'), Type.Literal('DISABLED')]);

export const EndpointParams = Type.Object({ endpointId: Id('Event endpoint id') });
/** The event id as receivers see it (`x-waybill-event-id`). */
export const ResendParams = Type.Object({ endpointId: Id('Event endpoint id'), eventId: Id('Event id') });

export const CreateBody = Type.Object(
  { url: Url, eventTypes: EventTypes, description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const UpdateBody = Type.Object(
  { url: Type.Optional(Url), eventTypes: Type.Optional(EventTypes), description: Type.Optional(Description) },
  { additionalProperties: false, minProperties: 1 },
);

export const Endpoint = Type.Object(
  {
    id: IdText(),
    url: Type.String({ format: 'uri', maxLength: 2000 }),
    description: NullableText(200),
    eventTypes: Type.Array(EventTypeName, { maxItems: EVENT_TYPES.length }),
    status: EndpointStatus,
    disabledReason: Type.Union([Text(1000), Type.Null()], {
      description: 'Why it is disabled: the failure run that disabled it, or the admin who did',
    }),
    consecutiveFailures: Count(1_000_000, 'Failed deliveries in a row; a success resets it'),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { additionalProperties: false },
);
export const EndpointWithSecret = Type.Object(
  {
    endpoint: Endpoint,
    secret: Type.String({
      pattern: '^whsec_[A-Za-z0-9_-]{43}$',
      maxLength: 49,
      description:
        'The HMAC-SHA256 signing secret (docs/security.md): shown only now; rotate it to get a new one',
    }),
  },
  { additionalProperties: false },
);
export const EndpointList = Type.Object(
  { items: Type.Array(Endpoint, { maxItems: 10_000 }) },
  { additionalProperties: false },
);

const Cursor = Type.Integer({ format: 'int64', minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const Limit = Type.Integer({ format: 'int32', minimum: 1, maximum: PAGE_SIZE_MAX });

export const DeliveriesQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('PENDING'), Type.Literal('DELIVERED')])),
    limit: Type.Optional(Limit),
    before: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export const Deliveries = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          eventId: IdText('As receivers see it in x-waybill-event-id'),
          type: EventTypeName,
          orderId: Type.Union([IdText(), Type.Null()]),
          shipmentId: Type.Union([IdText(), Type.Null()]),
          occurredAt: DateTime,
          status: Type.Union([Type.Literal('PENDING'), Type.Literal('DELIVERED')]),
          attempts: Count(1_000_000),
          nextAttemptAt: NullableDateTime,
          lastError: NullableText(500),
          deliveredAt: NullableDateTime,
        },
        { additionalProperties: false },
      ),
      { maxItems: PAGE_SIZE_MAX },
    ),
    nextBefore: Type.Union([Cursor, Type.Null()], { description: 'Pass as `before` for the next page' }),
  },
  { additionalProperties: false },
);

export const AttemptsQuery = Type.Object(
  {
    eventId: Type.Optional(Id('Only this event')),
    limit: Type.Optional(Limit),
    before: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export const Attempts = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          eventId: IdText(),
          type: EventTypeName,
          attemptedAt: DateTime,
          ok: Type.Boolean(),
          statusCode: Type.Union(
            [Type.Integer({ format: 'int32', minimum: 100, maximum: 599 }), Type.Null()],
            {
              description: "The receiver's HTTP status; null when it could not be reached",
            },
          ),
          error: NullableText(500),
          durationMs: Count(3_600_000, 'ms'),
        },
        { additionalProperties: false },
      ),
      { maxItems: PAGE_SIZE_MAX },
    ),
    nextBefore: Type.Union([Cursor, Type.Null()], { description: 'Pass as `before` for the next page' }),
  },
  { additionalProperties: false },
);

export const Resent = Type.Object(
  {
    eventId: IdText(),
    endpointId: IdText(),
    status: Type.Literal('PENDING', {
      description: "Due now; it goes out behind any of the same order's earlier undelivered events",
    }),
  },
  { additionalProperties: false },
);
