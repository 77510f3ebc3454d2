/**
 * A simulated payment provider over HTTP that behaves like Stripe where the saga cares:
 * idempotency keys (same key and body → the first answer again; same key, other body →
 * 422), test cards that approve, decline or fail, money rules (capture once, at most the
 * authorised amount; refunds within the captured amount; void only before capture), and
 * a control API (`/control`) for faults, counters and payment state. State lives in
 * memory (state.ts). The wire format is documented in README.md.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from '../../src/logger';
import { listen, Sleeper } from '../http-server';
import { OUTAGE_PAGE } from '../courier/faults';
import { controlRoutes } from './control';
import { operationOf, providerRoutes, send } from './routes';
import { PaymentSimulatorState } from './state';
import { refusal, simError } from './wire';
import { PaymentRejection } from '../../src/payments/types';

export interface PaymentSimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  log?: Logger;
  /** Real clock (ms since the epoch) for timestamps, card expiry and outage windows. */
  now?: () => number;
  /** When set, every operation must carry `Authorization: Bearer <apiKey>`; default: any caller. */
  apiKey?: string;
  /** Seed of the fault PRNGs (error rates). Default 1. */
  seed?: number;
  /**
   * How long an uncaptured authorisation holds (real ms); after it a capture is refused
   * `authorization_expired`. Default null: for ever. `PUT /control/settings` changes it.
   */
  authorisationTtlMs?: number | null;
}

export interface RunningPaymentSimulator {
  /** Root URL, e.g. `http://127.0.0.1:4020`: the adapter's `baseUrl`. */
  url: string;
  port: number;
  stop(): Promise<void>;
  /** The provider's memory, for tests that steer or inspect it without HTTP. */
  state: PaymentSimulatorState;
}

/** Builds the simulator's Fastify app around a state (not listening). */
export async function buildPaymentSimulatorApp(
  state: PaymentSimulatorState,
  opts: Pick<PaymentSimulatorOptions, 'log' | 'apiKey'> & { sleeper?: Sleeper } = {},
): Promise<{ app: FastifyInstance; wakeSleepers: () => void }> {
  const sleeper = opts.sleeper ?? new Sleeper();
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log as FastifyBaseLogger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    // No coercion: an amount sent as "100" is a caller bug the provider refuses.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Counting, faults and the API key come before validation and the route, as at a real
  // provider's edge. The answer delay of a timeout fault is applied when the answer is sent,
  // after the operation ran: the provider acted, the caller just never hears back in time.
  const delays = new WeakMap<FastifyRequest, number>();
  app.addHook('onRequest', async (request, reply) => {
    const operation = operationOf(request);
    if (!operation) return;
    state.countCall(operation);
    const decision = state.faults.decide(operation);
    if (decision.delayMs > 0) {
      state.countFault('timeout');
      delays.set(request, decision.delayMs);
    }
    if (decision.failure === 'outage') {
      state.countFault('outage');
      return reply.code(503).type('text/html; charset=utf-8').send(OUTAGE_PAGE);
    }
    if (decision.failure === 'error') {
      state.countFault('error');
      return reply.code(500).send(simError('api_error', 'internal_error', 'simulated provider error'));
    }
    if (opts.apiKey !== undefined && request.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return send(reply, refusal(PaymentRejection.UNAUTHORISED, 'Invalid API key provided'));
    }
  });

  // A reject fault answers once the call got past the edge (faults, API key, validation) and
  // before the operation runs: nothing moves, and nothing is stored under the key.
  app.addHook('preHandler', async (request, reply) => {
    const operation = operationOf(request);
    const code = operation ? state.faults.rejection(operation) : null;
    if (!operation || code === null) return;
    state.countFault('reject');
    return send(reply, refusal(code, `the provider refused this ${operation} (${code}, injected)`));
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (!operationOf(request)) return payload;
    const delayMs = delays.get(request);
    if (delayMs) await sleeper.sleep(delayMs);
    state.countStatus(reply.statusCode);
    return payload;
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      if (err.validationContext === 'headers') {
        return reply
          .code(400)
          .send(
            simError(
              'invalid_request_error',
              PaymentRejection.INVALID_REQUEST,
              'every operation needs an Idempotency-Key header (1 to 255 characters)',
            ),
          );
      }
      return reply
        .code(400)
        .send(
          simError(
            'invalid_request_error',
            PaymentRejection.INVALID_REQUEST,
            `${err.validationContext ?? 'request'}: ${err.message}`,
          ),
        );
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply
        .code(status)
        .send(simError('invalid_request_error', err.code ?? 'bad_request', err.message));
    }
    request.log.error({ err }, 'payment simulator request failed');
    return reply.code(500).send(simError('api_error', 'internal_error', 'payment simulator error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        simError(
          'invalid_request_error',
          'no_route',
          `no route ${request.method} ${request.url.split('?')[0]}`,
        ),
      ),
  );

  await app.register(providerRoutes, { state });
  await app.register(controlRoutes, { prefix: '/control', state });

  return { app, wakeSleepers: () => sleeper.wakeAll() };
}

/** Starts the simulated provider on `host:port` (port 0 picks a free one). */
export async function startPaymentSimulator(opts: PaymentSimulatorOptions): Promise<RunningPaymentSimulator> {
  const state = new PaymentSimulatorState({
    now: opts.now ?? Date.now,
    seed: opts.seed ?? 1,
    authorisationTtlMs: opts.authorisationTtlMs ?? null,
  });
  const { app, wakeSleepers } = await buildPaymentSimulatorApp(state, opts);
  return { ...(await listen(app, { host: opts.host, port: opts.port, wakeSleepers })), state };
}
