/**
 * One rate of the saga benchmark (bench/saga.ts): orders placed open loop for the step's
 * seconds, the wait for their bookings, whether the rate was kept up with, where the CPU went,
 * and the table of the steps.
 */
import {
  fmt,
  openLoop,
  percentile,
  sampleMachine,
  sampleProcess,
  sampleProcessTree,
  scrapeMetrics,
  sleep,
  spread,
  table,
  temporalWindow,
  usage,
  type ProcSample,
  type Spread,
  type TemporalWindow,
} from './measure';
import { placeOrder, timelines, type Placed, type Run, type Timeline } from './saga-shop';

const DRAIN_DEADLINE_MS = 2 * 60_000;

export interface Step {
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
export interface StepUsage {
  workerCores: number;
  serverCores: number;
  /** This process: the shop, the API and both simulators. */
  shopCores: number;
  /** The whole machine, anyone's processes included. */
  machineCores: number;
  /** The real server's own Postgres (NaN on the dev server, whose SQLite is in its process). */
  serverDbCores: number;
  /** How long the window was (s). */
  seconds: number;
  /**
   * The Temporal server's CPU per accepted order over the window (core-ms), the real server's
   * Postgres included: the order's own tasks and activities, its shipment workflow's start,
   * tasks and first poll, and the API's start of it.
   */
  serverMsPerOrder: number;
  temporal: TemporalWindow;
}

async function snapshot(run: Run) {
  const workerPid = run.stack.worker.pid();
  return {
    at: Date.now(),
    worker: workerPid === null ? null : sampleProcess(workerPid),
    server: run.serverPid === null ? null : sampleProcess(run.serverPid),
    serverDb: run.serverDbPid === null ? null : sampleProcessTree(run.serverDbPid),
    shop: sampleProcess(process.pid),
    machine: sampleMachine(),
    metrics: await scrapeMetrics(`http://127.0.0.1:${run.stack.config.worker.metricsPort}/metrics`),
  };
}

function stepUsage(a: Awaited<ReturnType<typeof snapshot>>, b: typeof a, orders: number): StepUsage {
  const cores = (x: ProcSample | null, y: ProcSample | null) => usage([x, y])?.cpuCores ?? NaN;
  const seconds = (b.at - a.at) / 1000;
  const serverCores = cores(a.server, b.server);
  const serverDbCores = cores(a.serverDb, b.serverDb);
  return {
    workerCores: cores(a.worker, b.worker),
    serverCores,
    shopCores: cores(a.shop, b.shop),
    machineCores: cores(a.machine, b.machine),
    serverDbCores,
    seconds,
    serverMsPerOrder:
      orders > 0
        ? ((serverCores + (Number.isNaN(serverDbCores) ? 0 : serverDbCores)) * seconds * 1000) / orders
        : NaN,
    temporal: temporalWindow(a.metrics, b.metrics),
  };
}

export async function runStep(run: Run, rate: number, seconds: number): Promise<Step> {
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
    usage: stepUsage(start, await snapshot(run), ids.length),
  };
}

export function report(steps: Step[]): string[] {
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
      ['its Postgres', (s) => (Number.isNaN(s.usage.serverDbCores) ? '-' : fmt(s.usage.serverDbCores, 2))],
      ['API+sims CPU', (s) => fmt(s.usage.shopCores, 2)],
      ['box CPU', (s) => fmt(s.usage.machineCores, 2)],
      ['WFT wait', (s) => fmt(s.usage.temporal.workflowTaskWaitMs)],
      ['activity wait', (s) => fmt(s.usage.temporal.activityWaitMs)],
      ['WFT done', (s) => fmt(s.usage.temporal.completeWorkflowTaskMs)],
      ['WFTs/order', (s) => fmt(s.usage.temporal.workflowTasks / s.accepted, 1)],
      ['server ms/order', (s) => fmt(s.usage.serverMsPerOrder, 1)],
    ]),
    "(its Postgres: the real server's own, its backends included; server ms/order: the Temporal server's CPU over the window per accepted order, its Postgres included, core-ms)",
  ];
}
