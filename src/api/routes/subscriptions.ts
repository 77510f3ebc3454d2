/**
 * Event subscriptions (docs/events.md): a shop's admins register endpoints, each receiving
 * the event types it chose, read what was delivered and tried, and resend any event. Every
 * change is audited; the signing secret is answered only when created or rotated. The
 * worker's dispatcher does the sending; these routes only read and write Postgres.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EventEndpoint } from '../../../db/database';
import type { EventType } from '../../domain/events';
import {
  changeEndpoint,
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listAttempts,
  listDeliveries,
  listEndpoints,
  resendEvent,
} from '../../read-model/event-endpoints';
import type { ApiDeps } from '../app';
import { Permission } from '../access';
import { actorOf, requireStaff } from '../auth';
import { ApiError } from '../errors';
import { AUTH_ERRORS, errors, ReasonBody, trimmedReason } from '../schemas/admin';
import {
  Attempts,
  AttemptsQuery,
  CreateBody,
  Deliveries,
  DeliveriesQuery,
  Endpoint,
  EndpointList,
  EndpointParams,
  EndpointWithSecret,
  PAGE_SIZE_DEFAULT,
  Resent,
  ResendParams,
  UpdateBody,
} from '../schemas/subscriptions';

const TAGS = ['admin'];
const guard = requireStaff(Permission.MANAGE_EVENT_ENDPOINTS);

function view(row: EventEndpoint) {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types as EventType[],
    status: row.status,
    disabledReason: row.disabled_reason,
    consecutiveFailures: row.consecutive_failures,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * An endpoint URL we will POST to: http or https only, no credentials in it (the secret
 * signs; a password in a URL ends up in logs), plain http only where configured.
 */
export function checkEndpointUrl(text: string, allowPlainHttp: boolean): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ApiError(400, 'VALIDATION_FAILED', 'body.url must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ApiError(
      400,
      'VALIDATION_FAILED',
      `body.url must use http:// or https://, not ${url.protocol}//`,
    );
  }
  if (url.protocol === 'http:' && !allowPlainHttp) {
    throw new ApiError(
      400,
      'VALIDATION_FAILED',
      'body.url must use https:// (plain http:// is refused here: WAYBILL_EVENTS_ALLOW_HTTP is off)',
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new ApiError(400, 'VALIDATION_FAILED', 'body.url must not carry a user name or password');
  }
  if (url.hash !== '') throw new ApiError(400, 'VALIDATION_FAILED', 'body.url must not have a #fragment');
  return url.toString();
}

const notFound = (endpointId: string) => new ApiError(404, 'NOT_FOUND', `no event endpoint ${endpointId}`);

export const subscriptionRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;
  const allowPlainHttp = deps.config.events.allowPlainHttp;

  app.post(
    '/v1/admin/event-endpoints',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Register an endpoint for domain events (audited); the answer holds its secret, once',
        body: CreateBody,
        response: { 201: EndpointWithSecret, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request, reply) => {
      const row = await createEndpoint(
        db,
        {
          url: checkEndpointUrl(request.body.url, allowPlainHttp),
          eventTypes: request.body.eventTypes,
          description: request.body.description ?? null,
        },
        { actor: actorOf(request.principal), reason: null },
      );
      return reply.code(201).send({ endpoint: view(row), secret: row.secret });
    },
  );

  app.get(
    '/v1/admin/event-endpoints',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Every event endpoint, oldest first (without secrets)',
        response: { 200: EndpointList, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async () => ({ items: (await listEndpoints(db)).map(view) }),
  );

  app.get(
    '/v1/admin/event-endpoints/:endpointId',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'One event endpoint (without its secret)',
        params: EndpointParams,
        response: { 200: Endpoint, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const row = await findEndpoint(db, request.params.endpointId);
      if (!row) throw notFound(request.params.endpointId);
      return view(row);
    },
  );

  app.patch(
    '/v1/admin/event-endpoints/:endpointId',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: "Change an endpoint's URL, event types or description (audited)",
        description: 'Events already written keep going to the endpoint they were owed to.',
        params: EndpointParams,
        body: UpdateBody,
        response: { 200: Endpoint, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const { url, eventTypes, description } = request.body;
      const row = await changeEndpoint(
        db,
        request.params.endpointId,
        'update',
        {
          ...(url !== undefined ? { url: checkEndpointUrl(url, allowPlainHttp) } : {}),
          ...(eventTypes !== undefined ? { eventTypes } : {}),
          ...(description !== undefined ? { description } : {}),
        },
        { actor: actorOf(request.principal), reason: null },
      );
      if (!row) throw notFound(request.params.endpointId);
      return view(row);
    },
  );

  for (const action of ['disable', 'enable'] as const) {
    app.post(
      `/v1/admin/event-endpoints/:endpointId/${action}`,
      {
        onRequest: guard,
        schema: {
          tags: TAGS,
          summary:
            action === 'enable'
              ? 'Enable an endpoint again (audited): its failure run is cleared and its backlog goes out, in order'
              : 'Disable an endpoint (audited): its events wait, in order, until it is enabled',
          params: EndpointParams,
          body: ReasonBody,
          response: { 200: Endpoint, ...errors(400, ...AUTH_ERRORS, 404, 503) },
        },
      },
      async (request) => {
        const row = await changeEndpoint(
          db,
          request.params.endpointId,
          action,
          {},
          {
            actor: actorOf(request.principal),
            reason: trimmedReason(request.body.reason),
          },
        );
        if (!row) throw notFound(request.params.endpointId);
        return view(row);
      },
    );
  }

  app.post(
    '/v1/admin/event-endpoints/:endpointId/rotate-secret',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Replace the signing secret (audited); the answer holds the new one, once',
        description: 'Deliveries from now on are signed with the new secret.',
        params: EndpointParams,
        body: ReasonBody,
        response: { 200: EndpointWithSecret, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const row = await changeEndpoint(
        db,
        request.params.endpointId,
        'rotate_secret',
        {},
        {
          actor: actorOf(request.principal),
          reason: trimmedReason(request.body.reason),
        },
      );
      if (!row) throw notFound(request.params.endpointId);
      return { endpoint: view(row), secret: row.secret };
    },
  );

  app.delete(
    '/v1/admin/event-endpoints/:endpointId',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Delete an endpoint with its deliveries and attempts (audited)',
        params: EndpointParams,
        response: {
          200: EndpointParams,
          ...errors(400, ...AUTH_ERRORS, 404, 503),
        },
      },
    },
    async (request) => {
      const { endpointId } = request.params;
      if (!(await deleteEndpoint(db, endpointId, { actor: actorOf(request.principal), reason: null }))) {
        throw notFound(endpointId);
      }
      return { endpointId };
    },
  );

  app.get(
    '/v1/admin/event-endpoints/:endpointId/deliveries',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'The events owed to an endpoint and where each stands, newest first',
        params: EndpointParams,
        querystring: DeliveriesQuery,
        response: { 200: Deliveries, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const { endpointId } = request.params;
      if (!(await findEndpoint(db, endpointId))) throw notFound(endpointId);
      const limit = request.query.limit ?? PAGE_SIZE_DEFAULT;
      const rows = await listDeliveries(db, endpointId, {
        limit,
        ...(request.query.status ? { status: request.query.status } : {}),
        ...(request.query.before !== undefined ? { before: request.query.before } : {}),
      });
      return {
        items: rows.map(({ cursor: _cursor, ...d }) => ({
          ...d,
          type: d.type as EventType,
          occurredAt: d.occurredAt.toISOString(),
          nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
          deliveredAt: d.deliveredAt?.toISOString() ?? null,
        })),
        nextBefore: rows.length === limit ? rows[rows.length - 1]!.cursor : null,
      };
    },
  );

  app.get(
    '/v1/admin/event-endpoints/:endpointId/attempts',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Every delivery attempt at an endpoint (or at one of its events), newest first',
        params: EndpointParams,
        querystring: AttemptsQuery,
        response: { 200: Attempts, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const { endpointId } = request.params;
      if (!(await findEndpoint(db, endpointId))) throw notFound(endpointId);
      const limit = request.query.limit ?? PAGE_SIZE_DEFAULT;
      const rows = await listAttempts(db, endpointId, {
        limit,
        ...(request.query.eventId !== undefined ? { eventKey: request.query.eventId } : {}),
        ...(request.query.before !== undefined ? { before: request.query.before } : {}),
      });
      return {
        items: rows.map((a) => ({
          eventId: a.event_key,
          type: a.type as EventType,
          attemptedAt: a.attempted_at.toISOString(),
          ok: a.ok,
          statusCode: a.status_code,
          error: a.error,
          durationMs: a.duration_ms,
        })),
        nextBefore: rows.length === limit ? rows[rows.length - 1]!.id : null,
      };
    },
  );

  app.post(
    '/v1/admin/event-endpoints/:endpointId/events/:eventId/resend',
    {
      onRequest: guard,
      schema: {
        tags: TAGS,
        summary: 'Send an event to an endpoint again (audited)',
        description:
          "The delivery becomes pending and due now, with the same event id (receivers dedupe by it); it goes out behind the same order's earlier undelivered events. 404 when the endpoint or the event does not exist.",
        params: ResendParams,
        body: ReasonBody,
        response: { 202: Resent, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request, reply) => {
      const { endpointId, eventId } = request.params;
      if (!(await findEndpoint(db, endpointId))) throw notFound(endpointId);
      const resent = await resendEvent(db, endpointId, eventId, {
        actor: actorOf(request.principal),
        reason: trimmedReason(request.body.reason),
      });
      if (!resent) throw new ApiError(404, 'NOT_FOUND', `no event ${eventId}`);
      return reply.code(202).send({ eventId, endpointId, status: 'PENDING' as const });
    },
  );
};
