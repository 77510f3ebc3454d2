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
 * growing queue shows as both. Sustained orders/s = the highest rate kept up with. Prints a
 * table and PASS/MISS lines, writes bench/results/saga.json. Exit code 0 also on a MISS (the
 * figures are the result), 1 on an error, 130 after Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { sql } from 'kysely';
import { customerToken } from '../src/api/tokens';
import { runMain } from '../src/main-helpers';
import { orderWorkflowId, shipmentWorkflowId } from '../src/workflows/contract';
import {
  checkLine,
  fmt,
  machine,
  openLoop,
  percentile,
  sampleMachine,
  sampleProcess,
  scrapeMetrics,
  sleep,
  spread,
  table,
  temporalWindow,
  usage,
  writeResult,
  type ProcSample,
  type Spread,
  type TemporalWindow,
} from './support/measure';
import { measureCeiling, type Ceiling } from './support/noop-ceiling';
import { startProcessStack, takeTargetArgs, type ProcessStack } from './support/stack';

const SKUS = ['KETTLE-1L', 'MUG-SET-4', 'TEA-SAMPLER', 'TRIVET-OAK'];
const DRAIN_DEADLINE_MS = 2 * 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** The goal: orders/s × tasks per order ≥ this share of the ceiling… */
const GOAL_SHARE = 0.8;
/** …with create → booked p50 at most this (ms). */
const GOAL_P50_MS = 300;
const CEILING_SECONDS = 20;
const CEILING_CONCURRENCIES = [4, 12, 32];
const WARM_UP_ORDERS = 3;

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

interface Placed {
  /** Epoch ms the request was sent. */
  sentAt: number;
  /** HTTP status; 0 when no answer came. */
  status: number;
  apiMs: number;
  orderId: string | null;
  /** The error code and message of an answer other than 202. */
  error?: string;
}

async function placeOrder(stack: ProcessStack, token: string, key: string, n: number): Promise<Placed> {
  const sentAt = Date.now();
  const t0 = performance.now();
  try {
    const res = await fetch(`${stack.apiUrl}/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify({
        email: `saga${n}@example.com`,
        shippingAddress: {
          name: `Saga Shopper ${n} [scenario:delivered]`,
          line1: `${n} Jalan Ampang`,
          city: 'Kuala Lumpur',
          postcode: '50450',
          country: 'MY',
        },
        lines: [{ sku: SKUS[n % SKUS.length]!, quantity: 1 }],
        payment: { token: 'tok_visa' },
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => null)) as {
      orderId?: string;
      error?: { code: string; message: string };
    } | null;
    return {
      sentAt,
      status: res.status,
      apiMs: performance.now() - t0,
      orderId: body?.orderId ?? null,
      ...(body?.error ? { error: `${body.error.code}: ${body.error.message}` } : {}),
    };
  } catch {
    return { sentAt, status: 0, apiMs: performance.now() - t0, orderId: null };
  }
}

interface Timeline {
  orderId: string;
  status: string;
  createdAt: number;
  bookedAt: number | null;
  confirmedAt: number | null;
}

/** Each order's durable timestamps (epoch ms, Postgres clock). */
async function timelines(stack: ProcessStack, orderIds: string[]): Promise<Timeline[]> {
  if (orderIds.length === 0) return [];
  const { rows } = await sql<Timeline>`
    select o.id as "orderId", o.status,
           (extract(epoch from o.created_at) * 1000)::float8 as "createdAt",
           (select (extract(epoch from min(s.created_at)) * 1000)::float8
              from shipments s where s.order_id = o.id) as "bookedAt",
           (select (extract(epoch from min(n.created_at)) * 1000)::float8
              from notifications n where n.order_id = o.id and n.kind = 'confirmed') as "confirmedAt"
    from orders o where o.id = any(${orderIds})`.execute(stack.db);
  return rows;
}

interface OrderTasks {
  /** WorkflowTaskCompleted events of each warm-up order once its forward path was done. */
  perOrder: number[];
  /** The same, of each order's shipment workflow(s) by then (not counted in tasks per order). */
  perOrderShipments: number[];
  /** The median order's. */
  tasks: number;
}

const WORKFLOW_TASK_COMPLETED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED;

/** A workflow's history once nothing is in flight and it has not grown for a second and a half. */
async function quietHistory(stack: ProcessStack, workflowId: string) {
  const handle = stack.temporal.client.workflow.getHandle(workflowId);
  const deadline = Date.now() + 60_000;
  let length = -1;
  for (;;) {
    const [history, description] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    const events = history.events ?? [];
    const idle =
      (description.raw.pendingActivities ?? []).length === 0 && !description.raw.pendingWorkflowTask;
    if (idle && events.length === length) return events;
    if (Date.now() > deadline) throw new Error(`${workflowId} did not settle within a minute`);
    length = idle ? events.length : -1;
    await sleep(1_500);
  }
}

const workflowTasks = (events: temporal.api.history.v1.IHistoryEvent[]) =>
  events.filter((e) => e.eventType === WORKFLOW_TASK_COMPLETED).length;

/** Places a few orders one by one and counts their workflow tasks from their real histories. */
async function countOrderTasks(run: Run): Promise<OrderTasks> {
  const perOrder: number[] = [];
  const perOrderShipments: number[] = [];
  for (let n = 0; n < WARM_UP_ORDERS; n++) {
    const placed = await placeOrder(run.stack, run.token, `saga-${run.runId}-warm-${n}`, n);
    if (placed.status !== 202 || !placed.orderId)
      throw new Error(`warm-up order answered ${placed.status} ${placed.error ?? ''}`);
    const orderId = placed.orderId;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await timelines(run.stack, [orderId]);
      if (row?.confirmedAt != null) break;
      if (Date.now() > deadline)
        throw new Error(`warm-up order ${orderId} was not confirmed within a minute`);
      await sleep(250);
    }
    const events = await quietHistory(run.stack, orderWorkflowId(orderId));
    perOrder.push(workflowTasks(events));
    const { rows } = await sql<{ id: string }>`select id from shipments where order_id = ${orderId}`.execute(
      run.stack.db,
    );
    let shipments = 0;
    for (const { id } of rows)
      shipments += workflowTasks(await quietHistory(run.stack, shipmentWorkflowId(id)));
    perOrderShipments.push(shipments);
  }
  const sorted = [...perOrder].sort((a, b) => a - b);
  return { perOrder, perOrderShipments, tasks: sorted[Math.floor(sorted.length / 2)]! };
}

interface Step {
  rate: number;
  seconds: number;
  placed: number;
  accepted: number;
  /** Answers other than 202, by status (0: none). */
  refused: Record<string, number>;
  apiMs: Spread;
  booked: number;
  failed: number;
  /** Bookings per second in the second half of the step. */
  bookedPerSecondLateHalf: number;
  createToBookedMs: Spread;
  createToBookedP95Ms: number;
  createToConfirmedMs: Spread;
  /** p50 create → booked of the first and the last quarter of the step's orders (ms). */
  firstQuarterP50Ms: number;
  lastQuarterP50Ms: number;
  /** Accepted orders not booked yet when the step's last order was sent. */
  backlogAtEnd: number;
  /** From the step's end until its last order was booked; null when some never were. */
  drainSeconds: number | null;
  keptUp: boolean;
  why: string[];
  usage: StepUsage;
}

/** Where the step's CPU went (cores, averaged from its first order until its last booking). */
interface StepUsage {
  workerCores: number;
  serverCores: number;
  /** This process: the shop, the API and both simulators. */
  shopCores: number;
  /** The whole machine, anyone's processes included. */
  machineCores: number;
  temporal: TemporalWindow;
}

interface Run {
  stack: ProcessStack;
  token: string;
  runId: string;
  serverPid: number | null;
  say: (line: string) => void;
}

async function snapshot(run: Run) {
  const workerPid = run.stack.worker.pid();
  return {
    worker: workerPid === null ? null : sampleProcess(workerPid),
    server: run.serverPid === null ? null : sampleProcess(run.serverPid),
    shop: sampleProcess(process.pid),
    machine: sampleMachine(),
    metrics: await scrapeMetrics(`http://127.0.0.1:${run.stack.config.worker.metricsPort}/metrics`),
  };
}

function stepUsage(a: Awaited<ReturnType<typeof snapshot>>, b: typeof a): StepUsage {
  const cores = (x: ProcSample | null, y: ProcSample | null) => usage([x, y])?.cpuCores ?? NaN;
  return {
    workerCores: cores(a.worker, b.worker),
    serverCores: cores(a.server, b.server),
    shopCores: cores(a.shop, b.shop),
    machineCores: cores(a.machine, b.machine),
    temporal: temporalWindow(a.metrics, b.metrics),
  };
}

async function runStep(run: Run, rate: number, seconds: number): Promise<Step> {
  const { stack, say } = run;
  const answers: Promise<Placed>[] = [];
  const start = await snapshot(run);
  const from = Date.now();
  await openLoop(rate, seconds, (n) =>
    answers.push(placeOrder(stack, run.token, `saga-${run.runId}-${String(rate).replace('.', '_')}-${n}`, n)),
  );
  const to = Date.now();
  const placed = await Promise.all(answers);
  const ids = placed.flatMap((p) => (p.status === 202 && p.orderId ? [p.orderId] : []));
  say(`${rate}/s: ${placed.length} placed, ${ids.length} accepted; waiting for their bookings`);

  let rows = await timelines(stack, ids);
  let drainSeconds: number | null = null;
  while (Date.now() - to < DRAIN_DEADLINE_MS) {
    const open = rows.filter((r) => r.bookedAt === null && r.status !== 'FAILED').length;
    if (open === 0) {
      drainSeconds = (Date.now() - to) / 1000;
      break;
    }
    await sleep(1_000);
    rows = await timelines(stack, ids);
  }

  const booked = rows.filter((r) => r.bookedAt !== null);
  const byCreate = [...booked].sort((a, b) => a.createdAt - b.createdAt);
  const quarter = Math.max(1, Math.floor(byCreate.length / 4));
  const latency = (rs: Timeline[]) => rs.map((r) => r.bookedAt! - r.createdAt);
  const firstQuarterP50Ms = percentile(latency(byCreate.slice(0, quarter)), 50);
  const lastQuarterP50Ms = percentile(latency(byCreate.slice(-quarter)), 50);
  const half = from + (to - from) / 2;
  const lateHalf =
    booked.filter((r) => r.bookedAt! >= half && r.bookedAt! <= to).length / ((to - half) / 1000);
  const failed = rows.filter((r) => r.status === 'FAILED').length;
  const refused: Record<string, number> = {};
  for (const p of placed) if (p.status !== 202) refused[p.status] = (refused[p.status] ?? 0) + 1;

  const why: string[] = [];
  const firstError = placed.find((p) => p.error)?.error;
  if (ids.length < placed.length)
    why.push(`${placed.length - ids.length} not accepted${firstError ? ` (${firstError})` : ''}`);
  if (failed > 0) why.push(`${failed} FAILED`);
  if (booked.length < ids.length - failed) why.push(`${ids.length - failed - booked.length} never booked`);
  // A few orders of the last seconds may still be on their way; a queue that grew is more.
  const backlogAtEnd = ids.length - booked.filter((r) => r.bookedAt! <= to).length;
  const allowedBacklog = Math.max(2, Math.ceil(2 * rate));
  if (lateHalf < 0.9 * rate && backlogAtEnd > allowedBacklog)
    why.push(`booked ${lateHalf.toFixed(1)}/s in the second half, ${backlogAtEnd} waiting at the end`);
  if (lastQuarterP50Ms > 2 * firstQuarterP50Ms + 1_000) why.push('latency climbed through the step');
  return {
    rate,
    seconds: (to - from) / 1000,
    placed: placed.length,
    accepted: ids.length,
    refused,
    apiMs: spread(placed.filter((p) => p.status === 202).map((p) => p.apiMs)),
    booked: booked.length,
    failed,
    bookedPerSecondLateHalf: lateHalf,
    createToBookedMs: spread(latency(booked)),
    createToBookedP95Ms: percentile(latency(booked), 95),
    createToConfirmedMs: spread(
      rows.filter((r) => r.confirmedAt !== null).map((r) => r.confirmedAt! - r.createdAt),
    ),
    firstQuarterP50Ms,
    lastQuarterP50Ms,
    backlogAtEnd,
    drainSeconds,
    keptUp: why.length === 0,
    why,
    usage: stepUsage(start, await snapshot(run)),
  };
}

function report(steps: Step[]): string[] {
  return [
    ...table(steps, [
      ['rate/s', (s) => String(s.rate)],
      ['placed', (s) => String(s.placed)],
      ['202 p50', (s) => fmt(s.apiMs.p50)],
      ['202 p99', (s) => fmt(s.apiMs.p99)],
      ['booked', (s) => String(s.booked)],
      ['booked/s', (s) => fmt(s.bookedPerSecondLateHalf, 1)],
      ['booked p50', (s) => fmt(s.createToBookedMs.p50)],
      ['p95', (s) => fmt(s.createToBookedP95Ms)],
      ['p99', (s) => fmt(s.createToBookedMs.p99)],
      ['max', (s) => fmt(s.createToBookedMs.max)],
      ['q1→q4 p50', (s) => `${fmt(s.firstQuarterP50Ms)}→${fmt(s.lastQuarterP50Ms)}`],
      ['confirmed p50', (s) => fmt(s.createToConfirmedMs.p50)],
      ['p99', (s) => fmt(s.createToConfirmedMs.p99)],
      ['backlog', (s) => String(s.backlogAtEnd)],
      ['drain', (s) => (s.drainSeconds === null ? 'never' : `${fmt(s.drainSeconds, 1)} s`)],
    ]),
    '(ms from the order row; booked/s: in the second half of the step; q1→q4: create → booked p50 of',
    ' the first and last quarter of orders; backlog: accepted, not booked when the step ended; drain:',
    ' from then until its last order was booked)',
    '',
    'where the time went (CPU in cores from the first order to the last booking; waits: mean',
    ' schedule-to-start; WFT done: mean time the server took to accept a finished workflow task; ms)',
    ...table(steps, [
      ['rate/s', (s) => String(s.rate)],
      ['worker CPU', (s) => fmt(s.usage.workerCores, 2)],
      ['server CPU', (s) => fmt(s.usage.serverCores, 2)],
      ['API+sims CPU', (s) => fmt(s.usage.shopCores, 2)],
      ['box CPU', (s) => fmt(s.usage.machineCores, 2)],
      ['WFT wait', (s) => fmt(s.usage.temporal.workflowTaskWaitMs)],
      ['activity wait', (s) => fmt(s.usage.temporal.activityWaitMs)],
      ['WFT done', (s) => fmt(s.usage.temporal.completeWorkflowTaskMs)],
      ['WFTs/order', (s) => fmt(s.usage.temporal.workflowTasks / s.accepted, 1)],
    ]),
  ];
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
    timeScale: 1,
    stock: 1_000_000,
    stopOnInterrupt: true,
    say,
  });
  try {
    const runId = randomBytes(4).toString('hex');
    const token = customerToken(stack.config, `cus_saga_${runId}`, 6 * 3_600_000);
    const run: Run = { stack, token, runId, serverPid: stack.temporalServerPid(), say };

    const orderTasks = await countOrderTasks(run);
    const tasks = orderTasks.tasks;
    say(
      `an order takes ${tasks} workflow tasks (warm-up orders: ${orderTasks.perOrder.join(', ')}; their shipment workflows ${orderTasks.perOrderShipments.join(', ')} more)`,
    );
    const ceiling = await measureCeiling({
      client: stack.temporal.client,
      env: stack.env,
      serverPid: run.serverPid,
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
