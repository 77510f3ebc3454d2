/**
 * The saga benchmark's yardstick worker, a process of its own beside the product's worker:
 * it polls `argv[2]` (a task queue no product workflow uses) for ./noop-workflow.ts and its
 * no-op activity, with the same worker settings as the product's main worker (src/worker.ts:
 * the SDK's defaults), and connects to the Temporal server the environment names
 * (TEMPORAL_ADDRESS, through src/config). Prints `noop worker running` once it polls;
 * SIGTERM drains and exits.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
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
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  process.stdout.write('noop worker running\n');
  await running;
  await connection.close();
});
