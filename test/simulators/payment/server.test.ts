/**
 * The simulated provider's own HTTP surface: what a caller that is not our adapter sees
 * (headers, status codes, bodies) and the control API the saga tests and the demo use.
 */
import { createHttpPaymentProvider } from '../../../src/payments/http-provider';
import { TEST_CARDS } from '../../../simulators/payment/cards';
import type { SimPaymentView } from '../../../simulators/payment/wire';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../../simulators/payment/server';
import { PaymentRejectedError } from '../../../src/payments/types';
import { call, card, newOrder, payment, paymentsOf, stats } from '../../payments/support';

let sim: RunningPaymentSimulator;

beforeAll(async () => {
  sim = await startPaymentSimulator({ port: 0, now: () => Date.parse('2025-05-05T02:00:00.000Z') });
});
afterAll(() => sim.stop());
beforeEach(async () => {
  await call(sim, 'POST', '/control/reset');
});

function authoriseBody(orderId: string, amount = 1200) {
  return { orderId, amount, currency: 'MYR', card: card(TEST_CARDS.SUCCEEDS) };
}

describe('the provider API', () => {
  it('a repeated request is answered from the store with the same body and an Idempotent-Replayed header', async () => {
    const order = newOrder('raw');
    const headers = { 'idempotency-key': order.key('authorise') };

    const first = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), headers);
    const second = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), headers);

    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
  });

  it('the same key with a different body answers 422 idempotency_key_reused', async () => {
    const order = newOrder('raw-reuse');
    const headers = { 'idempotency-key': order.key('authorise') };
    await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId, 1200), headers);

    const reused = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId, 1300), headers);

    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({
      error: { type: 'idempotency_error', code: 'idempotency_key_reused' },
    });
    expect(await paymentsOf(sim, order.orderId)).toHaveLength(1);
  });

  it('a request without an Idempotency-Key is refused with 400 and changes nothing', async () => {
    const order = newOrder('no-key');

    const answer = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId));

    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      error: { code: 'parameter_invalid', message: expect.stringContaining('Idempotency-Key') },
    });
    expect(await paymentsOf(sim, order.orderId)).toEqual([]);
  });

  it('an amount sent as a string is refused, not coerced', async () => {
    const order = newOrder('string-amount');

    const answer = await call(
      sim,
      'POST',
      '/v1/payments',
      { ...authoriseBody(order.orderId), amount: '1200' },
      { 'idempotency-key': order.key('authorise') },
    );

    expect(answer.status).toBe(400);
    expect(await paymentsOf(sim, order.orderId)).toEqual([]);
  });

  it('with an API key configured, a caller without it is refused as unauthorised and one with it is served', async () => {
    const guarded = await startPaymentSimulator({ port: 0, apiKey: 'sk_test_1' });
    try {
      const order = newOrder('auth');
      const request = {
        idempotencyKey: order.key('authorise'),
        orderId: order.orderId,
        amount: 1200,
        currency: 'MYR',
        card: card(TEST_CARDS.SUCCEEDS),
      };

      const anonymous = await createHttpPaymentProvider({ baseUrl: guarded.url })
        .authorise(request)
        .catch((e: unknown) => e);
      const keyed = await createHttpPaymentProvider({ baseUrl: guarded.url, apiKey: 'sk_test_1' }).authorise(
        request,
      );

      expect(anonymous).toBeInstanceOf(PaymentRejectedError);
      expect(anonymous).toMatchObject({ code: 'unauthorised', details: { status: 401 } });
      expect(keyed.status).toBe('AUTHORISED');
      expect(guarded.state.paymentsOf(order.orderId)).toHaveLength(1);
    } finally {
      await guarded.stop();
    }
  });
});

describe('the control API', () => {
  it('a payment shows its authorised, captured and refunded amounts and whether it was voided', async () => {
    const order = newOrder('view');
    const created = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId, 5000), {
      'idempotency-key': order.key('authorise'),
    });
    const ref = (created.body as SimPaymentView).id;
    await call(
      sim,
      'POST',
      `/v1/payments/${ref}/capture`,
      { amount: 4000 },
      { 'idempotency-key': order.key('capture') },
    );
    await call(
      sim,
      'POST',
      `/v1/payments/${ref}/refunds`,
      { amount: 1000 },
      { 'idempotency-key': order.key('refund') },
    );

    const view = await payment(sim, ref);
    const missing = await call(sim, 'GET', '/control/payments/pay_missing');

    expect(view).toMatchObject({
      id: ref,
      orderId: order.orderId,
      status: 'PARTIALLY_REFUNDED',
      amountAuthorised: 5000,
      amountCaptured: 4000,
      amountRefunded: 1000,
      voided: false,
      refunds: [{ id: expect.stringMatching(/^re_/), amount: 1000 }],
    });
    expect(missing.status).toBe(404);
  });

  it('stats count every call per operation, faulted and refused ones too, and the totals per payment', async () => {
    const order = newOrder('stats');
    const key = { 'idempotency-key': order.key('authorise') };
    const created = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), key);
    await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), key);
    const ref = (created.body as SimPaymentView).id;
    await call(
      sim,
      'POST',
      `/v1/payments/${ref}/capture`,
      { amount: 9999 },
      { 'idempotency-key': order.key('capture') },
    );

    const counted = await stats(sim);

    expect(counted.calls).toEqual({ authorise: 2, capture: 1, void: 0, refund: 0, retrieve: 0 });
    expect(counted.applied).toEqual({ authorise: 1, capture: 0, void: 0, refund: 0, retrieve: 0 });
    expect(counted.replays).toEqual({ authorise: 1, capture: 0, void: 0, refund: 0, retrieve: 0 });
    expect(counted.byStatus).toEqual({ '201': 2, '400': 1 });
    expect(counted.payments[ref]).toEqual({
      orderId: order.orderId,
      authorised: 1200,
      captured: 0,
      refunded: 0,
      voided: false,
      expired: false,
    });
  });

  it('fault rules are listed, refused when contradictory, and removed on request', async () => {
    const set = await call(sim, 'POST', '/control/faults', { kind: 'timeout', ms: 500, calls: 2 });
    const contradictory = await call(sim, 'POST', '/control/faults', { kind: 'error', rate: 0.5, calls: 2 });
    const outage = await call(sim, 'POST', '/control/faults', {
      kind: 'outage',
      durationMs: 60_000,
      startsInMs: 1_000,
      operation: 'capture',
    });

    const listed = await call(sim, 'GET', '/control/faults');
    const removed = await call(sim, 'DELETE', '/control/faults?kind=timeout');
    const after = await call(sim, 'GET', '/control/faults');

    expect(set.body).toEqual({ kind: 'timeout', operation: null, ms: 500, remainingCalls: 2 });
    expect(contradictory.status).toBe(400);
    expect(contradictory.body).toMatchObject({ error: { code: 'invalid_fault' } });
    expect(outage.body).toMatchObject({ kind: 'outage', operation: 'capture', active: false });
    expect((listed.body as { faults: unknown[] }).faults).toHaveLength(2);
    expect(removed.body).toEqual({ removed: 1 });
    expect(after.body).toEqual({ faults: [expect.objectContaining({ kind: 'outage' })] });
  });

  it('a reset with payments=true forgets payments and keys, so a key can be used afresh', async () => {
    const order = newOrder('reset');
    const key = { 'idempotency-key': order.key('authorise') };
    const before = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), key);

    const reset = await call(sim, 'POST', '/control/reset?payments=true');
    const again = await call(sim, 'POST', '/v1/payments', authoriseBody(order.orderId), key);

    expect(reset.body).toEqual({ payments: 0 });
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect((again.body as SimPaymentView).id).not.toBe((before.body as SimPaymentView).id);
    expect(await paymentsOf(sim, order.orderId)).toHaveLength(1);
  });
});
