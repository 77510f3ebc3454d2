/**
 * The daily report: one UTC day's deliveries (and how many came after their ETA),
 * exceptions (by courier and reason), expiries, median time to deliver, the average time
 * the day's deliveries spent in each status, and courier calls against the budget, per
 * courier and in total. Computed from the read model, upserted into `daily_reports` (a
 * rerun for the same day overwrites its one row) and logged.
 */
import type { Kysely } from 'kysely';
import type {
  DailyCourierFigures,
  DailyExceptionReason,
  DailyStatusSeconds,
  Database,
} from '../../db/database';
import { courierUsageOn } from '../read-model/courier-usage';
import { deliveryDayFigures, saveDailyReport } from '../read-model/daily-reports';
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
const whole = (value: number | null | undefined): number | null =>
  value === null || value === undefined ? null : Math.round(value);

export async function computeDailyReport(
  db: Kysely<Database>,
  day: string,
  dailyBudget: number,
): Promise<DailyReportFigures> {
  const from = new Date(`${day}T00:00:00.000Z`);
  const to = new Date(from.getTime() + DAY_MS);

  const { deliveries, overall, exceptions, expired, statusTimes, reasons } = await deliveryDayFigures(
    db,
    from,
    to,
  );
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
    statusSeconds: statusTimes
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
      await saveDailyReport(db, report.day, row);
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
