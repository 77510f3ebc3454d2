/**
 * The stock activities as the order workflow sees them: run in an activity context on a
 * real Postgres, with the failures the saga matches on and the ops low-stock notification.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { createInventoryActivities, lowStockDedupeKey } from '../../src/activities/inventory';
import { stockReconciliation } from '../../src/read-model/stock-checks';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testLog } from '../support/env';
import { newItem, newOrder, reservationsOf, stockOf } from './fixtures';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('inventory activities', () => {
  let database: TestDatabase;
  let db: Kysely<Database>;
  let clock: number;
  let activities: ReturnType<typeof createInventoryActivities>;
  // The expected failures would each print a worker WARN otherwise.
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

  beforeAll(async () => {
    database = await freshDatabase();
    db = database.db;
    activities = createInventoryActivities({ db, log: testLog, now: () => clock });
  });

  beforeEach(() => {
    clock = Date.parse('2026-12-01T10:00:00Z');
  });

  afterEach(async () => {
    expect(await stockReconciliation(db)).toEqual([]);
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof ApplicationFailure))
      throw new Error(`expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }

  it('a short order fails as non-retryable OutOfStock naming the sku, with nothing reserved', async () => {
    const plenty = await newItem(db, { onHand: 10 });
    const scarce = await newItem(db, { onHand: 1 });
    const orderId = await newOrder(db);

    const failure = await failureOf(
      env.run(activities.reserveStock, {
        orderId,
        lines: [
          { sku: plenty, quantity: 2 },
          { sku: scarce, quantity: 3 },
        ],
      }),
    );

    expect(failure.type).toBe('OutOfStock');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(scarce);
    expect(failure.message).not.toContain(plenty);
    expect(failure.details).toEqual([[{ sku: scarce, requested: 3, available: 1 }]]);
    expect(await stockOf(db, plenty)).toEqual({ onHand: 10, reserved: 0 });
    expect(await reservationsOf(db, orderId)).toEqual([]);
  });

  it('a reservation retried after it already succeeded holds the stock once', async () => {
    const sku = await newItem(db, { onHand: 10 });
    const orderId = await newOrder(db);
    const input = { orderId, lines: [{ sku, quantity: 4 }] };

    await env.run(activities.reserveStock, input);
    await env.run(activities.reserveStock, input);

    expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 4 });
  });

  it('reserving an order whose stock was released fails as non-retryable ReservationSettled', async () => {
    const sku = await newItem(db, { onHand: 10 });
    const orderId = await newOrder(db);
    const input = { orderId, lines: [{ sku, quantity: 4 }] };
    await env.run(activities.reserveStock, input);
    await env.run(activities.releaseStock, { orderId });

    const failure = await failureOf(env.run(activities.reserveStock, input));

    expect(failure.type).toBe('ReservationSettled');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
  });

  it('a line with a quantity of zero fails as non-retryable InvalidStockRequest', async () => {
    const sku = await newItem(db, { onHand: 10 });
    const orderId = await newOrder(db);

    const failure = await failureOf(
      env.run(activities.reserveStock, { orderId, lines: [{ sku, quantity: 0 }] }),
    );

    expect(failure.type).toBe('InvalidStockRequest');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
  });

  it('release, consume and restock report what moved, and a second run moves nothing', async () => {
    const kept = await newItem(db, { onHand: 10, prefix: 'KEPT' });
    const sent = await newItem(db, { onHand: 10, prefix: 'SENT' });
    const cancelled = await newOrder(db);
    const shipped = await newOrder(db);
    await env.run(activities.reserveStock, { orderId: cancelled, lines: [{ sku: kept, quantity: 1 }] });
    await env.run(activities.reserveStock, { orderId: shipped, lines: [{ sku: sent, quantity: 2 }] });

    expect(await env.run(activities.releaseStock, { orderId: cancelled })).toEqual({
      changed: [{ sku: kept, quantity: 1 }],
    });
    expect(await env.run(activities.releaseStock, { orderId: cancelled })).toEqual({ changed: [] });
    expect(await env.run(activities.consumeStock, { orderId: shipped })).toEqual({
      changed: [{ sku: sent, quantity: 2 }],
    });
    expect(await env.run(activities.consumeStock, { orderId: shipped })).toEqual({ changed: [] });
    expect(await env.run(activities.restockReturned, { orderId: shipped, skus: [sent] })).toEqual({
      changed: [{ sku: sent, quantity: 2 }],
    });
    expect(await env.run(activities.restockReturned, { orderId: shipped, skus: [sent] })).toEqual({
      changed: [],
    });

    expect(await stockOf(db, kept)).toEqual({ onHand: 10, reserved: 0 });
    expect(await stockOf(db, sent)).toEqual({ onHand: 10, reserved: 0 });
  });

  describe('low-stock notification', () => {
    const lowStockRows = (sku: string) =>
      db
        .selectFrom('notifications')
        .select(['dedupe_key', 'kind', 'channel', 'recipient', 'payload', 'order_id', 'status'])
        .where('dedupe_key', 'like', `low-stock:${sku}:%`)
        .orderBy('dedupe_key')
        .execute();

    it('tells ops once per sku per day when available stock drops below the threshold', async () => {
      const low = await newItem(db, { onHand: 10, threshold: 5, prefix: 'LOW' });
      const fine = await newItem(db, { onHand: 10, threshold: 2, prefix: 'FINE' });
      const orderId = await newOrder(db);
      await env.run(activities.reserveStock, {
        orderId,
        lines: [
          { sku: low, quantity: 7 },
          { sku: fine, quantity: 1 },
        ],
      });

      const first = await env.run(activities.notifyLowStock, { skus: [low, fine] });
      // A retry, and a later order the same day: no second notification.
      const retried = await env.run(activities.notifyLowStock, { skus: [low, fine] });
      clock += 6 * 60 * 60 * 1000;
      const laterToday = await env.run(activities.notifyLowStock, { skus: [low] });

      expect(first).toEqual({ notified: [low] });
      expect(retried).toEqual({ notified: [] });
      expect(laterToday).toEqual({ notified: [] });
      expect(await lowStockRows(fine)).toEqual([]);
      expect(await lowStockRows(low)).toEqual([
        {
          dedupe_key: `low-stock:${low}:2026-12-01`,
          kind: 'LOW_STOCK',
          channel: 'ops',
          recipient: 'ops',
          payload: { sku: low, available: 3, threshold: 5 },
          order_id: null,
          status: 'PENDING',
        },
      ]);

      clock += DAY_MS;
      expect(await env.run(activities.notifyLowStock, { skus: [low] })).toEqual({ notified: [low] });
      expect((await lowStockRows(low)).map((r) => r.dedupe_key)).toEqual([
        `low-stock:${low}:2026-12-01`,
        `low-stock:${low}:2026-12-02`,
      ]);
      // The alerts staff list and acknowledge: one per sku per day too, the same keys.
      const alerts = await db
        .selectFrom('stock_alerts')
        .select(['sku', 'dedupe_key', 'available', 'threshold', 'acknowledged_at'])
        .where('sku', 'in', [low, fine])
        .orderBy('id')
        .execute();
      expect(alerts).toEqual([
        {
          sku: low,
          dedupe_key: `low-stock:${low}:2026-12-01`,
          available: 3,
          threshold: 5,
          acknowledged_at: null,
        },
        {
          sku: low,
          dedupe_key: `low-stock:${low}:2026-12-02`,
          available: 3,
          threshold: 5,
          acknowledged_at: null,
        },
      ]);

      await env.run(activities.releaseStock, { orderId });
    });

    it('notifies nothing and raises no alert while every sku is at or above its threshold', async () => {
      const sku = await newItem(db, { onHand: 10, threshold: 5 });

      expect(await env.run(activities.notifyLowStock, { skus: [sku, 'NO-SUCH-SKU'] })).toEqual({
        notified: [],
      });
      expect(await lowStockRows(sku)).toEqual([]);
      expect(await db.selectFrom('stock_alerts').select('id').where('sku', '=', sku).execute()).toEqual([]);
    });

    it('keys the notification by sku and UTC day', () => {
      // 23:30 in New York on 1 December is already 2 December in UTC.
      expect(lowStockDedupeKey('SKU-1', Date.parse('2026-12-01T23:30:00-05:00'))).toBe(
        'low-stock:SKU-1:2026-12-02',
      );
    });
  });
});
