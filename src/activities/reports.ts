/**
 * The daily report: one UTC day's deliveries (and how many came after their ETA),
 * exceptions (by courier and reason), expiries, median time to deliver, the average time
 * the day's deliveries spent in each status, and courier calls against the budget, per
 * courier and in total. Computed from the read model, upserted into `daily_reports` (a
 * rerun for the same day overwrites its one row) and logged.
 */
import { sql, type Kysely } from 'kysely';
import type {
  DailyCourierFigures,
  DailyExceptionReason,
  DailyStatusSeconds,
  Database,
} from '../../db/database';
import { courierUsageOn } from '../read-model/courier-usage';
import { SHIPMENT_STATUSES } from '../domain/status';
import type { Logger } from '../logger';

export interface ReportActivityDeps {
  db: Kysely<Database>;
  /** Calls per courier per UTC day (the budget the report compares against). */
  dailyBudget: number;
  log: Logger;
}

export interface DailyReportFigures {
  /** UTC day, 'YYYY-MM-DD'. */
  day: string;
  deliveries: number;
  exceptions: number;
  expired: number;
  medianDeliverySeconds: number | null;
  /** Delivered after their ETA (parcels without an ETA are never late). */
  lateDeliveries: number;
  /** For the day's deliveries: average seconds in each status they passed through, in lifecycle order. */
  statusSeconds: DailyStatusSeconds[];
  /** Parcels with an exception scan that day, by courier and reason. */
  exceptionsByReason: DailyExceptionReason[];
  courierCalls: number;
  courierFailures: number;
  courierBudget: number;
  byCourier: DailyCourierFigures[];
}

const DAY_MS = 86_400_000;

/** Seconds from pickup (or creation, when the pickup was never seen) to delivery. */
const deliverySeconds = sql<number>`extract(epoch from delivered_at - coalesce(picked_up_at, created_at))::float8`;
const median = sql<number | null>`percentile_cont(0.5) within group (order by ${deliverySeconds})`;

const whole = (value: number | null | undefined): number | null =>
  value === null || value === undefined ? null : Math.round(value);

export async function computeDailyReport(
  db: Kysely<Database>,
  day: string,
  dailyBudget: number,
): Promise<DailyReportFigures> {
  const from = new Date(`${day}T00:00:00.000Z`);
  const to = new Date(from.getTime() + DAY_MS);

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
  const usage = await courierUsageOn(db, day);

  const couriers = [
    ...new Set([...deliveries, ...exceptions, ...expired, ...usage].map((row) => row.courier)),
  ].sort();
  const byCourier: DailyCourierFigures[] = couriers.map((courier) => {
    const delivered = deliveries.find((r) => r.courier === courier);
    const used = usage.find((r) => r.courier === courier);
    return {
      courier,
      deliveries: Number(delivered?.count ?? 0),
      exceptions: Number(exceptions.find((r) => r.courier === courier)?.count ?? 0),
      expired: Number(expired.find((r) => r.courier === courier)?.count ?? 0),
      medianDeliverySeconds: whole(delivered?.median),
      calls: used?.calls ?? 0,
      failures: used?.failures ?? 0,
      budget: dailyBudget,
      late: Number(delivered?.late ?? 0),
    };
  });
  const lifecycle = (status: string) => {
    const at = (SHIPMENT_STATUSES as readonly string[]).indexOf(status);
    return at === -1 ? SHIPMENT_STATUSES.length : at;
  };
  const total = (pick: (c: DailyCourierFigures) => number) => byCourier.reduce((sum, c) => sum + pick(c), 0);
  return {
    day,
    deliveries: total((c) => c.deliveries),
    exceptions: total((c) => c.exceptions),
    expired: total((c) => c.expired),
    medianDeliverySeconds: whole(overall?.median),
    lateDeliveries: total((c) => c.late),
    statusSeconds: statusTimes.rows
      .map((r) => ({ status: r.status, parcels: Number(r.parcels), averageSeconds: whole(r.average) ?? 0 }))
      .sort((a, b) => lifecycle(a.status) - lifecycle(b.status) || a.status.localeCompare(b.status)),
    exceptionsByReason: reasons.map((r) => ({
      courier: r.courier,
      reason: r.reason,
      parcels: Number(r.count),
    })),
    courierCalls: total((c) => c.calls),
    courierFailures: total((c) => c.failures),
    courierBudget: dailyBudget,
    byCourier,
  };
}

export function createReportActivities(deps: ReportActivityDeps) {
  const { db, log } = deps;
  return {
    /** Computes the day's figures, stores them (one row per day, overwritten by a rerun) and logs them. */
    async buildDailyReport(input: { day: string }): Promise<DailyReportFigures> {
      const report = await computeDailyReport(db, input.day, deps.dailyBudget);
      const row = {
        deliveries: report.deliveries,
        exceptions: report.exceptions,
        expired: report.expired,
        median_delivery_seconds: report.medianDeliverySeconds,
        courier_calls: report.courierCalls,
        courier_failures: report.courierFailures,
        courier_budget: report.courierBudget,
        by_courier: JSON.stringify(report.byCourier),
        late_deliveries: report.lateDeliveries,
        status_seconds: JSON.stringify(report.statusSeconds),
        exceptions_by_reason: JSON.stringify(report.exceptionsByReason),
      };
      await db
        .insertInto('daily_reports')
        .values({ day: report.day, ...row })
        .onConflict((oc) => oc.column('day').doUpdateSet({ ...row, generated_at: sql<Date>`now()` }))
        .execute();
      log.info(
        {
          report: {
            ...report,
            // One line per courier reads better in a log than nested objects.
            byCourier: report.byCourier.map(
              (c) =>
                `${c.courier}: ${c.deliveries} delivered (${c.late} late, median ${c.medianDeliverySeconds ?? '–'} s), ${c.exceptions} exceptions, ${c.expired} expired, ${c.calls}/${c.budget} calls (${c.failures} failed)`,
            ),
          },
        },
        `daily report ${report.day}: ${report.deliveries} delivered (${report.lateDeliveries} late), ${report.exceptions} exceptions, ${report.courierCalls} courier calls`,
      );
      return report;
    },
  };
}

export type ReportActivities = ReturnType<typeof createReportActivities>;
