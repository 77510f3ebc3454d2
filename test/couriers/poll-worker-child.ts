/**
 * A shipment workflows' worker in a process of its own, for the test that kills it with SIGKILL
 * in the middle of a bulk call: the workflows, and their polls as local activities with a real
 * EasyParcel adapter against the simulator, batching polls for `WAYBILL_TEST_BATCH_WINDOW_MS`.
 * Prints "ready" once polling.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createDb } from '../../db/client';
import { createShipmentActivities } from '../../src/activities/shipments';
import { createEasyParcelAdapter } from '../../src/couriers/easyparcel';
import { DEFAULT_EASYPARCEL } from '../../simulators/courier/server';
import { createDataConverter } from '../../src/codec';
import { testConfig, testLog } from '../support/env';
import { workflowBundlerOptions } from '../../src/workflow-bundle';

const { workflowsPath, preloadModules } = workflowBundlerOptions(true);

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  const db = createDb({ url: env('WAYBILL_TEST_DB_URL'), poolMax: 5 });
  const activities = createShipmentActivities({
    db,
    couriers: {
      easyparcel: createEasyParcelAdapter({
        ...DEFAULT_EASYPARCEL,
        baseUrl: env('WAYBILL_TEST_EASYPARCEL_URL'),
        apiVersion: '2026-06',
        timeoutMs: 20_000,
        maxBatch: Number(env('WAYBILL_TEST_EASYPARCEL_BATCH')),
      }),
    },
    dailyBudget: 1000,
    batchWindowMs: Number(env('WAYBILL_TEST_BATCH_WINDOW_MS')),
    log: testLog,
  });
  const connection = await NativeConnection.connect({ address: env('WAYBILL_TEST_TEMPORAL_ADDRESS') });
  const worker = await Worker.create({
    connection,
    taskQueue: env('WAYBILL_TEST_TASK_QUEUE'),
    ...(process.env.WAYBILL_TEST_WORKFLOW_BUNDLE
      ? { workflowBundle: { codePath: process.env.WAYBILL_TEST_WORKFLOW_BUNDLE } }
      : { workflowsPath, bundlerOptions: { preloadModules } }),
    // The workflows' payloads are sealed (src/codec): the same converter as every Waybill worker.
    dataConverter: createDataConverter(testConfig().payloads),
    activities,
  });
  const running = worker.run();
  console.log('ready');
  await running;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
