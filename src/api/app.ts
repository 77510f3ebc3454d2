/**
 * The Fastify application: TypeBox schemas on every route (they validate requests, shape
 * responses and produce the OpenAPI document), one error shape, request ids everywhere.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { serializeRequest } from './log-redact';
import { lazyRequestLogger, RequestLogController } from './request-log';
import type { TemporalClient } from '../temporal';
import { authPlugin } from './auth';
import {
  ApiError,
  BODY_LIMIT_BYTES,
  bodyError,
  clientErrorResponse,
  databaseUnavailable,
  ErrorBody,
  errorBody,
  MAX_PARAM_LENGTH,
  routerError,
  isDatabaseUnavailable,
  isTemporalUnavailable,
  searchAttributeProblem,
  temporalBusy,
  temporalRefusal,
  temporalNotReady,
  temporalUnavailable,
} from './errors';
import { metricsPlugin } from './metrics';
import { describeOperation, documentResponseHeaders, SECURITY_SCHEMES } from './operations';
import { adminRoutes } from './routes/admin';
import { adminQueueRoutes } from './routes/admin-queue';
import { attentionRoutes } from './routes/attention';
import { catalogueRoutes } from './routes/catalogue';
import { codecRoutes } from './routes/codec';
import { exportRoutes } from './routes/exports';
import { failedWorkRoutes } from './routes/failed-work';
import { fleetRoutes } from './routes/fleet';
import { FLEET_SCHEMAS } from './schemas/fleet';
import { fleetDriverRoutes } from './routes/fleet-driver';
import { healthRoutes } from './routes/health';
import { importRoutes } from './routes/imports';
import { orderSearchRoutes } from './routes/order-search';
import { orderCreateRoutes } from './routes/order-create';
import { orderRoutes } from './routes/orders';
import { streamRoutes } from './routes/stream';
import { subscriptionRoutes } from './routes/subscriptions';
import { withStorableText } from './storable-text';
import { trackingRoutes } from './routes/tracking';
import { webhookRoutes } from './routes/webhooks';
import { easyParcelWebhookRoutes } from './routes/easyparcel-webhook';
import { PushOutcomeSchema } from './push-delivery';

export interface ApiDeps {
  config: Config;
  db: Kysely<Database>;
  temporal: TemporalClient;
  log: Logger;
}

export type ApiOptions = ApiDeps;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Health checks come from the orchestrator, often many per second: never rate limited. */
const isUnlimited = (url: string) => url.startsWith('/health/');

declare module 'fastify' {
  interface FastifyInstance {
    /** Every documented route as "METHOD /path/{param}": the contract test and the fuzzer read it. */
    waybillRoutes: string[];
  }
}

/** One sentence naming the field and what is wrong with it, e.g. `body.lines[0].quantity must be >= 1`. */
function validationMessage(
  context: string | undefined,
  issue:
    | { instancePath?: string; keyword?: string; message?: string; params?: Record<string, unknown> }
    | undefined,
): string {
  const where = [
    context ?? 'request',
    ...(issue?.instancePath ?? '')
      .split('/')
      .filter(Boolean)
      .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`)),
  ]
    .join('')
    .replace(/\.\[/g, '[');
  if (issue?.keyword === 'additionalProperties') {
    return `${where} has an unknown field "${String(issue.params?.additionalProperty)}"`;
  }
  if (issue?.keyword === 'enum' && Array.isArray(issue.params?.allowedValues)) {
    return `${where} must be one of ${issue.params.allowedValues.join(', ')}`;
  }
  if (issue?.keyword === 'required') {
    return `${where} is missing "${String(issue.params?.missingProperty)}"`;
  }
  return `${where} ${issue?.message ?? 'is not valid'}`;
}

/** ajv-formats' RFC 3339 `date-time`: calendar days, offsets, leap seconds. */
const rfc3339DateTime = fullFormats['date-time'] as {
  validate: (text: string) => boolean;
  compare: (a: string, b: string) => number | undefined;
};
const YEAR_ONE_MS = Date.parse('0001-01-01T00:00:00Z');

/**
 * `date-time` as routes can use it. RFC 3339 also allows a leap second (`23:59:60`), which is an
 * Invalid Date in JS (a route that stores or writes it out fails with a 500), and year 0000, which
 * Postgres does not have (1 BC comes before 1 AD). So the time must also be one JS can hold, from
 * year 1 on, as written and in UTC; any other answers the usual 400 naming the field.
 */
const dateTime = {
  ...rfc3339DateTime,
  validate: (text: string) =>
    rfc3339DateTime.validate(text) && !text.startsWith('0000') && Date.parse(text) >= YEAR_ONE_MS,
};

/** WAYBILL_TRUST_PROXY as Fastify takes it (a hop count: the nearest `hops` addresses are proxies). */
function trustProxyOption(
  trust: Config['api']['trustProxy'],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return typeof trust === 'boolean' ? trust : [...trust];
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const deps: ApiDeps = { ...options };
  const app = Fastify({
    // Request lines never carry a credential sent in a query string (./log-redact.ts).
    loggerInstance: deps.log.child({}, { serializers: { req: serializeRequest } }) as FastifyBaseLogger,
    // One line per request at info, "request completed" (./request-log.ts), and no logger
    // built for a request that logs nothing.
    logController: new RequestLogController(),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Behind a load balancer the socket address is the balancer's: rate limits and logs would
    // put every customer in one bucket. Only the configured proxies' X-Forwarded-For is believed.
    trustProxy: trustProxyOption(deps.config.api.trustProxy),
    // Router and HTTP-parser errors never reach the error handler: they answer in our shape here.
    frameworkErrors: (err, request, reply) => {
      const answer = routerError(err);
      void (reply as FastifyReply)
        .code(answer.statusCode)
        .header('x-request-id', request.id)
        .send(errorBody(answer.code, answer.message));
    },
    clientErrorHandler: (err, socket) => {
      const response = clientErrorResponse(err as NodeJS.ErrnoException);
      if (response !== null && socket.writable) socket.write(response);
      socket.destroy(err);
    },
    // A caller's x-request-id is kept when it is sane, so one id follows a request across systems.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Every body this API reads is JSON: text/plain (a parser Fastify adds by default) would
  // reach a route as a string and fail its schema with a confusing message; 415 says it.
  app.removeContentTypeParser('text/plain');

  // URLs and headers carry text, so their values are coerced ("true" → true, "5" → 5);
  // JSON bodies carry types and are taken as sent: ["a"] is not a reason, "12" not a quantity.
  const coercing = new Ajv({
    strict: false,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: 'array',
  });
  const exact = new Ajv({ strict: false, removeAdditional: false, useDefaults: true, coerceTypes: false });
  for (const ajv of [coercing, exact]) addFormats(ajv).addFormat('date-time', dateTime);
  // Then every string of a body, query string or path must be one Postgres can store
  // (./storable-text.ts); headers cannot carry the characters it refuses.
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = (httpPart === 'body' ? exact : coercing).compile(schema);
    return httpPart === 'headers' ? validate : withStorableText(validate);
  });

  // Callback hooks on the request path: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  app.addSchema(ErrorBody);
  for (const schema of FLEET_SCHEMAS) app.addSchema(schema);
  app.addSchema(PushOutcomeSchema);

  const routes: string[] = [];
  app.decorate('waybillRoutes', routes);
  app.addHook('onRoute', (route) => {
    // Unlimited routes opt out of the rate limit here, so the limiter runs nothing for them
    // (an allow-list would be asked on every request of every route).
    if (isUnlimited(route.url)) route.config = { ...route.config, rateLimit: false };
    // A route's own limit gets a store of its own, sized by the route's options only (the
    // plugin's `cache` reaches the global store, not these): every limit remembers as many clients.
    const limit = (route.config as { rateLimit?: unknown } | undefined)?.rateLimit;
    if (typeof limit === 'object' && limit !== null) {
      route.config = { ...route.config, rateLimit: { ...limit, cache: deps.config.api.rateLimitClients } };
    }
    const schema = route.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
    if (schema?.hide) return;
    // Any route can meet these, whatever it does: wrong credentials, ambiguous credentials,
    // the rate limit, a dependency down. Declared once here so the document tells the truth.
    if (schema?.response) {
      const withBody = route.schema?.body !== undefined;
      const withParams = route.url.includes(':');
      const limited = !isUnlimited(route.url);
      for (const status of [
        '400',
        '401',
        '500',
        '503',
        ...(limited ? ['429'] : []),
        ...(withBody ? ['413', '415'] : []),
        ...(withParams ? ['414'] : []),
      ]) {
        if (!(status in schema.response) && !(Number(status) in schema.response)) {
          schema.response[status] = { $ref: 'Error#' };
        }
      }
      documentResponseHeaders(schema.response, limited);
    }
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const operation = `${method} ${route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`;
      routes.push(operation);
      describeOperation(
        operation,
        (route.schema ??= {}) as Parameters<typeof describeOperation>[1],
        route.onRequest,
      );
    }
  });

  // Before any route: it gives each route its metrics hook as the route is added.
  await app.register(metricsPlugin, { deps });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Waybill API',
        version: '0.1.0',
        description:
          'Orders, shipment tracking and admin actions for a shop. Errors share one shape: `{ error: { code, message } }`.',
      },
      components: { securitySchemes: SECURITY_SCHEMES },
      tags: [
        { name: 'operations', description: 'Health and this document' },
        { name: 'orders', description: 'Customers’ orders: create, read, cancel' },
        { name: 'tracking', description: 'Shipment tracking, read from the read model only' },
        { name: 'admin', description: 'Admin actions through the workflows, the exceptions queue, stats' },
        {
          name: 'webhooks',
          description:
            "Pushes from couriers: signed with HMAC-SHA256, or EasyParcel's own with the URL's secret",
        },
        {
          name: 'fleet',
          description: "The shop's own fleet: vehicles, drivers, runs, dispatch, and the driver API",
        },
        {
          name: 'catalogue',
          description: 'Skus and prices, stock levels, receipts and adjustments, low-stock alerts',
        },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(rateLimit, {
    max: deps.config.api.rateLimitPerMinute,
    timeWindow: 60_000,
    // Clients remembered (~290 B each); the default store's 5,000 would forget, and so reset,
    // limited clients once more than that many addresses call within a minute.
    cache: deps.config.api.rateLimitClients,
    // RateLimit-Limit / -Remaining / -Reset (the IETF draft's names) on every limited
    // answer, and Retry-After on a 429: the headers the OpenAPI document declares.
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        context.statusCode,
        'RATE_LIMITED',
        `too many requests: at most ${context.max} per ${context.after}; retry after that`,
      ),
  });
  await app.register(authPlugin, { config: deps.config });

  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (err instanceof ApiError) {
      const retryAfter = err.retryAfterSeconds ?? (err.statusCode === 503 ? 5 : undefined);
      if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
      return reply.code(err.statusCode).send(errorBody(err.code, err.message));
    }
    const refusedBody = bodyError(err);
    if (refusedBody) {
      return reply.code(refusedBody.statusCode).send(errorBody(refusedBody.code, refusedBody.message));
    }
    if (err.validation) {
      return reply
        .code(400)
        .send(errorBody('VALIDATION_FAILED', validationMessage(err.validationContext, err.validation[0])));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = err.code === undefined || err.code.startsWith('FST_') ? 'BAD_REQUEST' : err.code;
      return reply.code(status).send(errorBody(code, err.message));
    }
    // A dependency that is down, or a Temporal namespace the worker has not set up yet (its
    // search attributes), is the caller's to retry, not a bug: 503 with a clear code.
    // One workflow's own limit (its updates in flight) is the caller's to slow down on: 429.
    const searchAttribute = searchAttributeProblem(err);
    const refusal = temporalRefusal(err);
    const unavailable = isDatabaseUnavailable(err)
      ? databaseUnavailable()
      : isTemporalUnavailable(err)
        ? temporalUnavailable()
        : refusal
          ? temporalBusy(refusal)
          : searchAttribute
            ? temporalNotReady(searchAttribute, deps.config.temporal.namespace)
            : null;
    if (unavailable) {
      request.log.warn({ err }, unavailable.message);
      return reply
        .code(unavailable.statusCode)
        .header('retry-after', String(unavailable.retryAfterSeconds ?? 5))
        .send(errorBody(unavailable.code, unavailable.message));
    }
    request.log.error({ err }, 'request failed');
    return reply
      .code(status >= 500 ? status : 500)
      .send(errorBody('INTERNAL', 'Internal error; the request id identifies it in the logs'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  await app.register(healthRoutes, { deps });
  await app.register(trackingRoutes, { deps });
  await app.register(orderCreateRoutes, { deps });
  await app.register(orderRoutes, { deps });
  await app.register(adminRoutes, { deps });
  await app.register(adminQueueRoutes, { deps });
  await app.register(attentionRoutes, { deps });
  await app.register(failedWorkRoutes, { deps });
  await app.register(importRoutes, { deps });
  await app.register(catalogueRoutes, { deps });
  await app.register(orderSearchRoutes, { deps });
  await app.register(webhookRoutes, { deps });
  await app.register(easyParcelWebhookRoutes, { deps });
  await app.register(streamRoutes, { deps });
  await app.register(codecRoutes, { deps });
  await app.register(subscriptionRoutes, { deps });
  await app.register(exportRoutes, { deps });
  await app.register(fleetRoutes, { deps });
  await app.register(fleetDriverRoutes, { deps });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
