/**
 * Order rows on the read model. The API creates an order (row + lines) before it starts
 * the order workflow; the workflow's activities then move its status.
 */
import type { Kysely } from 'kysely';
import type { Database, ShippingAddress } from '../../db/database';
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
