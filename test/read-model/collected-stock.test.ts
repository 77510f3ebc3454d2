/**
 * A parcel the courier collected while its order was being settled: its units leave the
 * shelf, also when the clean-up had released them already, but never below what other
 * orders hold since (those units were sold twice: named, left for the recall). Real Postgres.
 */
import { consumeCollected, releaseStock, reserveStock } from '../../src/read-model/inventory';
import { freshDatabase, insertOrderRow, type TestDatabase } from '../support/db';
import { uniqueId } from '../support/temporal';

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase();
});
afterAll(async () => {
  await database.drop();
});

async function kettles(onHand: number) {
  const sku = uniqueId('KETTLE');
  await database.db
    .insertInto('inventory_items')
    .values({ sku, name: 'Kettle', on_hand: onHand, unit_amount: 4_990, location: 'main', currency: 'MYR' })
    .execute();
  return sku;
}
const item = (sku: string) =>
  database.db
    .selectFrom('inventory_items')
    .select(['on_hand', 'reserved'])
    .where('sku', '=', sku)
    .executeTakeFirstOrThrow();
const reservation = (orderId: string, sku: string) =>
  database.db
    .selectFrom('inventory_reservations')
    .select('status')
    .where('order_id', '=', orderId)
    .where('sku', '=', sku)
    .executeTakeFirstOrThrow();

/** An order that reserved `quantity` and whose clean-up released them (its cancel parked). */
async function releasedOrder(sku: string, quantity: number) {
  const orderId = await insertOrderRow(database.db, { customerId: 'cus_collected' });
  await reserveStock(database.db, { orderId, lines: [{ sku, quantity }] });
  await releaseStock(database.db, { orderId });
  return orderId;
}

describe('consumeCollected', () => {
  it('takes released units off the shelf again, once', async () => {
    const sku = await kettles(5);
    const orderId = await releasedOrder(sku, 2);
    expect(await item(sku)).toEqual({ on_hand: 5, reserved: 0 });
    const first = await consumeCollected(database.db, { orderId, skus: [sku] });
    expect(first).toEqual({ changed: [{ sku, quantity: 2 }], oversold: [] });
    expect(await item(sku)).toEqual({ on_hand: 3, reserved: 0 });
    expect(await reservation(orderId, sku)).toEqual({ status: 'CONSUMED' });
    // Run twice (a retried activity): nothing more moves.
    expect(await consumeCollected(database.db, { orderId, skus: [sku] })).toEqual({
      changed: [],
      oversold: [],
    });
    expect(await item(sku)).toEqual({ on_hand: 3, reserved: 0 });
  });

  it('consumes units still held like any shipment', async () => {
    const sku = await kettles(5);
    const orderId = await insertOrderRow(database.db, { customerId: 'cus_collected' });
    await reserveStock(database.db, { orderId, lines: [{ sku, quantity: 1 }] });
    expect(await consumeCollected(database.db, { orderId, skus: [sku] })).toEqual({
      changed: [{ sku, quantity: 1 }],
      oversold: [],
    });
    expect(await item(sku)).toEqual({ on_hand: 4, reserved: 0 });
  });

  it('never takes back units another order holds since: they are named as sold twice, nothing breaks', async () => {
    const sku = await kettles(5);
    const orderId = await releasedOrder(sku, 2);
    // Another shopper bought all five meanwhile.
    const other = await insertOrderRow(database.db, { customerId: 'cus_other' });
    await reserveStock(database.db, { orderId: other, lines: [{ sku, quantity: 5 }] });
    expect(await consumeCollected(database.db, { orderId, skus: [sku] })).toEqual({
      changed: [],
      oversold: [{ sku, quantity: 2 }],
    });
    expect(await item(sku)).toEqual({ on_hand: 5, reserved: 5 });
    expect(await reservation(orderId, sku)).toEqual({ status: 'RELEASED' });
  });
});
