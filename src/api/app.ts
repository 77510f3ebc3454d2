/**
 * The Fastify application: TypeBox schemas on every route (they validate requests, shape
 * responses and produce the OpenAPI document), one error shape, request ids everywhere.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { pollPolicyFromConfig } from '../poll-policy';
import type { PollPolicy } from '../workflows/contract';
import type { TemporalClient } from '../temporal';
import { authPlugin } from './auth';
import {
  ApiError,
  databaseUnavailable,
  ErrorBody,
  errorBody,
  isDatabaseUnavailable,
  isTemporalUnavailable,
  temporalUnavailable,
} from './errors';
import { metricsPlugin } from './metrics';
import { healthRoutes } from './routes/health';
import { streamRoutes } from './routes/stream';
import { trackingRoutes } from './routes/tracking';
import { webhookRoutes } from './routes/webhooks';

export interface ApiDeps {
  config: Config;
  db: Kysely<Database>;
  temporal: TemporalClient;
  log: Logger;
  /**
   * The poll policy shipment workflows run with: orders start their parcels on it and
   * freshness is judged against it. Defaults to the configured one (tests shrink it).
   */
  shipmentPolicy: PollPolicy;
}

export type ApiOptions = Omit<ApiDeps, 'shipmentPolicy'> & { shipmentPolicy?: PollPolicy };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_LIMIT_BYTES = 64 * 1024;

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const deps: ApiDeps = {
    ...options,
    shipmentPolicy: options.shipmentPolicy ?? pollPolicyFromConfig(options.config),
  };
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // A caller's x-request-id is kept when it is sane, so one id follows a request across systems.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.addSchema(ErrorBody);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Waybill API',
        version: '0.1.0',
        description:
          'Orders, shipment tracking and admin actions for a shop. Errors share one shape: `{ error: { code, message } }`.',
      },
      tags: [
        { name: 'operations', description: 'Health, metrics and this document' },
        { name: 'orders', description: 'Customers’ orders' },
        { name: 'tracking', description: 'Shipment tracking, read from the read model only' },
        { name: 'webhooks', description: 'Pushes from couriers, signed with HMAC-SHA256' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(rateLimit, {
    max: deps.config.api.rateLimitPerMinute,
    timeWindow: 60_000,
    // Health checks and scrapes come from the orchestrator, often many per second: never limit them.
    allowList: (request) => request.url.startsWith('/health/') || request.url.split('?')[0] === '/metrics',
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        context.statusCode,
        'RATE_LIMITED',
        `too many requests: at most ${context.max} per ${context.after}; retry after that`,
      ),
  });
  await app.register(authPlugin, { config: deps.config });
  await app.register(metricsPlugin, { deps });

  app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send(errorBody(err.code, err.message));
    }
    if (err.validation) {
      const where = err.validationContext ?? 'request';
      return reply
        .code(400)
        .send(
          errorBody(
            'VALIDATION_FAILED',
            `${where}: ${err.message.replace(/^\w+\/?/, '').trim() || err.message}`,
          ),
        );
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send(errorBody(err.code ?? 'BAD_REQUEST', err.message));
    }
    // A dependency that is down is the caller's to retry, not a bug: 503 with a clear code.
    const unavailable = isDatabaseUnavailable(err)
      ? databaseUnavailable()
      : isTemporalUnavailable(err)
        ? temporalUnavailable()
        : null;
    if (unavailable) {
      request.log.warn({ err }, unavailable.message);
      return reply
        .code(unavailable.statusCode)
        .header('retry-after', '5')
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
  await app.register(webhookRoutes, { deps });
  await app.register(streamRoutes, { deps });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
