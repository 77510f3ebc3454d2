/**
 * Finding an order for staff (support and up): by order number, customer e-mail, tracking
 * number, status and creation date range, newest first, in keyset pages, from the read
 * model only (src/read-model/order-search.ts). The e-mail is sent in the body, never in the
 * URL, so it stays out of access logs; answers show what support already sees on the
 * order itself, less its address.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { searchOrders, type OrderSearch } from '../../read-model/order-search';
import { Permission } from '../access';
import { decodeCursor, encodeCursor } from '../admin-queries';
import type { ApiDeps } from '../app';
import { requireStaff } from '../auth';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors } from '../schemas/admin';
import { SEARCH_PAGE_DEFAULT, SearchBody, SearchPage } from '../schemas/order-search';

export const orderSearchRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.post(
    '/v1/admin/orders/search',
    {
      onRequest: requireStaff(Permission.SEARCH_ORDERS),
      schema: {
        tags: ['admin'],
        summary: 'Find orders by number, customer e-mail, tracking number, status and creation time',
        description:
          'Filters combine with AND; none lists every order. Newest first. The e-mail matches the whole address in any case (no partial matches). `createdFrom` is inclusive, `createdTo` exclusive. A POST so that e-mails stay out of URLs and logs; it changes nothing.',
        body: SearchBody,
        response: { 200: SearchPage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => {
      const q = request.body;
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
      if (q.cursor !== undefined && after === null) {
        throw new ApiError(
          400,
          'INVALID_CURSOR',
          'body: cursor is not one this API handed out; pass nextCursor from the previous page',
        );
      }
      const createdFrom = q.createdFrom === undefined ? undefined : new Date(q.createdFrom);
      const createdTo = q.createdTo === undefined ? undefined : new Date(q.createdTo);
      if (createdFrom && createdTo && createdFrom.getTime() >= createdTo.getTime()) {
        throw new ApiError(
          400,
          'INVALID_DATE_RANGE',
          `body: createdFrom (${q.createdFrom}) must be before createdTo (${q.createdTo})`,
        );
      }
      const search: OrderSearch = {
        ...(q.orderNumber !== undefined ? { orderNumber: q.orderNumber } : {}),
        ...(q.email !== undefined ? { email: q.email.trim() } : {}),
        ...(q.trackingNumber !== undefined ? { trackingNumber: q.trackingNumber } : {}),
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(createdFrom ? { createdFrom } : {}),
        ...(createdTo ? { createdTo } : {}),
      };
      const page = await searchOrders(deps.db, { search, limit: q.limit ?? SEARCH_PAGE_DEFAULT, after });
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );
};
