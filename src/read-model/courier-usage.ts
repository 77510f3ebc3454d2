/**
 * Courier HTTP calls per courier per UTC day (`courier_api_usage`): the daily budget the
 * courier budget gate takes from (src/activities/courier-budget.ts), the failures counted
 * beside it, and the day's figures the reports, metrics and admin stats show.
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
