/**
 * The newest events of each shipment, denormalised onto its row (city-level fields only,
 * newest first, at most 100) so a tracking read is one index lookup of one row. Written
 * by the record activity in the same transaction as the events; backfilled here.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('shipments')
    .addColumn('recent_events', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await sql`
    update shipments s set recent_events = coalesce((
      select jsonb_agg(jsonb_build_object('status', e.status, 'occurredAt', e.occurred_at,
                                          'city', e.location_city, 'country', e.location_country)
                       order by e.occurred_at desc, e.id desc)
      from (select * from tracking_events t where t.shipment_id = s.id
            order by t.occurred_at desc, t.id desc limit 100) e), '[]'::jsonb)
    where exists (select 1 from tracking_events t where t.shipment_id = s.id)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('shipments').dropColumn('recent_events').execute();
}
