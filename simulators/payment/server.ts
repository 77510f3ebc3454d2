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
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Type, type TSchema } from 'typebox';
import type { Logger } from '../../src/logger';
import { OUTAGE_PAGE } from '../courier/faults';
import {
  PAYMENT_FAULT_KINDS,
  PAYMENT_REJECTIONS,
  PaymentSimulatorState,
  refusal,
  simError,
  type PaymentFaultInput,
  type PaymentFaultRule,
  type PaymentSimulatorSettings,
  type SimAnswer,
} from './state';
import {
  PAYMENT_OPERATIONS,
  PAYMENT_STATUSES,
  PaymentRejection,
  type PaymentOperation,
} from '../../src/payments/types';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Largest amount one call accepts, in minor units (Stripe's limit for most currencies). */
export const MAX_AMOUNT = 99_999_999;

const ErrorBody = Type.Object({
  error: Type.Object({
    type: Type.String(),
    code: Type.String(),
    message: Type.String(),
    declineCode: Type.Optional(Type.String()),
  }),
});

const RefundView = Type.Object({ id: Type.String(), amount: Type.Integer(), createdAt: Type.String() });

const PaymentView = Type.Object({
  id: Type.String(),
  orderId: Type.String(),
  status: Type.Enum([...PAYMENT_STATUSES]),
  currency: Type.String(),
  amountAuthorised: Type.Integer(),
  amountCaptured: Type.Integer(),
  amountRefunded: Type.Integer(),
  voided: Type.Boolean(),
  expired: Type.Boolean(),
  createdAt: Type.String(),
  refunds: Type.Array(RefundView),
});

const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT });

const AuthoriseBody = Type.Object(
  {
    orderId: Type.String({ minLength: 1, maxLength: 128 }),
    amount: Amount,
    currency: Type.String({ pattern: '^[A-Za-z]{3}$' }),
    card: Type.Union([
      Type.Object(
        {
          number: Type.String({ pattern: '^[0-9]{12,19}$' }),
          expMonth: Type.Integer({ minimum: 1, maximum: 12 }),
          expYear: Type.Integer({ minimum: 2000, maximum: 2199 }),
          cvc: Type.String({ pattern: '^[0-9]{3,4}$' }),
        },
        { additionalProperties: false },
      ),
      Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
);

const AmountBody = Type.Object({ amount: Amount }, { additionalProperties: false });

/** Every operation needs a key: the saga depends on it, so a call without one is a bug. */
const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.String({ minLength: 1, maxLength: 255 }) });

const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 64 }) });

/** Responses every operation may give besides its success. */
const Failures = { '4xx': ErrorBody, '5xx': ErrorBody };

const OperationSchema = Type.Enum([...PAYMENT_OPERATIONS]);
const OperationScope = { operation: Type.Optional(Nullable(OperationSchema)) };

const FaultBody = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('timeout'),
      ...OperationScope,
      ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('error'),
      ...OperationScope,
      rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('outage'),
      ...OperationScope,
      durationMs: Type.Integer({ minimum: 1 }),
      startsInMs: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('reject'),
      ...OperationScope,
      code: Type.Enum([...PAYMENT_REJECTIONS]),
      rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
]);

const SettingsView = Type.Object({ authorisationTtlMs: Nullable(Type.Integer()) });

const SettingsBody = Type.Object(
  { authorisationTtlMs: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))) },
  { additionalProperties: false },
);

/** Every rule in one flat shape (outage times as ISO strings). */
const FaultRuleView = Type.Object({
  kind: Type.String(),
  operation: Nullable(OperationSchema),
  code: Type.Optional(Type.String()),
  ms: Type.Optional(Type.Number()),
  rate: Type.Optional(Nullable(Type.Number())),
  remainingCalls: Type.Optional(Nullable(Type.Number())),
  from: Type.Optional(Type.String()),
  until: Type.Optional(Type.String()),
  active: Type.Optional(Type.Boolean()),
});

const PerOperation = Type.Object(
  Object.fromEntries(PAYMENT_OPERATIONS.map((op) => [op, Type.Integer()])) as Record<
    PaymentOperation,
    ReturnType<typeof Type.Integer>
  >,
);

const StatsView = Type.Object({
  since: Type.String(),
  calls: PerOperation,
  applied: PerOperation,
  replays: PerOperation,
  declines: Type.Integer(),
  faults: Type.Record(Type.String(), Type.Integer()),
  byStatus: Type.Record(Type.String(), Type.Integer()),
  payments: Type.Record(
    Type.String(),
    Type.Object({
      orderId: Type.String(),
      authorised: Type.Integer(),
      captured: Type.Integer(),
      refunded: Type.Integer(),
      voided: Type.Boolean(),
      expired: Type.Boolean(),
    }),
  ),
});

function faultView(rule: PaymentFaultRule, now: number) {
  if (rule.kind !== 'outage') return { ...rule };
  return {
    kind: rule.kind,
    operation: rule.operation,
    from: new Date(rule.from).toISOString(),
    until: new Date(rule.until).toISOString(),
    active: rule.from <= now && now < rule.until,
  };
}

/** The operation behind a route (its URL pattern), for counting and faults; control routes have none. */
const OPERATION_OF_ROUTE: Readonly<Record<string, PaymentOperation>> = {
  '/v1/payments': 'authorise',
  '/v1/payments/:ref/capture': 'capture',
  '/v1/payments/:ref/void': 'void',
  '/v1/payments/:ref/refunds': 'refund',
};

function operationOf(request: FastifyRequest): PaymentOperation | null {
  if (request.method !== 'POST') return null;
  return OPERATION_OF_ROUTE[request.routeOptions.url ?? ''] ?? null;
}

function send(reply: FastifyReply, answer: SimAnswer): FastifyReply {
  return reply.code(answer.status).send(answer.body);
}

/** Timeout faults sleep on real timers; stopping the server wakes every sleeper at once. */
class Sleeper {
  private waiting = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiting.add(wake);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiting]) wake();
  }
}

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

  /**
   * Sends an operation's answer. The reply is used untyped: a stored answer's status is
   * only known at run time, and every status it can have is declared in the route's schema.
   */
  function answer(reply: FastifyReply, result: SimAnswer & { replayed: boolean }): FastifyReply {
    // Stripe marks an answer given again from the idempotency store.
    if (result.replayed) void reply.header('idempotent-replayed', 'true');
    return send(reply, result);
  }

  // --- The provider's API -------------------------------------------------------------------

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
          () => state.capture(request.params.ref, request.body.amount),
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

  app.post(
    '/v1/payments/:ref/refunds',
    {
      schema: {
        headers: IdempotencyHeaders,
        params: RefParams,
        body: AmountBody,
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
          () => state.refund(request.params.ref, request.body.amount),
        ),
      );
      return reply;
    },
  );

  // --- Control (never counted, never faulted) -------------------------------------------------

  await app.register(
    async (scope) => {
      const control = scope.withTypeProvider<TypeBoxTypeProvider>();
      control.get(
        '/faults',
        { schema: { response: { 200: Type.Object({ faults: Type.Array(FaultRuleView) }) } } },
        async () => ({ faults: state.faults.list().map((rule) => faultView(rule, state.now())) }),
      );

      control.post(
        '/faults',
        { schema: { body: FaultBody, response: { 200: FaultRuleView, 400: ErrorBody } } },
        async (request, reply) => {
          try {
            return faultView(state.faults.set(request.body as PaymentFaultInput), state.now());
          } catch (err) {
            if (!(err instanceof RangeError)) throw err;
            return reply.code(400).send(simError('invalid_request_error', 'invalid_fault', err.message));
          }
        },
      );

      control.delete(
        '/faults',
        {
          schema: {
            querystring: Type.Object({
              kind: Type.Optional(Type.Enum([...PAYMENT_FAULT_KINDS])),
              operation: Type.Optional(OperationSchema),
            }),
            response: { 200: Type.Object({ removed: Type.Integer() }) },
          },
        },
        async (request) => ({ removed: state.faults.clear(request.query) }),
      );

      control.get('/stats', { schema: { response: { 200: StatsView } } }, async () => state.stats());

      control.get('/settings', { schema: { response: { 200: SettingsView } } }, async () => state.settings());

      control.put(
        '/settings',
        { schema: { body: SettingsBody, response: { 200: SettingsView } } },
        async (request) => state.configure(request.body as Partial<PaymentSimulatorSettings>),
      );

      control.get(
        '/payments',
        {
          schema: {
            querystring: Type.Object({ orderId: Type.Optional(Type.String()) }),
            response: { 200: Type.Object({ payments: Type.Array(PaymentView) }) },
          },
        },
        async (request) => ({ payments: state.paymentsOf(request.query.orderId) }),
      );

      control.get(
        '/payments/:ref',
        { schema: { params: RefParams, response: { 200: PaymentView, 404: ErrorBody } } },
        async (request, reply) => {
          const payment = state.payment(request.params.ref);
          if (payment) return payment;
          return reply
            .code(404)
            .send(
              simError(
                'invalid_request_error',
                PaymentRejection.NOT_FOUND,
                `No such payment: '${request.params.ref}'`,
              ),
            );
        },
      );

      control.post(
        '/reset',
        {
          schema: {
            querystring: Type.Object({ payments: Type.Optional(Type.Enum(['true', 'false'])) }),
            response: { 200: Type.Object({ payments: Type.Integer() }) },
          },
        },
        async (request) => {
          state.reset({ payments: request.query.payments === 'true' });
          return { payments: state.paymentCount() };
        },
      );
    },
    { prefix: '/control' },
  );

  return { app, wakeSleepers: () => sleeper.wakeAll() };
}

/** Starts the simulated provider on `host:port` (port 0 picks a free one). */
export async function startPaymentSimulator(opts: PaymentSimulatorOptions): Promise<RunningPaymentSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const state = new PaymentSimulatorState({
    now: opts.now ?? Date.now,
    seed: opts.seed ?? 1,
    authorisationTtlMs: opts.authorisationTtlMs ?? null,
  });
  const { app, wakeSleepers } = await buildPaymentSimulatorApp(state, opts);
  await app.listen({ host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const urlHost =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    state,
    stop() {
      stopping ??= (async () => {
        wakeSleepers();
        await app.close();
      })();
      return stopping;
    },
  };
}
