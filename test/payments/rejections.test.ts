/**
 * Refusals the payment simulator can be told to give, read through the HTTP adapter over
 * real HTTP: an injected `reject` fault for every PaymentRejection code, and authorisations
 * that lapse before capture (`authorisationTtlMs`).
 */
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { TEST_CARDS } from '../../simulators/payment/cards';
import { startPaymentSimulator } from '../../simulators/payment/server';
import { PaymentRejectedError, PaymentRejection } from '../../src/payments/types';
import { authoriseRequest, card, newOrder, usePaymentSimulator } from './support';

const DAY = 24 * 3_600_000;

const sim = usePaymentSimulator('2025-09-01T02:00:00.000Z');
const { provider } = sim;
beforeEach(async () => {
  await sim.call('PUT', '/control/settings', { authorisationTtlMs: null });
});

async function rejection(promise: Promise<unknown>): Promise<PaymentRejectedError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PaymentRejectedError);
  return err as PaymentRejectedError;
}

describe('an injected reject fault', () => {
  it.each([
    [PaymentRejection.IDEMPOTENCY_KEY_REUSED, 422],
    [PaymentRejection.AMOUNT_TOO_LARGE, 400],
    [PaymentRejection.ALREADY_CAPTURED, 400],
    [PaymentRejection.AUTHORISATION_EXPIRED, 400],
    [PaymentRejection.VOIDED, 400],
    [PaymentRejection.NOT_CAPTURED, 400],
    [PaymentRejection.NOT_FOUND, 404],
    [PaymentRejection.INVALID_REQUEST, 400],
    [PaymentRejection.UNAUTHORISED, 401],
  ])(
    'refuses a capture with %s (HTTP %i) before it runs; the retry with the same key captures',
    async (code, status) => {
      const order = newOrder('reject');
      const ref = await sim.authorised(order);
      await sim.setFault({ kind: 'reject', operation: 'capture', code, calls: 1 });

      const err = await rejection(
        provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 }),
      );
      expect(err.code).toBe(code);
      expect(err.details.status).toBe(status);
      expect(await sim.payment(ref)).toMatchObject({ status: 'AUTHORISED', amountCaptured: 0 });

      // Injected refusals are not stored under the key: the same capture, asked again, runs.
      const captured = await provider.capture({
        idempotencyKey: order.key('capture'),
        providerRef: ref,
        amount: 2599,
      });
      expect(captured).toMatchObject({ status: 'CAPTURED', amountCaptured: 2599 });
      const counted = await sim.stats();
      expect(counted.faults.reject).toBe(1);
      expect(counted.applied.capture).toBe(1);
    },
  );

  it("answers in the provider's own error shape and is listed with its code", async () => {
    await sim.setFault({ kind: 'reject', operation: 'authorise', code: 'parameter_invalid' });
    const order = newOrder('reject_wire');
    const answer = await sim.call(
      'POST',
      '/v1/payments',
      { orderId: order.orderId, amount: 100, currency: 'MYR', card: card(TEST_CARDS.SUCCEEDS) },
      { 'idempotency-key': order.key('authorise') },
    );

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: {
        type: 'invalid_request_error',
        code: 'parameter_invalid',
        message: 'the provider refused this authorise (parameter_invalid, injected)',
      },
    });
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);
    expect((await sim.call('GET', '/control/faults')).body).toEqual({
      faults: [
        { kind: 'reject', operation: 'authorise', code: 'parameter_invalid', rate: 1, remainingCalls: null },
      ],
    });
  });

  it('an authorise refused this way is a PaymentRejectedError, not a decline, and authorises nothing', async () => {
    await sim.setFault({ kind: 'reject', code: 'unauthorised', calls: 1 });
    const order = newOrder('reject_authorise');
    const err = await rejection(provider.authorise(authoriseRequest(order, { amount: 100 })));
    expect(err).toMatchObject({ code: 'unauthorised', details: { status: 401 } });
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);
  });

  it('scoped to one operation, with a rate of 1, it refuses every call of it until removed', async () => {
    const order = newOrder('reject_scoped');
    const ref = await sim.authorised(order);
    await sim.setFault({ kind: 'reject', operation: 'void', code: 'payment_already_captured', rate: 1 });

    for (let i = 0; i < 3; i++) {
      const err = await rejection(provider.void({ idempotencyKey: order.key('void'), providerRef: ref }));
      expect(err.code).toBe('payment_already_captured');
    }
    await sim.call('DELETE', '/control/faults?kind=reject');
    expect(await provider.void({ idempotencyKey: order.key('void'), providerRef: ref })).toMatchObject({
      status: 'VOIDED',
    });
    expect((await sim.stats()).faults.reject).toBe(3);
  });

  it('a rule with an unknown code, or with both a rate and calls, is refused', async () => {
    for (const rule of [
      { kind: 'reject', code: 'card_stolen', calls: 1 },
      { kind: 'reject', code: 'amount_too_large', calls: 1, rate: 0.5 },
    ]) {
      const answer = await sim.call('POST', '/control/faults', rule);
      expect(answer.status).toBe(400);
    }
    expect((await sim.call('GET', '/control/faults')).body).toEqual({ faults: [] });
  });
});

describe('an authorisation that lapses before capture', () => {
  it('cannot be captured: authorization_expired, nothing captured, and its hold shows released', async () => {
    await sim.call('PUT', '/control/settings', { authorisationTtlMs: 7 * DAY });
    const order = newOrder('expired');
    const ref = await sim.authorised(order);
    sim.advance(7 * DAY);

    const err = await rejection(
      provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 }),
    );
    expect(err).toMatchObject({ code: 'authorization_expired', details: { status: 400 } });
    expect(await sim.payment(ref)).toMatchObject({
      status: 'VOIDED',
      voided: false,
      expired: true,
      amountCaptured: 0,
    });
    const refund = await rejection(
      provider.refund({ idempotencyKey: order.key('refund:1'), providerRef: ref, amount: 100 }),
    );
    expect(refund.code).toBe('payment_not_captured');
  });

  it('can still be voided: the void answers VOIDED, moves nothing, and again is harmless', async () => {
    await sim.call('PUT', '/control/settings', { authorisationTtlMs: DAY });
    const order = newOrder('expired_void');
    const ref = await sim.authorised(order);
    sim.advance(DAY + 1);

    const voided = await provider.void({ idempotencyKey: order.key('void'), providerRef: ref });
    const again = await provider.void({ idempotencyKey: order.key('void:again'), providerRef: ref });
    expect(voided).toEqual({
      providerRef: ref,
      status: 'VOIDED',
      amountAuthorised: 2599,
      amountCaptured: 0,
      amountRefunded: 0,
    });
    expect(again).toEqual(voided);
    const counted = await sim.stats();
    expect(counted.applied.void).toBe(0);
    expect(counted.payments[ref]).toMatchObject({ voided: false, expired: true, captured: 0 });
  });

  it('one captured in time keeps its money, and the old rules hold: no void after capture, no refund above it', async () => {
    await sim.call('PUT', '/control/settings', { authorisationTtlMs: DAY });
    const order = newOrder('captured_in_time');
    const ref = await sim.authorised(order);
    sim.advance(DAY - 1);
    await provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 });
    sim.advance(10 * DAY);

    expect(await sim.payment(ref)).toMatchObject({
      status: 'CAPTURED',
      expired: false,
      amountCaptured: 2599,
    });
    const voidErr = await rejection(provider.void({ idempotencyKey: order.key('void'), providerRef: ref }));
    expect(voidErr.code).toBe('payment_already_captured');
    const refundErr = await rejection(
      provider.refund({ idempotencyKey: order.key('refund:1'), providerRef: ref, amount: 2600 }),
    );
    expect(refundErr.code).toBe('amount_too_large');
  });

  it('the TTL is a setting: off by default, lowered to lapse an authorisation already made, and once lapsed it stays so', async () => {
    expect((await sim.call('GET', '/control/settings')).body).toEqual({ authorisationTtlMs: null });
    const order = newOrder('ttl_setting');
    const ref = await sim.authorised(order);
    sim.advance(30 * DAY);
    expect(await sim.payment(ref)).toMatchObject({ status: 'AUTHORISED', expired: false });

    const lowered = await sim.call('PUT', '/control/settings', { authorisationTtlMs: DAY });
    expect(lowered.body).toEqual({ authorisationTtlMs: DAY });
    expect(await sim.payment(ref)).toMatchObject({ status: 'VOIDED', expired: true });

    await sim.call('PUT', '/control/settings', { authorisationTtlMs: null });
    const err = await rejection(
      provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 }),
    );
    expect(err.code).toBe('authorization_expired');
    expect((await sim.call('PUT', '/control/settings', { authorisationTtlMs: 0 })).status).toBe(400);
  });

  it('is set at start-up with the authorisationTtlMs option too', async () => {
    const short = await startPaymentSimulator({ port: 0, now: sim.now, authorisationTtlMs: 60_000 });
    try {
      const other = createHttpPaymentProvider({ baseUrl: short.url, timeoutMs: 5_000 });
      const order = newOrder('ttl_option');
      const result = await other.authorise({
        idempotencyKey: order.key('authorise'),
        orderId: order.orderId,
        amount: 500,
        currency: 'MYR',
        card: { token: 'tok_visa' },
      });
      if (result.status !== 'AUTHORISED') throw new Error('not authorised');
      sim.advance(60_000);
      const err = await rejection(
        other.capture({ idempotencyKey: order.key('capture'), providerRef: result.providerRef, amount: 500 }),
      );
      expect(err.code).toBe('authorization_expired');
      expect(short.state.settings()).toEqual({ authorisationTtlMs: 60_000 });
    } finally {
      await short.stop();
    }
  });
});
