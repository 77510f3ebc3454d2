/**
 * Waybill's Temporal Schedules (no cron anywhere else): the daily report and housekeeping.
 * {@link ensureSchedules} runs at every worker start (the worker process and the dev
 * stack): it creates a missing schedule, updates one whose definition differs from the
 * configuration, and leaves the rest alone. Configuration is the source of truth for what
 * a schedule does and when; ops own whether it is paused (and the note that says why),
 * which an update never changes.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';
import type { Config } from './config';
import type { Logger } from './logger';
import {
  DAILY_REPORT_SCHEDULE_ID,
  HOUSEKEEPING_SCHEDULE_ID,
  type DailyReportInput,
  type HousekeepingInput,
} from './workflows/contract';
import type * as workflows from './workflows';

export { DAILY_REPORT_SCHEDULE_ID, HOUSEKEEPING_SCHEDULE_ID };

type WorkflowType = keyof typeof workflows;

/** What a schedule should be; `note` is its initial note (shown in the UI next to the schedule). */
export type ScheduleDefinition = ScheduleOptions & {
  action: { workflowType: WorkflowType; args: unknown[] };
  policies: { overlap: ScheduleOverlapPolicy; catchupWindow: number };
  spec: { intervals: { every: number; offset: number }[] };
  state: { note: string };
};

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/** The housekeeping workflow's input as the configuration defines it. */
export function housekeepingInput(config: Config): HousekeepingInput {
  return {
    expireAfterNoScanMs: config.polling.expireAfterNoScanMs,
    archiveAfterMs: config.housekeeping.archiveAfterMs,
    scrubPersonalDataAfterMs: config.housekeeping.scrubPersonalDataAfterMs,
    batchSize: config.housekeeping.batchSize,
    maxBatches: config.housekeeping.maxBatches,
    orderStartGraceMs: config.housekeeping.orderStartGraceMs,
    pruneIdempotencyKeysAfterMs: config.housekeeping.pruneIdempotencyKeysAfterMs,
    pruneWebhookEventsAfterMs: config.housekeeping.pruneWebhookEventsAfterMs,
    pruneNotificationsAfterMs: config.housekeeping.pruneNotificationsAfterMs,
    pruneEventsAfterMs: config.housekeeping.pruneEventsAfterMs,
  };
}

/** Both schedules as the configuration defines them. */
export function scheduleDefinitions(config: Config): ScheduleDefinition[] {
  const at = clock(config.schedules.dailyReportOffsetMs);
  const housekeeping = housekeepingInput(config);

  const report: DailyReportInput = {};
  const dailyReportNote =
    `Every day at ${at} UTC: the day before's deliveries, exceptions, expiries, median time to deliver ` +
    'per courier and courier calls vs budget, stored in daily_reports and logged.';
  const housekeepingNote =
    'Expires unfinished shipments with no scan and no running workflow (telling their orders), ' +
    'closes orders whose workflow never started, archives finished shipments, ' +
    'scrubs personal data from old raw courier payloads, deletes old idempotency keys, courier push ' +
    'dedupe rows and sent notifications. Bounded batches; the next run carries on.';
  return [
    {
      scheduleId: DAILY_REPORT_SCHEDULE_ID,
      // Epoch + n days + offset: every day at that UTC time.
      spec: { intervals: [{ every: DAY_MS, offset: config.schedules.dailyReportOffsetMs }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'dailyReportWorkflow',
        // The server appends the scheduled time: waybill-daily-report-2026-11-24T00:15:00Z.
        workflowId: DAILY_REPORT_SCHEDULE_ID,
        taskQueue: config.temporal.taskQueue,
        args: [report],
        staticSummary: `Daily report for the UTC day before (scheduled daily at ${at} UTC)`,
        workflowExecutionTimeout: '1h',
      },
      // A run the server could not start on time still reports its own day, within a day.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: DAY_MS, pauseOnFailure: false },
      memo: { description: dailyReportNote },
      state: { note: dailyReportNote },
    },
    {
      scheduleId: HOUSEKEEPING_SCHEDULE_ID,
      spec: { intervals: [{ every: config.schedules.housekeepingEveryMs, offset: 0 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'housekeepingWorkflow',
        workflowId: HOUSEKEEPING_SCHEDULE_ID,
        taskQueue: config.temporal.taskQueue,
        args: [housekeeping],
        staticSummary:
          'Housekeeping: expire unscanned, close orders that never started, archive finished, scrub personal data, prune old rows',
        workflowExecutionTimeout: '1h',
      },
      policies: {
        overlap: ScheduleOverlapPolicy.SKIP,
        catchupWindow: HOUR_MS,
        pauseOnFailure: false,
      },
      memo: { description: housekeepingNote },
      state: { note: housekeepingNote },
    },
  ];
}

/** JSON with sorted keys: decoded arguments come back with their own key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/** The parts of an existing schedule that differ from its definition (empty: nothing to do). */
export function scheduleDifferences(wanted: ScheduleDefinition, actual: ScheduleDescription): string[] {
  const differences: string[] = [];
  const intervals = (actual.spec.intervals ?? []).map((i) => ({ every: i.every, offset: i.offset }));
  if (canonical(intervals) !== canonical(wanted.spec.intervals) || (actual.spec.calendars ?? []).length > 0) {
    differences.push('spec');
  }
  const action = actual.action;
  if (action.workflowType !== wanted.action.workflowType) differences.push('workflow type');
  if (action.taskQueue !== wanted.action.taskQueue) differences.push('task queue');
  if (action.workflowId !== wanted.action.workflowId) differences.push('workflow id');
  if (canonical(action.args ?? []) !== canonical(wanted.action.args)) differences.push('input');
  if ((action.staticSummary ?? null) !== (wanted.action.staticSummary ?? null)) differences.push('summary');
  if (actual.policies.overlap !== wanted.policies.overlap) differences.push('overlap policy');
  if (actual.policies.catchupWindow !== wanted.policies.catchupWindow) differences.push('catch-up window');
  return differences;
}

export interface EnsuredSchedule {
  scheduleId: string;
  outcome: 'created' | 'updated' | 'unchanged';
  /** What an update changed. */
  changed: string[];
}

async function ensureOne(client: Client, wanted: ScheduleDefinition): Promise<EnsuredSchedule> {
  const handle = client.schedule.getHandle(wanted.scheduleId);
  let actual: ScheduleDescription | null = null;
  try {
    actual = await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  if (actual === null) {
    try {
      await client.schedule.create(wanted);
      return { scheduleId: wanted.scheduleId, outcome: 'created', changed: [] };
    } catch (err) {
      // Another worker starting at the same moment created it first.
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      actual = await handle.describe();
    }
  }
  const changed = scheduleDifferences(wanted, actual);
  if (changed.length === 0) return { scheduleId: wanted.scheduleId, outcome: 'unchanged', changed };
  const { spec, action, policies } = wanted;
  await handle.update((previous) => ({
    spec,
    action,
    policies,
    // Paused or not, and the note saying why, belong to whoever paused it.
    state: {
      paused: previous.state.paused,
      note: previous.state.paused ? (previous.state.note ?? wanted.state.note) : wanted.state.note,
      ...(previous.state.remainingActions !== undefined
        ? { remainingActions: previous.state.remainingActions }
        : {}),
    },
  }));
  return { scheduleId: wanted.scheduleId, outcome: 'updated', changed };
}

/**
 * Creates or updates Waybill's schedules so they match the configuration. Safe to call on
 * every start and from several workers at once; never unpauses a paused schedule.
 */
export async function ensureSchedules(
  client: Client,
  config: Config,
  log?: Logger,
): Promise<EnsuredSchedule[]> {
  const results: EnsuredSchedule[] = [];
  for (const wanted of scheduleDefinitions(config)) {
    const result = await ensureOne(client, wanted);
    if (result.outcome !== 'unchanged') {
      log?.info(
        { scheduleId: result.scheduleId, changed: result.changed },
        `schedule ${result.scheduleId} ${result.outcome}`,
      );
    }
    results.push(result);
  }
  return results;
}
