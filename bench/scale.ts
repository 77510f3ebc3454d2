/**
 * Scale: open shipment workflows held by one worker and the Temporal dev server, ramped to N
 * (issue 8: "ramp to ≥ 10,000: worker RSS, poll lateness p50/p99, server health"; issue 15's
 * goals: ≥ 10,000 open parcels, ≥ 20 polls/s sustained for 10 minutes, lateness p99 ≤ 5 s,
 * worker RSS ≤ 1.5 GiB, with the worker sized by its defaults, src/config).
 *
 *   npm run bench:scale -- [workflows=10000] [minutes=10] [interval=8m] [plateaus=10,25,50,100] [--temporal dev|server] [--workers N]
 *
 * A fresh stack (bench/support/stack.ts; data in .data/bench/scale); plateaus at `plateaus` %
 * of N, each held `minutes`. The parcels are bench/support/parcels.ts's: each is registered in the courier simulator
 * (real-time clock) as a `delivered` parcel 7 courier hours old: IN_TRANSIT until 14 h, so
 * every poll is the same cycle (timer → courier call → read-model write → timer). Its
 * shipments row is inserted as bookShipment does; `shipmentWorkflow` is started on the main
 * task queue with the orders' poll policy, as the order workflow's startChild does, but with no
 * parent order (in the product it is open too, idle) and its first poll at an evenly spread
 * moment of the first interval after the ramp (the input's `nextPollAtMs`, which
 * continue-as-new uses; see RAMP_STARTS_PER_SECOND_FLOOR), as for parcels booked over time. Every status polls every `interval` (10,000 parcels at 8 min:
 * 20.8 polls/s, 15× the default 2 h IN_TRANSIT interval); the courier queue's caps are lifted to
 * 20 at once, 1,000/s (the defaults, 3 and 5/s, cap a whole fleet at 5 polls/s).
 *
 * After each ramp the run settles before the hold: once the new parcels' first polls begin, it
 * waits until any backlog has drained (see settle(): a later plateau's ramp runs while the earlier
 * parcels poll, or a ramp slower than RAMP_STARTS_PER_SECOND_FLOOR) and reports how long that
 * took and how late the polls were meanwhile.
 *
 * Poll lateness, from the read model each poll cycle writes in one transaction:
 * `last_synced_at` (workflow time when the courier's answer reached the workflow) and
 * `next_poll_at` (that + the interval: the next poll's schedule; for the first poll, the
 * `nextPollAtMs` given). Both are read for every shipment every min(interval/6, 10 s); when
 * `last_synced_at` moves, lateness = it − the schedule seen before. Every poll of every
 * workflow, no workflow change, and it errs late: timer, workflow task, courier queue wait,
 * call and the workflow task taking the answer are all in it. Beside it: the worker's Temporal
 * metrics (mean schedule-to-start waits; a workflow task's run, replays of evicted workflows,
 * each activity's run: where a late poll's time went) and overdue shipments (due > 1 min ago, no answer).
 * Server health: every 5 s a GetSystemInfo and a visibility count of running shipment
 * workflows, timed; the dev server's and the worker's RSS and CPU from /proc. The worker child
 * runs with the heap docs/production.md advises (`NODE_OPTIONS`, {@link WORKER_HEAP}).
 *
 * BENCH_WORKER_CPU_PROF=<dir> runs the worker with `--cpu-prof` into that folder (a profile per
 * thread, written when the stack stops; the profiler's own cost slows the worker).
 *
 * Prints three tables and PASS/MISS lines, writes bench/results/scale.json. Exit 0 also on a
 * MISS (the figures are the result), 1 on an error, 130 after Ctrl-C.
 */
import { sql } from 'kysely';
import { parseDuration } from '../src/config';
import { runMain } from '../src/main-helpers';
import { pollPolicyFromConfig } from '../src/poll-policy';
import {
  checkLine,
  metricSum,
  fmt,
  machine,
  mib,
  sampleMachine,
  sampleProcess,
  scrapeMetrics,
  serverWindow,
  sleep,
  spread,
  table,
  temporalWindow,
  usage,
  writeResult,
  type ProcSample,
  type ServerWindow,
  type Spread,
  type TemporalWindow,
  type Usage,
} from './support/measure';
import {
  addParcels,
  eachParallel,
  PARCELS_DESCRIBED,
  parcelShipmentId,
  parcelTaskTimeout,
  startParcel,
} from './support/parcels';
import { serverMetrics, startProcessStack, takeTargetArgs, type ProcessStack } from './support/stack';

/** Issue 15's goals for one worker. */
const GOAL_WORKFLOWS = 10_000;
const GOAL_POLLS_PER_SECOND = 20;
const GOAL_HOLD_MS = 10 * 60_000;
const GOAL_LATENESS_P99_MS = 5_000;
const GOAL_WORKER_RSS_MIB = 1_536;
const PLATEAUS = [10, 25, 50, 100];
const SAMPLE_EVERY_MS = 5_000;
const PROBE_TIMEOUT_MS = 5_000;
const OVERDUE_AFTER_MS = 60_000;
const STARTS_IN_FLIGHT = 20;
/** The worker's heap as docs/production.md#sizing advises (its RSS is mostly outside the heap). */
const WORKER_HEAP = { NODE_OPTIONS: '--max-old-space-size=1280' };
const COURIER_CAPS = {
  WAYBILL_COURIER_CONCURRENCY: '20',
  WAYBILL_COURIER_CALLS_PER_SECOND: '1000',
  WAYBILL_COURIER_REQUESTS_PER_SECOND: '10000',
};

/**
 * Starts a second the ramp is assumed to reach (most ramps measured ran 42-136; one, on a loaded
 * machine, 36: a ramp slower than this still has polls due while it runs, and settling absorbs them):
 * a ramp's first polls fall due only once it should be over. Polls due while it still starts
 * workflows queue behind the starts, are answered in a burst as that backlog drains, and come
 * due again in a burst one interval later: holds after such a backlog showed its echo (the tail
 * growing 8 minutes after the ramp), not the steady state of parcels booked over time.
 */
const RAMP_STARTS_PER_SECOND_FLOOR = 40;

/** Where in the first interval parcel i polls first: an even spread (golden-ratio sequence). */
const firstPollShare = (i: number) => (i * 0.6180339887498949) % 1;

interface Args {
  workflows: number;
  holdMs: number;
  intervalMs: number;
  /** Plateaus as shares of `workflows` (0–1], ascending. */
  plateaus: number[];
}

function parseArgs(argv: string[]): Args {
  const workflows = Number(argv[0] ?? GOAL_WORKFLOWS);
  const holdMs = Number(argv[1] ?? 10) * 60_000;
  const intervalMs = parseDuration(argv[2] ?? '8m');
  const plateaus = (argv[3] ?? PLATEAUS.join(',')).split(',').map((p) => Number(p) / 100);
  if (plateaus.some((p, i) => !(p > 0 && p <= 1) || (i > 0 && p <= plateaus[i - 1]!)))
    throw new Error(
      'plateaus must be ascending percentages of workflows, each in (0, 100], e.g. 10,25,50,100',
    );
  if (!Number.isInteger(workflows) || workflows < 10)
    throw new Error('workflows must be a whole number ≥ 10');
  if (!(holdMs >= 60_000)) throw new Error('minutes (each plateau) must be ≥ 1');
  if (intervalMs === null || intervalMs < 10_000)
    throw new Error('interval must be a duration ≥ 10s, e.g. 20m');
  return { workflows, holdMs, intervalMs, plateaus };
}

/** Every poll the read model shows, with how late it was; and each shipment's next schedule. */
class PollLog {
  readonly polls: { at: number; due: number; latenessMs: number }[] = [];
  private seen = new Map<string, { synced: number | null; due: number | null }>();

  /** A shipment about to start whose first poll is due at `due` (epoch ms). */
  expect(id: string, due: number): void {
    this.seen.set(id, { synced: null, due });
  }

  async scan(stack: ProcessStack): Promise<void> {
    const { rows } = await sql<{ id: string; synced: number | null; due: number | null }>`
      select id, (extract(epoch from last_synced_at) * 1000)::float8 as synced,
             (extract(epoch from next_poll_at) * 1000)::float8 as due
      from shipments where id like 'shp_scale_%'`.execute(stack.db);
    for (const row of rows) {
      const before = this.seen.get(row.id);
      if (row.synced === null || row.synced === before?.synced) continue;
      if (before?.due != null)
        this.polls.push({ at: row.synced, due: before.due, latenessMs: row.synced - before.due });
      this.seen.set(row.id, { synced: row.synced, due: row.due });
    }
  }

  /**
   * Polls that fell due in [from, to], answered or not by `to` (call just after a scan at
   * `to`): the demand of that window. Each poll is scheduled an interval after the answer
   * before it, so a window's demand is not exactly parcels / interval: after a backlog the
   * late answers push their next polls later, and lateness stretches every parcel's period.
   */
  dueBetween(from: number, to: number): number {
    let n = this.polls.filter((p) => p.due >= from && p.due <= to).length;
    for (const { due } of this.seen.values()) if (due !== null && due >= from && due <= to) n++;
    return n;
  }

  /** Shipments whose scheduled poll is more than `pastMs` past at `now` with no answer. */
  behind(now: number, pastMs = OVERDUE_AFTER_MS): number {
    let n = 0;
    for (const { due } of this.seen.values()) if (due !== null && due < now - pastMs) n++;
    return n;
  }
}

interface Sample {
  at: number;
  worker: ProcSample | null;
  server: ProcSample | null;
  /** The whole machine (CPU of every process, this run's and anyone else's). */
  machine: ProcSample;
  systemInfoMs: number | null;
  countMs: number | null;
  running: number | null;
  /** The worker's main-thread delay over its gauge's last window (15 s), ms. */
  loopDelayMs: { mean: number; p99: number } | null;
}

async function sample(stack: ProcessStack, serverPid: number | null, metricsUrl: string): Promise<Sample> {
  const { connection, client } = stack.temporal;
  const timed = async <T>(call: () => Promise<T>): Promise<{ ms: number; value: T } | null> => {
    const t0 = performance.now();
    try {
      const value = await connection.withDeadline(Date.now() + PROBE_TIMEOUT_MS, call);
      return { ms: performance.now() - t0, value };
    } catch {
      return null;
    }
  };
  const info = await timed(() => connection.workflowService.getSystemInfo({}));
  const count = await timed(() =>
    client.workflow.count('WorkflowType = "shipmentWorkflow" AND ExecutionStatus = "Running"'),
  );
  const workerPid = stack.worker.pid();
  const loop = await scrapeMetrics(metricsUrl).catch(() => null);
  const loopStat = (stat: string) =>
    loop === null ? NaN : metricSum(loop, 'waybill_worker_event_loop_delay', `stat="${stat}"`);
  return {
    loopDelayMs: loop === null ? null : { mean: loopStat('mean'), p99: loopStat('p99') },
    at: Date.now(),
    worker: workerPid === null ? null : sampleProcess(workerPid),
    server: serverPid === null ? null : sampleProcess(serverPid),
    machine: sampleMachine(),
    systemInfoMs: info?.ms ?? null,
    countMs: count?.ms ?? null,
    running: count?.value.count ?? null,
  };
}

/** Inserts the shipment rows, registers the parcels and starts workflows [from, to), 20 at a time. */
async function ramp(
  stack: ProcessStack,
  log: PollLog,
  args: Args,
  from: number,
  to: number,
): Promise<{ startsPerSecond: number; startMs: Spread; pollsFrom: number }> {
  await addParcels(stack, from, to);
  const policy = pollPolicyFromConfig(stack.config);
  const t0 = Date.now();
  const pollsFrom = t0 + Math.round(((to - from) / RAMP_STARTS_PER_SECOND_FLOOR) * 1000);
  const startMs: number[] = [];
  await eachParallel(from, to, STARTS_IN_FLIGHT, async (i) => {
    const nextPollAtMs = pollsFrom + Math.round(firstPollShare(i) * args.intervalMs);
    log.expect(parcelShipmentId(i), nextPollAtMs);
    const started = performance.now();
    await startParcel(stack, i, policy, nextPollAtMs);
    startMs.push(performance.now() - started);
  });
  return {
    startsPerSecond: (to - from) / ((Date.now() - t0) / 1000),
    startMs: spread(startMs),
    pollsFrom,
  };
}

/**
 * Waits, after a ramp and once its parcels' first polls have begun, until any backlog has
 * drained: the ramp starts workflows far faster than parcels are booked in production (68 a
 * second here against a few a minute), and polls that fall due meanwhile (the earlier plateaus',
 * or the first ones of a ramp slower than assumed) queue behind the starts. Settled when, just after a scan, at most one
 * second's worth of polls is more than the lateness goal past its schedule, twice in a row; at
 * most one interval (a backlog that has not drained by then will not, and the hold shows it).
 */
async function settle(
  stack: ProcessStack,
  log: PollLog,
  args: Args,
  workflows: number,
  say: (line: string) => void,
): Promise<{ from: number; seconds: number; settled: boolean }> {
  const from = Date.now();
  const allowed = Math.ceil(workflows / (args.intervalMs / 1000));
  let calm = 0;
  while (Date.now() - from < args.intervalMs) {
    await sleep(Math.min(10_000, args.intervalMs / 6));
    const now = Date.now();
    await log.scan(stack);
    calm = log.behind(now, GOAL_LATENESS_P99_MS) <= allowed ? calm + 1 : 0;
    if (calm >= 2) break;
  }
  const seconds = (Date.now() - from) / 1000;
  say(`settled ${calm >= 2 ? 'after' : 'not within one interval,'} ${fmt(seconds)} s`);
  return { from, seconds, settled: calm >= 2 };
}

interface Plateau {
  workflows: number;
  startsPerSecond: number;
  /** How long the server took to start one workflow during the ramp. */
  startMs: Spread;
  holdSeconds: number;
  expectedPollsPerSecond: number;
  /** Polls that fell due in the hold, per second, answered or not: the hold's actual demand. */
  duePerSecond: number;
  pollsPerSecond: number;
  courierCallsPerSecond: number;
  latenessMs: Spread;
  /** Lateness p99 of each minute of the hold: a tail spread over the hold or bunched in bursts. */
  latenessP99ByMinuteMs: number[];
  /** From the end of the ramp to the hold: until the ramp's backlog drained (see {@link settle}). */
  settleSeconds: number;
  /** False when the backlog had not drained after one interval (the hold started anyway). */
  settled: boolean;
  /** Lateness of the polls answered while settling. */
  latenessSettlingMs: Spread;
  overdue: number;
  worker: Usage | null;
  server: Usage | null;
  /** The whole machine: CPU of every process (anyone's), memory in use. */
  machine: Usage | null;
  systemInfoMs: Spread;
  /** The worker's main-thread delay: the median of its gauge's window means, and their p99 at its worst. */
  loopDelayMs: { mean: number; p99: number };
  countMs: Spread;
  probeFailures: number;
  running: number | null;
  temporal: TemporalWindow;
  /** Where a poll's time goes, from the worker's metrics over the hold. */
  inWorker: WorkerWindow;
  /** And from the Temporal server's own. */
  inServer: ServerWindow;
}

/**
 * The worker's side of a hold (means in ms over the hold): a workflow task's run in the worker
 * (replays included) and the replays alone (an evicted workflow brought back from its
 * history), the two activities of a poll cycle from start to end (recordTracking, a local
 * activity, includes any wait for a Postgres connection).
 */
function workerWindow(before: Map<string, number>, after: Map<string, number>) {
  const delta = (name: string, ...labels: string[]) =>
    metricSum(after, name, ...labels) - metricSum(before, name, ...labels);
  const mean = (name: string, ...labels: string[]) =>
    delta(`${name}_sum`, ...labels) / delta(`${name}_count`, ...labels);
  return {
    workflowTaskRunMs: mean('temporal_workflow_task_execution_latency'),
    replays: delta('temporal_workflow_task_replay_latency_count'),
    replayMs: mean('temporal_workflow_task_replay_latency'),
    // A cache miss starts by fetching the run's whole history from the server.
    historyFetches: delta('temporal_request_latency_count', 'operation="GetWorkflowExecutionHistory"'),
    historyFetchMs: mean('temporal_request_latency', 'operation="GetWorkflowExecutionHistory"'),
    pollCourierMs: mean('temporal_local_activity_execution_latency', 'activity_type="pollCourier"'),
    // A local activity: it runs inside the workflow task that took the courier's answer.
    recordTrackingMs: mean('temporal_local_activity_execution_latency', 'activity_type="recordTracking"'),
    // From the workflow scheduling each to its result: its run plus its wait for the worker.
    pollCourierEndToEndMs: mean(
      'temporal_local_activity_succeed_endtoend_latency',
      'activity_type="pollCourier"',
    ),
    recordTrackingEndToEndMs: mean(
      'temporal_local_activity_succeed_endtoend_latency',
      'activity_type="recordTracking"',
    ),
  };
}
type WorkerWindow = ReturnType<typeof workerWindow>;

/** The Temporal server's side of each hold, when its own metrics were on. */
function serverReport(temporal: string, plateaus: Plateau[]): string[] {
  if (plateaus.every((p) => Number.isNaN(p.inServer.persistenceCallsPerSecond)))
    return ["(the Temporal server's own metrics were off: BENCH_SERVER_METRICS=1 for them)"];
  return [
    `where the time goes in the Temporal server (${temporal}; means, ms)`,
    ...table(plateaus, [
      ['workflows', (p) => p.workflows.toLocaleString()],
      ['timer late', (p) => fmt(p.inServer.timerLateMs, 1)],
      ['WFT to matching', (p) => fmt(p.inServer.workflowTaskToMatchingMs, 1)],
      ['sync/s', (p) => fmt(p.inServer.syncMatchesPerSecond, 1)],
      ['backlog/s', (p) => fmt(p.inServer.backlogMatchesPerSecond, 1)],
      ['backlog wait', (p) => fmt(p.inServer.backlogWaitMs, 1)],
      ['started', (p) => fmt(p.inServer.recordStartedMs, 1)],
      ['WFT timeouts', (p) => fmt(p.inServer.workflowTaskTimeouts)],
      ['shard wait', (p) => fmt(p.inServer.shardWriteWaitMs, 1)],
      ['state misses %', (p) => fmt(100 * p.inServer.mutableStateMissRate)],
      ['DB calls/s', (p) => fmt(p.inServer.persistenceCallsPerSecond)],
      ['DB call', (p) => fmt(p.inServer.persistenceMs, 1)],
    ]),
    '(timer late: a timer fired after it was due; WFT to matching: a scheduled workflow task',
    ' handed to matching; sync/backlog: workflow tasks given to a waiting poller at once, or',
    " kept in matching's backlog until one asked (its wait); started: recording a task as",
    ' started; WFT timeouts: tasks the server took back at their start-to-close timeout (redone from scratch); shard',
    " wait: for the shard's one-at-a-time write; state misses: the history service's workflow cache)",
  ];
}

function report(args: Args, temporal: string, plateaus: Plateau[]): string[] {
  return [
    `poll lateness (ms) in each hold: every ${args.intervalMs / 60_000} min, hold ${args.holdMs / 60_000} min`,
    ...table(plateaus, [
      ['workflows', (p) => p.workflows.toLocaleString()],
      ['starts/s', (p) => fmt(p.startsPerSecond)],
      ['expected/s', (p) => fmt(p.expectedPollsPerSecond, 1)],
      ['due/s', (p) => fmt(p.duePerSecond, 1)],
      ['polls/s', (p) => fmt(p.pollsPerSecond, 1)],
      ['late p50', (p) => fmt(p.latenessMs.p50)],
      ['p99', (p) => fmt(p.latenessMs.p99)],
      ['max', (p) => fmt(p.latenessMs.max)],
      ['settle s', (p) => `${fmt(p.settleSeconds)}${p.settled ? '' : ' (not)'}`],
      ['its p99', (p) => fmt(p.latenessSettlingMs.p99)],
      ['overdue', (p) => String(p.overdue)],
      ['WFT wait', (p) => fmt(p.temporal.workflowTaskWaitMs)],
      ['call wait', (p) => fmt(p.temporal.courierCallWaitMs)],
      ['WFT done', (p) => fmt(p.temporal.completeWorkflowTaskMs)],
    ]),
    '',
    'where the time goes in the worker (means, ms; replays: evicted workflows brought back)',
    ...table(plateaus, [
      ['workflows', (p) => p.workflows.toLocaleString()],
      ['WFTs', (p) => fmt(p.temporal.workflowTasks)],
      ['WFT run', (p) => fmt(p.inWorker.workflowTaskRunMs, 1)],
      ['misses', (p) => fmt(p.temporal.stickyCacheMisses)],
      ['replays', (p) => fmt(p.inWorker.replays)],
      ['replay', (p) => fmt(p.inWorker.replayMs, 1)],
      ['history fetches', (p) => fmt(p.inWorker.historyFetches)],
      ['fetch', (p) => fmt(p.inWorker.historyFetchMs, 1)],
      ['pollCourier', (p) => fmt(p.inWorker.pollCourierMs, 1)],
      ['end to end', (p) => fmt(p.inWorker.pollCourierEndToEndMs, 1)],
      ['recordTracking', (p) => fmt(p.inWorker.recordTrackingMs, 1)],
      ['end to end', (p) => fmt(p.inWorker.recordTrackingEndToEndMs, 1)],
    ]),
    '',
    ...serverReport(temporal, plateaus),
    '(starts/s: during the ramp to the plateau; expected/s: parcels / interval; due/s: polls that fell',
    ' due in the hold, answered or not (each poll is scheduled an interval after the last answer, so',
    " late answers, the backlog's above all, move later polls out of the hold); settle s: from the",
    " ramp's end (or its first polls' start, if later) until no more than a",
    " second of polls was over 5 s late (the ramp's backlog drained; at most one interval), its",
    ' p99: lateness of the polls while settling; late p50/p99/max: the hold, after settling;',
    ' overdue: at the end of the hold; WFT wait, call wait: mean',
    ' schedule-to-start of workflow tasks / courier calls; WFT done: mean time the server took to',
    ' accept a finished workflow task; all ms)',
    '',
    'worker and dev server in each hold (RSS MiB at the end, and the most seen; CPU in cores, box: the whole',
    ' machine; sysinfo, count: latency of the health probes, ms; cached, evicted: sticky cache)',
    ...table(plateaus, [
      ['workflows', (p) => p.workflows.toLocaleString()],
      ['worker RSS', (p) => fmt(p.worker?.rssMiBEnd ?? NaN)],
      ['max', (p) => fmt(p.worker?.rssMiBMax ?? NaN)],
      ['CPU', (p) => fmt(p.worker?.cpuCores ?? NaN, 2)],
      ['server RSS', (p) => fmt(p.server?.rssMiBEnd ?? NaN)],
      ['CPU', (p) => fmt(p.server?.cpuCores ?? NaN, 2)],
      ['box CPU', (p) => fmt(p.machine?.cpuCores ?? NaN, 2)],
      ['loop delay/p99', (p) => `${fmt(p.loopDelayMs.mean, 1)}/${fmt(p.loopDelayMs.p99, 1)}`],
      ['sysinfo p99', (p) => fmt(p.systemInfoMs.p99, 1)],
      ['count p50/p99', (p) => `${fmt(p.countMs.p50)}/${fmt(p.countMs.p99)}`],
      ['running', (p) => (p.running === null ? '–' : p.running.toLocaleString())],
      ['cached', (p) => fmt(p.temporal.stickyCacheSize)],
      ['evicted', (p) => fmt(p.temporal.stickyCacheEvictions)],
    ]),
  ];
}

runMain(async () => {
  const target = takeTargetArgs(process.argv.slice(2));
  const args = parseArgs(target.rest);
  const t0 = Date.now();
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
  const targets = [...new Set(args.plateaus.map((share) => Math.round(share * args.workflows)))];
  const interval = `${args.intervalMs / 1000}s`;
  say(
    `scale: plateaus ${targets.map((t) => t.toLocaleString()).join(', ')}; polls every ${interval}; hold ${args.holdMs / 60_000} min each; parcels' task timeout ${parcelTaskTimeout()}; the Temporal server's own metrics ${serverMetrics() ? 'on' : 'off (BENCH_SERVER_METRICS=1 for them)'}`,
  );
  const stack = await startProcessStack({
    name: 'scale',
    stopOnInterrupt: true,
    temporal: target.temporal,
    workers: target.workers,
    ...(target.shards !== undefined ? { shards: target.shards } : {}),
    timeScale: 1,
    env: {
      WAYBILL_POLL_PENDING: interval,
      WAYBILL_POLL_INFO_RECEIVED: interval,
      WAYBILL_POLL_IN_TRANSIT: interval,
      ...COURIER_CAPS,
      ...WORKER_HEAP,
    },
    say,
  });
  const serverPid = stack.temporalServerPid();
  const metricsUrl = `http://127.0.0.1:${stack.config.worker.metricsPort}/metrics`;
  const serverMetricsUrl = stack.temporalMetricsUrl;
  const scrapeServer = () =>
    serverMetricsUrl === null ? Promise.resolve(new Map<string, number>()) : scrapeMetrics(serverMetricsUrl);
  const log = new PollLog();
  const samples: Sample[] = [];
  let running = true;
  let loopError: unknown = null;
  const loops = [
    async () => {
      await log.scan(stack);
      await sleep(Math.min(10_000, args.intervalMs / 6));
    },
    async () => {
      samples.push(await sample(stack, serverPid, metricsUrl));
      await sleep(SAMPLE_EVERY_MS);
    },
  ].map(async (step) => {
    while (running) {
      await step().catch((err: unknown) => {
        loopError ??= err;
        return sleep(1_000);
      });
    }
  });
  try {
    const idle = await sample(stack, serverPid, metricsUrl);
    say(
      `idle: worker RSS ${fmt(mib(idle.worker?.rssBytes ?? NaN))} MiB, dev server ${serverPid === null ? 'pid not found' : `RSS ${fmt(mib(idle.server?.rssBytes ?? NaN))} MiB`}`,
    );
    const plateaus: Plateau[] = [];
    let open = 0;
    for (const target of targets) {
      const { startsPerSecond, startMs, pollsFrom } = await ramp(stack, log, args, open, target);
      say(
        `ramp ${open.toLocaleString()} → ${target.toLocaleString()}: ${fmt(startsPerSecond)} starts/s (p50 ${fmt(startMs.p50)} ms, p99 ${fmt(startMs.p99)} ms each); holding`,
      );
      // The new parcels' first polls begin once the ramp should be over (RAMP_STARTS_PER_SECOND_FLOOR).
      if (Date.now() < pollsFrom) {
        say(`their first polls begin in ${fmt((pollsFrom - Date.now()) / 1000)} s`);
        await sleep(pollsFrom - Date.now());
      }
      open = target;
      const settling = await settle(stack, log, args, target, say);
      const before = await scrapeMetrics(metricsUrl);
      const serverBefore = await scrapeServer();
      const callsBefore = stack.courier.backend.stats.snapshot().formats.native.byKind.track;
      const from = Date.now();
      await sleep(args.holdMs);
      await log.scan(stack);
      const to = Date.now();
      if (loopError) throw loopError;
      const calls = stack.courier.backend.stats.snapshot().formats.native.byKind.track - callsBefore;
      const inHold = samples.filter((s) => s.at >= from && s.at <= to);
      const polls = log.polls.filter((p) => p.at >= from && p.at <= to);
      const afterHold = await scrapeMetrics(metricsUrl);
      const serverAfter = await scrapeServer();
      const numbers = (pick: (s: Sample) => number | null) =>
        inHold.map(pick).filter((v): v is number => v !== null);
      const p: Plateau = {
        workflows: target,
        startsPerSecond,
        startMs,
        holdSeconds: (to - from) / 1000,
        expectedPollsPerSecond: target / (args.intervalMs / 1000),
        duePerSecond: log.dueBetween(from, to) / ((to - from) / 1000),
        pollsPerSecond: polls.length / ((to - from) / 1000),
        courierCallsPerSecond: calls / ((to - from) / 1000),
        latenessMs: spread(polls.map((poll) => poll.latenessMs)),
        latenessP99ByMinuteMs: Array.from(
          { length: Math.ceil((to - from) / 60_000) },
          (_, m) =>
            spread(
              polls
                .filter((poll) => poll.at >= from + m * 60_000 && poll.at < from + (m + 1) * 60_000)
                .map((poll) => poll.latenessMs),
            ).p99,
        ),
        settleSeconds: settling.seconds,
        settled: settling.settled,
        latenessSettlingMs: spread(
          log.polls
            .filter((poll) => poll.at >= settling.from && poll.at < from)
            .map((poll) => poll.latenessMs),
        ),
        overdue: log.behind(to),
        worker: usage(inHold.map((s) => s.worker)),
        server: usage(inHold.map((s) => s.server)),
        machine: usage(inHold.map((s) => s.machine)),
        systemInfoMs: spread(numbers((s) => s.systemInfoMs)),
        loopDelayMs: {
          mean: spread(numbers((s) => s.loopDelayMs?.mean ?? null)).p50,
          p99: spread(numbers((s) => s.loopDelayMs?.p99 ?? null)).max,
        },
        countMs: spread(numbers((s) => s.countMs)),
        probeFailures: inHold.filter((s) => s.systemInfoMs === null || s.countMs === null).length,
        running: inHold[inHold.length - 1]?.running ?? null,
        temporal: temporalWindow(before, afterHold),
        inWorker: workerWindow(before, afterHold),
        inServer: serverWindow(serverBefore, serverAfter, (to - from) / 1000),
      };
      plateaus.push(p);
      say(
        `lateness p99 by minute of the hold (s): ${p.latenessP99ByMinuteMs.map((ms) => fmt(ms / 1000, 1)).join(' ')}`,
      );
      say(
        `${target.toLocaleString()}: ${fmt(p.pollsPerSecond, 1)} polls/s (expected ${fmt(p.expectedPollsPerSecond, 1)}), lateness p50 ${fmt(p.latenessMs.p50)} ms p99 ${fmt(p.latenessMs.p99)} ms, ${p.overdue} overdue, worker RSS ${fmt(p.worker?.rssMiBEnd ?? NaN)} MiB`,
      );
    }
    running = false;
    await Promise.all(loops);
    const ended = await stack.temporal.client.workflow.count(
      'WorkflowType = "shipmentWorkflow" AND ExecutionStatus != "Running" AND ExecutionStatus != "ContinuedAsNew"',
    );
    const { n: syncErrors } = await stack.db
      .selectFrom('shipments')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('sync_error', 'is not', null)
      .executeTakeFirstOrThrow();

    const last = plateaus[plateaus.length - 1]!;
    const checks = [
      {
        name: `open shipment workflows held, none overdue (goal ≥ ${GOAL_WORKFLOWS.toLocaleString()})`,
        pass: last.workflows >= GOAL_WORKFLOWS && last.running === last.workflows && last.overdue === 0,
        detail: `${(last.running ?? 0).toLocaleString()} running, ${last.overdue} overdue`,
      },
      {
        name: 'polls kept pace with the schedule at every plateau (≥ 95 % of expected polls/s)',
        pass: plateaus.every((p) => p.pollsPerSecond >= 0.95 * p.expectedPollsPerSecond),
        detail: plateaus
          .map((p) => `${fmt(p.pollsPerSecond, 1)}/${fmt(p.expectedPollsPerSecond, 1)}`)
          .join(', '),
      },
      {
        name: `≥ ${GOAL_POLLS_PER_SECOND} polls/s sustained for ${GOAL_HOLD_MS / 60_000} min at ${GOAL_WORKFLOWS.toLocaleString()} parcels`,
        pass:
          last.workflows >= GOAL_WORKFLOWS &&
          last.holdSeconds * 1000 >= GOAL_HOLD_MS &&
          last.pollsPerSecond >= GOAL_POLLS_PER_SECOND,
        detail: `${fmt(last.pollsPerSecond, 1)} polls/s over ${fmt(last.holdSeconds / 60, 1)} min at ${last.workflows.toLocaleString()}`,
      },
      {
        name: `poll lateness p99 ≤ ${GOAL_LATENESS_P99_MS / 1000} s in every hold (after its ramp's backlog drained)`,
        pass: plateaus.every((p) => p.latenessMs.p99 <= GOAL_LATENESS_P99_MS),
        detail: plateaus
          .map(
            (p) =>
              `${fmt(p.latenessMs.p99 / 1000, 1)} s (settled ${p.settled ? 'after' : 'not within'} ${fmt(p.settleSeconds)} s, p99 ${fmt(p.latenessSettlingMs.p99 / 1000, 1)} s meanwhile)`,
          )
          .join(', '),
      },
      {
        name: `worker RSS ≤ ${fmt(GOAL_WORKER_RSS_MIB / 1024, 1)} GiB in every hold`,
        pass: plateaus.every((p) => (p.worker?.rssMiBMax ?? Infinity) <= GOAL_WORKER_RSS_MIB),
        detail: `max ${plateaus.map((p) => fmt(p.worker?.rssMiBMax ?? NaN)).join(', ')} MiB`,
      },
      {
        name: `the server answered every health probe within ${PROBE_TIMEOUT_MS / 1000} s`,
        pass: plateaus.every((p) => p.probeFailures === 0),
        detail: `${plateaus.reduce((n, p) => n + p.probeFailures, 0)} failed`,
      },
      {
        name: 'no shipment workflow ended, no courier sync error',
        pass: ended.count === 0 && Number(syncErrors) === 0,
        detail: `${ended.count} ended, ${syncErrors} sync errors`,
      },
    ];
    process.stdout.write(
      [
        '',
        `${machine().cores} cores (${machine().cpu}), ${machine().memGiB} GiB`,
        ...report(args, target.temporal, plateaus),
        '',
        ...checks.map(checkLine),
        '',
      ].join('\n'),
    );
    const out = writeResult('scale', {
      machine: machine(),
      args: {
        ...args,
        ...COURIER_CAPS,
        ...WORKER_HEAP,
        parcels: PARCELS_DESCRIBED,
        temporal: target.temporal,
        shards: stack.temporalShards,
        workflowTaskTimeout: parcelTaskTimeout(),
        workflowThreads: stack.config.workerSizing.workflowThreads,
        serverMetrics: serverMetricsUrl !== null,
      },
      idle: {
        workerRssMiB: mib(idle.worker?.rssBytes ?? NaN),
        serverRssMiB: mib(idle.server?.rssBytes ?? NaN),
      },
      plateaus,
      checks,
      seconds: (Date.now() - t0) / 1000,
    });
    say(`wrote ${out}; stopping the stack`);
  } finally {
    running = false;
    await stack.stop();
  }
  // gRPC channels and pools of the stopped stack may linger; the run is over.
  process.exit(0);
});
