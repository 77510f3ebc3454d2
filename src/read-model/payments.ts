/**
 * The read model's copy of an order's payments (`payments`): one row per authorise, keyed by
 * its idempotency key, then kept in step with the provider's summary. The payment activities
 * decide what the row says (src/activities/payments.ts); the provider is the source of truth.
 * The order's view shows the latest.
 */
import { sql, type Insertable, type Kysely } from 'kysely';
import type { Database, PaymentsTable } from '../../db/database';
import type { PaymentStatus, PaymentSummary } from '../payments/types';

/** The authorise's row, written once per idempotency key (a retry finds it there). */
export async function insertPayment(db: Kysely<Database>, row: Insertable<PaymentsTable>): Promise<void> {
  await db
    .insertInto('payments')
    .values(row)
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();
}

/**
 * How far along a payment is at the provider: its status never goes back (a void and a capture
 * exclude each other, so they share a rank).
 */
const STAGE: Record<PaymentStatus, number> = {
  AUTHORISED: 0,
  DECLINED: 1,
  VOIDED: 1,
  CAPTURED: 1,
  PARTIALLY_REFUNDED: 2,
  REFUNDED: 3,
};
const stageOf = (column: string) =>
  sql<number>`case ${sql.ref(column)} ${sql.join(
    Object.entries(STAGE).map(([status, stage]) => sql`when ${status} then ${sql.lit(stage)}`),
    sql` `,
  )} else 0 end`;

/**
 * The provider's summary of one payment of the order, mirrored onto its row, only ever
 * forward: an answer the provider replays under an old idempotency key (an admin's retry of a
 * step whose first answer was lost) says what was true then, and must not undo the refunds or
 * the status later steps recorded.
 */
export async function mirrorPayment(
  db: Kysely<Database>,
  orderId: string,
  summary: PaymentSummary,
): Promise<void> {
  await db
    .updateTable('payments')
    .set({
      status: sql<string>`case when ${stageOf('status')} > ${sql.lit(STAGE[summary.status])} then status else ${summary.status} end`,
      amount_captured: sql<number>`greatest(amount_captured, ${summary.amountCaptured})`,
      amount_refunded: sql<number>`greatest(amount_refunded, ${summary.amountRefunded})`,
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
