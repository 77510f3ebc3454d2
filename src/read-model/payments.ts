/**
 * The read model's copy of an order's payments (`payments`): one row per authorise, keyed by
 * its idempotency key, then kept in step with the provider's summary. The payment activities
 * decide what the row says (src/activities/payments.ts); the provider is the source of truth.
 * The order's view shows the latest.
 */
import { sql, type Insertable, type Kysely } from 'kysely';
import type { Database, PaymentsTable } from '../../db/database';
import type { PaymentSummary } from '../payments/types';

/** The authorise's row, written once per idempotency key (a retry finds it there). */
export async function insertPayment(db: Kysely<Database>, row: Insertable<PaymentsTable>): Promise<void> {
  await db
    .insertInto('payments')
    .values(row)
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();
}

/** The provider's summary of one payment of the order, mirrored onto its row. */
export async function mirrorPayment(
  db: Kysely<Database>,
  orderId: string,
  summary: PaymentSummary,
): Promise<void> {
  await db
    .updateTable('payments')
    .set({
      status: summary.status,
      amount_captured: summary.amountCaptured,
      amount_refunded: summary.amountRefunded,
      updated_at: sql<Date>`now()`,
    })
    .where('order_id', '=', orderId)
    .where('provider_ref', '=', summary.providerRef)
    .execute();
}

/** The order's latest payment as its view shows it, if it has one. */
export async function latestPaymentOf(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('payments')
    .select(['status', 'amount_authorised', 'amount_captured', 'amount_refunded'])
    .where('order_id', '=', orderId)
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
}
