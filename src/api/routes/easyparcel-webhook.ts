/**
 * EasyParcel's own webhooks: `POST /v1/webhooks/easyparcel/native?token=<secret>`, the URL
 * given to EasyParcel's Developer Hub for the topic "Tracking Status Update". EasyParcel
 * signs nothing, so the URL's secret (`EASYPARCEL_WEBHOOK_TOKEN`, 32+ characters) is the
 * credential: it is compared in constant time, and a missing or wrong one answers 404 exactly
 * as an unknown route does, before the body is read, so the route cannot be found by probing.
 * The token rides in the query rather than the path because OpenAPI can name a query secret
 * (the `easyParcelWebhookToken` scheme) and has no path-located scheme.
 * The status log is read with EasyParcel's code table and time rules (easyparcel-webhook.ts),
 * deduplicated and signalled as every courier push is (push-delivery.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import {
  EasyParcelWebhook,
  InvalidEasyParcelWebhookError,
  readEasyParcelWebhook,
} from '../../couriers/easyparcel-webhook';
import { InvalidPushError, normalisePush } from '../../couriers/push';
import { CourierCode, type NormalisedEvent } from '../../couriers/types';
import type { ApiDeps } from '../app';
import { ApiError } from '../errors';
import { deliverPush } from '../push-delivery';

export const EASYPARCEL_WEBHOOK_PATH = '/v1/webhooks/easyparcel/native';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether `given` is the configured token; constant time in the token's content. */
export function easyParcelTokenMatches(configured: string | null, given: unknown): boolean {
  if (configured === null || typeof given !== 'string') return false;
  // Digests have one length, so the comparison says nothing about the token's length either.
  return timingSafeEqual(digest(configured), digest(given));
}

export const easyParcelWebhookRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (
  app,
  { deps },
) => {
  const configured = deps.config.api.easyParcelWebhookToken;

  /** Before parsing: a caller without the token learns nothing, not even that the route exists. */
  async function requireToken(request: FastifyRequest): Promise<void> {
    const { token } = request.query as { token?: unknown };
    if (!easyParcelTokenMatches(configured, token)) {
      throw new ApiError(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    }
  }

  app.post(
    EASYPARCEL_WEBHOOK_PATH,
    {
      schema: {
        tags: ['webhooks'],
        summary: "EasyParcel pushes a parcel's status log in its own shape (topic Tracking Status Update)",
        description: [
          'Give EasyParcel this URL with `?token=<EASYPARCEL_WEBHOOK_TOKEN>`; a missing or wrong',
          "token answers 404. The body is EasyParcel's webhook as its Open API docs show it:",
          '`topic` `shipment.tracking.update` with `awb_number` and `status_log` entries',
          '`{timestamp, shipment_status_code, tracking_status}`, read with its 0-11 code table,',
          "its own events in UTC and the couriers' scans in Malaysia time. The same AWB and log",
          'twice answers `duplicate`; other topics, unknown AWBs and finished parcels `ignored`.',
          'Every 2xx is final (do not retry); 503 means "retry later": the push was not taken.',
        ].join(' '),
        security: [{ easyParcelWebhookToken: [] }],
        body: EasyParcelWebhook,
        response: {
          200: { $ref: 'CourierPushOutcome#' },
          400: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
          415: { $ref: 'Error#' },
          429: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
      // Couriers push from a few addresses, in bursts: a higher per-IP budget than people get.
      config: { rateLimit: { max: deps.config.api.rateLimitPerMinute * 5, timeWindow: 60_000 } },
      onRequest: requireToken,
    },
    async (request) => {
      const courier = CourierCode.EASYPARCEL;
      let update;
      let events: NormalisedEvent[];
      try {
        update = readEasyParcelWebhook(request.body);
        if (update === null) {
          const topic = request.body.topic.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, 100);
          return {
            result: 'ignored' as const,
            eventId: `ep-topic:${topic}`,
            events: 0,
            message: `topic ${topic} carries no scans; subscribe this URL to Tracking Status Update only`,
          };
        }
        events = normalisePush(courier, update.scans, request.log, {
          nowMs: Date.now(),
          maxSkewMs: deps.config.api.pushMaxClockSkewMs,
        });
      } catch (err) {
        if (err instanceof InvalidPushError || err instanceof InvalidEasyParcelWebhookError) {
          throw new ApiError(400, 'INVALID_PUSH', err.message.replace(/^events\[/, 'status_log['));
        }
        throw err;
      }
      return deliverPush(deps, request.log, {
        courier,
        eventId: update.eventId,
        trackingNumber: update.trackingNumber,
        events,
      });
    },
  );
};
