/**
 * The saga benchmark's yardstick worker, a process of its own beside the product's worker:
 * it polls `argv[2]` (a task queue no product workflow uses) for ./noop-workflow.ts and its
 * no-op activity, with the product's data converter (payloads sealed, src/codec) and its main
 * worker's sizing, and connects to the Temporal server the environment names
 * (TEMPORAL_ADDRESS, through src/config). Prints `noop worker running` once it polls;
 * SIGTERM drains and exits.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createDataConverter } from '../../src/codec';
import { loadConfig } from '../../src/config';
import { runMain } from '../../src/main-helpers';
import { temporalConnectionOptions } from '../../src/temporal';
import type { NoopActivities } from './noop-workflow';

runMain(async () => {
  const taskQueue = process.argv[2];
  if (!taskQueue) throw new Error('usage: noop-worker.ts <task queue>');
  const config = loadConfig();
  const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
  const activities: NoopActivities = { noop: async () => undefined };
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue,
    workflowsPath: require.resolve('./noop-workflow'),
    activities,
    // The product's converter: the bench's client seals every payload (src/codec), and a
    // yardstick that skipped the sealing would not be doing an order's work.
    dataConverter: createDataConverter(config.payloads),
    // The product's main worker's sizing (src/worker.ts), so the yardstick polls as it does.
    maxCachedWorkflows: config.workerSizing.maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions: config.workerSizing.workflowTaskSlots,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: config.workerSizing.workflowTaskPollers },
    nonStickyToStickyPollRatio: 0.5,
    maxConcurrentActivityTaskExecutions: config.workerSizing.activityTaskSlots,
    activityTaskPollerBehavior: { type: 'simple-maximum', maximum: config.workerSizing.activityTaskPollers },
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  process.stdout.write('noop worker running\n');
  await running;
  await connection.close();
});
