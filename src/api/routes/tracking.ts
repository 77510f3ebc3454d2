import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SHIPMENT_STATUSES, type ShipmentStatus } from '../../domain/status';
import { pollPolicyFromConfig } from '../../poll-policy';
import { pollDelayMs } from '../../workflows/policy';
import type { ApiDeps } from '../app';
import { ApiError } from '../errors';
import { freshnessOf, STATUS_TEXT } from '../freshness';

const Status = Type.Union(SHIPMENT_STATUSES.map((s) => Type.Literal(s)));
const NullableString = Type.Union([Type.String(), Type.Null()]);

/** The guest view: city-level places, our own status texts, nothing about people or contents. */
const GuestTracking = Type.Object(
  {
    trackingNumber: Type.String(),
    courier: Type.String(),
    status: Status,
    description: Type.String(),
    eta: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastUpdatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    freshness: Type.Union([Type.Literal('fresh'), Type.Literal('stale'), Type.Literal('expired')]),
    dataSource: Type.Object({
      isLive: Type.Boolean(),
      isCached: Type.Boolean(),
      unavailable: Type.Boolean(),
    }),
    events: Type.Array(
      Type.Object({
        status: Status,
        description: Type.String(),
        occurredAt: Type.String({ format: 'date-time' }),
        city: NullableString,
        country: NullableString,
      }),
    ),
  },
  { $id: 'GuestTracking', additionalProperties: false },
);

const TrackingNumberParams = Type.Object({
  trackingNumber: Type.String({
    pattern: '^[A-Za-z0-9-]{4,40}$',
    description: 'The courier tracking number (letters, digits and dashes, 4 to 40 characters)',
  }),
});

export const trackingRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  // The same intervals the shipment workflows poll on: freshness is judged against them.
  const policy = pollPolicyFromConfig(deps.config);
  app.get(
    '/v1/tracking/:trackingNumber',
    {
      schema: {
        tags: ['tracking'],
        summary: 'Guest tracking by tracking number (no personal data)',
        params: TrackingNumberParams,
        response: { 200: GuestTracking, 400: { $ref: 'Error#' }, 404: { $ref: 'Error#' } },
      },
    },
    async (request) => {
      const shipment = await deps.db
        .selectFrom('shipments')
        .select(['id', 'courier', 'tracking_number', 'status', 'eta', 'last_synced_at', 'sync_error'])
        .where('tracking_number', '=', request.params.trackingNumber)
        .where('archived_at', 'is', null)
        .orderBy('created_at', 'desc')
        .executeTakeFirst();
      if (!shipment) {
        throw new ApiError(
          404,
          'NOT_FOUND',
          `no shipment with tracking number ${request.params.trackingNumber}`,
        );
      }
      const events = await deps.db
        .selectFrom('tracking_events')
        .select(['status', 'occurred_at', 'location_city', 'location_country'])
        .where('shipment_id', '=', shipment.id)
        .orderBy('occurred_at', 'desc')
        .limit(100)
        .execute();
      const status = shipment.status as ShipmentStatus;
      const intervalMs = pollDelayMs(status, policy);
      return {
        trackingNumber: shipment.tracking_number,
        courier: shipment.courier,
        status,
        description: STATUS_TEXT[status],
        eta: shipment.eta?.toISOString() ?? null,
        lastUpdatedAt: shipment.last_synced_at?.toISOString() ?? null,
        freshness: freshnessOf({
          status,
          lastSyncedAt: shipment.last_synced_at,
          intervalMs,
          nowMs: Date.now(),
        }),
        dataSource: { isLive: false, isCached: true, unavailable: shipment.sync_error !== null },
        events: events.map((e) => ({
          status: e.status as ShipmentStatus,
          description: STATUS_TEXT[e.status as ShipmentStatus],
          occurredAt: e.occurred_at.toISOString(),
          city: e.location_city,
          country: e.location_country,
        })),
      };
    },
  );
};
