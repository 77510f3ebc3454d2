/**
 * Admin reads (`/v1/admin/...`): the exceptions queue of shipments and the stats. They read
 * Postgres only, so they keep answering while Temporal is down. The actions (refresh, cancel,
 * manual delivery) are src/api/routes/admin.ts; the schemas are src/api/schemas/admin-routes.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { adminStats, decodeCursor, encodeCursor, shipmentQueuePage } from '../admin-queries';
import type { ShipmentFilter } from '../../read-model/admin-queries';
import type { ApiDeps } from '../app';
import { Permission } from '../access';
import { requireStaff } from '../auth';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors } from '../schemas/admin';
import { PAGE_SIZE_DEFAULT, ListQuery, QueuePage, Stats } from '../schemas/admin-routes';

export const adminQueueRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/admin/shipments',
    {
      onRequest: requireStaff(Permission.READ_SHIPMENTS),
      schema: {
        tags: ['admin'],
        summary: 'The exceptions queue: shipments by status, courier, staleness, problems',
        description:
          'Oldest shipment first; filters combine with AND. Staleness uses the same rule as the tracking views (last sync vs the poll interval of the status). Archived shipments are left out.',
        querystring: ListQuery,
        response: { 200: QueuePage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
      if (q.cursor !== undefined && after === null) {
        throw new ApiError(
          400,
          'INVALID_CURSOR',
          'querystring: cursor is not one this API handed out; pass nextCursor from the previous page',
        );
      }
      const filter: ShipmentFilter = {
        ...(q.status ? { status: q.status } : {}),
        ...(q.courier !== undefined ? { courier: q.courier } : {}),
        ...(q.stale !== undefined ? { stale: q.stale } : {}),
        ...(q.exception !== undefined ? { exception: q.exception } : {}),
        ...(q.noScanForDays !== undefined ? { noScanForDays: q.noScanForDays } : {}),
        ...(q.orderId !== undefined ? { orderId: q.orderId } : {}),
      };
      const page = await shipmentQueuePage(deps.db, {
        filter,
        rule: deps.config.api.freshness,
        now: new Date(),
        limit: q.limit ?? PAGE_SIZE_DEFAULT,
        after,
      });
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/v1/admin/stats',
    {
      onRequest: requireStaff(Permission.READ_STATS),
      schema: {
        tags: ['admin'],
        summary: 'Shipments by status, courier calls today vs budget, poll failures, oldest stale shipment',
        response: { 200: Stats, ...errors(...AUTH_ERRORS, 503) },
      },
    },
    async () =>
      adminStats(deps.db, {
        rule: deps.config.api.freshness,
        now: new Date(),
        dailyBudget: deps.config.courier.dailyBudget,
        bookingReserve: deps.config.courier.bookingReserve,
        requestsPerSecond: deps.config.courier.requestsPerSecond,
      }),
  );
};
