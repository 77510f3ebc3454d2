/** Helpers shared by the payment tests: test cards, order ids and the simulator's control API. */
import { TEST_CARDS } from '../../simulators/payment/cards';
import type { PaymentSimStats, SimPaymentView } from '../../simulators/payment/wire';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import {
  paymentIdempotencyKey,
  PaymentStatus,
  type AuthoriseRequest,
  type PaymentCard,
  type PaymentProvider,
} from '../../src/payments/types';

/** A card that has not expired at the tests' clock (2025). */
export function card(number: string): PaymentCard {
  return { number, expMonth: 12, expYear: 2030, cvc: '123' };
}

let orders = 0;

/** A fresh order id and its step keys, so tests never share payments or keys. */
export function newOrder(label: string): { orderId: string; key: (step: string) => string } {
  orders++;
  const orderId = `ord_${label}_${orders}`;
  return { orderId, key: (step) => paymentIdempotencyKey(orderId, step) };
}

/** The payment simulator of one test file, with its control API bound to it. */
export interface PaymentSim {
  /** Our HTTP adapter against it (5 s timeout). */
  readonly provider: PaymentProvider;
  url(): string;
  /** The simulator's clock, and moving it forward. */
  now(): number;
  advance(ms: number): void;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  stats(): Promise<PaymentSimStats>;
  paymentsOf(orderId: string): Promise<SimPaymentView[]>;
  payment(ref: string): Promise<SimPaymentView>;
  setFault(rule: object): Promise<void>;
  /** Authorises `amount` (default 25.99 MYR) of `order` on the success card; the payment's reference. */
  authorised(order: ReturnType<typeof newOrder>, amount?: number): Promise<string>;
}

/**
 * The payment simulator for one test file, on a random port with a clock of its own that
 * starts at `startsAt` and moves only when told: started before the file's tests, its
 * counters and faults reset before each (payments and keys stay: every test uses its own
 * order), stopped after the last.
 */
export function usePaymentSimulator(startsAt: string): PaymentSim {
  let now = Date.parse(startsAt);
  let sim: RunningPaymentSimulator | undefined;
  let adapter: PaymentProvider | undefined;
  const running = () => {
    if (!sim) throw new Error('the payment simulator starts in beforeAll');
    return sim;
  };
  const provider = () =>
    adapter ?? (adapter = createHttpPaymentProvider({ baseUrl: running().url, timeoutMs: 5_000 }));
  beforeAll(async () => {
    sim = await startPaymentSimulator({ port: 0, now: () => now });
  });
  afterAll(() => sim?.stop());
  beforeEach(async () => {
    await call(running(), 'POST', '/control/reset');
  });
  return {
    provider: {
      authorise: (request) => provider().authorise(request),
      capture: (request) => provider().capture(request),
      void: (request) => provider().void(request),
      refund: (request) => provider().refund(request),
      retrieve: (ref) => provider().retrieve(ref),
    },
    url: () => running().url,
    now: () => now,
    advance(ms) {
      now += ms;
    },
    call: (method, path, body, headers) => call(running(), method, path, body, headers),
    stats: () => stats(running()),
    paymentsOf: (orderId) => paymentsOf(running(), orderId),
    payment: (ref) => payment(running(), ref),
    setFault: (rule) => setFault(running(), rule),
    authorised: (order, amount) => authoriseOrder(provider(), order, amount),
  };
}

/** The authorisation of `order`: 25.99 MYR on the success card unless `more` says otherwise. */
export function authoriseRequest(
  order: ReturnType<typeof newOrder>,
  more: Partial<AuthoriseRequest> = {},
): AuthoriseRequest {
  return {
    idempotencyKey: order.key('authorise'),
    orderId: order.orderId,
    amount: 2599,
    currency: 'MYR',
    card: card(TEST_CARDS.SUCCEEDS),
    ...more,
  };
}

export interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

export async function call(
  sim: RunningPaymentSimulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (the outage page): keep the text.
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export async function stats(sim: RunningPaymentSimulator): Promise<PaymentSimStats> {
  return (await call(sim, 'GET', '/control/stats')).body as PaymentSimStats;
}

export async function paymentsOf(sim: RunningPaymentSimulator, orderId: string): Promise<SimPaymentView[]> {
  const answer = await call(sim, 'GET', `/control/payments?orderId=${encodeURIComponent(orderId)}`);
  return (answer.body as { payments: SimPaymentView[] }).payments;
}

export async function payment(sim: RunningPaymentSimulator, ref: string): Promise<SimPaymentView> {
  const answer = await call(sim, 'GET', `/control/payments/${encodeURIComponent(ref)}`);
  if (answer.status !== 200) throw new Error(`no payment ${ref}: ${JSON.stringify(answer.body)}`);
  return answer.body as SimPaymentView;
}

export async function setFault(sim: RunningPaymentSimulator, rule: object): Promise<void> {
  const answer = await call(sim, 'POST', '/control/faults', rule);
  if (answer.status !== 200) throw new Error(`fault refused: ${JSON.stringify(answer.body)}`);
}

/** Authorises `amount` (default 25.99 MYR) of `order` on the success card; the payment's reference. */
export async function authoriseOrder(
  provider: PaymentProvider,
  order: ReturnType<typeof newOrder>,
  amount = 2599,
): Promise<string> {
  const result = await provider.authorise(authoriseRequest(order, { amount }));
  if (result.status !== PaymentStatus.AUTHORISED) throw new Error(`not authorised: ${result.message}`);
  return result.providerRef;
}
