/**
 * EasyParcel's booking journal in Postgres (`easyparcel_submissions`), shared by every worker:
 * a row is written right before a submit goes out and updated with EasyParcel's answer, so a
 * retried booking asks for the AWB of the shipment it has instead of submitting again
 * (src/couriers/easyparcel-bookings.ts). `begin` is one INSERT … ON CONFLICT DO NOTHING: of
 * two attempts racing on one reference, only one sends. Housekeeping prunes settled rows
 * ({@link pruneEasyParcelSubmissions}).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { SubmissionJournal } from '../couriers/easyparcel-bookings';
import type { PruneInput } from './retention';
import { FINISHED_ORDER_STATUSES } from './stock-checks';
import { ago } from './time';

export function postgresSubmissionJournal(db: Kysely<Database>): SubmissionJournal {
  return {
    async find(reference) {
      const row = await db
        .selectFrom('easyparcel_submissions')
        .select(['reference', 'shipment_number', 'awb_number'])
        .where('reference', '=', reference)
        .executeTakeFirst();
      return row
        ? { reference: row.reference, shipmentNumber: row.shipment_number, awbNumber: row.awb_number }
        : null;
    },

    async begin(reference) {
      const inserted = await db
        .insertInto('easyparcel_submissions')
        .values({ reference })
        .onConflict((oc) => oc.column('reference').doNothing())
        .returning('reference')
        .executeTakeFirst();
      return inserted !== undefined;
    },

    async answered(reference, shipmentNumber, awbNumber) {
      await db
        .insertInto('easyparcel_submissions')
        .values({
          reference,
          shipment_number: shipmentNumber,
          awb_number: awbNumber,
          answered_at: sql`now()`,
        })
        .onConflict((oc) =>
          oc.column('reference').doUpdateSet({
            shipment_number: shipmentNumber,
            awb_number: awbNumber,
            answered_at: sql`now()`,
          }),
        )
        .execute();
    },

    async forget(reference) {
      await db.deleteFrom('easyparcel_submissions').where('reference', '=', reference).execute();
    },
  };
}

/**
 * Deletes settled submissions answered longer ago than `olderThanMs`, oldest first, at most
 * `batchSize`; answers how many went. Settled: EasyParcel gave the booking's AWB, and the order
 * of that parcel has finished, so no saga step (a booking retry, a clean-up that looks for a
 * booking whose answer was lost, an admin retrying a parked step) will ask the journal about it
 * again. A row without an AWB (sent with no answer read, or booked and waiting for its AWB) is
 * never deleted: it is what stops a second submit of its reference.
 */
export async function pruneEasyParcelSubmissions(db: Kysely<Database>, input: PruneInput): Promise<number> {
  const result = await sql`delete from easyparcel_submissions where reference in (
      select s.reference from easyparcel_submissions s
      join shipments sh on sh.id = s.reference
      join orders o on o.id = sh.order_id
      where s.awb_number is not null
        and s.answered_at < ${ago(input.olderThanMs)}
        and o.status in (${sql.join([...FINISHED_ORDER_STATUSES])})
      order by s.answered_at limit ${input.batchSize}
      for update of s skip locked)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
