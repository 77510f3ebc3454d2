/**
 * The HTTP payment adapter against the simulated provider, over real HTTP: test cards,
 * idempotency keys, money rules, and faults turned into the two errors the saga acts on.
 */
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { TEST_CARDS } from '../../simulators/payment/cards';
import {
  PaymentRejectedError,
  PaymentRejection,
  PaymentUnavailableError,
  type AuthoriseResult,
} from '../../src/payments/types';
import { freePort } from '../support/ports';
import { authoriseRequest, card, newOrder, usePaymentSimulator } from './support';

const MINUTE = 60_000;

const sim = usePaymentSimulator('2025-05-05T02:00:00.000Z');
const { provider } = sim;

describe('authorising with the test cards', () => {
  it('the success card is authorised for the full amount and the provider holds one payment', async () => {
    const order = newOrder('ok');
    const result = await provider.authorise(authoriseRequest(order, { currency: 'myr' }));

    expect(result).toEqual({
      status: 'AUTHORISED',
      providerRef: expect.stringMatching(/^pay_[0-9a-f]{24}$/),
    });
    const held = await sim.paymentsOf(order.orderId);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({
      id: (result as { providerRef: string }).providerRef,
      status: 'AUTHORISED',
      currency: 'MYR',
      amountAuthorised: 2599,
      amountCaptured: 0,
      amountRefunded: 0,
      voided: false,
    });
  });

  it.each([
    [TEST_CARDS.GENERIC_DECLINE, 'generic_decline', 'Your card was declined.'],
    [TEST_CARDS.INSUFFICIENT_FUNDS, 'insufficient_funds', 'Your card has insufficient funds.'],
  ])('card %s is declined with %s as a result, and no payment is created', async (number, code, message) => {
    const order = newOrder('decline');
    const result = await provider.authorise(authoriseRequest(order, { card: card(number) }));

    expect(result).toEqual({ status: 'DECLINED', declineCode: code, message });
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);
    expect((await sim.stats()).declines).toBe(1);
  });

  it('the processing-error card is a retryable PaymentUnavailableError with status 500, and nothing is kept under the key', async () => {
    const order = newOrder('processing');
    const request = authoriseRequest(order, { card: card(TEST_CARDS.PROCESSING_ERROR) });

    const first = await provider.authorise(request).catch((err: unknown) => err);
    expect(first).toBeInstanceOf(PaymentUnavailableError);
    expect((first as PaymentUnavailableError).details.status).toBe(500);
    // Not stored: the retry reaches the card again instead of replaying the failure.
    await expect(provider.authorise(request)).rejects.toBeInstanceOf(PaymentUnavailableError);
    const counted = await sim.stats();
    expect(counted.calls.authorise).toBe(2);
    expect(counted.replays.authorise).toBe(0);
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);
  });

  it('a checkout token stands for its test card', async () => {
    const byToken = (token: string) =>
      provider.authorise(authoriseRequest(newOrder('token'), { amount: 1000, card: { token } }));

    const approved = await byToken('tok_visa');
    const refused = await byToken('tok_chargeDeclinedInsufficientFunds');

    expect(approved.status).toBe('AUTHORISED');
    expect(refused).toMatchObject({ status: 'DECLINED', declineCode: 'insufficient_funds' });
  });

  it.each([
    [
      'an expired card',
      { number: TEST_CARDS.SUCCEEDS, expMonth: 4, expYear: 2025, cvc: '123' },
      'expired_card',
    ],
    ['a number failing the check digit', card('4242424242424241'), 'incorrect_number'],
  ])('%s is declined (%s), not an error', async (_what, declinedCard, declineCode) => {
    const order = newOrder('declined-card');

    const result = await provider.authorise(authoriseRequest(order, { amount: 500, card: declinedCard }));

    expect(result).toMatchObject({ status: 'DECLINED', declineCode });
  });

  it('an unknown token or an amount of zero is a PaymentRejectedError, not a decline', async () => {
    const order = newOrder('invalid');

    const token = await provider
      .authorise(authoriseRequest(order, { amount: 500, card: { token: 'tok_nope' } }))
      .catch((err: unknown) => err);
    const zero = await provider
      .authorise(authoriseRequest(order, { idempotencyKey: order.key('authorise-zero'), amount: 0 }))
      .catch((err: unknown) => err);

    expect(token).toBeInstanceOf(PaymentRejectedError);
    expect(token).toMatchObject({ code: 'parameter_invalid', details: { status: 400 } });
    expect((token as Error).message).toContain('tok_nope');
    expect(zero).toBeInstanceOf(PaymentRejectedError);
    expect((zero as Error).message).toMatch(/amount/);
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);
  });
});

describe('idempotency keys', () => {
  it('the same key twice returns the same providerRef and authorises once', async () => {
    const order = newOrder('twice');
    const request = authoriseRequest(order);

    const first = await provider.authorise(request);
    const second = await provider.authorise(request);

    expect(second).toEqual(first);
    expect(await sim.paymentsOf(order.orderId)).toHaveLength(1);
    const counted = await sim.stats();
    expect(counted.applied.authorise).toBe(1);
    expect(counted.replays.authorise).toBe(1);
  });

  it('the same key with a different amount is a PaymentRejectedError naming the key reuse, and the first payment is untouched', async () => {
    const order = newOrder('reuse');
    const ref = await sim.authorised(order, 2599);

    const err = await provider.authorise(authoriseRequest(order, { amount: 9999 })).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect(err).toMatchObject({ code: PaymentRejection.IDEMPOTENCY_KEY_REUSED, details: { status: 422 } });
    expect((err as Error).message).toContain(`Idempotency-Key "${order.key('authorise')}"`);
    const held = await sim.paymentsOf(order.orderId);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ id: ref, amountAuthorised: 2599 });
  });

  it("a step's key cannot be reused for another step: the capture needs its own key", async () => {
    const order = newOrder('step');
    const ref = await sim.authorised(order);

    await expect(
      provider.capture({ idempotencyKey: order.key('authorise'), providerRef: ref, amount: 2599 }),
    ).rejects.toMatchObject({ name: 'PaymentRejectedError', code: 'idempotency_key_reused' });
    expect((await sim.payment(ref)).amountCaptured).toBe(0);
  });

  it('a declined authorisation retried with the same key is declined again without asking the card twice', async () => {
    const order = newOrder('decline-twice');
    const request = authoriseRequest(order, { card: card(TEST_CARDS.GENERIC_DECLINE) });

    const results: AuthoriseResult[] = [await provider.authorise(request), await provider.authorise(request)];

    expect(results[1]).toEqual(results[0]);
    expect(results[0]!.status).toBe('DECLINED');
    const counted = await sim.stats();
    expect(counted.declines).toBe(1);
    expect(counted.replays.authorise).toBe(1);
  });
});

describe('money rules', () => {
  it('a capture called twice with the same key captures once', async () => {
    const order = newOrder('capture-twice');
    const ref = await sim.authorised(order);
    const request = { idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 };

    const first = await provider.capture(request);
    const second = await provider.capture(request);

    expect(first).toEqual({
      providerRef: ref,
      status: 'CAPTURED',
      amountAuthorised: 2599,
      amountCaptured: 2599,
      amountRefunded: 0,
    });
    expect(second).toEqual(first);
    const counted = await sim.stats();
    expect(counted.applied.capture).toBe(1);
    expect(counted.replays.capture).toBe(1);
    expect(counted.payments[ref]).toMatchObject({ captured: 2599, refunded: 0 });
  });

  it('a partial capture takes less than authorised, and a second capture with another key is refused', async () => {
    const order = newOrder('partial');
    const ref = await sim.authorised(order, 2599);

    const captured = await provider.capture({
      idempotencyKey: order.key('capture'),
      providerRef: ref,
      amount: 1500,
    });
    const again = await provider
      .capture({ idempotencyKey: order.key('capture-2'), providerRef: ref, amount: 1099 })
      .catch((e: unknown) => e);

    expect(captured).toMatchObject({ status: 'CAPTURED', amountCaptured: 1500, amountAuthorised: 2599 });
    expect(again).toBeInstanceOf(PaymentRejectedError);
    expect(again).toMatchObject({ code: PaymentRejection.ALREADY_CAPTURED });
    expect((await sim.payment(ref)).amountCaptured).toBe(1500);
  });

  it('a capture beyond the authorised amount is refused and captures nothing', async () => {
    const order = newOrder('over-capture');
    const ref = await sim.authorised(order, 2599);

    const err = await provider
      .capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2600 })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect(err).toMatchObject({ code: PaymentRejection.AMOUNT_TOO_LARGE, details: { status: 400 } });
    expect((err as Error).message).toContain('2599 authorised');
    expect(await sim.payment(ref)).toMatchObject({ status: 'AUTHORISED', amountCaptured: 0 });
  });

  it('refunds add up to at most the amount captured', async () => {
    const order = newOrder('refunds');
    const ref = await sim.authorised(order, 2599);
    await provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2000 });

    const first = await provider.refund({
      idempotencyKey: order.key('refund:a'),
      providerRef: ref,
      amount: 1500,
    });
    const tooMuch = await provider
      .refund({ idempotencyKey: order.key('refund:b'), providerRef: ref, amount: 501 })
      .catch((e: unknown) => e);
    const rest = await provider.refund({
      idempotencyKey: order.key('refund:c'),
      providerRef: ref,
      amount: 500,
    });

    expect(first).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount: 1500,
      amountRefunded: 1500,
      refundId: expect.stringMatching(/^re_/),
    });
    expect(tooMuch).toBeInstanceOf(PaymentRejectedError);
    expect(tooMuch).toMatchObject({ code: PaymentRejection.AMOUNT_TOO_LARGE });
    expect(rest).toMatchObject({
      status: 'REFUNDED',
      amount: 500,
      amountRefunded: 2000,
      amountCaptured: 2000,
    });
    expect((await sim.stats()).payments[ref]).toMatchObject({ captured: 2000, refunded: 2000 });
  });

  it('a refund retried with the same key refunds once and returns the same refund', async () => {
    const order = newOrder('refund-twice');
    const ref = await sim.authorised(order);
    await provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 });
    const request = { idempotencyKey: order.key('refund:shp_1'), providerRef: ref, amount: 1000 };

    const first = await provider.refund(request);
    const second = await provider.refund(request);

    expect(second).toEqual(first);
    expect(await sim.payment(ref)).toMatchObject({ amountRefunded: 1000, refunds: [{ amount: 1000 }] });
  });

  it('a void after capture is refused and the captured money stays captured', async () => {
    const order = newOrder('void-late');
    const ref = await sim.authorised(order);
    await provider.capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 });

    const err = await provider
      .void({ idempotencyKey: order.key('void'), providerRef: ref })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect(err).toMatchObject({ code: PaymentRejection.ALREADY_CAPTURED });
    expect((err as Error).message).toMatch(/refund it instead/);
    expect(await sim.payment(ref)).toMatchObject({
      status: 'CAPTURED',
      voided: false,
      amountCaptured: 2599,
    });
  });

  it('a void releases the authorisation: capture and refund are refused afterwards, voiding again is harmless', async () => {
    const order = newOrder('void');
    const ref = await sim.authorised(order);

    const voided = await provider.void({ idempotencyKey: order.key('void'), providerRef: ref });
    const capture = await provider
      .capture({ idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 })
      .catch((e: unknown) => e);
    const refund = await provider
      .refund({ idempotencyKey: order.key('refund'), providerRef: ref, amount: 100 })
      .catch((e: unknown) => e);
    const again = await provider.void({ idempotencyKey: order.key('void-again'), providerRef: ref });

    expect(voided).toMatchObject({ status: 'VOIDED', amountCaptured: 0 });
    expect(capture).toMatchObject({ name: 'PaymentRejectedError', code: PaymentRejection.VOIDED });
    expect(refund).toMatchObject({ name: 'PaymentRejectedError', code: PaymentRejection.NOT_CAPTURED });
    expect(again).toEqual(voided);
    expect((await sim.stats()).applied.void).toBe(1);
  });

  it("retrieve reads the payment as the provider's books hold it, refunds made by anyone included, and moves nothing", async () => {
    const order = newOrder('retrieve');
    const ref = await sim.authorised(order, 2599);
    expect(await provider.retrieve(ref)).toEqual({
      providerRef: ref,
      status: 'AUTHORISED',
      amountAuthorised: 2599,
      amountCaptured: 0,
      amountRefunded: 0,
      refunds: [],
    });
    // Someone captures and refunds in the dashboard, under keys Waybill never saw.
    await provider.capture({ idempotencyKey: 'dashboard-capture', providerRef: ref, amount: 2599 });
    await provider.refund({ idempotencyKey: 'dashboard-refund', providerRef: ref, amount: 600 });
    const before = await sim.stats();

    expect(await provider.retrieve(ref)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amountCaptured: 2599,
      amountRefunded: 600,
      // Each refund with the reference it was sent with: the key a refund was made under is
      // in the books after the provider has forgotten the key itself.
      refunds: [{ id: expect.stringMatching(/^re_/), amount: 600, reference: 'dashboard-refund' }],
    });
    const after = await sim.stats();
    expect(after.calls.retrieve - before.calls.retrieve).toBe(1);
    expect(after.applied).toEqual(before.applied);
    await expect(provider.retrieve('pay_nope')).rejects.toMatchObject({
      name: 'PaymentRejectedError',
      code: 'resource_missing',
    });
  });

  it('an unknown payment reference is refused as resource_missing', async () => {
    const order = newOrder('unknown');

    await expect(
      provider.capture({ idempotencyKey: order.key('capture'), providerRef: 'pay_nope', amount: 100 }),
    ).rejects.toMatchObject({
      name: 'PaymentRejectedError',
      code: 'resource_missing',
      details: { status: 404 },
    });
  });
});

describe('faults', () => {
  it('an answer that times out is a PaymentUnavailableError, and the retry with the same key returns the authorisation already made', async () => {
    const order = newOrder('timeout');
    const impatient = createHttpPaymentProvider({ baseUrl: sim.url(), timeoutMs: 200 });
    const request = authoriseRequest(order);
    await sim.setFault({ kind: 'timeout', ms: 1_500, calls: 1 });

    const err = await impatient.authorise(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentUnavailableError);
    expect(err).toMatchObject({ details: { timedOut: true } });
    expect((err as Error).message).toContain('within 200 ms');
    // The provider acted although the answer never arrived.
    const [made] = await sim.paymentsOf(order.orderId);
    expect(made).toMatchObject({ status: 'AUTHORISED', amountAuthorised: 2599 });

    const retried = await impatient.authorise(request);

    expect(retried).toEqual({ status: 'AUTHORISED', providerRef: made!.id });
    expect(await sim.paymentsOf(order.orderId)).toHaveLength(1);
    const counted = await sim.stats();
    expect(counted.applied.authorise).toBe(1);
    expect(counted.replays.authorise).toBe(1);
    expect(counted.faults.timeout).toBe(1);
  });

  it('a capture whose answer times out is captured once when retried with the same key', async () => {
    const order = newOrder('capture-timeout');
    const ref = await sim.authorised(order);
    const impatient = createHttpPaymentProvider({ baseUrl: sim.url(), timeoutMs: 200 });
    await sim.setFault({ kind: 'timeout', ms: 1_500, operation: 'capture' });
    const request = { idempotencyKey: order.key('capture'), providerRef: ref, amount: 2599 };

    await expect(impatient.capture(request)).rejects.toBeInstanceOf(PaymentUnavailableError);
    const retried = await impatient.capture(request);

    expect(retried).toMatchObject({ status: 'CAPTURED', amountCaptured: 2599 });
    const counted = await sim.stats();
    expect(counted.applied.capture).toBe(1);
    expect(counted.payments[ref]).toMatchObject({ captured: 2599 });
  });

  it('an error fault answers 500 before anything happens: a PaymentUnavailableError, and the retry with the same key goes through', async () => {
    const order = newOrder('error');
    await sim.setFault({ kind: 'error', calls: 1 });
    const request = authoriseRequest(order);

    const err = await provider.authorise(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentUnavailableError);
    expect(err).toMatchObject({ details: { status: 500 } });
    expect(await sim.paymentsOf(order.orderId)).toEqual([]);

    const retried = await provider.authorise(request);

    expect(retried.status).toBe('AUTHORISED');
    expect(await sim.paymentsOf(order.orderId)).toHaveLength(1);
    expect((await sim.stats()).faults.error).toBe(1);
  });

  it('an error rate of 1 fails every call until the rule is removed', async () => {
    const order = newOrder('rate');
    await sim.setFault({ kind: 'error', rate: 1 });
    const request = authoriseRequest(order, { amount: 700 });

    for (let i = 0; i < 3; i++) {
      await expect(provider.authorise(request)).rejects.toBeInstanceOf(PaymentUnavailableError);
    }
    await sim.call('DELETE', '/control/faults?kind=error');

    expect((await provider.authorise(request)).status).toBe('AUTHORISED');
    expect((await sim.stats()).faults.error).toBe(3);
  });

  it('during an outage every call is a PaymentUnavailableError (503 page); after it ends the same call succeeds', async () => {
    const order = newOrder('outage');
    await sim.setFault({ kind: 'outage', durationMs: 10 * MINUTE });
    const request = authoriseRequest(order);

    const err = await provider.authorise(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentUnavailableError);
    expect(err).toMatchObject({
      details: { status: 503, bodySnippet: expect.stringContaining('Unavailable') },
    });

    sim.advance(11 * MINUTE);
    const after = await provider.authorise(request);

    expect(after.status).toBe('AUTHORISED');
    expect((await sim.stats()).faults.outage).toBe(1);
  });

  it('a retrieve during an outage is a PaymentUnavailableError', async () => {
    const ref = await sim.authorised(newOrder('retrieve-outage'));
    await sim.setFault({ kind: 'outage', durationMs: 10 * MINUTE, operation: 'retrieve' });
    await expect(provider.retrieve(ref)).rejects.toBeInstanceOf(PaymentUnavailableError);
    sim.advance(11 * MINUTE);
    expect(await provider.retrieve(ref)).toMatchObject({ providerRef: ref, status: 'AUTHORISED' });
  });

  it('a fault scoped to void fails the void twice, leaves other operations alone, and the third void succeeds', async () => {
    const order = newOrder('scoped');
    await sim.setFault({ kind: 'error', calls: 2, operation: 'void' });

    const ref = await sim.authorised(order);
    const request = { idempotencyKey: order.key('void'), providerRef: ref };
    await expect(provider.void(request)).rejects.toBeInstanceOf(PaymentUnavailableError);
    await expect(provider.void(request)).rejects.toBeInstanceOf(PaymentUnavailableError);
    const voided = await provider.void(request);

    expect(voided.status).toBe('VOIDED');
    const counted = await sim.stats();
    expect(counted.calls).toMatchObject({ authorise: 1, void: 3 });
    expect(counted.applied).toMatchObject({ authorise: 1, void: 1 });
  });

  it('an answer that is not JSON is retryable, and the retry with the same key does not charge twice', async () => {
    const order = newOrder('malformed');
    let spoil = true;
    // The real provider answers; the body is cut on the way back, as a broken proxy would.
    const spoiling: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!spoil) return res;
      spoil = false;
      const text = await res.text();
      return new Response(text.slice(0, text.length / 2), { status: res.status, headers: res.headers });
    };
    const client = createHttpPaymentProvider({ baseUrl: sim.url(), fetch: spoiling });
    const request = authoriseRequest(order);

    const err = await client.authorise(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentUnavailableError);
    expect((err as Error).message).toMatch(/not JSON/);

    const retried = await client.authorise(request);

    const held = await sim.paymentsOf(order.orderId);
    expect(held).toHaveLength(1);
    expect(retried).toEqual({ status: 'AUTHORISED', providerRef: held[0]!.id });
  });

  it('a provider nobody listens on is a PaymentUnavailableError', async () => {
    const order = newOrder('down');
    const nowhere = createHttpPaymentProvider({ baseUrl: `http://127.0.0.1:${await freePort()}` });

    const err = await nowhere
      .capture({ idempotencyKey: order.key('capture'), providerRef: 'pay_x', amount: 1 })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PaymentUnavailableError);
    expect((err as Error).message).toMatch(/unreachable for capture: ECONNREFUSED/);
  });
});
