/**
 * Stock adjusted through the API while real orders reserve the same sku through the saga
 * (real worker, Temporal, Postgres, courier and payment simulators). The two take turns on
 * the sku's row: no unit is sold twice, available never goes below zero, nothing that fits
 * is refused, and the stock and money ledgers reconcile afterwards (useSagaStack).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { createDb } from '../../db/client';
import { cancelOrderUpdate, orderShipmentId } from '../../src/workflows/contract';
import { eventually } from '../support/eventually';
import { ADDRESS, useSagaStack, type PlacedOrder } from '../support/saga';
import { uniqueId } from '../support/temporal';

jest.setTimeout(180_000);

const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };
const ON_HAND = 12;
const UNITS = 2;
/** Orders and adjustments, each wanting UNITS: twice what there is. */
const EACH = 6;

describe('stock adjusted while orders reserve it', () => {
  const stack = useSagaStack({ api: { env: QUIET } });
  // A fresh Idempotency-Key with each call: every stock change here is a new one.
  const ops = () => ({ ...stack.api.staff('ops', 'ops-sam'), 'idempotency-key': randomUUID() });

  /** Sessions of this database waiting on a lock. */
  async function lockWaiters(holder: ReturnType<typeof createDb>): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock'`.execute(holder);
    return rows[0]?.n ?? 0;
  }

  it('never oversells: every unit goes to an order or an adjustment, none twice, and the ledgers hold', async () => {
    const sku = uniqueId('RACE').toUpperCase();
    const created = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/catalogue/skus',
      headers: ops(),
      payload: { sku, name: 'Kettle', warehouse: 'main', unitAmount: 4_990, currency: 'MYR' },
    });
    expect(created.statusCode).toBe(201);
    const received = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/admin/stock/${sku}/receive`,
      headers: ops(),
      payload: { quantity: ON_HAND, reason: 'opening stock' },
    });
    expect(received.statusCode).toBe(200);

    // A session of its own holds the sku's row (as a reservation would) while the orders'
    // reservations and the adjustments queue up behind it; then all go at once.
    const holder = createDb({ url: stack.database.url, poolMax: 2 });
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    let markLocked!: () => void;
    const locked = new Promise<void>((resolve) => (markLocked = resolve));
    const holding = holder.transaction().execute(async (trx) => {
      await trx.selectFrom('inventory_items').select('sku').where('sku', '=', sku).forNoKeyUpdate().execute();
      markLocked();
      await gate;
    });
    let orders: PlacedOrder[];
    let adjustments: Promise<{ statusCode: number; body: string }>[];
    try {
      await locked;
      // Never picked up: a reserved order holds its stock until the test cancels it.
      orders = await Promise.all(
        Array.from({ length: EACH }, () =>
          stack.placeOrder({ sku, quantity: UNITS, scenario: 'never_picked_up' }),
        ),
      );
      // Some reservations waiting on the row before the adjustments join them.
      await eventually(
        () => lockWaiters(holder),
        (n) => n >= 2,
        60_000,
      );
      adjustments = Array.from({ length: EACH }, (_, i) =>
        stack.api.app.inject({
          method: 'POST',
          url: `/v1/admin/stock/${sku}/adjust`,
          headers: ops(),
          payload: { delta: -UNITS, reason: `breakage found in aisle ${i + 1}` },
        }),
      );
      // The test pool has five connections: five waiters means everything else queues behind them.
      await eventually(
        () => lockWaiters(holder),
        (n) => n >= 5,
        60_000,
      );
    } finally {
      letGo();
      await holding.catch(() => undefined);
      await holder.destroy();
    }
    const answers = await Promise.all(adjustments);

    const settled = await Promise.all(
      orders.map((o) =>
        eventually(
          () => stack.orderRow(o.orderId),
          (row) => row.status === 'CONFIRMED' || row.status === 'FAILED',
          90_000,
        ),
      ),
    );
    const reserved = settled.filter((o) => o.status === 'CONFIRMED');
    const refusedOrders = settled.filter((o) => o.status === 'FAILED');
    expect(refusedOrders.map((o) => o.failure_code)).toEqual(refusedOrders.map(() => 'OUT_OF_STOCK'));

    const adjusted = answers.filter((a) => a.statusCode === 200);
    const refusedAdjustments = answers.filter((a) => a.statusCode !== 200);
    for (const refusal of refusedAdjustments) {
      expect(refusal.statusCode).toBe(409);
      expect(JSON.parse(refusal.body).error).toMatchObject({ code: 'STOCK_BELOW_RESERVED' });
      expect(JSON.parse(refusal.body).error.message).toContain(`sku ${sku}`);
    }
    // Each taker found the row as the previous one left it: exactly what was there was given
    // out (no oversell), and nothing was refused while units were left (no undersell).
    expect(UNITS * (reserved.length + adjusted.length)).toBe(ON_HAND);
    expect(await stack.item(sku)).toMatchObject({
      on_hand: ON_HAND - UNITS * adjusted.length,
      reserved: UNITS * reserved.length,
    });
    // Every answer showed a consistent row: available from 0 to what there was, never negative.
    for (const a of adjusted) {
      const { before, after } = JSON.parse(a.body).change;
      expect(after.available).toBeGreaterThanOrEqual(0);
      expect(before.onHand - after.onHand).toBe(UNITS);
      expect(after.reserved).toBeLessThanOrEqual(after.onHand);
    }
    const audited = await stack.database.db
      .selectFrom('audit_log')
      .select('id')
      .where('action', '=', 'stock.adjust')
      .where('subject_id', '=', sku)
      .execute();
    expect(audited).toHaveLength(adjusted.length);

    // The parcels of orders that never reached booking were pre-booked at the courier by the
    // test: cancel those, as the order never booked them. Cancel the orders that hold stock.
    for (const order of refusedOrders) {
      const { trackingNumber } = stack.couriers.backend.bookParcel('native', {
        reference: orderShipmentId(order.id, 1),
        recipient: { ...ADDRESS },
        weightGrams: 500,
      });
      expect(stack.couriers.backend.cancel('native', trackingNumber)).toBe('cancelled');
    }
    for (const order of reserved) {
      const handle = orders.find((o) => o.orderId === order.id)!.handle;
      await handle.executeUpdate(cancelOrderUpdate, {
        args: [{ requestedBy: 'ops:ops-sam', reason: 'stock race test over' }],
      });
      await handle.result();
    }
    expect(await stack.item(sku)).toMatchObject({ on_hand: ON_HAND - UNITS * adjusted.length, reserved: 0 });
  });
});
