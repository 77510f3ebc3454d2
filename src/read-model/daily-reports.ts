/**
 * The daily report's reads and its row (`daily_reports`): a UTC day's deliveries, exceptions,
 * expiries and time in each status from `shipments` and `tracking_events`. The report
 * activity turns them into figures and decides what is stored (src/activities/reports.ts).
 */
import { sql, type Insertable, type Kysely } from 'kysely';
import type { DailyReportsTable, Database } from '../../db/database';

const deliverySeconds = sql<number>`extract(epoch from delivered_at - coalesce(picked_up_at, created_at))::float8`;
const median = sql<number | null>`percentile_cont(0.5) within group (order by ${deliverySeconds})`;

/** The day's raw figures, for deliveries and scans in [from, to). */
export async function deliveryDayFigures(db: Kysely<Database>, from: Date, to: Date) {
  const deliveries = await db
    .selectFrom('shipments')
    .select((eb) => [
      'courier',
      eb.fn.countAll<number>().as('count'),
      median.as('median'),
      sql<number>`count(*) filter (where delivered_at > eta)`.as('late'),
    ])
    .where('delivered_at', '>=', from)
    .where('delivered_at', '<', to)
    .groupBy('courier')
    .execute();
  const overall = await db
    .selectFrom('shipments')
    .select(median.as('median'))
    .where('delivered_at', '>=', from)
    .where('delivered_at', '<', to)
    .executeTakeFirst();
  // A shipment with several exception scans that day is one exception.
  const exceptions = await db
    .selectFrom('tracking_events as e')
    .innerJoin('shipments as s', 's.id', 'e.shipment_id')
    .select((eb) => ['s.courier', eb.fn.count<number>('e.shipment_id').distinct().as('count')])
    .where('e.status', '=', 'EXCEPTION')
    .where('e.occurred_at', '>=', from)
    .where('e.occurred_at', '<', to)
    .groupBy('s.courier')
    .execute();
  const expired = await db
    .selectFrom('shipments')
    .select((eb) => ['courier', eb.fn.countAll<number>().as('count')])
    .where('status', '=', 'EXPIRED')
    .where('finished_at', '>=', from)
    .where('finished_at', '<', to)
    .groupBy('courier')
    .execute();
  // Time in a status: from a scan to the parcel's next scan, summed per parcel and status
  // (repeated scans of one status add up), then averaged over the parcels that had it.
  const statusTimes = await sql<{ status: string; parcels: number; average: number }>`
    with scans as (
      select e.shipment_id, e.status, e.occurred_at,
             lead(e.occurred_at) over (partition by e.shipment_id order by e.occurred_at, e.id) as next_at
      from tracking_events e join shipments s on s.id = e.shipment_id
      where s.delivered_at >= ${from} and s.delivered_at < ${to}
    ), per_parcel as (
      select shipment_id, status, sum(extract(epoch from next_at - occurred_at)) as seconds
      from scans where next_at is not null group by shipment_id, status
    )
    select status, count(*) as parcels, avg(seconds)::float8 as average from per_parcel group by status
  `.execute(db);
  const reasons = await db
    .selectFrom('tracking_events as e')
    .innerJoin('shipments as s', 's.id', 'e.shipment_id')
    .select((eb) => [
      's.courier',
      sql<string>`coalesce(e.sub_status, e.raw_code, 'unspecified')`.as('reason'),
      eb.fn.count<number>('e.shipment_id').distinct().as('count'),
    ])
    .where('e.status', '=', 'EXCEPTION')
    .where('e.occurred_at', '>=', from)
    .where('e.occurred_at', '<', to)
    .groupBy(['s.courier', 'reason'])
    .orderBy('s.courier')
    .orderBy('reason')
    .execute();
  return {
    deliveries,
    overall,
    exceptions,
    expired,
    statusTimes: statusTimes.rows,
    reasons,
  };
}

/** Stores the day's report: one row per day, overwritten by a rerun. */
export async function saveDailyReport(
  db: Kysely<Database>,
  day: string,
  row: Omit<Insertable<DailyReportsTable>, 'day' | 'generated_at'>,
): Promise<void> {
  await db
    .insertInto('daily_reports')
    .values({ day, ...row })
    .onConflict((oc) => oc.column('day').doUpdateSet({ ...row, generated_at: sql<Date>`now()` }))
    .execute();
}
