/**
 * Saga throughput against the server's ceiling (issues 8 and 15): orders/s sustained,
 * create → booked latency, and how close the orders come to what the same Temporal server
 * does with workflows that do nothing.
 *
 *   npm run bench:saga -- [seconds=30] [rates=0.4c,0.8c,1c] [--temporal dev|server] [--workers N]
 *
 * First it places three warm-up orders and counts an order's workflow tasks from their real
 * histories (WorkflowTaskCompleted events once the forward path is done: booked, CONFIRMED,
 * tracking started, the confirmation sent; also the tasks of its shipment workflow by then,
 * reported but not counted). Then it measures the ceiling on the same server in the same run
 * (bench/support/noop-ceiling.ts): a no-op workflow with that many workflow tasks (a no-op
 * activity between each), registered only by a worker of the benchmark's own, driven
 * closed-loop at 4, 12 and 32 in flight, the best kept. A rate written `0.8c` is that
 * fraction of the ceiling in orders/s (ceiling workflow tasks/s ÷ tasks per order).
 * Goal: orders/s × tasks per order ≥ 0.8 × the ceiling, with create → booked p50 ≤ 300 ms at
 * that rate.
 *
 * A fresh stack (bench/support/stack.ts: worker in its own process, dev server on SQLite,
 * embedded Postgres, the API, courier and payment simulators in this process; data in
 * .data/bench/saga, emptied at the next start) with the product's defaults (poll intervals,
 * courier caps, pools; only the API rate limits and the courier budget are lifted) and the
 * courier clock at real time, so no parcel is picked up during the run: the load is the
 * saga's forward path plus each parcel's first poll.
 *
 * At each rate a shop places orders through POST /v1/orders (customer JWT, Idempotency-Key,
 * tok_visa, one line of one of the four catalogue skus, the `[scenario:delivered]` test card)
 * on a fixed schedule for `seconds` (open loop: a slow answer never delays the next order, so
 * a backlog shows as latency). Then it waits up to two minutes for the step's orders to be
 * booked before the next rate; it stops after the first rate that does not keep up.
 *
 * Latency comes from durable timestamps on one clock (Postgres now()): created = the order
 * row the API inserts before it starts the saga (`orders.created_at`); booked = the shipment
 * row bookShipment inserts once the courier has answered the booking (`shipments.created_at`,
 * after stock and payment); confirmed = the saga's `confirmed` notification row, written after
 * the order is set CONFIRMED. The API's 202 latency is measured by the shop (this process,
 * which also runs the API and the simulators).
 *
 * A rate is kept up with when every order is accepted, booked and not failed, bookings in the
 * second half of the step come at ≥ 90 % of the offered rate or no more than the last 2 s of
 * orders (at least 2) wait for their booking when the step ends, and latency does not climb
 * through the step (p50 of the last quarter of orders ≤ 2 × the first quarter's + 1 s): a
 * growing queue shows as both. Sustained orders/s = the highest rate kept up with. Also the
 * ratio where the server, not this box, would be the limit: the server's CPU per no-op workflow
 * over its CPU per order (at the highest rate kept up with), the real server's own Postgres
 * (its postmaster and backends) counted in both. Prints a
 * table and PASS/MISS lines, writes bench/results/saga.json. Exit code 0 also on a MISS (the
 * figures are the result), 1 on an error, 130 after Ctrl-C.
 *
 * The pieces: the shop and the orders' timestamps (bench/support/saga-shop.ts), the warm-up
 * count of an order's workflow tasks (saga-tasks.ts), one rate and the tables (saga-steps.ts).
 */
import { randomBytes } from 'node:crypto';
import { customerToken } from '../src/api/tokens';
import { runMain } from '../src/main-helpers';
import {
  checkLine,
  fmt,
  machine,
  sampleProcess,
  sampleProcessTree,
  sleep,
  usage,
  writeResult,
  type ProcSample,
} from './support/measure';
import { measureCeiling, type Ceiling } from './support/noop-ceiling';
import type { Run } from './support/saga-shop';
import { report, runStep, type Step } from './support/saga-steps';
import { countOrderTasks } from './support/saga-tasks';
import { startProcessStack, takeTargetArgs } from './support/stack';

/** The goal: orders/s × tasks per order ≥ this share of the ceiling… */
const GOAL_SHARE = 0.8;
/** …with create → booked p50 at most this (ms). */
const GOAL_P50_MS = 300;
const CEILING_SECONDS = 20;
const CEILING_CONCURRENCIES = [4, 12, 32];
/** How long the server's idle CPU is read, after the warm-up orders and before the ceiling (s). */
const IDLE_SECONDS = 5;

/** A rate: orders/s, or (`fraction`) a share of the ceiling in orders/s. */
type Rate = { perSecond: number } | { fraction: number };

interface Args {
  seconds: number;
  rates: Rate[];
}

function parseArgs(argv: string[]): Args {
  const seconds = Number(argv[0] ?? 30);
  const rates = (argv[1] ?? '0.4c,0.8c,1c')
    .split(',')
    .map((r): Rate => (r.endsWith('c') ? { fraction: Number(r.slice(0, -1)) } : { perSecond: Number(r) }));
  if (!(seconds >= 10)) throw new Error('seconds must be ≥ 10 (per rate)');
  if (rates.some((r) => !(('fraction' in r ? r.fraction : r.perSecond) > 0)))
    throw new Error('rates must be positive orders/s or shares of the ceiling, e.g. 2,5 or 0.4c,0.8c,1c');
  return { seconds, rates };
}

/** Orders/s of a rate: a share of the ceiling is rounded to a tenth of an order per second. */
function ordersPerSecond(rate: Rate, ceiling: Ceiling): number {
  if ('perSecond' in rate) return rate.perSecond;
  return Math.max(
    0.1,
    Math.round(((rate.fraction * ceiling.workflowTasksPerSecond) / ceiling.tasks) * 10) / 10,
  );
}

/** The goal's verdict: the highest rate kept up with whose create → booked p50 is within the goal. */
function goal(steps: Step[], tasks: number, ceiling: Ceiling) {
  const within = steps.filter((s) => s.keptUp && s.createToBookedMs.p50 <= GOAL_P50_MS);
  const best = within.reduce<Step | null>((a, b) => (a === null || b.rate > a.rate ? b : a), null);
  const share = best === null ? 0 : (best.rate * tasks) / ceiling.workflowTasksPerSecond;
  return { best, share, pass: share >= GOAL_SHARE };
}

/** The Temporal server's own CPU (cores) with nothing to do: its Postgres too on the real server (NaN on the dev server). */
interface IdleServer {
  server: number;
  db: number;
}

/** Reads the server's CPU over `seconds` while no order or no-op workflow is placed. */
async function idleServer(run: Run, seconds: number): Promise<IdleServer> {
  const read = () => ({
    server: run.serverPid === null ? null : sampleProcess(run.serverPid),
    db: run.serverDbPid === null ? null : sampleProcessTree(run.serverDbPid),
  });
  const from = read();
  await sleep(seconds * 1000);
  const to = read();
  const cores = (a: ProcSample | null, b: ProcSample | null) => usage([a, b])?.cpuCores ?? NaN;
  return { server: cores(from.server, to.server), db: cores(from.db, to.db) };
}

/**
 * What the ratio could be where the Temporal server, not this box, is the limit, estimated from
 * the server's own CPU: per no-op workflow (the ceiling's best level) over per order (the
 * highest rate kept up with, else the first step), its idle CPU taken off both. The real
 * server's Postgres counts on both sides, or (not read) on neither. An estimate at the rates
 * measured: a busier server may spend less per order (its fixed costs spread over more).
 */
function serverBound(steps: Step[], ceiling: Ceiling, idle: IdleServer) {
  const kept = steps.filter((s) => s.keptUp);
  const step = kept.length > 0 ? kept[kept.length - 1]! : steps[0];
  const { best } = ceiling;
  if (!step || !(step.accepted > 0) || !(best.workflowsPerSecond > 0)) return null;
  const withDb = [step.usage.serverDbCores, best.serverDbCores, idle.db].every((c) => !Number.isNaN(c));
  const busy = (server: number, db: number) =>
    Math.max(0, server - idle.server) + (withDb ? Math.max(0, db - idle.db) : 0);
  const orderMs =
    (busy(step.usage.serverCores, step.usage.serverDbCores) * step.usage.seconds * 1000) / step.accepted;
  const noopMs = (busy(best.serverCores, best.serverDbCores) * 1000) / best.workflowsPerSecond;
  if (!(orderMs > 0) || !(noopMs > 0)) return null;
  return {
    rate: step.rate,
    idle,
    withDb,
    orderMs,
    noopMs,
    noopsPerOrder: orderMs / noopMs,
    projectedShare: noopMs / orderMs,
  };
}

runMain(async () => {
  const target = takeTargetArgs(process.argv.slice(2));
  const args = parseArgs(target.rest);
  const t0 = Date.now();
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  const rateNames = args.rates.map((r) => ('fraction' in r ? `${r.fraction}c` : String(r.perSecond)));
  say(`saga: ${rateNames.join(', ')} orders/s, ${args.seconds} s each, until a rate is not kept up with`);
  const stack = await startProcessStack({
    name: 'saga',
    temporal: target.temporal,
    workers: target.workers,
    ...(target.shards !== undefined ? { shards: target.shards } : {}),
    timeScale: 1,
    stock: 1_000_000,
    stopOnInterrupt: true,
    say,
  });
  try {
    const runId = randomBytes(4).toString('hex');
    const token = customerToken(stack.config, `cus_saga_${runId}`, 6 * 3_600_000);
    const run: Run = {
      stack,
      token,
      runId,
      serverPid: stack.temporalServerPid(),
      serverDbPid: stack.temporalPostgresPid(),
      say,
    };

    const orderTasks = await countOrderTasks(run);
    const idle = await idleServer(run, IDLE_SECONDS);
    say(
      `the server idle: ${fmt(idle.server, 3)} cores${Number.isNaN(idle.db) ? '' : ` + its Postgres ${fmt(idle.db, 3)}`}`,
    );
    const tasks = orderTasks.tasks;
    say(
      `an order takes ${tasks} workflow tasks (warm-up orders: ${orderTasks.perOrder.join(', ')}; their shipment workflows ${orderTasks.perOrderShipments.join(', ')} more)`,
    );
    const ceiling = await measureCeiling({
      client: stack.temporal.client,
      env: stack.env,
      serverPid: run.serverPid,
      serverDbPid: run.serverDbPid,
      tasks,
      seconds: CEILING_SECONDS,
      concurrencies: CEILING_CONCURRENCIES,
      say,
    });
    say(
      `ceiling: ${fmt(ceiling.workflowTasksPerSecond)} workflow tasks/s (${fmt(ceiling.workflowsPerSecond, 1)} no-op workflows of ${tasks} tasks/s)`,
    );

    const steps: Step[] = [];
    for (const r of args.rates) {
      const rate = ordersPerSecond(r, ceiling);
      say(`placing ${rate} orders/s for ${args.seconds} s`);
      const step = await runStep(run, rate, args.seconds);
      steps.push(step);
      say(
        `${rate}/s: create → booked p50 ${fmt(step.createToBookedMs.p50)} ms, p95 ${fmt(step.createToBookedP95Ms)} ms; ${step.keptUp ? 'kept up' : `not kept up (${step.why.join('; ')})`}`,
      );
      if (!step.keptUp) break;
    }
    const sustained = Math.max(0, ...steps.filter((s) => s.keptUp).map((s) => s.rate));
    const verdict = goal(steps, tasks, ceiling);
    const server = serverBound(steps, ceiling, idle);
    const checks = [
      ...steps.map((s) => ({
        name: `${s.rate} orders/s kept up with`,
        pass: s.keptUp,
        detail: s.keptUp
          ? `booked ${fmt(s.bookedPerSecondLateHalf, 1)}/s, p50 ${fmt(s.firstQuarterP50Ms)} → ${fmt(s.lastQuarterP50Ms)} ms`
          : s.why.join('; '),
      })),
      {
        name: `orders/s × tasks per order ≥ ${GOAL_SHARE} × the ceiling, create → booked p50 ≤ ${GOAL_P50_MS} ms`,
        pass: verdict.pass,
        detail:
          verdict.best === null
            ? `no rate kept up with a p50 ≤ ${GOAL_P50_MS} ms`
            : `${verdict.best.rate} orders/s × ${tasks} = ${fmt(verdict.best.rate * tasks)} of ${fmt(ceiling.workflowTasksPerSecond)} workflow tasks/s: ${fmt(verdict.share, 2)} × the ceiling (p50 ${fmt(verdict.best.createToBookedMs.p50)} ms, p95 ${fmt(verdict.best.createToBookedP95Ms)} ms)`,
      },
    ];
    process.stdout.write(
      [
        '',
        `saga, ${args.seconds} s per rate, ${machine().cores} cores (${machine().cpu}), ${machine().memGiB} GiB`,
        `tasks per order: ${tasks} workflow tasks (+ ${orderTasks.perOrderShipments.join('/')} in its shipment workflow, not counted)`,
        `ceiling: ${fmt(ceiling.workflowTasksPerSecond)} workflow tasks/s = ${fmt(ceiling.workflowsPerSecond, 1)} no-op workflows/s of ${tasks} tasks (best of ${ceiling.levels.map((l) => `${l.concurrency} in flight ${fmt(l.workflowTasksPerSecond)}`).join(', ')})`,
        ...report(steps),
        '',
        ...checks.map(checkLine),
        `sustained: ${sustained} orders/s (the highest rate kept up with) = ${fmt((sustained * tasks) / ceiling.workflowTasksPerSecond, 2)} × the ceiling`,
        ...(server === null
          ? []
          : [
              `the server's own CPU, its idle ${fmt(server.idle.server, 3)} cores${server.withDb ? ` + its Postgres's ${fmt(server.idle.db, 3)}` : ''} taken off: ${fmt(server.orderMs, 1)} core-ms per order (at ${server.rate}/s) against ${fmt(server.noopMs, 1)} per no-op workflow of ${tasks} tasks (at the ceiling): an order costs the server about ${fmt(server.noopsPerOrder, 2)} no-op workflows, so with the server alone on its cores (the server the limit, not this box) orders/s × tasks would come to about ${fmt(server.projectedShare, 2)} × the ceiling at these rates${stack.target === 'server' ? (server.withDb ? " (the server's own Postgres counted on both sides)" : " (the server's own Postgres could not be read: counted on neither side)") : ''}`,
            ]),
        '',
      ].join('\n'),
    );
    const out = writeResult('saga', {
      machine: machine(),
      args: { ...args, temporal: target.temporal, workers: target.workers },
      tasksPerOrder: tasks,
      orderTasks,
      ceiling,
      sustainedOrdersPerSecond: sustained,
      serverBound: server,
      goal: {
        share: verdict.share,
        ordersPerSecond: verdict.best?.rate ?? 0,
        createToBookedP50Ms: verdict.best?.createToBookedMs.p50 ?? null,
        createToBookedP95Ms: verdict.best?.createToBookedP95Ms ?? null,
        pass: verdict.pass,
      },
      steps,
      checks,
      seconds: (Date.now() - t0) / 1000,
    });
    say(`wrote ${out}; stopping the stack`);
  } finally {
    await stack.stop();
  }
  // gRPC channels and pools of the stopped stack may linger; the run is over.
  process.exit(0);
});
