/**
 * The per-customer quota of live tracking refreshes, in Postgres (`refresh_quota`), so it
 * holds across every API process. A fixed window per subject: the first refresh after the
 * window ends starts a new one in place. Taking is one conditional upsert, so concurrent
 * requests never let more through than the rule allows.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';

export type QuotaAnswer = { granted: true } | { granted: false; resetsAt: Date };

/**
 * Takes `units` live refreshes for `subject` while any are left in its window (a request
 * with several parcels is let through whole as long as one is left, and all count).
 */
export async function takeRefreshQuota(
  db: Kysely<Database>,
  opts: { subject: string; units: number; quota: number; windowMs: number },
): Promise<QuotaAnswer> {
  const windowOver = sql<boolean>`refresh_quota.window_started_at <= now() - ${opts.windowMs} * interval '1 millisecond'`;
  // Parenthesised wherever it is used: it is a comparison inside larger expressions.
  const taken = await db
    .insertInto('refresh_quota')
    .values({ subject: opts.subject, used: opts.units })
    .onConflict((oc) =>
      oc
        .column('subject')
        .doUpdateSet({
          window_started_at: sql<Date>`case when ${windowOver} then now() else refresh_quota.window_started_at end`,
          used: sql<number>`case when ${windowOver} then excluded.used else refresh_quota.used + excluded.used end`,
        })
        .where(sql<boolean>`(${windowOver}) or refresh_quota.used < ${opts.quota}`),
    )
    .returning('used')
    .executeTakeFirst();
  if (taken) return { granted: true };
  const row = await db
    .selectFrom('refresh_quota')
    .select(sql<Date>`window_started_at + ${opts.windowMs} * interval '1 millisecond'`.as('resets_at'))
    .where('subject', '=', opts.subject)
    .executeTakeFirstOrThrow();
  return { granted: false, resetsAt: row.resets_at };
}
