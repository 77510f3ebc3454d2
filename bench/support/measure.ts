/**
 * Measuring tools the scale and saga benchmarks share: percentiles, a process's memory and
 * CPU time from /proc, a Prometheus text scrape, open-loop pacing and the results file.
 * Linux only (/proc), like the stack in ./stack.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Check } from './consistency';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const mib = (bytes: number) => bytes / 2 ** 20;

/** Nearest-rank percentile (p in 0–100); NaN for no values, so an empty set never reads as 0 ms. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : NaN,
  };
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (100 on every Linux we run on; asked anyway). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** Epoch ms the sample was taken. */
  at: number;
  rssBytes: number;
  /** User + system CPU the process has used since it started (seconds). */
  cpuSeconds: number;
}

/** Null when the process is gone. */
export function sampleProcess(pid: number): ProcSample | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ")"; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? 0);
    return { at: Date.now(), rssBytes: kb * 1024, cpuSeconds: ticks / CLOCK_TICKS };
  } catch {
    return null;
  }
}

/**
 * A process and everything under it as one (Postgres: its postmaster and backends): its own CPU
 * and what its reaped children used, plus each live descendant's, so a backend that starts or
 * ends within a window still counts what it used in it. RSS is the sum of theirs, which counts
 * memory they share (Postgres's shared buffers) once per process: an upper bound. Null when
 * the process is gone.
 */
export function sampleProcessTree(pid: number): ProcSample | null {
  const root = statOf(pid);
  if (root === null) return null;
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = statOf(Number(entry));
    if (st === null) continue;
    children.set(st.ppid, [...(children.get(st.ppid) ?? []), Number(entry)]);
  }
  let cpuSeconds = (root.ticks + root.childTicks) / CLOCK_TICKS;
  let rssBytes = root.rssBytes;
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const child = queue.pop()!;
    const st = statOf(child);
    if (st === null) continue;
    cpuSeconds += st.ticks / CLOCK_TICKS;
    rssBytes += st.rssBytes;
    queue.push(...(children.get(child) ?? []));
  }
  return { at: Date.now(), rssBytes, cpuSeconds };
}

/** A process's parent, CPU ticks (its own, and its reaped children's) and RSS; null when it is gone. */
function statOf(pid: number): { ppid: number; ticks: number; childTicks: number; rssBytes: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name: state, ppid, …; utime, stime, cutime, cstime are fields 14–17; rss (pages) 24.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
      childTicks: Number(fields[13]) + Number(fields[14]),
      rssBytes: Number(fields[21]) * 4096,
    };
  } catch {
    return null;
  }
}

/** The whole machine as one process: CPU time busy on all cores, memory in use (total − available). */
export function sampleMachine(): ProcSample {
  // First line of /proc/stat: user nice system idle iowait irq softirq steal …, in clock ticks.
  const ticks = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = ticks[0]! + ticks[1]! + ticks[2]! + ticks[5]! + ticks[6]! + ticks[7]!;
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(meminfo)?.[1] ?? 0);
  return {
    at: Date.now(),
    rssBytes: (kb('MemTotal') - kb('MemAvailable')) * 1024,
    cpuSeconds: busy / CLOCK_TICKS,
  };
}

/** CPU used between two samples as a share of one core (1.0 = one core busy all the time). */
export function cpuCores(from: ProcSample, to: ProcSample): number {
  return (to.cpuSeconds - from.cpuSeconds) / ((to.at - from.at) / 1000);
}

export interface Usage {
  rssMiBEnd: number;
  rssMiBMax: number;
  /** CPU from the first sample to the last, in cores. */
  cpuCores: number;
}

/** A process's memory and CPU over a window of samples (missing ones skipped); null without two. */
export function usage(samples: readonly (ProcSample | null)[]): Usage | null {
  const s = samples.filter((p): p is ProcSample => p !== null);
  if (s.length < 2) return null;
  return {
    rssMiBEnd: mib(s[s.length - 1]!.rssBytes),
    rssMiBMax: mib(Math.max(...s.map((p) => p.rssBytes))),
    cpuCores: cpuCores(s[0]!, s[s.length - 1]!),
  };
}

/**
 * A Prometheus text scrape as `name{labels}` → value (comment lines dropped). Sum series
 * with {@link metricSum}.
 */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  const series = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

/**
 * What the worker's Temporal metrics say about a window, from scrapes at its start and end:
 * mean schedule-to-start waits (ms) of workflow tasks and of activities per task queue, the
 * server's mean answer to a completed task, workflow tasks run, and the sticky cache (workflows kept in memory between tasks; an evicted one is
 * replayed from its history at its next task).
 */
export function temporalWindow(before: Map<string, number>, after: Map<string, number>) {
  const delta = (name: string, ...labels: string[]) =>
    metricSum(after, name, ...labels) - metricSum(before, name, ...labels);
  const mean = (name: string, label: string) => delta(`${name}_sum`, label) / delta(`${name}_count`, label);
  return {
    workflowTaskWaitMs: mean('temporal_workflow_task_schedule_to_start_latency', 'task_queue="waybill"'),
    activityWaitMs: mean('temporal_activity_schedule_to_start_latency', 'task_queue="waybill"'),
    courierCallWaitMs: mean('temporal_activity_schedule_to_start_latency', 'task_queue="waybill-courier"'),
    /** How long the server took to take a finished workflow task / activity (the worker's RPC). */
    completeWorkflowTaskMs: mean('temporal_request_latency', 'operation="RespondWorkflowTaskCompleted"'),
    completeActivityMs: mean('temporal_request_latency', 'operation="RespondActivityTaskCompleted"'),
    workflowTasks: delta('temporal_workflow_task_execution_latency_count'),
    stickyCacheSize: metricSum(after, 'temporal_sticky_cache_size'),
    stickyCacheMisses: delta('temporal_sticky_cache_miss'),
    stickyCacheEvictions: delta('temporal_sticky_cache_total_forced_eviction'),
  };
}
export type TemporalWindow = ReturnType<typeof temporalWindow>;

/**
 * What the Temporal server's own metrics say about a window (either target; timers are in
 * seconds there, shown here in ms): how late timers fire and workflow tasks reach matching
 * (a history task's queue latency: from when it was due or written to when it was done), how
 * a workflow task met a poller in matching (at once, or from the backlog after waiting), the
 * history service's mutable-state cache, and persistence calls.
 */
export function serverWindow(before: Map<string, number>, after: Map<string, number>, seconds: number) {
  // No scrape (the server's metrics were off): every figure unknown, not zero.
  const delta = (name: string, ...labels: string[]) =>
    after.size === 0 ? NaN : metricSum(after, name, ...labels) - metricSum(before, name, ...labels);
  const meanMs = (name: string, ...labels: string[]) =>
    (1000 * delta(`${name}_sum`, ...labels)) / delta(`${name}_count`, ...labels);
  const workflowTasks = 'task_type="Workflow"';
  return {
    timerLateMs: meanMs('task_latency_queue', 'operation="TimerActiveTaskUserTimer"'),
    workflowTaskToMatchingMs: meanMs('task_latency_queue', 'operation="TransferActiveTaskWorkflowTask"'),
    syncMatchesPerSecond: delta('syncmatch_latency_count', workflowTasks) / seconds,
    backlogMatchesPerSecond: delta('asyncmatch_latency_count', workflowTasks) / seconds,
    backlogWaitMs: meanMs('asyncmatch_latency', workflowTasks),
    recordStartedMs: meanMs('service_latency', 'operation="RecordWorkflowTaskStarted"'),
    /** Workflow tasks the server took back at their start-to-close timeout (redone from scratch). */
    workflowTaskTimeouts: delta('start_to_close_timeout', 'operation="TimerActiveTaskWorkflowTaskTimeout"'),
    /** Waits for a history shard's one-at-a-time write (`history.shardIOConcurrency`). */
    shardWriteWaitMs: meanMs('semaphore_latency', 'operation="ShardInfo"'),
    mutableStateMissRate:
      delta('cache_miss', 'cache_type="mutablestate"') / delta('cache_requests', 'cache_type="mutablestate"'),
    persistenceCallsPerSecond: delta('persistence_latency_count') / seconds,
    persistenceMs: meanMs('persistence_latency'),
  };
}
export type ServerWindow = ReturnType<typeof serverWindow>;

/** Sum of every series of `name` whose labels contain each of `labels` (e.g. `task_queue="waybill"`). */
export function metricSum(scrape: Map<string, number>, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const [key, value] of scrape) {
    const brace = key.indexOf('{');
    const base = brace === -1 ? key : key.slice(0, brace);
    if (base === name && labels.every((l) => key.includes(l))) sum += value;
  }
  return sum;
}

/**
 * Calls `fire(n)` at `rate` per second for `seconds`, on a fixed schedule (open loop): a slow
 * answer never delays the next call, so a backlog shows up as latency instead of hiding.
 * Resolves when the last call has been fired (not answered).
 */
export async function openLoop(rate: number, seconds: number, fire: (n: number) => void): Promise<void> {
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  for (let n = 0; n < total; n++) {
    const due = t0 + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    fire(n);
  }
}

/** The machine the figures were measured on. */
export function machine(): { cores: number; cpu: string; memGiB: number } {
  const cpus = os.cpus();
  return { cores: cpus.length, cpu: cpus[0]?.model ?? '?', memGiB: Math.round(os.totalmem() / 2 ** 30) };
}

/** A check as the benchmarks print it: PASS or MISS (a benchmark reports; it does not fail). */
export const checkLine = (c: Check) => `${c.pass ? 'PASS' : 'MISS'}  ${c.name}: ${c.detail}`;

/** Writes bench/results/<name>.json; returns its path relative to the working directory. */
export function writeResult(name: string, data: unknown): string {
  const out = path.resolve(__dirname, '..', 'results', `${name}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), ...(data as object) }, null, 2)}\n`,
  );
  return path.relative(process.cwd(), out);
}

/** A figure for a table: fixed digits, or – when there is none (NaN: nothing was measured). */
export const fmt = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** Right-aligned text table, one column per [heading, cell of a row]; each as wide as its widest cell. */
export function table<T>(rows: readonly T[], columns: [string, (row: T) => string][]): string[] {
  const cells = [columns.map(([heading]) => heading), ...rows.map((r) => columns.map(([, cell]) => cell(r)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((cell, i) => cell.padStart(widths[i]!)).join('  '));
}
