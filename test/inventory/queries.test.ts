/**
 * Stock reservation on a real Postgres: the order saga's first step, its compensation,
 * consumption at shipment, restocking of returns, and the reconciliation check that must
 * hold after every scenario.
 */
import type { Kysely } from 'kysely';
import { createDb } from '../../db/client';
import type { Database } from '../../db/database';
import {
  consumeStock,
  releaseStock,
  ReservationSettledError,
  reserveStock,
  restockReturned,
} from '../../src/read-model/inventory';
import { lowStockSkus, stockReconciliation } from '../../src/read-model/stock-checks';
import { freshDatabase, type TestDatabase } from '../support/db';
import { newItem, newOrder, raceBehindLock, reservationsOf, stockOf } from './fixtures';

describe('stock reservation', () => {
  let database: TestDatabase;
  let db: Kysely<Database>;
  /** Extra single-connection clients, so concurrent calls really run on separate sessions. */
  const connections: Kysely<Database>[] = [];

  function connection(): Kysely<Database> {
    const conn = createDb({ url: database.url, poolMax: 1 });
    connections.push(conn);
    return conn;
  }

  beforeAll(async () => {
    database = await freshDatabase();
    db = database.db;
  });

  afterEach(async () => {
    for (const conn of connections.splice(0)) await conn.destroy();
    // Every scenario must leave counters and reservations in agreement.
    expect(await stockReconciliation(db)).toEqual([]);
  });

  afterAll(async () => {
    await database?.drop();
  });

  describe('reserving', () => {
    it('holds the ordered units: reserved goes up and one RESERVED row per sku records it', async () => {
      const a = await newItem(db, { onHand: 10 });
      const b = await newItem(db, { onHand: 5 });
      const orderId = await newOrder(db);

      const result = await reserveStock(db, {
        orderId,
        lines: [
          { sku: a, quantity: 3 },
          { sku: b, quantity: 5 },
        ],
      });

      expect(result).toEqual({ ok: true });
      expect(await stockOf(db, a)).toEqual({ onHand: 10, reserved: 3 });
      expect(await stockOf(db, b)).toEqual({ onHand: 5, reserved: 5 });
      expect(await reservationsOf(db, orderId)).toEqual(
        [
          { sku: a, quantity: 3, status: 'RESERVED' },
          { sku: b, quantity: 5, status: 'RESERVED' },
        ].sort((x, y) => (x.sku < y.sku ? -1 : 1)),
      );
    });

    it('merges lines for the same sku into one reservation of their total', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);

      const result = await reserveStock(db, {
        orderId,
        lines: [
          { sku, quantity: 2 },
          { sku, quantity: 4 },
        ],
      });

      expect(result).toEqual({ ok: true });
      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 6 });
      expect(await reservationsOf(db, orderId)).toEqual([{ sku, quantity: 6, status: 'RESERVED' }]);
    });

    it('reserves once when the same order is reserved twice', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      const input = { orderId, lines: [{ sku, quantity: 4 }] };

      expect(await reserveStock(db, input)).toEqual({ ok: true });
      expect(await reserveStock(db, input)).toEqual({ ok: true });

      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 4 });
      expect(await reservationsOf(db, orderId)).toEqual([{ sku, quantity: 4, status: 'RESERVED' }]);
    });

    it('reserves once when two attempts for the same order run at the same moment', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      const input = { orderId, lines: [{ sku, quantity: 7 }] };
      const [first, second] = [connection(), connection()];

      const results = await raceBehindLock(database.url, sku, 2, () =>
        Promise.all([reserveStock(first, input), reserveStock(second, input)]),
      );

      expect(results).toEqual([{ ok: true }, { ok: true }]);
      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 7 });
    });

    it('reserves nothing when one line is short, and names the short sku with what is available', async () => {
      const plenty = await newItem(db, { onHand: 10 });
      const scarce = await newItem(db, { onHand: 3 });
      const other = await newOrder(db);
      await reserveStock(db, { orderId: other, lines: [{ sku: scarce, quantity: 2 }] });
      const orderId = await newOrder(db);

      const result = await reserveStock(db, {
        orderId,
        lines: [
          { sku: plenty, quantity: 4 },
          { sku: scarce, quantity: 2 },
        ],
      });

      expect(result).toEqual({ ok: false, shortages: [{ sku: scarce, requested: 2, available: 1 }] });
      expect(await stockOf(db, plenty)).toEqual({ onHand: 10, reserved: 0 });
      expect(await stockOf(db, scarce)).toEqual({ onHand: 3, reserved: 2 });
      expect(await reservationsOf(db, orderId)).toEqual([]);
    });

    it('treats an unknown sku as a shortage with nothing available, and reserves none of the other lines', async () => {
      const known = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);

      const result = await reserveStock(db, {
        orderId,
        lines: [
          { sku: known, quantity: 1 },
          { sku: 'NO-SUCH-SKU', quantity: 2 },
        ],
      });

      expect(result).toEqual({ ok: false, shortages: [{ sku: 'NO-SUCH-SKU', requested: 2, available: 0 }] });
      expect(await stockOf(db, known)).toEqual({ onHand: 10, reserved: 0 });
      expect(await reservationsOf(db, orderId)).toEqual([]);
    });

    it('lists every short sku, not just the first', async () => {
      const a = await newItem(db, { onHand: 1, prefix: 'A' });
      const b = await newItem(db, { onHand: 0, prefix: 'B' });
      const orderId = await newOrder(db);

      const result = await reserveStock(db, {
        orderId,
        lines: [
          { sku: b, quantity: 1 },
          { sku: a, quantity: 2 },
        ],
      });

      expect(result).toEqual({
        ok: false,
        shortages: [
          { sku: a, requested: 2, available: 1 },
          { sku: b, requested: 1, available: 0 },
        ],
      });
      expect(await reservationsOf(db, orderId)).toEqual([]);
    });

    it('refuses a quantity that is not a positive whole number and reserves nothing', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);

      await expect(reserveStock(db, { orderId, lines: [{ sku, quantity: 0 }] })).rejects.toThrow(RangeError);
      await expect(reserveStock(db, { orderId, lines: [{ sku, quantity: 1.5 }] })).rejects.toThrow(
        RangeError,
      );

      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
    });

    it('does not reserve again for an order whose stock was already released', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      const input = { orderId, lines: [{ sku, quantity: 3 }] };
      await reserveStock(db, input);
      await releaseStock(db, { orderId });

      await expect(reserveStock(db, input)).rejects.toThrow(ReservationSettledError);

      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
      expect(await reservationsOf(db, orderId)).toEqual([{ sku, quantity: 3, status: 'RELEASED' }]);
    });

    it("inside a caller's transaction, a shortage undoes the reservation but not the caller's own writes", async () => {
      const plenty = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);

      const result = await db.transaction().execute(async (trx) => {
        await trx.updateTable('orders').set({ postcode: '99999' }).where('id', '=', orderId).execute();
        return reserveStock(trx, {
          orderId,
          lines: [
            { sku: plenty, quantity: 1 },
            { sku: 'NO-SUCH-SKU', quantity: 1 },
          ],
        });
      });

      expect(result.ok).toBe(false);
      expect(await stockOf(db, plenty)).toEqual({ onHand: 10, reserved: 0 });
      const order = await db
        .selectFrom('orders')
        .select('postcode')
        .where('id', '=', orderId)
        .executeTakeFirst();
      expect(order?.postcode).toBe('99999');
    });
  });

  describe('concurrent orders', () => {
    it('two orders racing for the last units: exactly one wins and reserved never exceeds on_hand', async () => {
      const sku = await newItem(db, { onHand: 5 });
      const [orderA, orderB] = [await newOrder(db), await newOrder(db)];
      const [first, second] = [connection(), connection()];

      const results = await raceBehindLock(database.url, sku, 2, () =>
        Promise.all([
          reserveStock(first, { orderId: orderA, lines: [{ sku, quantity: 3 }] }),
          reserveStock(second, { orderId: orderB, lines: [{ sku, quantity: 3 }] }),
        ]),
      );

      expect(results.filter((r) => r.ok)).toHaveLength(1);
      const loser = results.find((r) => !r.ok);
      expect(loser).toEqual({ ok: false, shortages: [{ sku, requested: 3, available: 2 }] });
      expect(await stockOf(db, sku)).toEqual({ onHand: 5, reserved: 3 });
      const rows = [...(await reservationsOf(db, orderA)), ...(await reservationsOf(db, orderB))];
      expect(rows).toEqual([{ sku, quantity: 3, status: 'RESERVED' }]);
    });

    it('many single-unit orders at once sell exactly the units there are', async () => {
      const sku = await newItem(db, { onHand: 5 });
      const orders = await Promise.all(Array.from({ length: 12 }, () => newOrder(db)));
      const pool = [connection(), connection(), connection(), connection()];

      const results = await raceBehindLock(database.url, sku, pool.length, () =>
        Promise.all(
          orders.map((orderId, i) =>
            reserveStock(pool[i % pool.length]!, { orderId, lines: [{ sku, quantity: 1 }] }),
          ),
        ),
      );

      expect(results.filter((r) => r.ok)).toHaveLength(5);
      expect(await stockOf(db, sku)).toEqual({ onHand: 5, reserved: 5 });
    });

    it('orders listing the same skus in opposite order all succeed together, without a deadlock', async () => {
      const a = await newItem(db, { onHand: 100, prefix: 'A' });
      const b = await newItem(db, { onHand: 100, prefix: 'B' });
      const orders = await Promise.all(Array.from({ length: 10 }, () => newOrder(db)));
      const pool = [connection(), connection(), connection(), connection()];

      const results = await Promise.all(
        orders.map((orderId, i) =>
          reserveStock(pool[i % pool.length]!, {
            orderId,
            lines:
              i % 2 === 0
                ? [
                    { sku: a, quantity: 1 },
                    { sku: b, quantity: 2 },
                  ]
                : [
                    { sku: b, quantity: 2 },
                    { sku: a, quantity: 1 },
                  ],
          }),
        ),
      );

      expect(results.every((r) => r.ok)).toBe(true);
      expect(await stockOf(db, a)).toEqual({ onHand: 100, reserved: 10 });
      expect(await stockOf(db, b)).toEqual({ onHand: 100, reserved: 20 });
    });
    it('does not wait for an order being written that names the same skus (no deadlock with order lines)', async () => {
      // An order's lines reference inventory_items (a foreign key: KEY SHARE locks on the
      // skus). A reservation must not conflict with those locks, or an order written with
      // its lines in another order than the reservation's sku order deadlocks against it.
      const [a, b] = [await newItem(db, { onHand: 10 }), await newItem(db, { onHand: 10 })].sort();
      const writing = await newOrder(db);
      const reserving = await newOrder(db);
      const writer = connection();
      let reserved: unknown = 'still waiting';
      await writer.transaction().execute(async (trx) => {
        await trx
          .insertInto('order_items')
          .values({
            order_id: writing,
            line_no: 1,
            sku: b!,
            name: 'B',
            quantity: 1,
            unit_amount: 100,
            shipment_id: null,
          })
          .execute();
        // The writer still holds its lock on b: the reservation of a and b must go through now.
        reserved = await Promise.race([
          reserveStock(connection(), {
            orderId: reserving,
            lines: [
              { sku: a!, quantity: 1 },
              { sku: b!, quantity: 1 },
            ],
          }),
          new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3_000)),
        ]);
        await trx
          .insertInto('order_items')
          .values({
            order_id: writing,
            line_no: 2,
            sku: a!,
            name: 'A',
            quantity: 1,
            unit_amount: 100,
            shipment_id: null,
          })
          .execute();
      });
      expect(reserved).toEqual({ ok: true });
      await releaseStock(db, { orderId: reserving });
    });
  });

  describe('releasing', () => {
    it('gives the held units back once, however often it runs', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      await reserveStock(db, { orderId, lines: [{ sku, quantity: 4 }] });

      const first = await releaseStock(db, { orderId });
      const second = await releaseStock(db, { orderId });

      expect(first).toEqual({ changed: [{ sku, quantity: 4 }] });
      expect(second).toEqual({ changed: [] });
      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
      expect(await reservationsOf(db, orderId)).toEqual([{ sku, quantity: 4, status: 'RELEASED' }]);
    });

    it('changes nothing for an order that never reserved', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const holder = await newOrder(db);
      await reserveStock(db, { orderId: holder, lines: [{ sku, quantity: 2 }] });
      const orderId = await newOrder(db);

      expect(await releaseStock(db, { orderId })).toEqual({ changed: [] });
      expect(await releaseStock(db, { orderId: 'no-such-order' })).toEqual({ changed: [] });

      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 2 });
    });

    it('run concurrently for the same order, gives the units back once', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      await reserveStock(db, { orderId, lines: [{ sku, quantity: 6 }] });
      const [first, second] = [connection(), connection()];

      const results = await raceBehindLock(database.url, sku, 2, () =>
        Promise.all([releaseStock(first, { orderId }), releaseStock(second, { orderId })]),
      );

      expect(results.map((r) => r.changed.length).sort()).toEqual([0, 1]);
      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 0 });
    });
  });

  describe('shipping and returns', () => {
    it('consuming takes the shipped units off the shelf once; restocking a return puts them back once', async () => {
      const a = await newItem(db, { onHand: 10, prefix: 'A' });
      const b = await newItem(db, { onHand: 10, prefix: 'B' });
      const orderId = await newOrder(db);
      await reserveStock(db, {
        orderId,
        lines: [
          { sku: a, quantity: 2 },
          { sku: b, quantity: 3 },
        ],
      });

      // First parcel carries only `a`.
      expect(await consumeStock(db, { orderId, skus: [a] })).toEqual({ changed: [{ sku: a, quantity: 2 }] });
      expect(await consumeStock(db, { orderId, skus: [a] })).toEqual({ changed: [] });
      expect(await stockOf(db, a)).toEqual({ onHand: 8, reserved: 0 });
      expect(await stockOf(db, b)).toEqual({ onHand: 10, reserved: 3 });

      // The rest ships.
      expect(await consumeStock(db, { orderId })).toEqual({ changed: [{ sku: b, quantity: 3 }] });
      expect(await stockOf(db, b)).toEqual({ onHand: 7, reserved: 0 });

      // The first parcel comes back.
      expect(await restockReturned(db, { orderId, skus: [a] })).toEqual({
        changed: [{ sku: a, quantity: 2 }],
      });
      expect(await restockReturned(db, { orderId, skus: [a] })).toEqual({ changed: [] });
      expect(await stockOf(db, a)).toEqual({ onHand: 10, reserved: 0 });
      expect(await stockOf(db, b)).toEqual({ onHand: 7, reserved: 0 });
      expect(await reservationsOf(db, orderId)).toEqual([
        { sku: a, quantity: 2, status: 'RESTOCKED' },
        { sku: b, quantity: 3, status: 'CONSUMED' },
      ]);
    });

    it('releasing after part of the order shipped gives back only what is still held', async () => {
      const a = await newItem(db, { onHand: 10, prefix: 'A' });
      const b = await newItem(db, { onHand: 10, prefix: 'B' });
      const orderId = await newOrder(db);
      await reserveStock(db, {
        orderId,
        lines: [
          { sku: a, quantity: 1 },
          { sku: b, quantity: 1 },
        ],
      });
      await consumeStock(db, { orderId, skus: [a] });

      expect(await releaseStock(db, { orderId })).toEqual({ changed: [{ sku: b, quantity: 1 }] });

      expect(await stockOf(db, a)).toEqual({ onHand: 9, reserved: 0 });
      expect(await stockOf(db, b)).toEqual({ onHand: 10, reserved: 0 });
    });

    it('restocks nothing for units that were never shipped', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      await reserveStock(db, { orderId, lines: [{ sku, quantity: 2 }] });

      expect(await restockReturned(db, { orderId, skus: [sku] })).toEqual({ changed: [] });

      expect(await stockOf(db, sku)).toEqual({ onHand: 10, reserved: 2 });
      await releaseStock(db, { orderId });
    });
  });

  describe('low stock', () => {
    it('lists the skus whose available units are below their threshold, with the figures', async () => {
      const low = await newItem(db, { onHand: 10, threshold: 5, prefix: 'LOW' });
      const fine = await newItem(db, { onHand: 10, threshold: 5, prefix: 'FINE' });
      const noThreshold = await newItem(db, { onHand: 1, prefix: 'ZERO' });
      const orderId = await newOrder(db);
      await reserveStock(db, {
        orderId,
        lines: [
          { sku: low, quantity: 6 },
          { sku: fine, quantity: 5 },
          { sku: noThreshold, quantity: 1 },
        ],
      });

      expect(await lowStockSkus(db, [low, fine, noThreshold, 'NO-SUCH-SKU'])).toEqual([
        { sku: low, available: 4, threshold: 5 },
      ]);
      expect(await lowStockSkus(db, [])).toEqual([]);
    });
  });

  describe('reconciliation', () => {
    it('names a sku whose reserved counter drifted from its reservations', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      await reserveStock(db, { orderId, lines: [{ sku, quantity: 2 }] });
      expect(await stockReconciliation(db)).toEqual([]);

      await db.updateTable('inventory_items').set({ reserved: 3 }).where('sku', '=', sku).execute();
      try {
        expect(await stockReconciliation(db)).toEqual([
          {
            sku,
            onHand: 10,
            reserved: 3,
            reservedByReservations: 2,
            heldByFinishedOrders: 0,
            problems: ['reserved 3 but reservations hold 2'],
          },
        ]);
      } finally {
        await db.updateTable('inventory_items').set({ reserved: 2 }).where('sku', '=', sku).execute();
      }
    });

    it('names a sku still reserved by an order that already failed', async () => {
      const sku = await newItem(db, { onHand: 10 });
      const orderId = await newOrder(db);
      await reserveStock(db, { orderId, lines: [{ sku, quantity: 2 }] });

      await db.updateTable('orders').set({ status: 'FAILED' }).where('id', '=', orderId).execute();
      const found = await stockReconciliation(db);
      await releaseStock(db, { orderId });

      expect(found).toEqual([
        expect.objectContaining({
          sku,
          heldByFinishedOrders: 2,
          problems: ['2 still reserved by finished orders'],
        }),
      ]);
    });
  });
});
