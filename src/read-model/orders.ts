/**
 * Order rows on the read model (`orders`, `order_items`). The API creates an order (row +
 * lines) before it starts the order workflow; the workflow's activities then move its status.
 * The routes and activities read it here and decide what a missing or finished order means.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, Order, ShippingAddress } from '../../db/database';
import { writeOrderEvent } from '../notifications/outbox';

export interface NewOrderRecord {
  id: string;
  number: string;
  customerId: string | null;
  email: string;
  currency: string;
  courier: string;
  shippingAddress: ShippingAddress;
  lines: { lineNo: number; sku: string; name: string; quantity: number; unitAmount: number }[];
}

/** Inserts the order and its lines once (a retried create is a no-op); returns the total in minor units. */
export async function insertOrder(db: Kysely<Database>, order: NewOrderRecord): Promise<number> {
  const total = order.lines.reduce((sum, l) => sum + l.quantity * l.unitAmount, 0);
  await db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('orders')
      .values({
        id: order.id,
        number: order.number,
        customer_id: order.customerId,
        email: order.email,
        postcode: order.shippingAddress.postcode,
        currency: order.currency,
        total_amount: total,
        courier: order.courier,
        shipping_address: JSON.stringify(order.shippingAddress),
        failure_code: null,
        failure_message: null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) return;
    await trx
      .insertInto('order_items')
      .values(
        order.lines.map((l) => ({
          order_id: order.id,
          line_no: l.lineNo,
          sku: l.sku,
          name: l.name,
          quantity: l.quantity,
          unit_amount: l.unitAmount,
          shipment_id: null,
        })),
      )
      .execute();
    await writeOrderEvent(trx, {
      orderId: order.id,
      orderNumber: order.number,
      status: 'PENDING',
      failureCode: null,
      failureMessage: null,
    });
  });
  return total;
}

/** Every column of the order but its tracking view (large, and the tracking reads' alone). */
const ORDER_COLUMNS = [
  'id',
  'number',
  'customer_id',
  'email',
  'postcode',
  'status',
  'failure_code',
  'failure_message',
  'currency',
  'total_amount',
  'courier',
  'shipping_address',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof Order)[];

const orderRow = (db: Kysely<Database>, orderId: string) =>
  db.selectFrom('orders').select(ORDER_COLUMNS).where('id', '=', orderId);
const orderStatusRow = (db: Kysely<Database>, orderId: string) =>
  db.selectFrom('orders').select('status').where('id', '=', orderId);

/** The order's row, or undefined when there is none. */
export async function findOrder(db: Kysely<Database>, orderId: string): Promise<Order | undefined> {
  return orderRow(db, orderId).executeTakeFirst();
}

/** The order's row; throws Kysely's NoResultError when there is none (a caller that knows it exists). */
export async function getOrder(db: Kysely<Database>, orderId: string): Promise<Order> {
  return orderRow(db, orderId).executeTakeFirstOrThrow();
}

/** Whether the order exists. */
export async function orderExists(db: Kysely<Database>, orderId: string): Promise<boolean> {
  const order = await db.selectFrom('orders').select('id').where('id', '=', orderId).executeTakeFirst();
  return order !== undefined;
}

/** The order's status, or undefined when there is none. */
export async function findOrderStatus(db: Kysely<Database>, orderId: string): Promise<string | undefined> {
  return (await orderStatusRow(db, orderId).executeTakeFirst())?.status;
}

/** The order's status; throws Kysely's NoResultError when there is none. */
export async function getOrderStatus(db: Kysely<Database>, orderId: string): Promise<string> {
  return (await orderStatusRow(db, orderId).executeTakeFirstOrThrow()).status;
}

/** Who the order's notices go to and the number they name; throws NoResultError when there is none. */
export async function orderRecipient(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('orders')
    .select(['email', 'number'])
    .where('id', '=', orderId)
    .executeTakeFirstOrThrow();
}

/** The number and failure of an order a create is retried for, if its row was written. */
export async function findOrderNumber(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('orders')
    .select(['number', 'failure_code', 'currency'])
    .where('id', '=', orderId)
    .executeTakeFirst();
}

/** The next order number from `order_number_seq` (numbers are never reused). */
export async function nextOrderNumber(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ n: string }>`select nextval('order_number_seq') as n`.execute(db);
  return `WB-${rows[0]!.n}`;
}

/**
 * The order's status and number, its row locked for update: run it in the transaction that
 * moves the status, so a racing second run waits and sees this one's status.
 */
export async function lockOrderStatus(trx: Kysely<Database>, orderId: string) {
  return trx
    .selectFrom('orders')
    .select(['status', 'number'])
    .where('id', '=', orderId)
    .forUpdate()
    .executeTakeFirst();
}

/** Sets the order's status and failure (null for none). */
export async function updateOrderStatus(
  db: Kysely<Database>,
  change: { orderId: string; status: string; failureCode: string | null; failureMessage: string | null },
): Promise<void> {
  await db
    .updateTable('orders')
    .set({
      status: change.status,
      failure_code: change.failureCode,
      failure_message: change.failureMessage,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', change.orderId)
    .execute();
}

/** Every line of the order, in line order. */
export async function orderLines(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('order_items')
    .selectAll()
    .where('order_id', '=', orderId)
    .orderBy('line_no')
    .execute();
}

/** The named lines of the order (what a parcel holds: name and quantity). */
export async function parcelLines(db: Kysely<Database>, orderId: string, lineNos: number[]) {
  return db
    .selectFrom('order_items')
    .select(['name', 'quantity'])
    .where('order_id', '=', orderId)
    .where('line_no', 'in', lineNos)
    .execute();
}
