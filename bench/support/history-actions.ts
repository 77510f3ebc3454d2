/**
 * Counts in a workflow's real histories (every run of a continue-as-new chain): events, their
 * encoded size, and the billable actions Temporal Cloud would count for them, by its published
 * rules (https://docs.temporal.io/cloud/actions, read 2026-12-04):
 * - a workflow start (client start or continue-as-new: the new run's started event) is 1; a
 *   child workflow start is 2 (its initiated event: the intent and the attempt), so the child's
 *   own started event adds none;
 * - each activity scheduled is 1, each retry (attempt − 1 on its started event) 1 more;
 * - all local activities of one workflow task are 1 (their markers after one task completed
 *   event), plus the non-first local attempts the task's metering metadata reports;
 * - each timer started, each signal received (from a client or another workflow: counted in the
 *   signaled history only), each search-attribute upsert, each update accepted is 1.
 * Not in a history, so not counted here: queries, activity heartbeats that reach the server.
 */
import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';

const E = temporal.api.enums.v1.EventType;
type Event = temporal.api.history.v1.IHistoryEvent;

export interface Actions {
  workflowStarts: number;
  continueAsNew: number;
  childStarts: number;
  activities: number;
  activityRetries: number;
  localActivityTasks: number;
  localActivityRetries: number;
  timers: number;
  signals: number;
  searchAttributeUpserts: number;
  updates: number;
}

export interface HistoryCounts {
  runs: number;
  events: number;
  /** Encoded size of every run's history (protobuf bytes, as the server stores and sends it). */
  bytes: number;
  /** Largest single run. */
  maxRunEvents: number;
  maxRunBytes: number;
  workflowTasks: number;
  /** Activities scheduled and local activities recorded, by type (e.g. `pollCourier`: one per poll cycle). */
  activityTypes: Record<string, number>;
  actions: Actions;
  /** Epoch ms of the first run's start and the last run's close (null while running). */
  startedAtMs: number;
  closedAtMs: number | null;
}

export const emptyActions = (): Actions => ({
  workflowStarts: 0,
  continueAsNew: 0,
  childStarts: 0,
  activities: 0,
  activityRetries: 0,
  localActivityTasks: 0,
  localActivityRetries: 0,
  timers: 0,
  signals: 0,
  searchAttributeUpserts: 0,
  updates: 0,
});

export const totalActions = (a: Actions): number =>
  Object.values(a).reduce((sum: number, n: number) => sum + n, 0);

export function addActions(into: Actions, from: Actions): void {
  for (const key of Object.keys(into) as (keyof Actions)[]) into[key] += from[key];
}

const ms = (t: Event['eventTime']) =>
  t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;

/** Adds one run's billable actions to `a`. */
function countRun(events: Event[], a: Actions, types: Record<string, number>): number {
  let tasks = 0;
  let markersSinceTask = false;
  for (const e of events) {
    switch (e.eventType) {
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: {
        const attrs = e.workflowExecutionStartedEventAttributes;
        // A child's continued run carries its parent too: continue-as-new first.
        if (attrs?.continuedExecutionRunId) a.continueAsNew += 1;
        else if (!attrs?.parentWorkflowExecution) a.workflowStarts += 1; // a child: its parent's 2
        break;
      }
      case E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        a.childStarts += 2;
        break;
      case E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
        a.activities += 1;
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        types[type] = (types[type] ?? 0) + 1;
        break;
      }
      case E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        a.activityRetries += Math.max(0, (e.activityTaskStartedEventAttributes?.attempt ?? 1) - 1);
        break;
      case E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        tasks += 1;
        markersSinceTask = false;
        a.localActivityRetries +=
          e.workflowTaskCompletedEventAttributes?.meteringMetadata?.nonfirstLocalActivityExecutionAttempts ??
          0;
        break;
      case E.EVENT_TYPE_MARKER_RECORDED: {
        if (e.markerRecordedEventAttributes?.markerName !== 'core_local_activity') break;
        if (!markersSinceTask) {
          a.localActivityTasks += 1;
          markersSinceTask = true;
        }
        const type = localActivityType(e);
        types[type] = (types[type] ?? 0) + 1;
        break;
      }
      case E.EVENT_TYPE_TIMER_STARTED:
        a.timers += 1;
        break;
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        a.signals += 1;
        break;
      case E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        a.searchAttributeUpserts += 1;
        break;
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        a.updates += 1;
        break;
      default:
    }
  }
  return tasks;
}

const CLOSED = new Set<number>([
  E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
]);

/** Every run of `workflowId`, newest first, walked back through continue-as-new. */
export async function countHistory(client: Client, workflowId: string): Promise<HistoryCounts> {
  const counts: HistoryCounts = {
    runs: 0,
    events: 0,
    bytes: 0,
    maxRunEvents: 0,
    maxRunBytes: 0,
    workflowTasks: 0,
    activityTypes: {},
    actions: emptyActions(),
    startedAtMs: 0,
    closedAtMs: null,
  };
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    const bytes = temporal.api.history.v1.History.encode(history).finish().length;
    if (counts.runs === 0) {
      const last = events[events.length - 1];
      counts.closedAtMs = last && CLOSED.has(last.eventType ?? 0) ? ms(last.eventTime) : null;
    }
    counts.runs += 1;
    counts.events += events.length;
    counts.bytes += bytes;
    counts.maxRunEvents = Math.max(counts.maxRunEvents, events.length);
    counts.maxRunBytes = Math.max(counts.maxRunBytes, bytes);
    counts.workflowTasks += countRun(events, counts.actions, counts.activityTypes);
    counts.startedAtMs = ms(events[0]?.eventTime);
    const previous = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!previous) return counts;
    runId = previous;
  }
}

/** A local activity's type, from its marker's data (plain JSON the SDK core writes, never sealed). */
export function localActivityType(e: Event): string {
  const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
  if (!data) return '?';
  try {
    return (
      (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string }).activity_type ?? '?'
    );
  } catch {
    return '?';
  }
}
