/**
 * The saga benchmark's yardstick (bench/saga.ts): a workflow that does nothing but take
 * `tasks` workflow tasks, each after a round trip through the server like an order's step: it
 * schedules a no-op activity, and that activity's completion brings the next workflow task.
 * Registered only by the benchmark's own worker (./noop-worker.ts), never by the product's.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface NoopActivities {
  noop(): Promise<void>;
}

const { noop } = proxyActivities<NoopActivities>({ startToCloseTimeout: '30s' });

/** Completes after exactly `tasks` workflow tasks (WorkflowTaskCompleted events). */
export async function noopWorkflow(tasks: number): Promise<number> {
  for (let i = 1; i < tasks; i++) await noop();
  return tasks;
}
