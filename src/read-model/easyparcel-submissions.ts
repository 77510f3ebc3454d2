/**
 * EasyParcel's booking journal in Postgres (`easyparcel_submissions`), shared by every worker:
 * a row is written right before a submit goes out and updated with EasyParcel's answer, so a
 * retried booking asks for the AWB of the shipment it has instead of submitting again
 * (src/couriers/easyparcel-bookings.ts). `begin` is one INSERT … ON CONFLICT DO NOTHING: of
 * two attempts racing on one reference, only one sends.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { SubmissionJournal } from '../couriers/easyparcel-bookings';

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
