/**
 * The payments row mirrors the provider, and only ever forward: a provider answer replayed
 * under an old idempotency key (an admin's retry of a step whose first answer was lost) says
 * what was true then, and must not undo what later steps recorded. Real Postgres.
 */
import { PaymentStatus, type PaymentSummary } from '../../src/payments/types';
import { insertPayment, mirrorPayment } from '../../src/read-model/payments';
import { freshDatabase, insertOrderWithLines, type TestDatabase } from '../support/db';
import { uniqueId } from '../support/temporal';

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase();
  await database.db
    .insertInto('inventory_items')
    .values([
      { sku: 'KETTLE', name: 'Kettle', on_hand: 5, unit_amount: 4_990, location: 'main', currency: 'MYR' },
      { sku: 'MUG', name: 'Mug', on_hand: 5, unit_amount: 1_500, location: 'main', currency: 'MYR' },
    ])
    .execute();
});
afterAll(async () => {
  await database.drop();
});

async function authorisedOrder() {
  const orderId = uniqueId('ord');
  const total = await insertOrderWithLines(database.db, orderId, [
    { lineNo: 1, sku: 'KETTLE', name: 'Kettle', quantity: 1, unitAmount: 4_990 },
    { lineNo: 2, sku: 'MUG', name: 'Mug', quantity: 2, unitAmount: 1_500 },
  ]);
  const providerRef = uniqueId('pay');
  await insertPayment(database.db, {
    id: uniqueId('pmt'),
    order_id: orderId,
    idempotency_key: `order:${orderId}:authorise`,
    provider: 'simulator',
    provider_ref: providerRef,
    status: PaymentStatus.AUTHORISED,
    currency: 'MYR',
    amount_authorised: total,
    decline_code: null,
  });
  const summary = (status: PaymentStatus, captured: number, refunded: number): PaymentSummary => ({
    providerRef,
    status,
    amountAuthorised: total,
    amountCaptured: captured,
    amountRefunded: refunded,
  });
  const row = () =>
    database.db
      .selectFrom('payments')
      .select(['status', 'amount_captured', 'amount_refunded'])
      .where('order_id', '=', orderId)
      .executeTakeFirstOrThrow();
  return { orderId, total, summary, row };
}

describe('mirrorPayment', () => {
  it('follows the provider forward: captured, then refunded in part, then in full', async () => {
    const { orderId, total, summary, row } = await authorisedOrder();
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.CAPTURED, total, 0));
    expect(await row()).toEqual({ status: 'CAPTURED', amount_captured: total, amount_refunded: 0 });
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.PARTIALLY_REFUNDED, total, 3_000));
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.REFUNDED, total, total));
    expect(await row()).toEqual({ status: 'REFUNDED', amount_captured: total, amount_refunded: total });
  });

  it('keeps later refunds when a retried step gets an older answer replayed', async () => {
    const { orderId, total, summary, row } = await authorisedOrder();
    // Refund of the mugs (3,000) made at the provider, its answer lost, the step parked; then
    // the kettle's refund (4,990) answered: the row shows both.
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.REFUNDED, total, total));
    // The admin retries the mugs' refund: the provider replays its first answer.
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.PARTIALLY_REFUNDED, total, 3_000));
    expect(await row()).toEqual({ status: 'REFUNDED', amount_captured: total, amount_refunded: total });
    // And a retried capture's replayed answer does not undo the refunds either.
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.CAPTURED, total, 0));
    expect(await row()).toEqual({ status: 'REFUNDED', amount_captured: total, amount_refunded: total });
  });

  it('a void after an authorisation, and nothing moves it back to authorised', async () => {
    const { orderId, summary, row } = await authorisedOrder();
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.VOIDED, 0, 0));
    await mirrorPayment(database.db, orderId, summary(PaymentStatus.AUTHORISED, 0, 0));
    expect(await row()).toEqual({ status: 'VOIDED', amount_captured: 0, amount_refunded: 0 });
  });
});
