import { ConfigError, loadConfig } from '../src/config';
import { heapShortfall } from '../src/worker';
import { freshDatabase, type TestDatabase } from './support/db';
import { startTestWorker } from './support/temporal';
import { LARGEST_TRACKING_BATCH } from '../src/couriers';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

const MiB = 2 ** 20;

describe('worker sizing', () => {
  it('holds 2,000 cached workflows by default, continues shipments as new every 10 polls, with one Postgres connection per activity slot', () => {
    const { workerSizing, courier } = loadConfig({});
    expect(workerSizing).toEqual({
      maxCachedWorkflows: 2_000,
      shipmentPollsPerRun: 10,
      workflowThreads: 1,
      sharedWorkflowModules: true,
      workflowTaskSlots: 200,
      workflowTaskPollers: 20,
      activityTaskSlots: 20,
      activityTaskPollers: 5,
      courierTaskPollers: 3,
      dbPoolMax: 20 + courier.concurrency,
    });
  });

  it('follows the slots it derives from: courier pollers and the pool grow with the courier concurrency', () => {
    const sized = loadConfig({
      WAYBILL_WORKER_ACTIVITY_SLOTS: '40',
      WAYBILL_COURIER_CONCURRENCY: '20',
    }).workerSizing;
    expect(sized.courierTaskPollers).toBe(5);
    expect(sized.dbPoolMax).toBe(60);
    expect(loadConfig({ WAYBILL_WORKER_DB_POOL_MAX: '8' }).workerSizing.dbPoolMax).toBe(8);
    // A cache smaller than the default slots takes the slots down with it.
    expect(loadConfig({ WAYBILL_WORKER_CACHED_WORKFLOWS: '120' }).workerSizing.workflowTaskSlots).toBe(120);
  });

  it('refuses pollers above their slots and more workflow slots than cached workflows, naming each variable', () => {
    const problems = problemsOf({
      WAYBILL_WORKER_CACHED_WORKFLOWS: '10',
      WAYBILL_WORKER_WORKFLOW_SLOTS: '30',
      WAYBILL_WORKER_WORKFLOW_POLLERS: '40',
      WAYBILL_WORKER_ACTIVITY_SLOTS: '4',
      WAYBILL_WORKER_ACTIVITY_POLLERS: '5',
      WAYBILL_COURIER_POLLERS: '9',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'WAYBILL_WORKER_WORKFLOW_POLLERS (40) must not exceed WAYBILL_WORKER_WORKFLOW_SLOTS (30)',
        'WAYBILL_WORKER_ACTIVITY_POLLERS (5) must not exceed WAYBILL_WORKER_ACTIVITY_SLOTS (4)',
        'WAYBILL_COURIER_POLLERS (9) must not exceed WAYBILL_COURIER_CONCURRENCY (3)',
        'WAYBILL_WORKER_WORKFLOW_SLOTS (30) must not exceed WAYBILL_WORKER_CACHED_WORKFLOWS (10)',
      ]),
    );
    expect(problems).toHaveLength(4);
    expect(problemsOf({ WAYBILL_WORKER_WORKFLOW_THREADS: '0' })).toEqual([
      expect.stringContaining('WAYBILL_WORKER_WORKFLOW_THREADS'),
    ]);
    // 0 turns the cache off: every task replays, and any number of slots is allowed.
    expect(problemsOf({ WAYBILL_WORKER_CACHED_WORKFLOWS: '0' })).toEqual([]);
  });

  it('says when the heap cannot hold the cache, and how much it needs', () => {
    const config = loadConfig({});
    // The default cache fits the heap the worker is run with (npm run start:worker, compose)…
    expect(heapShortfall(config, 1280 * MiB)).toBeNull();
    // …and not the 512 MiB it was once run with: 4,000 cached shipment workflows (the
    // default then) ran the workflow thread out of heap in bench:scale (2026-12-05).
    expect(heapShortfall(config, 512 * MiB)).toEqual({ neededMiB: 1150, limitMiB: 512 });
    const big = loadConfig({ WAYBILL_WORKER_CACHED_WORKFLOWS: '40000' });
    const short = heapShortfall(big, 512 * MiB);
    expect(short?.limitMiB).toBe(512);
    expect(short?.neededMiB).toBeGreaterThan(512);
    expect(heapShortfall(big, (short?.neededMiB ?? 0) * MiB)).toBeNull();
  });

  describe('on a Temporal server', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await freshDatabase();
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('runs both task queues with the configured cache, workflow threads, pollers and slots', async () => {
      const worker = await startTestWorker({
        db: db.db,
        couriers: {},
        env: {
          WAYBILL_WORKER_CACHED_WORKFLOWS: '321',
          WAYBILL_WORKER_WORKFLOW_SLOTS: '12',
          WAYBILL_WORKER_WORKFLOW_POLLERS: '6',
          WAYBILL_WORKER_ACTIVITY_SLOTS: '7',
          WAYBILL_WORKER_ACTIVITY_POLLERS: '3',
          WAYBILL_COURIER_CONCURRENCY: '4',
          WAYBILL_COURIER_POLLERS: '2',
          WAYBILL_WORKER_WORKFLOW_THREADS: '2',
        },
      });
      try {
        const [main, courier] = worker.workers.map((w) => w.options);
        expect(main!.maxCachedWorkflows).toBe(321);
        expect(main!.workflowThreadPoolSize).toBe(2);
        expect(main!.nonStickyToStickyPollRatio).toBe(0.5);
        expect(main!.workflowTaskPollerBehavior).toEqual({ type: 'simple-maximum', maximum: 6 });
        expect(main!.activityTaskPollerBehavior).toEqual({ type: 'simple-maximum', maximum: 3 });
        expect(main!.tuner.workflowTaskSlotSupplier).toEqual({ type: 'fixed-size', numSlots: 12 });
        expect(main!.tuner.activityTaskSlotSupplier).toEqual({ type: 'fixed-size', numSlots: 7 });
        expect(courier!.activityTaskPollerBehavior).toEqual({ type: 'simple-maximum', maximum: 2 });
        // A poll waits in its courier's batch: each of the 4 calls in flight carries up to a
        // whole batch of polls, so the courier queue takes that many polls at once.
        expect(courier!.tuner.activityTaskSlotSupplier).toEqual({
          type: 'fixed-size',
          numSlots: 4 * LARGEST_TRACKING_BATCH,
        });
      } finally {
        await worker.stop();
      }
    });
  });
});
