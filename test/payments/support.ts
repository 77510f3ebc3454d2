/** Helpers shared by the payment tests: test cards, order ids and the simulator's control API. */
import { TEST_CARDS } from '../../simulators/payment/cards';
import type { PaymentSimStats, SimPaymentView } from '../../simulators/payment/wire';
import type { RunningPaymentSimulator } from '../../simulators/payment/server';
import {
  paymentIdempotencyKey,
  PaymentStatus,
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
  const result = await provider.authorise({
    idempotencyKey: order.key('authorise'),
    orderId: order.orderId,
    amount,
    currency: 'MYR',
    card: card(TEST_CARDS.SUCCEEDS),
  });
  if (result.status !== PaymentStatus.AUTHORISED) throw new Error(`not authorised: ${result.message}`);
  return result.providerRef;
}
