/**
 * The simulated provider's API (`/v1/payments`…): authorise, capture, void and refund, each
 * behind an Idempotency-Key, and retrieve (a GET of one payment). Counting, faults and the API key are the server's hooks (server.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { PaymentOperation } from '../../src/payments/types';
import {
  AmountBody,
  AuthoriseBody,
  Failures,
  IdempotencyHeaders,
  PaymentView,
  RefParams,
  RefundBody,
  RefundView,
} from './schemas';
import type { PaymentSimulatorState } from './state';
import type { SimAnswer } from './wire';

/** The operation behind a route (its URL pattern), for counting and faults; control routes have none. */
export const OPERATION_OF_ROUTE: Readonly<Record<string, PaymentOperation>> = {
  '/v1/payments': 'authorise',
  '/v1/payments/:ref/capture': 'capture',
  '/v1/payments/:ref/void': 'void',
  '/v1/payments/:ref/refunds': 'refund',
};

/** The one GET of the API: a payment as the books hold it. */
const RETRIEVE_ROUTE = '/v1/payments/:ref';

export function operationOf(request: FastifyRequest): PaymentOperation | null {
  const url = request.routeOptions.url ?? '';
  if (request.method === 'GET') return url === RETRIEVE_ROUTE ? 'retrieve' : null;
  if (request.method !== 'POST') return null;
  return OPERATION_OF_ROUTE[url] ?? null;
}

export function send(reply: FastifyReply, answer: SimAnswer): FastifyReply {
  return reply.code(answer.status).send(answer.body);
}

/**
 * Sends an operation's answer. The reply is used untyped: a stored answer's status is
 * only known at run time, and every status it can have is declared in the route's schema.
 */
function answer(reply: FastifyReply, result: SimAnswer & { replayed: boolean }): FastifyReply {
  // Stripe marks an answer given again from the idempotency store.
  if (result.replayed) void reply.header('idempotent-replayed', 'true');
  return send(reply, result);
}

export const providerRoutes: FastifyPluginAsyncTypebox<{ state: PaymentSimulatorState }> = async (
  app,
  { state },
) => {
  app.post(
    '/v1/payments',
    {
      schema: {
        headers: IdempotencyHeaders,
        body: AuthoriseBody,
        response: { 201: PaymentView, ...Failures },
      },
    },
    async (request, reply) => {
      answer(
        reply as FastifyReply,
        state.idempotent('authorise', request.headers['idempotency-key'], { body: request.body }, () =>
          state.authorise(request.body),
        ),
      );
      return reply;
    },
  );

  app.post(
    '/v1/payments/:ref/capture',
    {
      schema: {
        headers: IdempotencyHeaders,
        params: RefParams,
        body: AmountBody,
        response: { 200: PaymentView, ...Failures },
      },
    },
    async (request, reply) => {
      answer(
        reply as FastifyReply,
        state.idempotent(
          'capture',
          request.headers['idempotency-key'],
          { ref: request.params.ref, body: request.body },
          () => state.capture(request.params.ref, request.body.amount, request.headers['idempotency-key']),
        ),
      );
      return reply;
    },
  );

  // The body of a void is ignored (there is nothing to say but which payment).
  app.post(
    '/v1/payments/:ref/void',
    {
      schema: { headers: IdempotencyHeaders, params: RefParams, response: { 200: PaymentView, ...Failures } },
    },
    async (request, reply) => {
      answer(
        reply as FastifyReply,
        state.idempotent('void', request.headers['idempotency-key'], { ref: request.params.ref }, () =>
          state.void(request.params.ref),
        ),
      );
      return reply;
    },
  );

  app.get(
    RETRIEVE_ROUTE,
    { schema: { params: RefParams, response: { 200: PaymentView, ...Failures } } },
    async (request, reply) => send(reply as FastifyReply, state.retrieve(request.params.ref)),
  );

  app.post(
    '/v1/payments/:ref/refunds',
    {
      schema: {
        headers: IdempotencyHeaders,
        params: RefParams,
        body: RefundBody,
        response: { 201: Type.Object({ refund: RefundView, payment: PaymentView }), ...Failures },
      },
    },
    async (request, reply) => {
      answer(
        reply as FastifyReply,
        state.idempotent(
          'refund',
          request.headers['idempotency-key'],
          { ref: request.params.ref, body: request.body },
          () => state.refund(request.params.ref, request.body.amount, request.body.metadata),
        ),
      );
      return reply;
    },
  );
};
