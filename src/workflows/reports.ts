/**
 * The daily report (`waybill-daily-report` schedule): one UTC day's deliveries (late ones
 * against their ETA), exceptions (by courier and reason), median time to deliver, average
 * time in each status and courier calls against the budget, computed and stored by an
 * activity. Deterministic code only.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { ApplicationFailure, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { DailyReportFigures, ReportActivities } from '../activities/reports';
import type { DailyReportInput } from './contract';
import { FailureType } from '../domain/failures';

/** Set by the Temporal server on every workflow a schedule starts (a system attribute). */
const ScheduledStartTimeKey = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);

const DAY_MS = 86_400_000;

/** The UTC day before the one `ms` falls in, 'YYYY-MM-DD'. */
export function previousUtcDay(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS - DAY_MS).toISOString().slice(0, 10);
}

function isUtcDay(day: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) && new Date(`${day}T00:00:00Z`).toISOString().startsWith(day);
}

const { buildDailyReport } = proxyActivities<ReportActivities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
});

export async function dailyReportWorkflow(input: DailyReportInput = {}): Promise<DailyReportFigures> {
  // The scheduled time, not the start time: a run the server starts late (after an outage)
  // still reports the day it was meant for.
  const scheduledAt = workflowInfo().typedSearchAttributes.get(ScheduledStartTimeKey);
  const day = input.day ?? previousUtcDay(scheduledAt?.getTime() ?? workflowInfo().runStartTime.getTime());
  if (!isUtcDay(day)) {
    throw ApplicationFailure.create({
      type: FailureType.INVALID_INPUT,
      message: `day must be a UTC day YYYY-MM-DD (got "${day}")`,
      nonRetryable: true,
    });
  }
  setCurrentDetails(`Reporting ${day} (UTC)`);
  const report = await buildDailyReport.executeWithOptions(
    { summary: `compute and store the report for ${day}` },
    [{ day }],
  );
  setCurrentDetails(
    `${day}: ${report.deliveries} delivered (${report.lateDeliveries} late), ${report.exceptions} exceptions, ${report.expired} expired, ` +
      `${report.courierCalls} courier calls (budget ${report.courierBudget} per courier)`,
  );
  return report;
}
