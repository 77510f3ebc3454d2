/** The worker's sizing, read as one block. */
import type { Reader } from './parse';
import type { Config } from './types';

/**
 * The worker's sizing (its own block: the figures behind each default are in
 * docs/benchmarks.md#worker-sizing). A poller count above its slots, or more workflow-task
 * slots than cached workflows, is refused here rather than silently clamped by the SDK.
 */
export function readWorkerSizing(r: Reader, courierSlots: number): Config['workerSizing'] {
  const maxCachedWorkflows = r.int('WAYBILL_WORKER_CACHED_WORKFLOWS', 2_000, 0, 1_000_000);
  // A poll holds its workflow task while it waits for its bulk call (the batch window, then the
  // call): at 20.8 polls/s and a 2 s window ~45 are held at once, and 40 slots kept a worker
  // at 16.7 polls/s (docs/benchmarks.md#scale). Never more than the cache holds.
  const workflowTaskSlots = r.int(
    'WAYBILL_WORKER_WORKFLOW_SLOTS',
    maxCachedWorkflows > 0 ? Math.min(200, maxCachedWorkflows) : 200,
    2,
    1_000,
  );
  const workflowTaskPollers = r.int('WAYBILL_WORKER_WORKFLOW_POLLERS', 20, 2, 1_000);
  const activityTaskSlots = r.int('WAYBILL_WORKER_ACTIVITY_SLOTS', 20, 1, 1_000);
  const activityTaskPollers = r.int('WAYBILL_WORKER_ACTIVITY_POLLERS', 5, 1, 1_000);
  const courierTaskPollers = r.int('WAYBILL_COURIER_POLLERS', Math.min(5, courierSlots), 1, 1_000);
  // Each activity holds at most one connection at a time: one per slot, so none waits for one.
  const dbPoolMax = r.int('WAYBILL_WORKER_DB_POOL_MAX', activityTaskSlots + courierSlots, 1, 2_000);
  const atMost = (name: string, value: number, limitName: string, limit: number) => {
    if (value > limit) r.problems.push(`${name} (${value}) must not exceed ${limitName} (${limit})`);
  };
  atMost(
    'WAYBILL_WORKER_WORKFLOW_POLLERS',
    workflowTaskPollers,
    'WAYBILL_WORKER_WORKFLOW_SLOTS',
    workflowTaskSlots,
  );
  atMost(
    'WAYBILL_WORKER_ACTIVITY_POLLERS',
    activityTaskPollers,
    'WAYBILL_WORKER_ACTIVITY_SLOTS',
    activityTaskSlots,
  );
  atMost('WAYBILL_COURIER_POLLERS', courierTaskPollers, 'WAYBILL_COURIER_CONCURRENCY', courierSlots);
  if (maxCachedWorkflows > 0) {
    atMost(
      'WAYBILL_WORKER_WORKFLOW_SLOTS',
      workflowTaskSlots,
      'WAYBILL_WORKER_CACHED_WORKFLOWS',
      maxCachedWorkflows,
    );
  }
  const shipmentPollsPerRun = r.int('WAYBILL_SHIPMENT_POLLS_PER_RUN', 10, 1, 10_000);
  // Threads running workflow code (the SDK's workflowThreadPoolSize); a workflow stays on the
  // thread that took it while it is cached. docs/benchmarks.md#scale has what a second one did.
  const workflowThreads = r.int('WAYBILL_WORKER_WORKFLOW_THREADS', 1, 1, 16);
  // 88 KiB less RSS per cached workflow (src/workflow-bundle.ts).
  const sharedWorkflowModules = r.bool('WAYBILL_WORKER_SHARED_WORKFLOW_MODULES', true);
  return {
    shipmentPollsPerRun,
    workflowThreads,
    sharedWorkflowModules,
    maxCachedWorkflows,
    workflowTaskPollers,
    workflowTaskSlots,
    activityTaskPollers,
    activityTaskSlots,
    courierTaskPollers,
    dbPoolMax,
  };
}
