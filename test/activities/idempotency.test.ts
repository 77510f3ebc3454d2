/**
 * Activities are at-least-once: a worker that dies after the side effect but before
 * reporting makes Temporal run the activity again. Each saga activity run twice here
 * (the same input, as a retry sends) must leave exactly what one run leaves.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { sql } from 'kysely';
import { createActivities, type Activities } from '../../src/activities';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import { insertOrder } from '../../src/read-model/orders';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { orderShipmentId } from '../../src/workflows/contract';
import { testLog } from '../support/env';
import { useStack } from '../support/stack';
import { fastPolicy, uniqueId } from '../support/temporal';

describe('saga activities run twice', () => {
  // The activities run here, outside a worker: the stack gives the database and both simulators.
  const stack = useStack({ worker: false, timeScale: 1 });
  let activities: Activities;

  beforeAll(() => {
    activities = createActivities({
      db: stack.database.db,
      couriers: { [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: stack.couriers.url }) },
      payments: createHttpPaymentProvider({ baseUrl: stack.payments.url }),
      dailyBudget: 1000,
      log: testLog,
      pollPolicy: fastPolicy(),
    });
  });

  async function order(sku: string) {
    const orderId = uniqueId('ord');
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku, name: sku, on_hand: 10 })
      .onConflict((oc) => oc.column('sku').doNothing())
      .execute();
    const total = await insertOrder(stack.database.db, {
      id: orderId,
      number: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      email: 'a@example.com',
      currency: 'MYR',
      courier: CourierCode.SIMULATOR,
      shippingAddress: { name: 'A', line1: '1 Jalan', city: 'Shah Alam', postcode: '40000', country: 'MY' },
      lines: [{ lineNo: 1, sku, name: sku, quantity: 2, unitAmount: 1_000 }],
    });
    return { orderId, total };
  }

  const count = async (table: string, orderId: string) =>
    (
      await sql<{
        n: number;
      }>`select count(*)::int as n from ${sql.table(table)} where order_id = ${orderId}`.execute(
        stack.database.db,
      )
    ).rows[0]!.n;

  it('authorise, record and capture twice: one authorisation, one capture, one payment row', async () => {
    const { orderId, total } = await order('SKU-PAY');
    const card = { number: '4242424242424242', expMonth: 12, expYear: 2030, cvc: '123' };
    const first = await activities.authorisePayment({ orderId, amount: total, currency: 'MYR', card });
    const second = await activities.authorisePayment({ orderId, amount: total, currency: 'MYR', card });
    expect(second).toEqual(first);
    if (first.status !== 'AUTHORISED') throw new Error('expected an authorisation');
    await activities.recordAuthorisation({ orderId, amount: total, currency: 'MYR', result: first });
    await activities.recordAuthorisation({ orderId, amount: total, currency: 'MYR', result: second });
    await activities.capturePayment({ orderId, providerRef: first.providerRef, amount: total });
    await activities.capturePayment({ orderId, providerRef: first.providerRef, amount: total });
    expect(stack.payments.state.paymentsOf(orderId)).toHaveLength(1);
    expect(stack.payments.state.payment(first.providerRef)).toMatchObject({ amountCaptured: total });
    expect(await count('payments', orderId)).toBe(1);
    const [row] = await stack.database.db
      .selectFrom('payments')
      .selectAll()
      .where('order_id', '=', orderId)
      .execute();
    expect(row).toMatchObject({ status: 'CAPTURED', amount_captured: total });
  });

  it("a courier's answer recorded after the order cancelled the booking: only a pickup or a delivery replaces CANCELLED", async () => {
    const record = async (status: 'INFO_RECEIVED' | 'EXPIRED' | 'CANCELLED' | 'DELIVERED') => {
      const id = uniqueId('shp');
      await stack.database.db
        .insertInto('shipments')
        .values({ id, tracking_number: `T${id}`, courier: 'simulator', status: 'CANCELLED' })
        .execute();
      const syncedAt = new Date().toISOString();
      await activities.recordTracking({
        shipmentId: id,
        events: [],
        status,
        subStatus: null,
        eta: null,
        syncedAt,
        nextPollAt: syncedAt,
      });
      return stack.database.db
        .selectFrom('shipments')
        .select(['status', 'next_poll_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    };
    // A last poll answered before the cancel reached the courier, or after it: the row stays.
    expect(await record('INFO_RECEIVED')).toEqual({ status: 'CANCELLED', next_poll_at: null });
    expect(await record('EXPIRED')).toEqual({ status: 'CANCELLED', next_poll_at: null });
    expect(await record('CANCELLED')).toMatchObject({ status: 'CANCELLED' });
    // The courier had the parcel after all: what happened to it shows.
    expect(await record('DELIVERED')).toMatchObject({ status: 'DELIVERED' });
  });

  it('read a payment twice: the same answer, and the row mirrors what was captured by hand', async () => {
    const { orderId, total } = await order('SKU-READ');
    const card = { number: '4242424242424242', expMonth: 12, expYear: 2030, cvc: '123' };
    const result = await activities.authorisePayment({ orderId, amount: total, currency: 'MYR', card });
    if (result.status !== 'AUTHORISED') throw new Error('expected an authorisation');
    await activities.recordAuthorisation({ orderId, amount: total, currency: 'MYR', result });
    // Captured in the provider's dashboard, under a key Waybill never used.
    await createHttpPaymentProvider({ baseUrl: stack.payments.url }).capture({
      idempotencyKey: `dashboard-${orderId}`,
      providerRef: result.providerRef,
      amount: total,
    });
    const first = await activities.readPayment({ orderId, providerRef: result.providerRef });
    const second = await activities.readPayment({ orderId, providerRef: result.providerRef });
    expect(second).toEqual(first);
    expect(first).toMatchObject({ status: 'CAPTURED', amountCaptured: total, amountRefunded: 0 });
    const rows = await stack.database.db
      .selectFrom('payments')
      .select(['status', 'amount_captured'])
      .where('order_id', '=', orderId)
      .execute();
    expect(rows).toEqual([{ status: 'CAPTURED', amount_captured: total }]);
  });

  it('reserve twice: the stock is reserved once', async () => {
    const { orderId } = await order('SKU-RES');
    const before = await stack.database.db
      .selectFrom('inventory_items')
      .select('reserved')
      .where('sku', '=', 'SKU-RES')
      .executeTakeFirstOrThrow();
    await activities.reserveStock({ orderId, lines: [{ sku: 'SKU-RES', quantity: 2 }] });
    await activities.reserveStock({ orderId, lines: [{ sku: 'SKU-RES', quantity: 2 }] });
    const after = await stack.database.db
      .selectFrom('inventory_items')
      .select('reserved')
      .where('sku', '=', 'SKU-RES')
      .executeTakeFirstOrThrow();
    expect(after.reserved - before.reserved).toBe(2);
  });

  it('book twice: the same parcel and tracking number, one shipment row', async () => {
    const { orderId } = await order('SKU-BOOK');
    const input = {
      orderId,
      shipmentId: orderShipmentId(orderId, 1),
      courier: CourierCode.SIMULATOR,
      lineNos: [1],
    };
    // Booking heartbeats (a cancel of the order pre-empts it): it runs in an activity context.
    const book = () =>
      new MockActivityEnvironment().run<
        [],
        { trackingNumber: string },
        () => Promise<{ trackingNumber: string }>
      >(() => activities.bookShipment(input));
    const first = await book();
    const second = await book();
    expect(second.trackingNumber).toBe(first.trackingNumber);
    expect(await count('shipments', orderId)).toBe(1);
  });

  it('notify and audit twice: one notification, one audit entry', async () => {
    const { orderId } = await order('SKU-NOTE');
    await activities.notifyCustomer({ orderId, milestone: 'confirmed' });
    await activities.notifyCustomer({ orderId, milestone: 'confirmed' });
    expect(await count('notifications', orderId)).toBe(1);
    const audit = {
      key: `cancel:${orderId}`,
      actor: 'admin:ops',
      action: 'order.cancel',
      subjectType: 'order',
      subjectId: orderId,
      reason: 'fraud',
    };
    await activities.recordAudit(audit);
    await activities.recordAudit(audit);
    const rows = await stack.database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('subject_id', '=', orderId)
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: 'admin:ops', action: 'order.cancel', reason: 'fraud' });
  });

  it('raise and close attention twice: one row, one audit entry per raise and per close', async () => {
    const { orderId } = await order('SKU-ATTN');
    const raise = {
      orderId,
      itemId: 'capture',
      step: 'capture',
      reason: 'authorization_expired',
      raiseKey: 'capture:17',
    };
    await activities.raiseAttention(raise);
    await activities.raiseAttention(raise);
    const close = {
      orderId,
      itemId: 'capture',
      outcome: 'RESOLVED' as const,
      by: 'admin:ops',
      resolution: 'charged by phone',
      settlement: 'captured_by_hand',
      actionKey: 'capture:23',
    };
    await activities.closeAttention(close);
    await activities.closeAttention(close);
    const rows = await stack.database.db
      .selectFrom('order_attention')
      .selectAll()
      .where('order_id', '=', orderId)
      .execute();
    expect(rows).toEqual([
      expect.objectContaining({
        item_id: 'capture',
        status: 'RESOLVED',
        closed_by: 'admin:ops',
        resolution: 'charged by phone',
        settlement: 'captured_by_hand',
      }),
    ]);
    const audit = await stack.database.db
      .selectFrom('audit_log')
      .select('action')
      .where('subject_id', '=', orderId)
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['order.needs_attention', 'order.attention_resolved']);
  });
});
