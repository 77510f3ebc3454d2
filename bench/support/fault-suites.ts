/**
 * The fault suites' faults (bench/faults.ts): the suites, and what each breaks in the stack
 * and how it brings it back (worker kills, courier outage, Postgres and Temporal restarts,
 * scripted courier answers).
 */
import { scriptCourierAnswers, type ScriptedTally } from './courier-answers';
import { elapsed, sleep } from './fault-shop';
import type { FaultInput } from '../../simulators/courier/faults';
import { metricSum, scrapeMetrics } from './measure';
import { waitForTemporal, type ProcessStack, type TemporalTarget } from './stack';

export const SUITES = [
  'worker-kill',
  'courier-outage',
  'courier-hang',
  'postgres-restart',
  'temporal-restart',
  'courier-answers',
] as const;
export type Suite = (typeof SUITES)[number];

export interface Args {
  suites: Suite[];
  orders: number;
  rate: number;
  temporal: TemporalTarget;
  /** The real server's history shards (`--shards`), when not its default. */
  shards?: number;
}

/** How long the harness's own Temporal client may take to reach the server after its restart. */
export const TEMPORAL_BACK_MS = 120_000;

// --- Faults -------------------------------------------------------------------------------

export interface FaultLog {
  lines: string[];
  /** Windows (epoch ms) when the broken part was down. */
  down: { from: number; until: number }[];
  /** courier-answers: the calls the courier answered with a scripted status. */
  scripted?: ScriptedTally;
}

/** Breaks the suite's part of the stack and brings it back; `log` keeps what happened, also when it throws. */
export async function injectFaults(
  suite: Suite,
  stack: ProcessStack,
  /** Resolves once the shop has placed every order and asked every cancel once. */
  shopAsked: Promise<void>,
  t0: number,
  say: (l: string) => void,
  log: FaultLog,
): Promise<void> {
  const note = (line: string) => {
    log.lines.push(`${elapsed(t0)}  ${line}`);
    say(line);
  };
  await sleep(10_000);
  switch (suite) {
    case 'worker-kill': {
      for (let k = 1; k <= 4; k++) {
        const pid = stack.worker.pid();
        const from = Date.now();
        await stack.worker.kill9();
        note(`kill -9 worker ${pid} (${k}/4)`);
        await stack.worker.start();
        log.down.push({ from, until: Date.now() });
        note(`worker ${stack.worker.pid()} running again after ${((Date.now() - from) / 1000).toFixed(1)} s`);
        await sleep(15_000);
      }
      break;
    }
    case 'courier-outage': {
      const durationMs = 120_000;
      await setCourierFault(stack, { kind: 'outage', durationMs });
      const from = Date.now();
      note(`courier outage for ${durationMs / 1000} s (every format answers 503)`);
      await sleep(durationMs);
      log.down.push({ from, until: Date.now() });
      note('courier outage over');
      break;
    }
    case 'courier-hang': {
      // Every courier call answers after 30 s, past WAYBILL_COURIER_TIMEOUT (10 s): the worker
      // gives up on each, and the courier still does what was asked once the 30 s are up.
      const durationMs = 120_000;
      await setCourierFault(stack, { kind: 'latency', ms: 30_000 });
      const from = Date.now();
      const putOffBefore = await pollsPutOff(stack);
      note(`the courier hangs for ${durationMs / 1000} s (every format answers after 30 s)`);
      await sleep(durationMs);
      const cleared = await fetch(`${stack.courier.url}/control/faults?kind=latency`, { method: 'DELETE' });
      if (!cleared.ok) throw new Error(`the simulator kept the latency: ${cleared.status}`);
      log.down.push({ from, until: Date.now() });
      note(
        `the courier answers at once again; the worker put off ${(await pollsPutOff(stack)) - putOffBefore} poll attempts meanwhile, no call made (waybill_courier_polls_put_off)`,
      );
      break;
    }
    case 'courier-answers': {
      // Open until the shop's last cancel has had 10 s to reach the courier (at least 30 s, at most 10 min).
      const closes = Promise.all([
        sleep(30_000),
        Promise.race([shopAsked.then(() => sleep(10_000)), sleep(10 * 60_000)]),
      ]).then(() => undefined);
      const from = Date.now();
      log.scripted = await scriptCourierAnswers(stack.courier.url, closes, note);
      log.down.push({ from, until: Date.now() });
      break;
    }
    case 'postgres-restart': {
      const from = Date.now();
      await stack.postgres.stop();
      note('Postgres stopped');
      await sleep(15_000);
      await stack.postgres.start();
      log.down.push({ from, until: Date.now() });
      note(`Postgres started again (down ${((Date.now() - from) / 1000).toFixed(1)} s)`);
      break;
    }
    case 'temporal-restart': {
      const from = Date.now();
      const pid = stack.temporalServerPid();
      await stack.temporalServer.stop();
      const which =
        stack.target === 'server'
          ? { name: 'Temporal server', data: 'its Postgres databases' }
          : { name: 'Temporal dev server', data: 'the same SQLite file' };
      note(`${which.name} stopped (pid ${pid})`);
      await sleep(15_000);
      await stack.temporalServer.start();
      log.down.push({ from, until: Date.now() });
      note(
        `${which.name} started again on ${which.data} as pid ${stack.temporalServerPid()} (down ${((Date.now() - from) / 1000).toFixed(1)} s)`,
      );
      // The harness's own client (the checks use it) may still be backing off from the outage.
      const back = Date.now();
      if (!(await waitForTemporal(stack.temporal.connection, TEMPORAL_BACK_MS))) {
        throw new Error(
          `the harness's Temporal client did not reach the restarted server within ${TEMPORAL_BACK_MS / 1000} s`,
        );
      }
      note(
        `the harness's Temporal client reached it again after ${((Date.now() - back) / 1000).toFixed(1)} s`,
      );
      break;
    }
  }
}

/** The first worker's `waybill_courier_polls_put_off` (poll attempts), every courier together. */
async function pollsPutOff(stack: ProcessStack): Promise<number> {
  const scrape = await scrapeMetrics(`http://127.0.0.1:${stack.env.WAYBILL_WORKER_METRICS_PORT}/metrics`);
  return metricSum(scrape, 'waybill_courier_polls_put_off');
}

/** Sets a fault rule on every courier format, over the simulator's control API. */
async function setCourierFault(stack: ProcessStack, rule: FaultInput): Promise<void> {
  const res = await fetch(`${stack.courier.url}/control/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  if (!res.ok)
    throw new Error(`the simulator refused the ${rule.kind} fault: ${res.status} ${await res.text()}`);
}
