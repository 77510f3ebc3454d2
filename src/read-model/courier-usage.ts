/**
 * Courier HTTP calls per courier per UTC day (`courier_api_usage`): the daily budget the
 * courier budget gate takes from (src/activities/courier-budget.ts), the failures counted
 * beside it, and the day's figures the reports, metrics and admin stats show. Beside it, the
 * requests started in the current second (`courier_request_seconds`), for the cap per second
 * that every worker shares.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';

/**
 * Takes one call from today's budget, atomically: the conditional upsert only counts a call
 * while the counter is below `limit`, so concurrent workers never exceed it. A null limit
 * always counts the call (releases).
 */
export async function takeCourierCall(
  db: Kysely<Database>,
  courier: string,
  day: string,
  limit: number | null,
): Promise<boolean> {
  const row = await db
    .insertInto('courier_api_usage')
    .values({ courier, day, calls: 1 })
    .onConflict((oc) => {
      const counted = oc.columns(['courier', 'day']).doUpdateSet({ calls: sql`courier_api_usage.calls + 1` });
      return limit === null ? counted : counted.where('courier_api_usage.calls', '<', limit);
    })
    .returning('calls')
    .executeTakeFirst();
  return row !== undefined;
}

/** Gives back a call taken for `day` whose request was not sent after all (it waited too long for a second). */
export async function giveBackCourierCall(db: Kysely<Database>, courier: string, day: string): Promise<void> {
  await db
    .updateTable('courier_api_usage')
    .set({ calls: sql`calls - 1` })
    .where('courier', '=', courier)
    .where('day', '=', day)
    .where('calls', '>', 0)
    .execute();
}

/**
 * Takes one of the `perSecond` requests a courier may be sent in the current second, counted
 * across every worker on Postgres's clock (one statement: the row moves on to a later second,
 * or counts one more in its second while below the cap), and says which second it took. When
 * the second is full, says how long until the next one starts (ms, by the same clock).
 */
export async function takeCourierSecond(
  db: Kysely<Database>,
  courier: string,
  perSecond: number,
): Promise<{ taken: true; secondAt: Date } | { taken: false; waitMs: number }> {
  const { rows } = await sql<{ taken: boolean; second_at: Date; wait_ms: number }>`
    with now as (select clock_timestamp() as at),
    taken as (
      insert into courier_request_seconds as r (courier, second_at, requests)
      select ${courier}, date_trunc('second', now.at), 1 from now
      on conflict (courier) do update
        set requests = case when r.second_at = excluded.second_at then r.requests + 1 else 1 end,
            second_at = excluded.second_at
        -- Only forward: a statement that read the clock before another's later second was
        -- written waits for the next second rather than take the row back and reset its count.
        where excluded.second_at > r.second_at
           or (excluded.second_at = r.second_at and r.requests < ${perSecond})
      returning 1
    )
    select exists (select 1 from taken) as taken, date_trunc('second', now.at) as second_at,
           ceil(extract(epoch from (date_trunc('second', now.at) + interval '1 second' - now.at)) * 1000)::int as wait_ms
    from now`.execute(db);
  const row = rows[0]!;
  return row.taken
    ? { taken: true, secondAt: row.second_at }
    : { taken: false, waitMs: Math.max(1, row.wait_ms) };
}

/** Counts a failed call on the courier's row for `day`. */
export async function countCourierFailure(db: Kysely<Database>, courier: string, day: string): Promise<void> {
  await db
    .updateTable('courier_api_usage')
    .set({ failures: sql`failures + 1` })
    .where('courier', '=', courier)
    .where('day', '=', day)
    .execute();
}

/** Calls and failures per courier on one UTC day. */
export async function courierUsageOn(db: Kysely<Database>, day: string) {
  return db
    .selectFrom('courier_api_usage')
    .select(['courier', 'calls', 'failures'])
    .where('day', '=', day)
    .execute();
}
