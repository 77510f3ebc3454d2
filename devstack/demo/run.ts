/**
 * `npm run demo`: starts the dev stack with demo settings (or, with --attach, uses one that
 * runs), places a few dozen orders across every scenario through the HTTP API, takes a
 * courier down while parcels are in transit, cancels some orders before and after pickup,
 * shows the orders live until every one has settled, checks each against what it should
 * have ended as, checks the Temporal visibility queries ops would use, and prints where to
 * look. Exit code: 0 all as expected, 1 not, 2 refused to run, 130 interrupted.
 *
 * This file is the run itself (its loop and main). The kinds of order are data (kinds.ts), the
 * plan, the checks and the flags pure code (plan.ts, checks.ts, args.ts), the printing too
 * (view.ts); the stack's settings are in settings.ts; one order's steps and the staged outage are orders.ts, the API
 * client api-client.ts, the terminal screen.ts, the closing report and money ledger
 * report.ts; the child process is stack.ts. See DEMO_USAGE for the flags.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { customerToken } from '../../src/api/tokens';
import { environmentWith, loadConfig, type Config } from '../../src/config';
import { runMain, StartupError } from '../../src/main-helpers';
import { pollPolicyFromConfig } from '../../src/poll-policy';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import { assessPlan, buildPlan, humanDuration, PlanError } from './plan';
import { DEMO_OUTAGE_MS, DEMO_STACK_ENV, DEMO_STACK_UNSET, Refusal, sleep } from './settings';
import { DEMO_USAGE, parseDemoArgs } from './args';
import { compareListing, outageProblems } from './checks';
import type { DemoKindSpec } from './kinds';
import { apiAnswers, resetDataDir, startDemoStack, type DemoStack } from './stack';
import {
  changeLine,
  clock,
  exceptionCheck,
  orderIdOfWorkflow,
  renderFrame,
  summaryLine,
  temporalUiUrl,
  visibilityChecks,
  type VisibilityCheck,
} from './view';
import { ApiClient } from './api-client';
import { Screen } from './screen';
import {
  type CheckResult,
  Outage,
  type OutageResult,
  type RunContext,
  type RunOutcome,
  apiUrlOf,
  checkIfSettled,
  maybeCancel,
  newTracked,
  placeOrder,
  refreshOrder,
  rowOf,
  simulatorTimeScale,
} from './orders';
import { report } from './report';

const ROOT = path.resolve(__dirname, '../..');
/** First start on a machine without the Temporal CLI builds it (minutes): be patient. */
const STACK_READY_TIMEOUT_MS = 15 * 60_000;
/** How often the demo reads every open order through the API. */
const TICK_MS = 2_000;
const EXIT_REFUSED = 2;
const EXIT_INTERRUPTED = 130;

class Interrupted extends Error {
  override name = 'Interrupted';
}

async function runCheck(
  ctx: RunContext,
  check: VisibilityCheck,
  orders: readonly { orderId: string; spec: DemoKindSpec }[],
  opts: { tries: number; isKnownBug: (orderId: string) => boolean },
): Promise<CheckResult> {
  const expected = new Map(
    orders.map((o) => [o.orderId, check.per(o.spec)] as const).filter(([, n]) => n > 0),
  );
  const ours = new Set(orders.map((o) => o.orderId));
  let result: CheckResult = {
    check,
    listed: null,
    expectedTotal: 0,
    explained: [],
    unexplained: [],
    error: 'not run',
  };
  for (let i = 0; i < opts.tries; i++) {
    try {
      const found = new Map<string, number>();
      for await (const wf of ctx.temporal.client.workflow.list({ query: check.query })) {
        const orderId = orderIdOfWorkflow(wf.workflowId);
        if (orderId !== null && ours.has(orderId)) found.set(orderId, (found.get(orderId) ?? 0) + 1);
      }
      const compared = compareListing({ expected, found, isKnownBug: opts.isKnownBug });
      result = { check, ...compared, error: null };
      if (compared.explained.length === 0 && compared.unexplained.length === 0) return result;
    } catch (err) {
      result = { ...result, error: (err as Error).message };
    }
    await sleep(1_000);
  }
  return result;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

async function runOrders(ctx: RunContext): Promise<RunOutcome> {
  const { screen, plan } = ctx;
  const tracked = plan.map(newTracked);
  const sinceIso = new Date(Date.now() - 1_000).toISOString();

  // The first order doubles as the probe of the stack's settings.
  const timeScale = await simulatorTimeScale(ctx.config);
  const placedAt = Date.now();
  // Times in the live view count from the first order, like the elapsed time in the summary.
  const elapsed = (at: number) => `${clock(at - placedAt)}–${clock(at - placedAt + DEMO_OUTAGE_MS)}`;
  await placeOrder(ctx, tracked[0]!);
  if (tracked[0]!.orderId === null)
    throw new StartupError(`the first order could not be placed: ${tracked[0]!.createError}`);
  const { policy } = ctx;
  const assessment = assessPlan(
    plan,
    { timeScale, policy },
    { timeoutMs: ctx.timeoutMs, outageMs: DEMO_OUTAGE_MS },
  );
  if (assessment.problems.length > 0) {
    // Leave nothing behind: the probe is cancelled (a declined probe has failed already).
    await ctx.api
      .request('POST', `/v1/orders/${tracked[0]!.orderId}/cancel`, {
        body: { reason: 'demo refused to run' },
      })
      .catch(() => undefined);
    throw new Refusal(
      [
        "this stack's settings cannot finish the demo honestly:",
        ...assessment.problems.map((p) => `  - ${p}`),
        'Stop that stack and run `npm run demo` (it starts its own with the demo settings), or',
        'start one with `npm run demo -- --keep` and attach to that one.',
        `(The order it placed to read them, ${tracked[0]!.orderNumber}, ${tracked[0]!.entry.spec.expect.payment === 'DECLINED' ? 'was declined and holds nothing' : 'has been cancelled'}.)`,
      ].join('\n'),
    );
  }
  screen.line(
    `Courier time ×${timeScale} (${humanDuration(timeScale * 1000)} of courier time per second); polls every ${humanDuration(Math.min(...Object.values(policy.intervalMs)))}–${humanDuration(Math.max(...Object.values(policy.intervalMs)))}, expiry after ${humanDuration(policy.expireAfterNoScanMs)} without a scan: should settle in about ${humanDuration(assessment.estimateMs)}.`,
  );
  for (const t of tracked.slice(1)) {
    if (ctx.signal.aborted) throw new Interrupted();
    await placeOrder(ctx, t);
    if (screen.tty)
      screen.draw([
        `Placing orders: ${tracked.filter((x) => x.orderId || x.createError).length}/${plan.length}`,
      ]);
  }
  screen.release();
  screen.line(
    `Placed ${tracked.filter((t) => t.orderId).length} orders for customer ${ctx.customerId} in ${humanDuration(Date.now() - placedAt)}.`,
  );
  if (!screen.tty) screen.line('(stdout is not a terminal: one line per change, a summary every 15 s)');

  const outageCourier = plan.find((e) => e.spec.outage)?.spec.courier ?? null;
  const outage = new Outage(ctx, outageCourier);
  const exception = exceptionCheck(
    plan.map((e) => e.spec),
    sinceIso,
  );
  let exceptionResult: CheckResult | null = null;
  let exceptionPending: Promise<void> | null = null;
  const cancels = new Set<Promise<void>>();
  const deadline = placedAt + ctx.timeoutMs;
  const title = `Waybill demo · ${plan.length} orders · courier time ×${timeScale} · Ctrl-C stops · stack log ${ctx.stack ? path.relative(process.cwd(), ctx.stack.logFile) : 'not ours (--attach)'}`;
  let lastSummary = 0;
  let timedOut = false;

  const render = () => {
    const rows = tracked.map((t) => rowOf(t));
    const summary = summaryLine(rows, { elapsedMs: Date.now() - placedAt, outage: outage.describe(elapsed) });
    if (screen.tty) {
      screen.draw(
        renderFrame(rows, {
          title,
          summary,
          now: Date.now(),
          width: screen.width,
          height: screen.rows,
          color: screen.color,
        }),
      );
    } else if (Date.now() - lastSummary >= 15_000) {
      lastSummary = Date.now();
      screen.line(summary);
    }
  };

  try {
    for (;;) {
      if (ctx.signal.aborted) throw new Interrupted();
      if (
        ctx.stack &&
        (await Promise.race([ctx.stack.exited.then(() => true), sleep(0).then(() => false)]))
      ) {
        throw new StartupError(`the stack exited during the run; see ${ctx.stack.logFile}`);
      }
      const tickStart = Date.now();
      const open = tracked.filter((t) => t.orderId !== null && t.problems === null);
      if (open.length === 0) break;
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      outage.tick();
      await mapLimit(open, 6, async (t) => {
        // The tracking view says whether the courier is reachable: asked around the outage only.
        const changed = await refreshOrder(ctx, t, outage.recent() || t.courierDownNow);
        maybeCancel(ctx, t, cancels);
        const settled = await checkIfSettled(ctx, t);
        if ((changed || settled) && !screen.tty) {
          screen.line(changeLine(rowOf(t), Date.now() - placedAt));
        }
      });
      await outage.maybeStart(tracked);
      if (exception && exceptionPending === null) {
        const damaged = tracked.filter((t) => t.entry.spec.kind === 'exception' && t.orderId !== null);
        if (
          damaged.length > 0 &&
          damaged.every((t) => t.parcels.length > 0 && t.parcels.every((p) => p.status === 'EXCEPTION'))
        ) {
          const orders = tracked.flatMap((t) =>
            t.orderId ? [{ orderId: t.orderId, spec: t.entry.spec }] : [],
          );
          exceptionPending = runCheck(ctx, exception, orders, { tries: 5, isKnownBug: () => false }).then(
            (result) => {
              exceptionResult = result;
            },
          );
        }
      }
      render();
      // Stay well inside the API's rate limit (an attached stack may have the default 600/min).
      const perTick = open.length + tracked.filter((t) => t.entry.spec.outage).length + 2;
      const limit = ctx.api.rateLimitPerMinute;
      const tickMs = Math.max(TICK_MS, limit ? (perTick * 60_000) / (limit * 0.5) : TICK_MS);
      await sleep(Math.max(0, tickMs - (Date.now() - tickStart)));
    }
  } finally {
    await outage.clear();
    render();
    screen.release();
  }
  const settledMs = Date.now() - placedAt;
  await Promise.all([...cancels]);
  await exceptionPending;

  // Orders still open at the deadline fail with what they showed last.
  for (const t of tracked.filter((x) => x.problems === null)) {
    t.problems = [
      `not settled after ${humanDuration(ctx.timeoutMs)}: order ${t.status}, parcels ${t.parcels.map((p) => p.status).join(', ') || 'none'}`,
    ];
  }

  screen.line();
  screen.line('Checking the Temporal visibility queries…');
  const placed = tracked.flatMap((t) => (t.orderId ? [{ orderId: t.orderId, spec: t.entry.spec }] : []));
  const knownBugOrders = new Set(
    tracked.filter((t) => t.orderId && rowOf(t).verdict === 'known-bug').map((t) => t.orderId!),
  );
  const checks: CheckResult[] = [];
  if (exception) {
    checks.push(
      exceptionResult ?? {
        check: exception,
        listed: null,
        expectedTotal: 0,
        explained: [],
        unexplained: [],
        error: 'not taken: the damaged parcels were never all in EXCEPTION at the same time',
      },
    );
  }
  for (const check of visibilityChecks(
    placed.map((p) => p.spec),
    { customerId: ctx.customerId, sinceIso },
  )) {
    checks.push(
      await runCheck(ctx, check, placed, {
        tries: timedOut ? 1 : 10,
        isKnownBug: (orderId) => knownBugOrders.has(orderId),
      }),
    );
  }
  let outageResult: OutageResult | null = null;
  if (outage.courier !== null) {
    const riders = tracked.filter((t) => t.entry.spec.outage && t.orderId !== null);
    const seen = {
      started: outage.state !== 'waiting',
      refusedCalls:
        outage.state === 'waiting' ? 0 : (await outage.refusedSoFar().catch(() => 0)) - outage.refusedBefore,
      parcels: riders.reduce((n, t) => n + t.parcels.length, 0),
      shownDown: riders.filter((t) => t.sawCourierDown).length,
    };
    outageResult = { courier: outage.courier, ...seen, problems: outageProblems(seen) };
  }
  return { tracked, checks, outage: outageResult, timedOut, settledMs };
}

runMain(async () => {
  const t0 = Date.now();
  let args;
  try {
    args = parseDemoArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof PlanError) {
      process.stderr.write(`waybill demo: ${err.message}\n`);
      process.exit(EXIT_REFUSED);
    }
    throw err;
  }
  const screen = new Screen(process.stdout);
  if (args.help) {
    screen.line(DEMO_USAGE);
    return;
  }
  const plan = buildPlan({ kinds: args.kinds, orders: args.orders });

  let stack: DemoStack | null = null;
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(
        `\nwaybill demo: ${signal} again: exiting now${stack ? ` (the stack, pid ${stack.pid}, may still run)` : ''}\n`,
      );
      process.exit(EXIT_INTERRUPTED);
    }
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => screen.release());

  const userConfig = loadConfig();
  const dataDir = path.join(userConfig.paths.dataDir, 'demo');
  const stackEnv = environmentWith({ ...DEMO_STACK_ENV, WAYBILL_DATA_DIR: dataDir }, DEMO_STACK_UNSET);
  let config: Config;
  let temporal: TemporalClient | null = null;
  let exitCode = 1;
  try {
    const running = await apiAnswers(apiUrlOf(userConfig));
    if (running && !args.attach) {
      throw new Refusal(
        [
          `a Waybill API already answers on ${apiUrlOf(userConfig)}.`,
          'The demo needs a stack with its own settings (courier time ×3600, polls every few seconds,',
          'expiry after 2 minutes); a stack on the default settings would take days to finish the orders.',
          '  - stop that stack and run `npm run demo` again (it starts and stops its own), or',
          '  - `npm run demo -- --attach` if that stack was left by `npm run demo -- --keep`, or',
          '  - run the demo beside it on other ports: WAYBILL_PORT, TEMPORAL_DEV_PORT, TEMPORAL_UI_PORT,',
          '    WAYBILL_PG_PORT, COURIER_SIMULATOR_PORT and PAYMENT_SIMULATOR_PORT.',
        ].join('\n'),
      );
    }
    if (!running && args.attach) {
      throw new Refusal(
        `--attach: nothing answers on ${apiUrlOf(userConfig)}; run without --attach and the demo starts its own stack`,
      );
    }
    if (running) {
      config = userConfig;
      screen.line(`Using the Waybill stack on ${apiUrlOf(config)} (--attach); checking its settings first.`);
    } else {
      config = loadConfig(stackEnv);
      await resetDataDir(dataDir);
      const rel = path.relative(process.cwd(), dataDir) || dataDir;
      screen.line(
        `Starting the demo's own stack: data in ${rel}/ (emptied first), log in ${rel}/stack.log …`,
      );
      const starting = startDemoStack({
        root: ROOT,
        env: stackEnv,
        dataDir,
        apiUrl: apiUrlOf(config),
        timeoutMs: STACK_READY_TIMEOUT_MS,
        onWaiting: (ms) =>
          screen.line(
            `  still starting (${Math.round(ms / 1000)} s; the first start on a machine may build the Temporal CLI)`,
          ),
      });
      stack = await Promise.race([
        starting,
        new Promise<never>((_, reject) =>
          abort.signal.addEventListener('abort', () => reject(new Interrupted()), { once: true }),
        ),
      ]).catch(async (err: unknown) => {
        if (err instanceof Interrupted) await (await starting.catch(() => null))?.stop();
        throw err;
      });
      screen.line(
        `Stack up in ${humanDuration(Date.now() - t0)}: API ${apiUrlOf(config)}, Temporal UI ${temporalUiUrl({ uiPort: config.temporal.uiPort, namespace: config.temporal.namespace })}, courier simulator ${config.courier.simulatorUrl}.`,
      );
    }

    temporal = createTemporalClient(config);
    const runId = randomBytes(4).toString('hex');
    const customerId = `cus_demo_${runId}`;
    const api = new ApiClient(apiUrlOf(config), customerToken(config, customerId, 3 * 3_600_000));
    const ctx: RunContext = {
      strict: args.strict,
      config,
      api,
      temporal,
      screen,
      plan,
      customerId,
      runId,
      timeoutMs: args.timeoutMs,
      stack,
      signal: abort.signal,
      t0,
      policy: pollPolicyFromConfig(loadConfig(stackEnv)),
    };
    const outcome = await runOrders(ctx);
    exitCode = (await report(ctx, outcome)) ? 0 : 1;
  } catch (err) {
    screen.release();
    if (err instanceof Refusal) {
      process.stderr.write(`waybill demo: ${err.message}\n`);
      exitCode = EXIT_REFUSED;
    } else if (err instanceof Interrupted) {
      process.stderr.write('\nwaybill demo: interrupted.\n');
      exitCode = EXIT_INTERRUPTED;
    } else {
      throw err;
    }
  } finally {
    await temporal?.connection.close().catch(() => undefined);
    if (stack) {
      const rel = path.relative(process.cwd(), dataDir) || dataDir;
      if (args.keep && exitCode !== EXIT_INTERRUPTED) {
        stack.detach();
        screen.line();
        screen.line(
          `The stack keeps running (--keep), pid ${stack.pid}, log ${rel}/stack.log. Stop it with: kill -INT ${stack.pid}`,
        );
        screen.line('Place another round of orders on it with: npm run demo -- --attach');
      } else {
        screen.line();
        screen.line('Stopping the stack…');
        const code = await stack.stop();
        screen.line(
          code === 0
            ? `Stack stopped. Its data stays in ${rel}/ until the next demo run; to browse it in the Temporal UI again: WAYBILL_DATA_DIR=${rel} npm start`
            : `The stack exited with code ${code}; see ${rel}/stack.log`,
        );
        if (code !== 0 && exitCode === 0) exitCode = 1;
      }
    }
  }
  process.exit(exitCode);
});
