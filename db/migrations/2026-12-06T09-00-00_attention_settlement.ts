/**
 * order_attention.settlement: how an admin said a parked capture was settled outside Waybill
 * when resolving it (`captured_by_hand` or `not_charged`, src/workflows/contract.ts
 * CaptureSettlement); null for every other item and outcome. The money ledger reads it: an
 * order whose charge was waived keeps nothing on its payment. Frozen: add a new migration for
 * later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('order_attention')
    .addColumn('settlement', 'text', (c) => c.check(sql`settlement in ('captured_by_hand', 'not_charged')`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('order_attention').dropColumn('settlement').execute();
}
