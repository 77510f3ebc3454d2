/**
 * The server's ceiling for the saga benchmark (bench/saga.ts): how many workflows of `tasks`
 * workflow tasks each (./noop-workflow.ts, a no-op activity between tasks) the same Temporal
 * server completes per second, driven closed-loop at a few concurrencies, the best kept. Its
 * worker (./noop-worker.ts) is a process of its own on a task queue of its own, started for
 * the measurement and stopped after it, so the product's worker and the ceiling's never
 * share an event loop.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { sampleProcess, sampleProcessTree, sleep, usage, type ProcSample } from './measure';
import type { noopWorkflow } from './noop-workflow';

export interface CeilingLevel {
  /** Workflows in flight at once. */
  concurrency: number;
  workflowsPerSecond: number;
  workflowTasksPerSecond: number;
  /** Mean start → result of one no-op workflow (ms). */
  meanWorkflowMs: number;
  serverCores: number;
  /** The real server's own Postgres (NaN on the dev server). */
  serverDbCores: number;
  workerCores: number;
}

export interface Ceiling {
  /** Workflow tasks each no-op workflow took (= an order's). */
  tasks: number;
  levels: CeilingLevel[];
  /** The best level's figures. */
  workflowsPerSecond: number;
  workflowTasksPerSecond: number;
  /** The level with the most workflow tasks/s. */
  best: CeilingLevel;
}

const TASK_QUEUE = 'waybill-bench-noop';

async function startNoopWorker(env: Record<string, string>, say: (l: string) => void) {
  const root = path.resolve(__dirname, '..', '..');
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/support/noop-worker.ts', TASK_QUEUE], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      if (line.includes('noop worker running')) resolve();
    });
    proc.once('exit', (code, signal) => reject(new Error(`the no-op worker exited (${code ?? signal})`)));
  });
  say(`no-op worker ${proc.pid} running on ${TASK_QUEUE}`);
  return {
    pid: proc.pid ?? null,
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000).then(() => proc.kill('SIGKILL'))]);
    },
  };
}

/**
 * Runs `concurrency` no-op workflows back to back; counts those that finish within `seconds`
 * from the first one to finish (the warm-up: the first round of workflows is in flight).
 */
async function level(
  client: Client,
  tasks: number,
  concurrency: number,
  seconds: number,
  pids: { server: number | null; serverDb: number | null; worker: number | null },
): Promise<CeilingLevel> {
  const samples = () => ({
    server: pids.server === null ? null : sampleProcess(pids.server),
    serverDb: pids.serverDb === null ? null : sampleProcessTree(pids.serverDb),
    worker: pids.worker === null ? null : sampleProcess(pids.worker),
  });
  const runId = randomBytes(3).toString('hex');
  const giveUpAt = Date.now() + 120_000;
  let window: ({ from: number; to: number } & ReturnType<typeof samples>) | null = null;
  const done: number[] = [];
  // CPU is read when the window closes, not once the workflows still in flight have finished.
  let closed: ReturnType<typeof samples> | null = null;
  let closing: NodeJS.Timeout | undefined;
  let n = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (window === null ? Date.now() < giveUpAt : Date.now() < window.to) {
          const started = Date.now();
          await client.workflow.execute<typeof noopWorkflow>('noopWorkflow', {
            taskQueue: TASK_QUEUE,
            workflowId: `noop-${runId}-${n++}`,
            args: [tasks],
          });
          const at = Date.now();
          if (window === null) {
            window = { from: at, to: at + seconds * 1000, ...samples() };
            closing = setTimeout(() => {
              closed = samples();
            }, window.to - Date.now());
          } else if (at <= window.to) done.push(at - started);
        }
      }),
    );
  } finally {
    clearTimeout(closing);
  }
  const w = window as ReturnType<typeof samples> | null;
  // Every workflow may have finished before the timer fired (it waits for the loop): read now then.
  const end = (closed as ReturnType<typeof samples> | null) ?? samples();
  const cores = (from: ProcSample | null | undefined, to: ProcSample | null | undefined) =>
    !from || !to ? NaN : (usage([from, to])?.cpuCores ?? NaN);
  const perSecond = done.length / seconds;
  return {
    concurrency,
    workflowsPerSecond: perSecond,
    workflowTasksPerSecond: perSecond * tasks,
    meanWorkflowMs: done.reduce((sum, ms) => sum + ms, 0) / Math.max(1, done.length),
    serverCores: cores(w?.server, end?.server),
    serverDbCores: cores(w?.serverDb, end?.serverDb),
    workerCores: cores(w?.worker, end?.worker),
  };
}

/**
 * Measures the ceiling for workflows of `tasks` workflow tasks on the server `client` talks
 * to; `env` is the product worker's environment (the same server and namespace).
 */
export async function measureCeiling(opts: {
  client: Client;
  env: Record<string, string>;
  serverPid: number | null;
  /** The real server's own Postgres; null on the dev server. */
  serverDbPid: number | null;
  tasks: number;
  seconds: number;
  concurrencies: number[];
  say: (line: string) => void;
}): Promise<Ceiling> {
  const worker = await startNoopWorker(opts.env, opts.say);
  try {
    const levels: CeilingLevel[] = [];
    for (const concurrency of opts.concurrencies) {
      const l = await level(opts.client, opts.tasks, concurrency, opts.seconds, {
        server: opts.serverPid,
        serverDb: opts.serverDbPid,
        worker: worker.pid,
      });
      levels.push(l);
      opts.say(
        `ceiling: ${concurrency} in flight → ${l.workflowsPerSecond.toFixed(1)} no-op workflows/s = ${l.workflowTasksPerSecond.toFixed(0)} workflow tasks/s (mean ${l.meanWorkflowMs.toFixed(0)} ms each; server ${l.serverCores.toFixed(2)} cores${Number.isNaN(l.serverDbCores) ? '' : ` + its Postgres ${l.serverDbCores.toFixed(2)}`}, its worker ${l.workerCores.toFixed(2)})`,
      );
    }
    const best = levels.reduce((a, b) => (b.workflowTasksPerSecond > a.workflowTasksPerSecond ? b : a));
    return {
      tasks: opts.tasks,
      levels,
      workflowsPerSecond: best.workflowsPerSecond,
      workflowTasksPerSecond: best.workflowTasksPerSecond,
      best,
    };
  } finally {
    await worker.stop();
  }
}
