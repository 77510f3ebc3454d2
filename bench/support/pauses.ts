/**
 * Where a server's latency tail comes from, measured inside the server process over a window
 * the benchmark marks: how long requests took from arrival on the event loop to the end of the
 * response (the server's own time, without the wait in the socket), how late the event loop
 * ran (anything blocking it: a long task, a GC pause), and garbage collection (count, total and
 * longest pause), and the CPU the server did not get: how long its main thread waited, runnable,
 * for a core (Linux's /proc/self/schedstat) and how much time the hypervisor took from the
 * whole machine (steal, /proc/stat). Set beside the client's latency, it says whether a slow
 * request was slow inside the server, waited for it, or waited for the machine.
 */
import fs from 'node:fs';
import {
  constants,
  createHistogram,
  monitorEventLoopDelay,
  PerformanceObserver,
  type RecordableHistogram,
} from 'node:perf_hooks';
import type { Server } from 'node:http';

export interface Pauses {
  /** Requests answered in the window. */
  requests: number;
  /** Server time per request (ms): p50, p99, max. */
  serverMs: { p50: number; p99: number; max: number };
  /** Event-loop delay (ms) sampled every millisecond: p99, max. */
  loopDelayMs: { p99: number; max: number };
  /**
   * Every GC pause, and of them the major ones (mark-sweep-compact), the incremental marking
   * steps of one, and the weak-callback runs; the rest are scavenges (minor).
   */
  gc: {
    count: number;
    totalMs: number;
    maxMs: number;
    major: number;
    majorMs: number;
    incremental: number;
    weakCallbacks: number;
  };
  /**
   * The main thread's time runnable but waiting for a core, and the machine's steal time (all
   * cores, in the kernel's 10 ms ticks), over the window (ms); null where /proc lacks them.
   */
  cpuWaitMs: number | null;
  stealMs: number | null;
}

/** The main thread's run-queue wait so far (ns), from /proc/self/schedstat's second field. */
function runQueueWaitNs(): number | null {
  try {
    const waited = Number(fs.readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(waited) ? waited : null;
  } catch {
    return null;
  }
}

/**
 * The machine's steal time so far (ms), summed over its cores: /proc/stat's `cpu` line, its
 * eighth field, in USER_HZ ticks (100 a second on Linux's usual builds, so 10 ms each).
 */
function stealSoFarMs(): number | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const steal = Number(line.trim().split(/\s+/)[8]);
    return Number.isFinite(steal) ? steal * 10 : null;
  } catch {
    return null;
  }
}

const since = (start: number | null, now: number | null) =>
  start === null || now === null ? null : now - start;
const nullOr = (n: number | null, f: (n: number) => number) => (n === null ? null : f(n));

const round2 = (n: number) => Math.round(n * 100) / 100;
const ms = (ns: number) => round2(ns / 1e6);
const NO_GC = { count: 0, totalMs: 0, maxMs: 0, major: 0, majorMs: 0, incremental: 0, weakCallbacks: 0 };

/**
 * Starts measuring in this process; `window()` reads what happened since the last `reset()`
 * (the event-loop monitor runs only between the two).
 */
export function watchPauses(server: Server): { reset: () => void; window: () => Pauses } {
  const served: RecordableHistogram = createHistogram();
  // First among the listeners, so the time counts Fastify's own routing and hooks too.
  server.prependListener('request', (_req, res) => {
    const start = process.hrtime.bigint();
    res.once('finish', () => served.record(process.hrtime.bigint() - start));
  });
  // Sampling every millisecond only within a window: a server waiting its turn on a shared
  // core must not wake a thousand times a second and take time from the one measured.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let gc = { ...NO_GC };
  let waitAt = runQueueWaitNs();
  let stealAt = stealSoFarMs();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count += 1;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major += 1;
        gc.majorMs += entry.duration;
      }
      if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) gc.incremental += 1;
      if (kind === constants.NODE_PERFORMANCE_GC_WEAKCB) gc.weakCallbacks += 1;
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    reset: () => {
      served.reset();
      loop.reset();
      loop.enable();
      gc = { ...NO_GC };
      waitAt = runQueueWaitNs();
      stealAt = stealSoFarMs();
    },
    window: () => {
      const read = {
        requests: served.count,
        serverMs: {
          p50: ms(served.percentile(50)),
          p99: ms(served.percentile(99)),
          max: ms(served.max),
        },
        // The monitor's own resolution (1 ms) is in every sample: what is above it is delay.
        loopDelayMs: {
          p99: Math.max(0, round2(ms(loop.percentile(99)) - 1)),
          max: Math.max(0, round2(ms(loop.max) - 1)),
        },
        gc: {
          count: gc.count,
          totalMs: round2(gc.totalMs),
          maxMs: round2(gc.maxMs),
          major: gc.major,
          majorMs: round2(gc.majorMs),
          incremental: gc.incremental,
          weakCallbacks: gc.weakCallbacks,
        },
        cpuWaitMs: nullOr(since(waitAt, runQueueWaitNs()), ms),
        stealMs: since(stealAt, stealSoFarMs()),
      };
      loop.disable();
      return read;
    },
  };
}
