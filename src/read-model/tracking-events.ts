/**
 * SQL on `tracking_events` for the poll and push activities: a courier's scans recorded once
 * each, whatever version of an adapter read them.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { NormalisedEvent } from '../couriers/types';

/**
 * Inserts the events not recorded yet (deduped by key): how many were new, how many rows an
 * earlier version had recorded under another key and now carry this one (`rekeyed`), and how
 * many recorded without a place took the place this reading gives (`placed`).
 *
 * An event's key is a hash of what the adapter made of the scan (its code, UTC time and place,
 * src/couriers/event-key.ts), so when a deploy changes how an adapter reads a scan (Blue Dart's
 * code family, EasyParcel's UTC events, its locations) the same scan gets a new key. Without
 * more, the next poll would write it again beside its old row. So a scan is also known by what
 * the courier itself wrote, which no deploy changes: the time text as sent (`occurred_at_raw`)
 * and the status text (`raw_text`). A row of this shipment with the same two under another key
 * is the same scan: it takes the new key and the new reading (a second such row, from an earlier
 * deploy, is removed), and the insert then finds it.
 */
export async function insertTrackingEvents(
  trx: Kysely<Database>,
  shipmentId: string,
  events: NormalisedEvent[],
): Promise<{ inserted: number; rekeyed: number; placed: number }> {
  if (events.length === 0) return { inserted: 0, rekeyed: 0, placed: 0 };
  const rekeyed = await rekeyEarlierReadings(trx, shipmentId, events);
  // One row per key in the statement: an upsert may not touch one row twice.
  const unique = [...new Map(events.map((e) => [e.key, e])).values()];
  const rows = await trx
    .insertInto('tracking_events')
    .values(unique.map((e) => ({ shipment_id: shipmentId, event_key: e.key, ...eventColumns(e) })))
    // A scan recorded without a place (EasyParcel's webhook log has none) takes the place a later
    // poll of it gives; a recorded place is never changed or taken away.
    .onConflict((oc) =>
      oc
        .columns(['shipment_id', 'event_key'])
        .doUpdateSet({
          location_city: sql`excluded.location_city`,
          location_state: sql`excluded.location_state`,
          location_country: sql`excluded.location_country`,
        })
        .where(
          sql<boolean>`tracking_events.location_city is null and tracking_events.location_state is null
            and tracking_events.location_country is null
            and (excluded.location_city is not null or excluded.location_state is not null
              or excluded.location_country is not null)`,
        ),
    )
    // xmax is 0 on a row this statement inserted, and set on one it updated.
    .returning(sql<boolean>`xmax = 0`.as('inserted'))
    .execute();
  const inserted = rows.filter((row) => row.inserted).length;
  return { inserted, rekeyed, placed: rows.length - inserted };
}

/** The columns of an event row that an adapter's reading decides (all but the shipment and key). */
function eventColumns(e: NormalisedEvent) {
  return {
    status: e.status,
    sub_status: e.subStatus,
    raw_code: e.rawCode,
    raw_text: e.rawText,
    occurred_at: e.occurredAt,
    occurred_at_raw: e.occurredAtRaw,
    location_city: e.location.city,
    location_state: e.location.state,
    location_country: e.location.country,
    source: e.source,
  };
}

/** Rows of the same scans recorded under older keys take the new key and reading; how many did. */
async function rekeyEarlierReadings(
  trx: Kysely<Database>,
  shipmentId: string,
  events: NormalisedEvent[],
): Promise<number> {
  const natural = (at: string | null, text: string | null) =>
    at === null || text === null ? null : JSON.stringify([at, text]);
  const wanted = events.filter((e) => natural(e.occurredAtRaw, e.rawText) !== null);
  if (wanted.length === 0) return 0;
  const existing = await trx
    .selectFrom('tracking_events')
    .select(['id', 'event_key', 'occurred_at_raw', 'raw_text'])
    .where('shipment_id', '=', shipmentId)
    .where(
      'occurred_at_raw',
      'in',
      wanted.map((e) => e.occurredAtRaw!),
    )
    .orderBy('id')
    .execute();
  const keys = new Set(existing.map((row) => row.event_key));
  let rekeyed = 0;
  for (const event of wanted) {
    const id = natural(event.occurredAtRaw, event.rawText);
    const stale = existing.filter(
      (row) => row.event_key !== event.key && natural(row.occurred_at_raw, row.raw_text) === id,
    );
    if (stale.length === 0) continue;
    // Keep one row of the scan: the one with the new key if it is there, else the oldest stale one.
    const keep = keys.has(event.key) ? null : stale[0]!;
    const extra = keep ? stale.slice(1) : stale;
    if (extra.length > 0) {
      await trx
        .deleteFrom('tracking_events')
        .where(
          'id',
          'in',
          extra.map((row) => row.id),
        )
        .execute();
    }
    if (keep) {
      await trx
        .updateTable('tracking_events')
        .set({ event_key: event.key, ...eventColumns(event) })
        .where('id', '=', keep.id)
        .execute();
      keys.add(event.key);
      rekeyed += 1;
    }
    for (const row of stale) row.event_key = event.key;
  }
  return rekeyed;
}
