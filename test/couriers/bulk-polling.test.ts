/**
 * Bulk polling across shipment workflows, on the real stack: Temporal dev server, Postgres,
 * real workers and activities, and the courier simulator speaking EasyParcel over HTTP. Each
 * parcel keeps its own workflow; polls that fall due together share one tracking call.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createShipmentActivities } from '../../src/activities/shipments';
import { createEasyParcelAdapter } from '../../src/couriers/easyparcel';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode, type CourierAdapter } from '../../src/couriers/types';
import { DEFAULT_EASYPARCEL, startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { shipmentStateQuery, shipmentWorkflowId, type ShipmentSnapshot } from '../../src/workflows/contract';
import type { shipmentWorkflow } from '../../src/workflows/shipment';
import { budgetDay } from '../../src/domain/polling';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testLog } from '../support/env';
import { eventually } from '../support/eventually';
import { startTestWorker, stillPolicy, uniqueId, type TestWorker } from '../support/temporal';

jest.setTimeout(120_000);

const HOUR = 3_600_000;
/**
 * The batches of these tests go out when full (the adapter's batch is set to the parcels a test
 * polls together), however long the machine takes to start the workflows; the window is the
 * backstop that never has to fire.
 */
const WINDOW_MS = 60_000;
const BATCH = 5;

describe('bulk polling', () => {
  let database: TestDatabase;
  let simulator: RunningSimulator;
  const started: WorkflowHandle[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    // Time scale 1: a parcel registered with an age shows the same scans for the whole test.
    simulator = await startSimulator({ port: 0, timeScale: 1 });
  });

  afterEach(async () => {
    simulator.backend.faults.clear();
    for (const handle of started.splice(0)) await handle.terminate('test over').catch(() => undefined);
  });

  afterAll(async () => {
    await simulator?.stop();
    await database?.drop();
  });

  const easyParcel = (maxBatch = BATCH): CourierAdapter =>
    createEasyParcelAdapter({
      ...DEFAULT_EASYPARCEL,
      baseUrl: `${simulator.url}/easyparcel`,
      apiVersion: '2026-06',
      timeoutMs: 20_000,
      maxBatch,
    });
  const easyParcelStats = () => simulator.backend.stats.snapshot().formats.easyparcel;

  /** An EasyParcel parcel playing `scenario`, `ageHours` into it. */
  const parcel = (scenario: ScenarioName, ageHours: number) =>
    simulator.backend.register({ scenario, format: 'easyparcel', ageMs: ageHours * HOUR }).trackingNumber;

  /** Starts one shipment workflow per number at once; polls only when started (then every 10 min). */
  async function trackAll(
    worker: TestWorker,
    numbers: string[],
    taskQueue = worker.taskQueue,
    policy = stillPolicy({ pollAttempts: 3, pollRetryInitialMs: 200 }),
    courier: CourierCode = CourierCode.EASYPARCEL,
  ) {
    return Promise.all(
      numbers.map(async (trackingNumber) => {
        const shipmentId = uniqueId('shp');
        await database.db
          .insertInto('shipments')
          .values({ id: shipmentId, courier, tracking_number: trackingNumber })
          .execute();
        const handle = await worker.client.workflow.start<typeof shipmentWorkflow>('shipmentWorkflow', {
          workflowId: shipmentWorkflowId(shipmentId),
          taskQueue,
          args: [
            {
              shipmentId,
              orderId: null,
              courier,
              trackingNumber,
              policy,
            },
          ],
        });
        started.push(handle);
        return { shipmentId, trackingNumber, handle };
      }),
    );
  }

  /** Each workflow's snapshot once its first poll cycle has ended. */
  async function afterFirstPoll(handles: WorkflowHandle[]): Promise<ShipmentSnapshot[]> {
    return eventually(
      () => Promise.all(handles.map((h) => h.query(shipmentStateQuery))),
      (snapshots) => snapshots.every((s) => s.polls >= 1),
      60_000,
    );
  }

  const row = (id: string) =>
    database.db.selectFrom('shipments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  describe('with one worker', () => {
    let worker: TestWorker;

    beforeAll(async () => {
      worker = await startTestWorker({
        db: database.db,
        couriers: { [CourierCode.EASYPARCEL]: easyParcel() },
        batchWindowMs: WINDOW_MS,
      });
    });

    afterAll(async () => {
      await worker?.stop();
    });

    it('sends the polls of parcels falling due together as one bulk call, each workflow getting its own status', async () => {
      const numbers = [
        parcel('delivered', 10), // picked up: IN_TRANSIT
        parcel('delivered', 60), // out for delivery (day 2, 9:00 + 3 h)
        parcel('delivered', 70), // delivered
        parcel('never_picked_up', 1), // INFO_RECEIVED
        parcel('exception', 50), // EXCEPTION
      ];
      const expected = ['IN_TRANSIT', 'OUT_FOR_DELIVERY', 'DELIVERED', 'INFO_RECEIVED', 'EXCEPTION'];
      const before = easyParcelStats();

      const tracked = await trackAll(worker, numbers);
      const snapshots = await afterFirstPoll(tracked.map((t) => t.handle));

      expect(snapshots.map((s) => s.status)).toEqual(expected);
      const after = easyParcelStats();
      // One tracking request carried all five numbers (plus the first access token).
      expect(after.byKind.track - before.byKind.track).toBe(1);
      expect(after.numbersTracked - before.numbersTracked).toBe(5);
      for (const [i, t] of tracked.entries()) {
        // The read model holds it once the workflow's record step has run.
        const shipment = await eventually(
          () => row(t.shipmentId),
          (r) => r.status === expected[i],
        );
        // The courier's payload is in Postgres, written by the poll itself, for this parcel only.
        expect(JSON.stringify(shipment.raw_latest)).toContain(t.trackingNumber);
        expect(JSON.stringify(shipment.raw_latest)).not.toContain(numbers[(i + 1) % numbers.length]!);
      }
    });

    it("waits out a refused call's retry on a timer, not inside a workflow task that holds a worker slot", async () => {
      const numbers = Array.from({ length: BATCH }, () => parcel('delivered', 10));
      // The next EasyParcel request (the tracking call, or the access token it needs first) is
      // refused with 429 and Retry-After 2 s: every poll of the batch retries.
      simulator.backend.faults.set({
        kind: 'rate_limit',
        calls: 1,
        retryAfterSeconds: 2,
        format: 'easyparcel',
      });

      const tracked = await trackAll(worker, numbers);
      const snapshots = await afterFirstPoll(tracked.map((t) => t.handle));

      expect(snapshots.map((s) => s.status)).toEqual(numbers.map(() => 'IN_TRANSIT'));
      for (const t of tracked) {
        const events = (await t.handle.fetchHistory()).events ?? [];
        const isMarker = (e: (typeof events)[number]) =>
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity';
        // The refused attempt's marker ends its workflow task; a timer waits out the 2 s (the
        // next poll's timer, 10 min away, never fires here); then the answer's marker. Retried
        // inside the task, the history would hold the answer alone and no timer fired.
        const fired = events.findIndex((e) => e.timerFiredEventAttributes);
        expect(fired).toBeGreaterThan(0);
        expect(events.slice(0, fired).filter(isMarker)).toHaveLength(1);
        expect(events.slice(fired).filter(isMarker).length).toBeGreaterThanOrEqual(1);
      }
    });

    it('keeps the raw courier payload out of the workflow history', async () => {
      const numbers = [
        parcel('delivered', 60),
        ...Array.from({ length: BATCH - 1 }, () => parcel('delivered', 10)),
      ];
      const [t, ...others] = await trackAll(worker, numbers);
      await afterFirstPoll([t!.handle, ...others.map((o) => o.handle)]);
      await eventually(
        () => row(t!.shipmentId),
        (shipment) => shipment.status === 'OUT_FOR_DELIVERY',
      );

      const history = payloadTexts(await t!.handle.fetchHistory());
      // The check can fail: the history's payloads are read, and the poll's answer is among them.
      expect(history).toContain(t!.trackingNumber);
      expect(history).toContain('OUT_FOR_DELIVERY');
      // The status log's words are events the workflow decides on; the answer's own fields are not.
      expect(history).not.toContain('latest_tracking_status');
      expect(history).not.toContain('shipment_number');
      expect(JSON.stringify((await row(t!.shipmentId)).raw_latest)).toContain('latest_tracking_status');
    });

    it('answers every other parcel of a batch when one number is unknown and one is refused', async () => {
      const good = [parcel('delivered', 10), parcel('delivered', 70), parcel('never_picked_up', 1)];
      const unknown = 'EP-TYPO-42'; // not an EasyParcel number: "not found" in its own result
      const refused = `EP${'9'.repeat(70)}`; // too long: EasyParcel refuses the whole request (422)
      const before = easyParcelStats();

      // A failed cycle backs off for 10 min: the refused number, now sent alone, is not asked
      // again while the calls are counted.
      const patient = stillPolicy({
        pollAttempts: 3,
        pollRetryInitialMs: 200,
        backoffBaseMs: 600_000,
        backoffCapMs: 600_000,
      });
      const tracked = await trackAll(worker, [...good, unknown, refused], worker.taskQueue, patient);
      const [a, b, e, c, d] = await afterFirstPoll(tracked.map((t) => t.handle));

      expect(a).toMatchObject({ status: 'IN_TRANSIT', syncError: null });
      expect(b).toMatchObject({ status: 'DELIVERED', finished: true });
      expect(e).toMatchObject({ status: 'INFO_RECEIVED', syncError: null });
      // The unknown number is "not found" (asked again later), the refused one a sync problem of its own.
      expect(c).toMatchObject({ status: 'PENDING', syncError: null });
      expect(d!.status).toBe('PENDING');
      expect(d!.syncError).toMatch(/refused the tracking request \(422\)/);
      const refusedRow = await eventually(
        () => row(tracked[4]!.shipmentId),
        (r) => r.sync_error !== null,
      );
      expect(refusedRow.sync_error).toMatch(/422/);
      // The refused bulk call of five, its halves (three and two), then one call per number of
      // the refused half: 1 + 2 + 3 or 1 + 2 + 2 calls, as the polls happened to join.
      expect(easyParcelStats().byKind.track - before.byKind.track).toBeGreaterThanOrEqual(5);
      expect(easyParcelStats().byKind.track - before.byKind.track).toBeLessThanOrEqual(6);
    });
  });

  it("puts a hanging courier's polls off on their workflows' timers: they take no worker slots, and another courier's parcel is polled meanwhile", async () => {
    // Eight workflow-task slots, two pollers (each keeps one while it waits for a task): six
    // for workflow tasks, a poll holding one while it waits for its call.
    const adapter = easyParcel(1);
    // The calls made, counted as they leave (the simulator counts a call when it answers).
    const calls: string[][] = [];
    const worker = await startTestWorker({
      db: database.db,
      couriers: {
        [CourierCode.EASYPARCEL]: {
          ...adapter,
          track: (numbers) => {
            calls.push(numbers);
            return adapter.track(numbers);
          },
        },
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: simulator.url, timeoutMs: 5_000 }),
      },
      env: { WAYBILL_WORKER_WORKFLOW_SLOTS: '8', WAYBILL_WORKER_WORKFLOW_POLLERS: '2' },
    });
    try {
      // EasyParcel hangs: it answers after 30 s, and the adapter gives up at 20 s.
      simulator.backend.faults.set({ kind: 'latency', ms: 30_000, format: 'easyparcel' });
      // Retries on the workflow's timers (2 s, then 4 s), as the default poll policy has them
      // (it has a third, after 8 s).
      const policy = stillPolicy({ pollAttempts: 3, pollRetryInitialMs: 2_000 });
      const first = await trackAll(
        worker,
        [parcel('delivered', 10), parcel('delivered', 20)],
        worker.taskQueue,
        policy,
      );
      // Their calls out past WAYBILL_COURIER_SLOW_AFTER (5 s): EasyParcel is not answering.
      await eventually(
        async () => calls.length,
        (n) => n === 2,
      );
      await new Promise((resolve) => setTimeout(resolve, 6_000));

      const late = await trackAll(
        worker,
        Array.from({ length: 4 }, () => parcel('delivered', 10)),
        worker.taskQueue,
        policy,
      );
      const other = simulator.backend.register({ scenario: 'delivered', ageMs: 10 * HOUR });
      const [otherTracked] = await trackAll(
        worker,
        [other.trackingNumber],
        worker.taskQueue,
        policy,
        CourierCode.SIMULATOR,
      );

      const shipmentId = otherTracked!.shipmentId;
      // Were the late polls to wait for EasyParcel, they and the two in its calls would hold all
      // six slots until those calls end (20 s after they went out): the other parcel with them.
      const synced = await eventually(
        () => row(shipmentId),
        (r) => r.last_synced_at !== null,
        8_000,
      );
      expect(synced.status).toBe('IN_TRANSIT');
      // The late polls were put off with no call made; after their retries, on timers, each
      // cycle ends as a sync problem that says why, before EasyParcel's calls have ended.
      const rows = await eventually(
        () => Promise.all(late.map((t) => row(t.shipmentId))),
        (all) => all.every((r) => r.sync_error !== null),
        10_000,
      );
      for (const r of rows) {
        expect(r.last_synced_at).toBeNull();
        expect(r.sync_error).toMatch(
          /easyparcel has not answered a call within 5 s: polls wait on their workflows' timers until a call answers in time; this one is put off, no call made/,
        );
      }
      // EasyParcel was never asked for the late parcels: only for the first two.
      const lateNumbers = late.map((t) => t.trackingNumber);
      expect(calls.flat().filter((n) => lateNumbers.includes(n))).toEqual([]);
      expect(calls.slice(0, 2).flat().sort()).toEqual(first.map((t) => t.trackingNumber).sort());
    } finally {
      simulator.backend.faults.clear();
      for (const handle of started.splice(0)) await handle.terminate('test over').catch(() => undefined);
      await worker.stop();
    }
  });

  it('loses and duplicates no poll when the worker dies in the middle of a bulk call', async () => {
    // The workflows, and their polls (local activities), on a worker process of its own; the
    // in-process worker only lends its client.
    const main = await startTestWorker({ db: database.db, couriers: {} });
    const queue = uniqueId('test-kill');
    const child = startChildWorker(queue);
    let replacement: TestWorker | null = null;
    try {
      await child.ready;
      const numbers = [parcel('delivered', 10), parcel('delivered', 60), parcel('delivered', 70)];
      // Every EasyParcel answer takes 4 s: the bulk call is still out when the worker dies.
      simulator.backend.faults.set({ kind: 'latency', ms: 4_000, format: 'easyparcel' });
      const before = easyParcelStats();
      const tracked = await trackAll(main, numbers, queue);

      await eventually(
        async () => easyParcelStats().byKind.track - before.byKind.track,
        (calls) => calls === 1,
      );
      child.process.kill('SIGKILL');
      await child.exited;
      simulator.backend.faults.clear();
      // Another worker on the same queue runs the workflow tasks again once they time out,
      // their polls with them.
      replacement = await startTestWorker({
        db: database.db,
        couriers: { [CourierCode.EASYPARCEL]: easyParcel(numbers.length) },
        batchWindowMs: WINDOW_MS,
        taskQueues: { taskQueue: queue, courierTaskQueue: `${queue}-courier-unused` },
      });

      const snapshots = await afterFirstPoll(tracked.map((t) => t.handle));
      expect(snapshots.map((s) => s.status)).toEqual(['IN_TRANSIT', 'OUT_FOR_DELIVERY', 'DELIVERED']);
      // One poll cycle each: the dead worker's attempt was retried, not lost and not counted twice.
      expect(snapshots.map((s) => s.polls)).toEqual([1, 1, 1]);
      for (const t of tracked) {
        // The poll cycle counts before its record step ends: wait for the read model.
        const events = await eventually(
          () =>
            database.db
              .selectFrom('tracking_events')
              .select(['event_key'])
              .where('shipment_id', '=', t.shipmentId)
              .execute(),
          (rows) => rows.length > 0,
        );
        expect(new Set(events.map((e) => e.event_key)).size).toBe(events.length);
      }
      // The retried polls met again in one bulk call on the new worker (its batch: these three).
      expect(easyParcelStats().byKind.track - before.byKind.track).toBe(2);
    } finally {
      child.process.kill('SIGKILL');
      await replacement?.stop();
      await main.stop();
    }
  });

  describe('the daily budget', () => {
    it('counts token requests and every bulk call, and is never exceeded by concurrent polls on two workers', async () => {
      const BUDGET = 5;
      const numbers = Array.from({ length: 12 }, () => parcel('delivered', 1));
      const ids = await Promise.all(
        numbers.map(async (trackingNumber) => {
          const id = uniqueId('shp');
          await database.db
            .insertInto('shipments')
            .values({ id, courier: CourierCode.EASYPARCEL, tracking_number: trackingNumber })
            .execute();
          return id;
        }),
      );
      // Two "workers": two activity sets, each with its own adapter (its own access token) and no
      // batching, every poll its own tracking request at once: twelve race for three units.
      const workers = [0, 1].map(() =>
        createShipmentActivities({
          db: database.db,
          couriers: { easyparcel: easyParcel() },
          dailyBudget: BUDGET,
          batchConcurrency: numbers.length,
          log: testLog,
        }),
      );
      const day = budgetDay(Date.now());
      await database.db.deleteFrom('courier_api_usage').where('courier', '=', 'easyparcel').execute();
      const before = easyParcelStats();

      const outcomes = await Promise.allSettled(
        numbers.map((trackingNumber, i) =>
          new MockActivityEnvironment().run(workers[i % 2]!.pollCourier, {
            shipmentId: ids[i]!,
            courier: CourierCode.EASYPARCEL,
            trackingNumber,
          }),
        ),
      );

      const after = easyParcelStats();
      const requests = after.calls - before.calls;
      const tokens = after.byKind.token - before.byKind.token;
      // Each adapter asked for its access token (both first in practice; one alone if the other's
      // tracking calls won the race): exactly the budget reached EasyParcel, tokens included.
      expect(tokens).toBeGreaterThanOrEqual(1);
      expect(requests).toBe(BUDGET);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(BUDGET - tokens);
      const refusals = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(refusals).toHaveLength(numbers.length - (BUDGET - tokens));
      for (const r of refusals) expect((r.reason as { type?: string }).type).toBe('BudgetExhausted');
      const usage = await database.db
        .selectFrom('courier_api_usage')
        .select('calls')
        .where('courier', '=', 'easyparcel')
        .where('day', '=', day)
        .executeTakeFirstOrThrow();
      expect(usage.calls).toBe(BUDGET);
    });
  });

  /** Every payload in a history, decoded to text (payload data is bytes, invisible to a plain stringify). */
  function payloadTexts(value: unknown): string {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (Array.isArray(value)) return value.map(payloadTexts).join('\n');
    if (value !== null && typeof value === 'object') {
      return Object.values(value as Record<string, unknown>)
        .map(payloadTexts)
        .join('\n');
    }
    return '';
  }

  /** A shipment workflows' worker in its own process (test/couriers/poll-worker-child.ts). */
  function startChildWorker(taskQueue: string) {
    const proc: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'poll-worker-child.ts')],
      {
        env: {
          ...process.env,
          WAYBILL_TEST_DB_URL: database.url,
          WAYBILL_TEST_EASYPARCEL_URL: `${simulator.url}/easyparcel`,
          WAYBILL_TEST_BATCH_WINDOW_MS: String(WINDOW_MS),
          WAYBILL_TEST_EASYPARCEL_BATCH: '3',
          WAYBILL_TEST_TASK_QUEUE: taskQueue,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`the worker exited early (${code})`)));
    });
    return { process: proc, ready, exited };
  }
});
