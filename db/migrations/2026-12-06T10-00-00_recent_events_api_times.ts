/**
 * `shipments.recent_events` with each event's time in the API's form (`…T03:04:05.123Z`, UTC to
 * the millisecond), as the record activity writes it since 2026-12-06
 * (src/read-model/shipments.ts `recentEventEntry`): a tracking read passes it through instead of
 * parsing and rewriting it. Rows written before held Postgres's JSON text of the timestamp
 * (`…+00:00`, microseconds, in the session's zone); a finished parcel's row is never written
 * again, so this rewrites them once. The entries keep their order and everything else.
 * `down` leaves the new form: the reads take both. Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    update shipments s set recent_events = (
      select jsonb_agg(
               jsonb_set(x.e, '{occurredAt}',
                         to_jsonb(to_char((x.e->>'occurredAt')::timestamptz at time zone 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
               order by x.n)
      from jsonb_array_elements(s.recent_events) with ordinality as x(e, n))
    where jsonb_array_length(s.recent_events) > 0
      and exists (select 1 from jsonb_array_elements(s.recent_events) as y(e)
                  where y.e->>'occurredAt' not like '%Z')`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(_db: Kysely<any>): Promise<void> {
  // The reads take both forms (src/api/iso-time.ts asIsoUtc): nothing to put back.
}
