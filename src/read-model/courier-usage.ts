/**
 * Courier HTTP calls per courier per UTC day (`courier_api_usage`): the daily budget the
 * courier budget gate takes from (src/activities/courier-budget.ts), the failures counted
 * beside it, and the day's figures the reports, metrics and admin stats show. Beside it, each
 * courier's next request slot (`courier_request_slots`), for the rate per second that every
 * worker shares.
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

/** The time between two requests' starts that `perSecond` allows (µs, rounded up: never faster). */
export function requestSpacingUs(perSecond: number): number {
  return Math.ceil(1_000_000 / perSecond);
}

/**
 * Reserves the courier's next request slot, across every worker, on Postgres's clock (one
 * statement): a request's slot is the courier's `next_at` or now, whichever is later, and moves
 * `next_at` on by `spacingUs`, so no two slots are closer than that. Now is read once the
 * courier's row is this statement's (after any wait for another reservation's lock), so a
 * request that queued for the row is not given a slot it has already missed. A slot more than
 * `maxWaitMs` after the statement began (time queued for the row included) is not reserved, and
 * the schedule is left as it was. Says when the slot starts and how long that is from when it
 * was reserved (ms, by the same clock; 0 when it is now).
 */
export async function reserveCourierSlot(
  db: Kysely<Database>,
  courier: string,
  spacingUs: number,
  maxWaitMs: number,
): Promise<{ reserved: true; startAt: Date; waitMs: number } | { reserved: false }> {
  const spacing = sql`(${spacingUs}::bigint * interval '1 microsecond')`;
  const { rows } = await sql<{ start_at: Date | null; wait_ms: number | null }>`
    with slot as (
      insert into courier_request_slots as r (courier, next_at)
      values (${courier}, clock_timestamp() + ${spacing})
      on conflict (courier) do update
        set next_at = greatest(r.next_at, clock_timestamp()) + ${spacing}
        where greatest(r.next_at, clock_timestamp())
              <= statement_timestamp() + ${maxWaitMs}::int * interval '1 millisecond'
      returning r.next_at - ${spacing} as start_at,
                ceil(extract(epoch from (r.next_at - ${spacing} - clock_timestamp())) * 1000)::int as wait_ms
    )
    select slot.start_at, slot.wait_ms from (select) as one left join slot on true`.execute(db);
  const { start_at: startAt, wait_ms: waitMs } = rows[0]!;
  return startAt === null || waitMs === null
    ? { reserved: false }
    : { reserved: true, startAt, waitMs: Math.max(0, waitMs) };
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
