/**
 * The freshness rule of src/domain/freshness.ts in SQL over `shipments`, for a filter or a
 * count in Postgres (the admin queue's `stale` filter, the stale gauge). The rule is decided
 * there; this is its twin, and test/domain/freshness.test.ts holds the two to agree.
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import { TERMINAL_STATUSES } from '../domain/status';
import type { FreshnessRule } from '../domain/freshness';

const TERMINAL = [...TERMINAL_STATUSES];

/**
 * `freshnessOf`'s "fresh" over `shipments` in SQL (never null): a filter on it and the
 * `freshness` shown on each row cannot disagree.
 */
export function freshSql(rule: FreshnessRule, now: Date): Expression<SqlBool> {
  const nowAt = sql`${now.toISOString()}::timestamptz`;
  const grace = sql`${rule.graceMs} * interval '1 millisecond'`;
  return sql<SqlBool>`coalesce(case
    when shipments.status in (${sql.join(TERMINAL)}) then shipments.last_synced_at is not null
    else coalesce(
      shipments.sync_failing_since,
      shipments.next_poll_at,
      case when shipments.last_synced_at is null then shipments.created_at end
    ) >= ${nowAt} - ${grace}
  end, false)`;
}
