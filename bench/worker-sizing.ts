/**
 * Worker sizing figures (issue 15): what one cached shipment workflow costs in memory, and
 * what an evicted one costs to bring back (a replay of its history). The worker's sizing
 * defaults (src/config/worker-sizing.ts, `readWorkerSizing`) and docs/benchmarks.md#worker-sizing come
 * from these figures.
 *
 *   npm run bench:sizing -- [workflows=2000] [long-polls=12]
 *
 * A fresh stack (bench/support/stack.ts; data in .data/bench/sizing) whose worker child is
 * stopped: the worker runs in this process instead (`startWorker`, as the worker process
 * does), so that the heap can be garbage-collected (`--expose-gc`) and read before and after.
 *
 * 1. Warm-up: 50 parcels (bench/support/parcels.ts) poll once, plus `long-polls`' 20 parcels
 *    that poll every 5 s; the worker is bundled and its code paths warm.
 * 2. Baseline: gc, heap used and RSS of this process.
 * 3. `workflows` more parcels start, their first polls an hour away: once the sticky cache
 *    holds them all, every one is a cached workflow sitting on its timer, as an open parcel is
 *    between polls (without the finished activities of past polls, whose per-poll cost the
 *    bench:scale run's RSS shows). gc, heap and RSS again: the difference per workflow.
 * 4. Once the 20 fast parcels have polled `long-polls` times, ten of their histories and ten of
 *    the warm-up parcels' (one poll) are fetched and replayed (`Worker.runReplayHistories`, the bundle the worker runs) five times
 *    each: the replay's cost per history and per event, which is what a workflow task of an
 *    evicted workflow pays (beside fetching the history from the server).
 *
 * Prints the figures, writes bench/results/worker-sizing.json. Exit 1 on an error.
 */
import { temporal } from '@temporalio/proto';
import type { DataConverter } from '@temporalio/common';
import { createDataConverter } from '../src/codec';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { sql } from 'kysely';
import { createDb } from '../db/client';
import { createLogger } from '../src/logger';
import { runMain } from '../src/main-helpers';
import { pollPolicyFromConfig } from '../src/poll-policy';
import { shipmentWorkflowId } from '../src/workflows/contract';
import type { PollPolicy } from '../src/domain/polling';
import { localActivityType } from './support/history-actions';
import { installTemporalRuntime, startWorker } from '../src/worker';
import { fmt, machine, metricSum, mib, scrapeMetrics, sleep, writeResult } from './support/measure';
import {
  addParcels,
  eachParallel,
  PARCELS_DESCRIBED,
  parcelShipmentId,
  startParcel,
} from './support/parcels';
import { startProcessStack, type ProcessStack } from './support/stack';
import { workflowBundlerOptions } from '../src/workflow-bundle';

const WARM_UP = 50;
const FAST = 20;
const FAST_INTERVAL_MS = 5_000;
const REPLAYS = 5;
const SYNC_DEADLINE_MS = 15 * 60_000;

const gc = (globalThis as { gc?: () => void }).gc;

function parseArgs(argv: string[]): { workflows: number; longPolls: number } {
  const workflows = Number(argv[0] ?? 2_000);
  const longPolls = Number(argv[1] ?? 12);
  if (!Number.isInteger(workflows) || workflows < 100)
    throw new Error('workflows must be a whole number ≥ 100');
  if (!Number.isInteger(longPolls) || longPolls < 2) throw new Error('long-polls must be a whole number ≥ 2');
  return { workflows, longPolls };
}

/** Heap and RSS after two full collections (the heap then holds only what is reachable). */
async function settledMemory(): Promise<{ heapUsed: number; rss: number; external: number }> {
  await sleep(3_000);
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external + m.arrayBuffers };
}

/** Waits until every parcel in [from, to) has had `polls` answers written (shipments.last_synced_at moved). */
async function waitForPolls(stack: ProcessStack, from: number, to: number, polls: number): Promise<void> {
  const deadline = Date.now() + SYNC_DEADLINE_MS;
  for (;;) {
    // One poll is enough for the plain parcels; the fast ones are counted in their histories.
    if (polls === 1) {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from shipments
        where last_synced_at is not null
          and id in (select 'shp_scale_' || i from generate_series(${from}::int, ${to - 1}::int) as i)`.execute(
        stack.db,
      );
      if (rows[0]!.n >= to - from) return;
    } else {
      const handle = stack.temporal.client.workflow.getHandle(shipmentWorkflowId(parcelShipmentId(to - 1)));
      if (pollsIn(await handle.fetchHistory()) >= polls) return;
    }
    if (Date.now() > deadline) throw new Error(`parcels ${from}–${to - 1} did not poll ${polls}× in time`);
    await sleep(2_000);
  }
}

type History = temporal.api.history.v1.IHistory;
const EventType = temporal.api.enums.v1.EventType;
/** Poll cycles in a history: the shipment workflow's `pollCourier` local activities. */
const pollsIn = (history: History) =>
  (history.events ?? []).filter(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED &&
      e.markerRecordedEventAttributes?.markerName === 'core_local_activity' &&
      localActivityType(e) === 'pollCourier',
  ).length;

/** What one history is made of: events, bytes, and the hot loop's share per poll. */
function describe(history: History) {
  const events = history.events ?? [];
  const bytes = (e: temporal.api.history.v1.IHistoryEvent) =>
    temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
  const of = (type: temporal.api.enums.v1.EventType) => events.filter((e) => e.eventType === type);
  return {
    events: events.length,
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
    polls: pollsIn(history),
    workflowTasks: of(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length,
    activityInputBytes: of(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).reduce((n, e) => n + bytes(e), 0),
    activityResultBytes: of(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED).reduce((n, e) => n + bytes(e), 0),
  };
}

/** Milliseconds each history takes to replay (median of {@link REPLAYS}), after one warm-up pass. */
async function replayMs(
  code: string,
  dataConverter: DataConverter,
  histories: HistoryAndWorkflowId[],
): Promise<number[]> {
  const times: number[][] = histories.map(() => []);
  for (let pass = 0; pass <= REPLAYS; pass++) {
    let t = performance.now();
    let i = 0;
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { code }, dataConverter },
      histories,
    )) {
      if (result.error) throw result.error;
      const now = performance.now();
      if (pass > 0) times[i]!.push(now - t);
      t = now;
      i++;
    }
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!);
}

runMain(async () => {
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:sizing does)');
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
  const stack = await startProcessStack({
    name: 'sizing',
    stopOnInterrupt: true,
    timeScale: 1,
    env: {
      WAYBILL_POLL_PENDING: '1h',
      WAYBILL_POLL_INFO_RECEIVED: '1h',
      WAYBILL_POLL_IN_TRANSIT: '1h',
      WAYBILL_COURIER_CONCURRENCY: '20',
      WAYBILL_COURIER_CALLS_PER_SECOND: '1000',
      WAYBILL_COURIER_REQUESTS_PER_SECOND: '10000',
      // Every workflow stays cached: the point is what a cached one weighs.
      WAYBILL_WORKER_CACHED_WORKFLOWS: String(args.workflows + WARM_UP + FAST + 100),
    },
    say,
  });
  let stopWorker: (() => Promise<void>) | null = null;
  try {
    await stack.worker.stop();
    installTemporalRuntime(createLogger({ logLevel: 'warn' }).child({ component: 'temporal' }), {
      ownSignals: true,
      metrics: stack.config.worker,
    });
    const log = createLogger({ logLevel: 'warn' }).child({ component: 'worker' });
    const db = createDb({ url: stack.config.database.url, poolMax: stack.config.workerSizing.dbPoolMax });
    const worker = await startWorker({ config: stack.config, db, log });
    stopWorker = async () => {
      await worker.shutdown();
      await db.destroy();
    };
    say(`worker running in this process (pid ${process.pid})`);

    const policy = pollPolicyFromConfig(stack.config);
    const fastPolicy: PollPolicy = {
      ...policy,
      // One run long enough for `long-polls` polls: the replay is measured on a long history.
      maxCyclesPerRun: 10_000,
      intervalMs: Object.fromEntries(
        Object.keys(policy.intervalMs).map((status) => [status, FAST_INTERVAL_MS]),
      ) as PollPolicy['intervalMs'],
    };
    const plain = { from: WARM_UP + FAST, to: WARM_UP + FAST + args.workflows };
    await addParcels(stack, 0, plain.to);
    const fastStarted = Date.now();
    await eachParallel(0, WARM_UP + FAST, 20, (i) =>
      i < WARM_UP
        ? startParcel(stack, i, policy, Date.now() + (i / WARM_UP) * 10_000)
        : startParcel(stack, i, fastPolicy, Date.now()),
    );
    await waitForPolls(stack, 0, WARM_UP, 1);
    const before = await settledMemory();
    say(
      `baseline (${WARM_UP + FAST} cached): heap used ${fmt(mib(before.heapUsed))} MiB, RSS ${fmt(mib(before.rss))} MiB`,
    );

    const startedAt = Date.now();
    await eachParallel(plain.from, plain.to, 20, (i) => startParcel(stack, i, policy, startedAt + 3_600_000));
    const metricsUrl = `http://127.0.0.1:${stack.config.worker.metricsPort}/metrics`;
    const cachedNow = async () => metricSum(await scrapeMetrics(metricsUrl), 'temporal_sticky_cache_size');
    while ((await cachedNow()) < plain.to) {
      if (Date.now() - startedAt > SYNC_DEADLINE_MS)
        throw new Error('the cache did not take every workflow in time');
      await sleep(2_000);
    }
    const after = await settledMemory();
    const cached = await cachedNow();
    const perWorkflowKiB = (bytes: number) => bytes / args.workflows / 1024;
    const memory = {
      cachedAtEnd: cached,
      heapUsedMiB: { before: mib(before.heapUsed), after: mib(after.heapUsed) },
      rssMiB: { before: mib(before.rss), after: mib(after.rss) },
      perWorkflowKiB: {
        heapUsed: perWorkflowKiB(after.heapUsed - before.heapUsed),
        rss: perWorkflowKiB(after.rss - before.rss),
        external: perWorkflowKiB(after.external - before.external),
      },
    };
    say(
      `${args.workflows.toLocaleString()} more cached (${cached} in the cache): heap used ${fmt(mib(after.heapUsed))} MiB, RSS ${fmt(mib(after.rss))} MiB`,
    );

    await waitForPolls(stack, WARM_UP, WARM_UP + FAST, args.longPolls);
    const fastSeconds = (Date.now() - fastStarted) / 1000;
    const fetch = async (i: number): Promise<HistoryAndWorkflowId> => {
      const workflowId = shipmentWorkflowId(parcelShipmentId(i));
      return {
        workflowId,
        history: await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory(),
      };
    };
    // Replay the fast parcels' histories as they stood after `long-polls` polls: their later
    // events (a poll under way) are cut at the last completed workflow task of that poll.
    const short = await Promise.all(Array.from({ length: 10 }, (_, k) => fetch(k)));
    const long = await Promise.all(Array.from({ length: 10 }, (_, k) => fetch(WARM_UP + k)));
    await stopWorker();
    stopWorker = null;

    say('bundling the workflow code for the replays');
    const { code } = await bundleWorkflowCode({
      ...workflowBundlerOptions(stack.config.workerSizing.sharedWorkflowModules),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const dataConverter = createDataConverter(stack.config.payloads);
    const shortMs = await replayMs(code, dataConverter, short);
    const longMs = await replayMs(code, dataConverter, long);
    const shape = (h: HistoryAndWorkflowId[]) => h.map((x) => describe(x.history as History));
    const shortShape = shape(short);
    const longShape = shape(long);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const avg = (rows: ReturnType<typeof describe>[], pick: (r: ReturnType<typeof describe>) => number) =>
      mean(rows.map(pick));
    const eventsShort = avg(shortShape, (r) => r.events);
    const eventsLong = avg(longShape, (r) => r.events);
    const pollsShort = avg(shortShape, (r) => r.polls);
    const pollsLong = avg(longShape, (r) => r.polls);
    const msPerEvent = (mean(longMs) - mean(shortMs)) / (eventsLong - eventsShort);
    const perPoll = {
      events: (eventsLong - eventsShort) / (pollsLong - pollsShort),
      workflowTasks:
        (avg(longShape, (r) => r.workflowTasks) - avg(shortShape, (r) => r.workflowTasks)) /
        (pollsLong - pollsShort),
      historyBytes:
        (avg(longShape, (r) => r.bytes) - avg(shortShape, (r) => r.bytes)) / (pollsLong - pollsShort),
      activityInputBytes:
        (avg(longShape, (r) => r.activityInputBytes) - avg(shortShape, (r) => r.activityInputBytes)) /
        (pollsLong - pollsShort),
      activityResultBytes:
        (avg(longShape, (r) => r.activityResultBytes) - avg(shortShape, (r) => r.activityResultBytes)) /
        (pollsLong - pollsShort),
    };
    const replay = {
      short: {
        polls: pollsShort,
        events: eventsShort,
        bytes: avg(shortShape, (r) => r.bytes),
        ms: mean(shortMs),
      },
      long: { polls: pollsLong, events: eventsLong, bytes: avg(longShape, (r) => r.bytes), ms: mean(longMs) },
      msPerEvent,
      msFixed: mean(shortMs) - msPerEvent * eventsShort,
      fastParcelsSeconds: fastSeconds,
    };
    const lines = [
      '',
      `${machine().cores} cores (${machine().cpu}), ${machine().memGiB} GiB; shared with other work: figures from one run`,
      '',
      `cached shipment workflows, each waiting for its first poll (${args.workflows.toLocaleString()} added, ${cached} in the cache at the end):`,
      `  heap used  ${fmt(memory.heapUsedMiB.before)} → ${fmt(memory.heapUsedMiB.after)} MiB: ${fmt(memory.perWorkflowKiB.heapUsed, 1)} KiB per workflow (after gc)`,
      `  RSS        ${fmt(memory.rssMiB.before)} → ${fmt(memory.rssMiB.after)} MiB: ${fmt(memory.perWorkflowKiB.rss, 1)} KiB per workflow (V8 heap + the SDK core's native state)`,
      `  external   ${fmt(memory.perWorkflowKiB.external, 1)} KiB per workflow`,
      '',
      'the hot loop, per poll cycle (timer → courier call → read-model write → timer):',
      `  ${fmt(perPoll.events, 1)} history events, ${fmt(perPoll.workflowTasks, 1)} workflow tasks, ${fmt(perPoll.historyBytes)} history bytes` +
        ` (activity inputs ${fmt(perPoll.activityInputBytes)} B, results ${fmt(perPoll.activityResultBytes)} B)`,
      '',
      `replay of an evicted workflow (median of ${REPLAYS}, ${short.length} histories each):`,
      `  ${fmt(pollsShort, 1)} polls, ${fmt(eventsShort)} events, ${fmt(replay.short.bytes)} B: ${fmt(replay.short.ms, 1)} ms`,
      `  ${fmt(pollsLong, 1)} polls, ${fmt(eventsLong)} events, ${fmt(replay.long.bytes)} B: ${fmt(replay.long.ms, 1)} ms`,
      `  ≈ ${fmt(replay.msFixed, 1)} ms + ${fmt(msPerEvent * 1000, 1)} µs per event`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const out = writeResult('worker-sizing', {
      machine: machine(),
      args: { ...args, parcels: PARCELS_DESCRIBED, fastIntervalMs: FAST_INTERVAL_MS },
      memory,
      perPoll,
      replay,
      seconds: (Date.now() - t0) / 1000,
    });
    say(`wrote ${out}; stopping the stack`);
  } finally {
    await stopWorker?.().catch(() => undefined);
    await stack.stop();
  }
  process.exit(0);
});
