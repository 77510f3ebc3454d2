/**
 * Resetting an order workflow that failed, was terminated or timed out: back to its last
 * sound point (the last completed workflow task), only when that is safe. Safe means, all of:
 * 1. its latest run closed as Failed, Terminated or TimedOut (a running or completed order is
 *    not reset);
 * 2. it has a completed workflow task to go back to;
 * 3. no money or booking step is in flight: every authorise, capture, void, refund, booking
 *    and booking cancel the run scheduled has its outcome in the history at or before that
 *    point (otherwise the provider or the courier may have acted on a call the workflow never
 *    saw answered, and the saga's own rules, not a replay, must decide);
 * 4. every shipment workflow the run started and did not see end is still the chain of runs it
 *    started (not restarted by anyone else, not gone from Temporal), and none was started after
 *    that point. The reset run reconnects to a running one; for one that ended while the order
 *    was stopped (delivered, or died), the end went to the stopped run, so the API tells the
 *    reset run of it (`tellOfEndedTracking`, the `trackingEnded` signal).
 * See docs/operations.md#failed-work.
 */
import { createHash } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils';
import {
  orderWorkflowId,
  shipmentWorkflowId,
  trackingEndedSignal,
  type ShipmentSnapshot,
} from '../workflows/contract';
import type { ApiDeps } from './app';
import { ApiError } from './errors';

/** Activities that move money at the provider or make or undo a booking at the courier. */
export const MONEY_STEPS: ReadonlySet<string> = new Set([
  'authorisePayment',
  'capturePayment',
  'voidPayment',
  'voidUnknownAuthorisation',
  'refundPayment',
  'bookShipment',
  'cancelBooking',
]);

const RESETTABLE = new Set(['FAILED', 'TERMINATED', 'TIMED_OUT']);

/** temporal.api.enums.v1.WorkflowTaskFailedCause: the task a reset run's history ends its copy with. */
const WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW = 20;

const refuse = (message: string) => new ApiError(409, 'RESET_NOT_SAFE', message);

type Event = NonNullable<History['events']>[number];
const id = (e: Event) => Number(e.eventId);

export interface ResetPlan {
  workflowId: string;
  runId: string;
  /** The WorkflowTaskCompleted event the new run continues from. */
  eventId: number;
  /** The shipment workflows the order tracks at that point: each chain's first run. */
  tracked: { shipmentId: string; workflowId: string; trackingRunId: string }[];
  /**
   * The run this request's reset already made, when it is a retry of one that reset the order
   * and stopped before it had told the new run of its ended parcels (the API died, or Temporal
   * went away meanwhile): the retry tells it, and does not reset again.
   */
  resetRunId: string | null;
}

/**
 * The request id a reset is sent with (the server makes one run per id) and the mark its
 * reason carries, so that a retry finds the run it made in that run's own history.
 */
export function resetRequest(requestKey: string): { requestId: string; mark: string } {
  const h = createHash('sha256').update(requestKey).digest('hex').slice(0, 32);
  const requestId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return { requestId, mark: `[reset ${requestId}]` };
}

/**
 * The reset point of the order's latest run, or a 409 naming why a reset is not safe. When the
 * latest run is the one this request (`requestKey`) made, the plan is that reset's, with its run.
 */
export async function planOrderReset(deps: ApiDeps, orderId: string, requestKey: string): Promise<ResetPlan> {
  const workflowId = orderWorkflowId(orderId);
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw refuse(`order ${orderId} has no workflow to reset`);
    throw err;
  }
  const status = description.status.name;
  const runId = description.runId;
  const historyOf = async (run: string) =>
    (await deps.temporal.client.workflow.getHandle(workflowId, run).fetchHistory()).events ?? [];
  const events = await historyOf(runId);

  // A reset run's history is its base run's up to the point, then a task failed for the reset (an
  // earlier reset's may be in the copy): the last such task says who made this run.
  const made = [...events]
    .reverse()
    .find((e) => e.workflowTaskFailedEventAttributes?.cause === WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW);
  if (made?.workflowTaskFailedEventAttributes?.failure?.message?.endsWith(resetRequest(requestKey).mark)) {
    // This request reset the order already: the run's failed task stands where the point was.
    const baseRunId = made.workflowTaskFailedEventAttributes!.baseRunId ?? '';
    const eventId = id(made);
    const chains = await trackedAt(deps, await historyOf(baseRunId), eventId);
    const tracked = chains.flatMap(({ child, ...chain }) =>
      child?.chain === chain.trackingRunId ? [chain] : [],
    );
    return { workflowId, runId: baseRunId, eventId, tracked, resetRunId: runId };
  }

  if (!RESETTABLE.has(status)) {
    throw refuse(`the order's workflow is ${status}: only a failed, terminated or timed-out run is reset`);
  }
  const point = [...events].reverse().find((e) => e.workflowTaskCompletedEventAttributes);
  if (!point) throw refuse('the run never completed a workflow task: there is no sound point to go back to');
  const eventId = id(point);

  // Money and booking steps: each scheduled one needs its outcome at or before the point.
  const scheduled = new Map<number, string>();
  const settledAt = new Map<number, number>();
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s && MONEY_STEPS.has(s.activityType?.name ?? '')) scheduled.set(id(e), s.activityType!.name!);
    const outcome =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    if (outcome?.scheduledEventId != null) settledAt.set(Number(outcome.scheduledEventId), id(e));
  }
  for (const [scheduledId, name] of scheduled) {
    const at = settledAt.get(scheduledId);
    if (at === undefined || at > eventId) {
      throw refuse(
        `a money or booking step (${name}, event ${scheduledId}) was in flight when the run stopped: the provider or courier may have acted on it; settle it first (the order's attention items, or by hand)`,
      );
    }
  }

  // Shipment children: none started after the point, and each one open there still the order's.
  for (const e of events) {
    const initiated = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (initiated && id(e) > eventId) {
      throw refuse(`shipment workflow ${initiated.workflowId} was started after the last sound point`);
    }
  }
  const tracked: ResetPlan['tracked'] = [];
  for (const { child, ...chain } of await trackedAt(deps, events, eventId)) {
    // The order's child is the chain its start began: continue-as-new keeps the chain (its
    // first run), a restart of the tracking starts another.
    if (!child || child.chain !== chain.trackingRunId) {
      throw refuse(
        `shipment workflow ${chain.workflowId} is not the run the order started (${child ? 'started again since' : 'gone from Temporal'}): the reset run would wait for an end no one can tell it; settle the parcel by hand first`,
      );
    }
    tracked.push(chain);
  }
  return { workflowId, runId, eventId, tracked, resetRunId: null };
}

/**
 * The shipment workflows a run had started by `eventId` and not seen end by then, each with the
 * chain it started (its first run) and what Temporal has under its id now.
 */
async function trackedAt(deps: ApiDeps, events: Event[], eventId: number) {
  const open = new Map<number, string>();
  const startedRuns = new Map<number, string>();
  for (const e of events) {
    const initiated = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (initiated && id(e) <= eventId) open.set(id(e), initiated.workflowId ?? '');
    const ended =
      e.startChildWorkflowExecutionFailedEventAttributes ??
      e.childWorkflowExecutionCompletedEventAttributes ??
      e.childWorkflowExecutionFailedEventAttributes ??
      e.childWorkflowExecutionCanceledEventAttributes ??
      e.childWorkflowExecutionTimedOutEventAttributes ??
      e.childWorkflowExecutionTerminatedEventAttributes;
    if (ended?.initiatedEventId != null && id(e) <= eventId) open.delete(Number(ended.initiatedEventId));
    const started = e.childWorkflowExecutionStartedEventAttributes;
    if (started?.initiatedEventId != null) {
      startedRuns.set(Number(started.initiatedEventId), started.workflowExecution?.runId ?? '');
    }
  }
  return Promise.all(
    [...open].map(async ([initiatedId, workflowId]) => ({
      shipmentId: shipmentIdOf(workflowId),
      workflowId,
      trackingRunId: startedRuns.get(initiatedId) ?? '',
      child: await describeTracking(deps, workflowId),
    })),
  );
}

const shipmentIdOf = (childId: string) => childId.slice(shipmentWorkflowId('').length);

/** A shipment workflow's latest run: its status and the chain it belongs to (its first run); null when gone. */
async function describeTracking(deps: ApiDeps, workflowId: string) {
  const handle = deps.temporal.client.workflow.getHandle(workflowId);
  const described = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  });
  if (!described) return null;
  return {
    handle,
    status: described.status.name,
    chain: described.raw.workflowExecutionInfo?.firstRunId || described.runId,
  };
}

/**
 * After the reset: every tracked chain that has ended since the order stopped is told to the
 * reset run (its end went to the stopped run). One still running reports its end to the reset run
 * itself. Returns the parcels told, with how each ended.
 */
export async function tellOfEndedTracking(
  deps: ApiDeps,
  plan: ResetPlan,
  resetRunId: string,
): Promise<{ shipmentId: string; ended: string }[]> {
  const order = deps.temporal.client.workflow.getHandle(plan.workflowId, resetRunId);
  const told: { shipmentId: string; ended: string }[] = [];
  for (const { shipmentId, workflowId, trackingRunId } of plan.tracked) {
    const child = await describeTracking(deps, workflowId);
    if (!child || child.chain !== trackingRunId || child.status === 'RUNNING') continue;
    const result = child.status === 'COMPLETED' ? ((await child.handle.result()) as ShipmentSnapshot) : null;
    const final = result?.status ?? null;
    const subStatus = result?.subStatus ?? null;
    const how = `${child.status} while the order was stopped`;
    try {
      await order.signal(trackingEndedSignal, { shipmentId, trackingRunId, final, subStatus, how });
    } catch (err) {
      // The reset run has closed meanwhile: it cannot have closed without hearing of its parcels.
      if (err instanceof WorkflowNotFoundError) break;
      throw err;
    }
    told.push({ shipmentId, ended: final ?? child.status });
  }
  return told;
}

type ResetRequest = Parameters<ApiDeps['temporal']['client']['workflowService']['resetWorkflowExecution']>[0];
type EventId = NonNullable<ResetRequest['workflowTaskFinishEventId']>;

/** Resets to the plan's point; `requestKey` makes a retried call the same reset at the server. */
export async function resetOrder(
  deps: ApiDeps,
  plan: ResetPlan,
  opts: { reason: string; requestKey: string },
): Promise<string> {
  const { requestId, mark } = resetRequest(opts.requestKey);
  const response = await deps.temporal.client.workflowService.resetWorkflowExecution({
    namespace: deps.config.temporal.namespace,
    workflowExecution: { workflowId: plan.workflowId, runId: plan.runId },
    // protobufjs encodes a JS number into an int64 field; the generated type names only Long.
    workflowTaskFinishEventId: plan.eventId as unknown as EventId,
    reason: `${opts.reason} ${mark}`,
    requestId,
  });
  return response.runId ?? '';
}
