/**
 * One row per courier scan. Event keys hash what an adapter made of a scan, so a deploy that
 * reads scans differently (Blue Dart's code families, EasyParcel's UTC events and locations)
 * gave an already recorded scan a new key, and the next poll wrote it again. Writes now find
 * the earlier row by what the courier itself wrote (src/read-model/tracking-events.ts); this
 * removes the second rows already written: of the rows of one shipment with the same time text
 * and status text, the newest (the newest reading) stays. The newest-events copy of each
 * shipment touched is rebuilt. Nothing to undo: the removed rows were copies.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  const removed = await sql<{ shipment_id: string }>`
    delete from tracking_events t
    using tracking_events newer
    where newer.shipment_id = t.shipment_id
      and newer.occurred_at_raw = t.occurred_at_raw
      and newer.raw_text = t.raw_text
      and newer.id > t.id
    returning t.shipment_id`.execute(db);
  const touched = [...new Set(removed.rows.map((row) => row.shipment_id))];
  if (touched.length === 0) return;
  // A second statement: one in the same statement as the delete would still see the rows.
  await sql`
    update shipments s set recent_events = coalesce((
      select jsonb_agg(jsonb_build_object('status', e.status, 'occurredAt', e.occurred_at,
                                          'city', e.location_city, 'country', e.location_country)
                       order by e.occurred_at desc, e.id desc)
      from (select * from tracking_events t where t.shipment_id = s.id
            order by t.occurred_at desc, t.id desc limit 100) e), '[]'::jsonb)
    where s.id = any(${touched})`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(_db: Kysely<any>): Promise<void> {
  // The removed rows were second copies of scans still recorded: nothing to put back.
}
