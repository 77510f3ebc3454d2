/**
 * The simulator's own wire format (JSON), mounted under `/native`. It speaks the status
 * taxonomy directly, so its adapter (src/couriers/simulator.ts) only has to check shapes
 * and convert times. Documented in README.md next to this file.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from 'typebox';
import { ALREADY_PICKED_UP } from '../../src/couriers/simulator';
import type { SimScan, SimShipmentView, SimTrackingItem } from './model';
import { SCENARIO_NAMES } from './scenarios';
import type { SimulatorCore } from './core';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The error shape of the native and control routes. */
export const SimErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});
export type SimErrorBody = Static<typeof SimErrorBody>;

export function simError(code: string, message: string): SimErrorBody {
  return { error: { code, message } };
}

export const ScenarioSchema = Type.Enum([...SCENARIO_NAMES]);

/** Largest batch one native track call accepts. */
export const NATIVE_MAX_BATCH = 100;

const NativeEvent = Type.Object({
  /** `STATUS` or `STATUS.SUB_STATUS`: stable per kind of scan. */
  code: Type.String(),
  status: Type.String(),
  subStatus: Nullable(Type.String()),
  description: Type.String(),
  /** ISO 8601 UTC with milliseconds. */
  occurredAt: Type.String(),
  location: Type.Object({ city: Type.String(), state: Nullable(Type.String()), country: Type.String() }),
});
export type NativeEvent = Static<typeof NativeEvent>;

/** One number's answer. Unknown numbers carry only `trackingNumber` and `found: false`. */
const NativeResult = Type.Object({
  trackingNumber: Type.String(),
  found: Type.Boolean(),
  reference: Type.Optional(Nullable(Type.String())),
  /** The latest scan's status; PENDING while there is none. */
  status: Type.Optional(Type.String()),
  subStatus: Type.Optional(Nullable(Type.String())),
  eta: Type.Optional(Nullable(Type.String())),
  /** Oldest first. */
  events: Type.Optional(Type.Array(NativeEvent)),
  returnTrackingNumber: Type.Optional(Nullable(Type.String())),
  returnEvents: Type.Optional(Type.Array(NativeEvent)),
});
export type NativeResult = Static<typeof NativeResult>;

const TrackBody = Type.Object(
  {
    trackingNumbers: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      minItems: 1,
      maxItems: NATIVE_MAX_BATCH,
    }),
  },
  { additionalProperties: false },
);

const BookBody = Type.Object(
  {
    reference: Type.String({ minLength: 1, maxLength: 128 }),
    recipient: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 200 }),
        line1: Type.String({ minLength: 1, maxLength: 200 }),
        city: Type.String({ minLength: 1, maxLength: 100 }),
        state: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
        postcode: Type.String({ minLength: 1, maxLength: 20 }),
        country: Type.String({ minLength: 2, maxLength: 56 }),
        phone: Type.Optional(Nullable(Type.String({ maxLength: 40 }))),
      },
      { additionalProperties: false },
    ),
    weightGrams: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    /** Simulator extra: the lifecycle this parcel plays (default: from the number's hash). */
    scenario: Type.Optional(ScenarioSchema),
  },
  { additionalProperties: false },
);

const Booked = Type.Object({
  trackingNumber: Type.String(),
  reference: Type.String(),
  created: Type.Boolean(),
});

/**
 * The native refusal of a book or cancel with `status`, about `subject` (the number being
 * cancelled, or the booking's reference): the real path's 404 and 409, and every scripted
 * answer. A cancel's 409 is the explicit ALREADY_PICKED_UP; a booking's 409 only a conflict.
 */
export function nativeRefusal(operation: 'book' | 'cancel', status: number, subject: string): SimErrorBody {
  switch (status) {
    case 400:
      return simError('INVALID_REQUEST', `the simulator refused this ${operation} of ${subject} as invalid`);
    case 401:
      return simError('UNAUTHORIZED', 'missing or invalid credentials');
    case 403:
      return simError('FORBIDDEN', `these credentials may not ${operation} shipments`);
    case 404:
      return simError(
        'NOT_FOUND',
        operation === 'cancel' ? `no shipment ${subject}` : `no such service for ${subject}`,
      );
    case 409:
      return operation === 'cancel'
        ? simError(ALREADY_PICKED_UP, `${subject} is already picked up; it can no longer be cancelled`)
        : simError('CONFLICT', `reference ${subject} conflicts with an existing booking`);
    case 503:
      return simError('UNAVAILABLE', 'service temporarily unavailable');
    default:
      return status >= 500
        ? simError('INTERNAL', 'simulator error')
        : simError('REFUSED', `the simulator refused this ${operation} of ${subject}`);
  }
}

function nativeEvent(scan: SimScan): NativeEvent {
  return {
    code: scan.subStatus ? `${scan.status}.${scan.subStatus}` : scan.status,
    status: scan.status,
    subStatus: scan.subStatus,
    description: scan.text,
    occurredAt: scan.at.toISOString(),
    location: { ...scan.location },
  };
}

/** The recipient is left out on purpose: the native answer carries no personal data. */
function nativeResult(item: SimTrackingItem): NativeResult {
  if (!item.found) return { trackingNumber: item.trackingNumber, found: false };
  const view: SimShipmentView = item.view;
  const last = view.scans[view.scans.length - 1];
  return {
    trackingNumber: view.trackingNumber,
    found: true,
    reference: view.reference,
    status: last?.status ?? 'PENDING',
    subStatus: last?.subStatus ?? null,
    eta: view.eta?.toISOString() ?? null,
    events: view.scans.map(nativeEvent),
    returnTrackingNumber: view.returnTrackingNumber,
    returnEvents: view.returnScans.map(nativeEvent),
  };
}

export const nativeRoutes: FastifyPluginAsyncTypebox<{ core: SimulatorCore }> = async (app, { core }) => {
  app.post(
    '/track',
    { schema: { body: TrackBody, response: { 200: Type.Object({ results: Type.Array(NativeResult) }) } } },
    async (request) => ({ results: core.track('native', request.body.trackingNumbers).map(nativeResult) }),
  );

  app.post(
    '/shipments',
    {
      schema: {
        body: BookBody,
        response: { 200: Booked, 201: Booked, '4xx': SimErrorBody, '5xx': SimErrorBody },
      },
    },
    async (request, reply) => {
      const { reference, recipient, weightGrams, scenario } = request.body;
      const scripted = core.scriptedAnswer('native', 'book', { reference });
      if (scripted !== null) return reply.code(scripted).send(nativeRefusal('book', scripted, reference));
      const booked = core.bookParcel(
        'native',
        {
          reference,
          recipient: { ...recipient, state: recipient.state ?? null, phone: recipient.phone ?? null },
          weightGrams,
        },
        scenario,
      );
      return reply.code(booked.created ? 201 : 200).send({ ...booked, reference });
    },
  );

  app.post(
    '/shipments/:trackingNumber/cancel',
    {
      schema: {
        params: Type.Object({ trackingNumber: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: {
          200: Type.Object({ trackingNumber: Type.String(), status: Type.Literal('CANCELLED') }),
          '4xx': SimErrorBody,
          '5xx': SimErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { trackingNumber } = request.params;
      const scripted = core.scriptedAnswer('native', 'cancel', { trackingNumber });
      if (scripted !== null)
        return reply.code(scripted).send(nativeRefusal('cancel', scripted, trackingNumber));
      const outcome = core.cancel('native', trackingNumber);
      if (outcome === 'not_found') return reply.code(404).send(nativeRefusal('cancel', 404, trackingNumber));
      if (outcome === 'already_picked_up') {
        return reply.code(409).send(nativeRefusal('cancel', 409, trackingNumber));
      }
      return { trackingNumber, status: 'CANCELLED' as const };
    },
  );
};
