/**
 * Text Postgres refuses (a NUL, half of a surrogate pair) answers 400 naming the field, on
 * every part of a request that reaches the database: before, an order with such an address
 * answered 500 on every retry, and a cancel with such a reason answered 202 and left the
 * order's workflow retrying its audit write for ever, its payment held and stock reserved.
 * Real API, worker, Temporal and Postgres; the saga's ledger is checked at the end.
 */
import { randomUUID } from 'node:crypto';
import { findUnstorableText, unstorableText } from '../../src/api/storable-text';
import { stockItem } from '../support/db';
import { ADDRESS } from '../support/shopper';
import { eventually } from '../support/eventually';
import { expectBooksBalance } from '../support/saga';
import { uniqueId } from '../support/temporal';
import { useStack } from '../support/stack';

jest.setTimeout(90_000);

describe('text Postgres can store', () => {
  it('finds a NUL or a lone surrogate half in any value or key, by its JSON pointer', () => {
    expect(unstorableText('Ali 🙂 bin Abu')).toBeNull();
    expect(unstorableText('Ali\u0000')).toMatch(/NUL/);
    expect(unstorableText('Ali \ud83d')).toMatch(/surrogate/);
    expect(unstorableText('\ude42 Ali')).toMatch(/surrogate/);
    expect(findUnstorableText({ lines: [{ sku: 'A' }, { sku: 'B\u0000' }] })?.instancePath).toBe(
      '/lines/1/sku',
    );
    expect(findUnstorableText({ 'a/b': { c: 'x\ud800' } })?.instancePath).toBe('/a~1b/c');
    expect(findUnstorableText({ meta: { 'k\u0000': 1 } })).toMatchObject({
      instancePath: '/meta',
      message: expect.stringMatching(/field name .*NUL/),
    });
    expect(findUnstorableText({ n: 1, ok: true, none: null, list: ['fine'] })).toBeNull();
  });
});

describe('requests carrying text Postgres refuses', () => {
  const stack = useStack({ api: { env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' } } });

  const stockedSku = () => stockItem(stack.database.db, uniqueId('SKU'), { onHand: 5 });

  const orderBody = (sku: string, name: string) => ({
    email: 'aisyah@example.com',
    shippingAddress: { ...ADDRESS, name },
    lines: [{ sku, quantity: 1 }],
    payment: { token: 'tok_visa' },
  });

  const createOrder = (body: unknown) =>
    stack.api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      payload: body as object,
      headers: { ...stack.api.customer('cus_text'), 'idempotency-key': randomUUID() },
    });

  const ordersNow = async () => (await stack.database.db.selectFrom('orders').select('id').execute()).length;

  it('an order whose address has a NUL or a cut emoji is refused with 400 naming the field, and none is written', async () => {
    const sku = await stockedSku();
    const before = await ordersNow();
    for (const [name, problem] of [
      ['Aisyah\u0000 Rahman', /NUL/],
      ['Aisyah \ud83d', /surrogate/],
    ] as const) {
      const res = await createOrder(orderBody(sku, name));
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toMatch(/^body\.shippingAddress\.name must /);
      expect(res.json().error.message).toMatch(problem);
    }
    expect(await ordersNow()).toBe(before);
    // The same order with its emoji whole is taken.
    const whole = await createOrder(orderBody(sku, 'Aisyah 🙂 Rahman [scenario:never_picked_up]'));
    expect(whole.statusCode).toBe(202);
    await expectBooksBalance(stack, [whole.json().orderId]);
  });

  it('a cancel whose reason has a NUL is refused with 400 and changes nothing; the order then cancels whole', async () => {
    const sku = await stockedSku();
    const created = await createOrder(orderBody(sku, `${ADDRESS.name} [scenario:never_picked_up]`));
    expect(created.statusCode).toBe(202);
    const orderId = created.json().orderId as string;
    const statusOf = async () =>
      (
        await stack.database.db
          .selectFrom('orders')
          .select('status')
          .where('id', '=', orderId)
          .executeTakeFirst()
      )?.status;
    await eventually(statusOf, (s) => s === 'CONFIRMED', 60_000);

    const cancel = (reason: string) =>
      stack.api.app.inject({
        method: 'POST',
        url: `/v1/orders/${orderId}/cancel`,
        payload: { reason },
        headers: stack.api.customer('cus_text'),
      });
    const refused = await cancel('changed my mind\u0000');
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toMatch(/^body\.reason must not contain the NUL character/);
    expect(await statusOf()).toBe('CONFIRMED');

    expect([200, 202]).toContain((await cancel('changed my mind')).statusCode);
    await eventually(statusOf, (s) => s === 'CANCELLED', 60_000);
    await expectBooksBalance(stack, [orderId]);
  });

  it('a query string value with a NUL is refused with 400 naming it', async () => {
    const res = await stack.api.app.inject({
      method: 'GET',
      url: '/v1/admin/failed-work?kind=sync_error&reason=time%00out',
      headers: stack.api.admin(),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'querystring.reason must not contain the NUL character (U+0000)',
    });
  });
});
