import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ApiDeps } from '../app';
import { ApiError } from '../errors';
import { shipmentByTrackingNumber } from '../../read-model/order-tracking';
import { ShipmentTrackingView, toTrackingViews } from '../tracking-view';

/**
 * The guest view: city-level places, our own status texts, nothing about people or
 * contents, and no shipment id (it would name the order).
 */
const GuestTracking = Type.Omit(ShipmentTrackingView, ['shipmentId'], {
  $id: 'GuestTracking',
  additionalProperties: false,
});

const TrackingNumberParams = Type.Object({
  trackingNumber: Type.String({
    pattern: '^[A-Za-z0-9-]{4,40}$',
    maxLength: 40,
    description: 'The courier tracking number (letters, digits and dashes, 4 to 40 characters)',
  }),
});

export const trackingRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/tracking/:trackingNumber',
    {
      schema: {
        tags: ['tracking'],
        summary: 'Guest tracking by tracking number (no personal data)',
        params: TrackingNumberParams,
        response: { 200: GuestTracking, 400: { $ref: 'Error#' }, 404: { $ref: 'Error#' } },
      },
      config: { rateLimit: { max: deps.config.api.guestRateLimitPerMinute * 6, timeWindow: 60_000 } },
    },
    async (request) => {
      const { trackingNumber } = request.params;
      // Numbers are stored as the courier issued them, upper case in practice, and people
      // type them in any case. Only a miss looks again, upper-cased: a number found as
      // given costs one read, as before.
      const shipment =
        (await shipmentByTrackingNumber(deps.db, trackingNumber)) ??
        (/[a-z]/.test(trackingNumber)
          ? await shipmentByTrackingNumber(deps.db, trackingNumber.toUpperCase())
          : null);
      if (!shipment) {
        throw new ApiError(404, 'NOT_FOUND', `no shipment with tracking number ${trackingNumber}`);
      }
      const [view] = toTrackingViews([shipment], deps.config.api.freshness);
      const { shipmentId: _omitted, ...guest } = view!;
      return guest;
    },
  );
};
