/**
 * Courier webhooks: `POST /v1/webhooks/couriers/:courier`. A courier pushes scans instead of
 * waiting to be polled, which saves courier calls (budget) and shows customers a scan at
 * once. The push is verified (HMAC-SHA256 over the exact bytes received, recent timestamp),
 * deduplicated by the courier's event id, and handed to the parcel's shipment workflow as
 * a `courierEvents` signal: the workflow records it like a polled scan, without a courier call.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { CourierPush, InvalidPushError, normalisePush, PUSH_MAX_EVENTS } from '../../couriers/push';
import { COURIER_CODES, type CourierCode, type NormalisedEvent } from '../../couriers/types';
import { isTerminal, type ShipmentStatus } from '../../domain/status';
import { signWebhook } from '../../notifications/transport';
import { shipmentByCourierNumber } from '../../read-model/shipment-lookups';
import { claimWebhookEvent, releaseWebhookEvent } from '../../read-model/webhook-events';
import type { ApiDeps } from '../app';
import { ApiError } from '../errors';
import { signalShipmentEvents } from '../shipment-signal';

export const TIMESTAMP_HEADER = 'x-waybill-timestamp';
export const SIGNATURE_HEADER = 'x-waybill-signature';

const CourierParams = Type.Object({
  courier: Type.String({
    pattern: '^[a-z0-9-]{1,32}$',
    maxLength: 32,
    description: 'The courier code (easyparcel, bluedart, simulator); it must have a webhook secret',
  }),
});

const SignatureHeaders = Type.Object({
  [TIMESTAMP_HEADER]: Type.String({
    pattern: '^[0-9]{1,12}$',
    maxLength: 12,
    description: 'Unix time in seconds when the push was signed; more than the allowed age away is refused',
  }),
  [SIGNATURE_HEADER]: Type.String({
    pattern: '^sha256=[0-9a-fA-F]{64}$',
    maxLength: 71,
    description:
      "`sha256=` + hex HMAC-SHA256, with the courier's secret, over `<timestamp>.<raw body bytes>`",
  }),
});

const PushOutcome = Type.Object(
  {
    result: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate'), Type.Literal('ignored')], {
      description:
        '`accepted`: handed to the shipment workflow; `duplicate`: this event id was accepted before, nothing done; `ignored`: nothing to do (unknown tracking number, tracking finished). Do not retry any of them.',
    }),
    eventId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 }),
    events: Type.Integer({
      format: 'int32',
      minimum: 0,
      maximum: PUSH_MAX_EVENTS,
      description: 'Scans handed to the shipment workflow (0 unless accepted)',
    }),
    message: Type.String({ maxLength: 500 }),
  },
  { $id: 'CourierPushOutcome', additionalProperties: false },
);

const unauthorized = (code: string, message: string) => new ApiError(401, code, message);

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export const webhookRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const secrets = deps.config.api.courierWebhookSecrets;
  const maxAgeMs = deps.config.api.webhookMaxAgeMs;

  // The signature covers the exact bytes sent, so this plugin (and only this plugin: the
  // parser is encapsulated) keeps JSON bodies raw; they are parsed once they are verified.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  const defaultJson = app.getDefaultJsonParser('error', 'error') as (
    request: FastifyRequest,
    body: string,
    done: (err: Error | null, value?: unknown) => void,
  ) => void;
  const parseJson = (request: FastifyRequest, text: string) =>
    new Promise<unknown>((resolve, reject) =>
      defaultJson(request, text, (err, value) => (err ? reject(err) : resolve(value))),
    );

  /**
   * Runs before schema validation, so that nobody without the secret learns anything about
   * the body format: unknown courier → 404, bad or old signature → 401, then the JSON.
   */
  async function verifySignature(request: FastifyRequest): Promise<void> {
    const { courier } = request.params as { courier: string };
    const secret = Object.hasOwn(secrets, courier) ? secrets[courier] : undefined;
    if (secret === undefined || !(COURIER_CODES as string[]).includes(courier)) {
      throw new ApiError(404, 'NOT_FOUND', `no webhook for courier "${courier.slice(0, 32)}"`);
    }
    const raw: unknown = request.body ?? Buffer.alloc(0);
    if (!Buffer.isBuffer(raw)) {
      throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the push as Content-Type: application/json');
    }
    const timestamp = header(request, TIMESTAMP_HEADER);
    const signature = header(request, SIGNATURE_HEADER);
    if (timestamp === undefined || signature === undefined) {
      throw unauthorized(
        'SIGNATURE_REQUIRED',
        `send ${TIMESTAMP_HEADER} (unix seconds) and ${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the courier's secret>`,
      );
    }
    const given = /^sha256=([0-9a-fA-F]{64})$/.exec(signature);
    if (!/^\d{1,12}$/.test(timestamp) || !given) {
      throw unauthorized(
        'INVALID_SIGNATURE',
        `${TIMESTAMP_HEADER} must be unix seconds and ${SIGNATURE_HEADER} "sha256=" followed by 64 hex digits`,
      );
    }
    const expected = Buffer.from(signWebhook(secret, timestamp, raw).slice('sha256='.length), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(given[1]!, 'hex'))) {
      throw unauthorized(
        'INVALID_SIGNATURE',
        `the signature does not match: sign "<${TIMESTAMP_HEADER}>.<the exact body bytes>" with HMAC-SHA256 and this courier's secret`,
      );
    }
    // Checked after the signature, so the timestamp is the sender's own: replay protection.
    const ageMs = Date.now() - Number(timestamp) * 1000;
    if (Math.abs(ageMs) > maxAgeMs) {
      const seconds = Math.round(Math.abs(ageMs) / 1000);
      throw unauthorized(
        'STALE_TIMESTAMP',
        `${TIMESTAMP_HEADER} is ${seconds} s ${ageMs > 0 ? 'old' : 'in the future'}; at most ${Math.round(maxAgeMs / 1000)} s either way is accepted: sign again with the current time (and check the sender's clock)`,
      );
    }
    try {
      request.body = await parseJson(request, raw.toString('utf8'));
    } catch (err) {
      throw new ApiError(400, 'INVALID_JSON', `the body is not a JSON object: ${(err as Error).message}`);
    }
  }

  app.post(
    '/v1/webhooks/couriers/:courier',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'A courier pushes scans (signed); they reach the shipment workflow without a courier call',
        description: [
          'Signature: `x-waybill-signature: sha256=<hex>` where hex is HMAC-SHA256 with the',
          "courier's secret over `<x-waybill-timestamp>.<raw body bytes>`; the timestamp is unix",
          'seconds and must be within the allowed age (default 5 minutes) either way.',
          "Each scan is read with the courier's own codes, times and places, exactly as its tracking",
          'API shows them, so a pushed scan and a later poll of it are one tracking event.',
          'Every 2xx is final (do not retry); 503 means "retry later": the push was not taken.',
        ].join(' '),
        // Signed with the courier's webhook secret; bearer tokens and API keys play no part.
        security: [{ courierSignature: [] }],
        params: CourierParams,
        headers: SignatureHeaders,
        body: CourierPush,
        response: {
          200: PushOutcome,
          400: { $ref: 'Error#' },
          401: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
          415: { $ref: 'Error#' },
          429: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
      // Couriers push from a few addresses, in bursts: a higher per-IP budget than people get.
      config: { rateLimit: { max: deps.config.api.rateLimitPerMinute * 5, timeWindow: 60_000 } },
      preValidation: verifySignature,
    },
    async (request) => {
      const courier = request.params.courier as CourierCode;
      const { eventId, trackingNumber } = request.body;
      let events: NormalisedEvent[];
      try {
        events = normalisePush(courier, request.body.events, request.log, {
          nowMs: Date.now(),
          maxSkewMs: deps.config.api.pushMaxClockSkewMs,
        });
      } catch (err) {
        if (err instanceof InvalidPushError) throw new ApiError(400, 'INVALID_PUSH', err.message);
        throw err;
      }
      const ignored = (message: string) => ({ result: 'ignored' as const, eventId, events: 0, message });

      const shipment = await shipmentByCourierNumber(deps.db, courier, trackingNumber);
      // A number we do not track (another shop's parcel, or booked outside Waybill): a courier
      // that got a 4xx would retry it for days, so it is answered as done and logged.
      if (!shipment) {
        request.log.info({ courier, eventId, trackingNumber }, 'courier push for an unknown tracking number');
        return ignored(`no shipment with ${courier} tracking number ${trackingNumber}`);
      }
      if (isTerminal(shipment.status as ShipmentStatus)) {
        return ignored(`tracking of ${trackingNumber} has finished: the shipment is ${shipment.status}`);
      }

      // The dedupe row is taken before the signal and given back if the signal fails, so a
      // push is either handed over exactly once or refused with 503 for the courier to retry.
      const claimed = await claimWebhookEvent(deps.db, { courier, eventId, trackingNumber });
      if (!claimed) {
        return {
          result: 'duplicate' as const,
          eventId,
          events: 0,
          message: `event ${eventId} was received before; nothing done`,
        };
      }
      try {
        await signalShipmentEvents(deps, shipment.id, events);
      } catch (err) {
        await releaseWebhookEvent(deps.db, courier, eventId).catch((releaseErr: unknown) =>
          request.log.error(
            { err: releaseErr, courier, eventId },
            'could not release the dedupe row of a push that was not delivered: its retry will be answered duplicate',
          ),
        );
        // The workflow ended between our read and the signal (delivered, cancelled, expired).
        if (err instanceof WorkflowNotFoundError) {
          return ignored(`tracking of ${trackingNumber} has finished`);
        }
        throw err;
      }
      request.log.info(
        { courier, eventId, trackingNumber, shipmentId: shipment.id, events: events.length },
        'courier push handed to the shipment workflow',
      );
      return {
        result: 'accepted' as const,
        eventId,
        events: events.length,
        message: `${events.length} scan${events.length === 1 ? '' : 's'} handed to the tracking of ${trackingNumber}`,
      };
    },
  );
};
