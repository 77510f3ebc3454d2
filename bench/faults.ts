/**
 * Fault suites: hundreds of orders through the HTTP API while a part of the stack is broken,
 * then consistency checks over the read model, the payment provider and the courier.
 *
 *   npm run test:faults -- [suite ...] [--orders 150] [--rate 3]
 *
 * Suites (default: all, each on its own fresh stack from bench/support/stack.ts):
 *   worker-kill       SIGKILL the worker 4 times while orders run, restarting it each time
 *   courier-outage    every courier format answers 503 for 2 minutes (simulator control API)
 *   postgres-restart  Postgres stopped for 15 s, then started on the same data
 *   temporal-restart  the Temporal dev server stopped for 15 s, then started on the same SQLite file
 *
 * The shop's side behaves like a real one: it retries a 503 on create with the same
 * Idempotency-Key, cancels one order in ten a few seconds after placing it, and a reader
 * polls the customers' read routes throughout. Checks (PASS/FAIL each): every order settles
 * (read model and Temporal); no tracking event twice; one live booking per order; at most one
 * capture per order; no half-compensation; stock reconciles; reads never answered 5xx (in the
 * Postgres suite: only 503 with Retry-After, and only while Postgres was down).
 * Prints the figures and writes bench/results/faults.json; exits 1 when a check fails.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { customerToken } from '../src/api/tokens';
import { DEMO_STACK_ENV, DEMO_TIME_SCALE } from '../src/dev/demo-plan';
import { SETTLED_STATUSES } from '../src/dev/ledger';
import { runMain } from '../src/main-helpers';
import { orderWorkflowId } from '../src/workflows/contract';
import { consistencyChecks, summarise, type Check } from './support/consistency';
import { startProcessStack, waitForTemporal, type ProcessStack } from './support/stack';

const SUITES = ['worker-kill', 'courier-outage', 'postgres-restart', 'temporal-restart'] as const;
type Suite = (typeof SUITES)[number];

const STOCK = 1_000_000;
const SETTLE_DEADLINE_MS = 8 * 60_000;
/** How long the harness's own Temporal client may take to reach the server after its restart. */
const TEMPORAL_BACK_MS = 120_000;

interface Args {
  suites: Suite[];
  orders: number;
  rate: number;
}

function parseArgs(argv: string[]): Args {
  const suites: Suite[] = [];
  let orders = 150;
  let rate = 3;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--orders') orders = Number(argv[++i]);
    else if (a === '--rate') rate = Number(argv[++i]);
    else if ((SUITES as readonly string[]).includes(a)) suites.push(a as Suite);
    else throw new Error(`unknown argument ${a}; suites: ${SUITES.join(', ')}; flags: --orders N, --rate R`);
  }
  if (!Number.isInteger(orders) || orders < 1) throw new Error('--orders must be a whole number ≥ 1');
  if (!(rate > 0)) throw new Error('--rate must be > 0 (orders per second)');
  return { suites: suites.length ? suites : [...SUITES], orders, rate };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;

// --- The shop ------------------------------------------------------------------------------

/** What kind of order the shop places; the courier simulator's "test card" picks the lifecycle. */
const MIX = [
  { kind: 'delivered', scenario: 'delivered', token: 'tok_visa', cancel: false },
  { kind: 'delivered', scenario: 'delivered', token: 'tok_visa', cancel: false },
  { kind: 'delivered', scenario: 'delivered', token: 'tok_visa', cancel: false },
  { kind: 'delivered', scenario: 'delivered', token: 'tok_visa', cancel: false },
  { kind: 'retry-delivered', scenario: 'failed_attempt_then_delivered', token: 'tok_visa', cancel: false },
  { kind: 'retry-delivered', scenario: 'failed_attempt_then_delivered', token: 'tok_visa', cancel: false },
  { kind: 'returned', scenario: 'return_to_origin', token: 'tok_visa', cancel: false },
  { kind: 'declined', scenario: 'delivered', token: 'tok_chargeDeclined', cancel: false },
  { kind: 'cancelled', scenario: 'delivered', token: 'tok_visa', cancel: true },
  { kind: 'delivered', scenario: 'delivered', token: 'tok_visa', cancel: false },
] as const;

interface HttpTally {
  byStatus: Map<number, number>;
  /** 5xx answers: when, what and whether they carried Retry-After. */
  fivexx: { at: number; route: string; status: number; retryAfter: boolean }[];
}

const tally = (): HttpTally => ({ byStatus: new Map(), fivexx: [] });

async function call(
  stack: ProcessStack,
  t: HttpTally,
  method: string,
  route: string,
  opts: { token: string; body?: unknown; key?: string },
): Promise<{ status: number; body: Record<string, unknown> | null; retryAfter: boolean }> {
  let status = 0;
  let body: Record<string, unknown> | null = null;
  let retryAfter = false;
  try {
    const res = await fetch(`${stack.apiUrl}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${opts.token}`,
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(opts.key ? { 'idempotency-key': opts.key } : {}),
      },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    status = res.status;
    retryAfter = res.headers.has('retry-after');
    body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  } catch {
    status = 0; // no answer at all (the API process is never broken here, so this counts)
  }
  t.byStatus.set(status, (t.byStatus.get(status) ?? 0) + 1);
  if (status >= 500 || status === 0) {
    t.fivexx.push({ at: Date.now(), route: route.replace(/ord_[A-Za-z0-9]+/, ':id'), status, retryAfter });
  }
  return { status, body, retryAfter };
}

interface Shop {
  accepted: string[];
  refusedForGood: string[];
  createRetries: number;
  cancels: { asked: number; accepted: number; refused: number };
  writes: HttpTally;
  reads: HttpTally;
  /** The reader loop; settles once told to stop. */
  readerDone?: Promise<void>;
}

/** How the suite steers its shop from outside. */
interface ShopControl {
  /** The reader stops polling. */
  stopReading: boolean;
  /** The stack will not come back: stop placing orders and retrying. */
  giveUp: boolean;
}

async function runShop(stack: ProcessStack, args: Args, control: ShopControl): Promise<Shop> {
  const runId = randomBytes(4).toString('hex');
  const token = customerToken(stack.config, `cus_faults_${runId}`, 6 * 3_600_000);
  const shop: Shop = {
    accepted: [],
    refusedForGood: [],
    createRetries: 0,
    cancels: { asked: 0, accepted: 0, refused: 0 },
    writes: tally(),
    reads: tally(),
  };

  const reader = (async () => {
    let i = 0;
    while (!control.stopReading) {
      if (shop.accepted.length > 0) {
        const id = shop.accepted[i++ % shop.accepted.length]!;
        const route = i % 2 === 0 ? `/v1/orders/${id}` : `/v1/orders/${id}/tracking`;
        await call(stack, shop.reads, 'GET', route, { token });
      }
      await sleep(50);
    }
  })();

  const place = async (n: number) => {
    const mix = MIX[n % MIX.length]!;
    const key = `faults-${runId}-${n}`;
    const body = {
      email: `fault${n}@example.com`,
      shippingAddress: {
        name: `Fault Shopper ${n} [scenario:${mix.scenario}]`,
        line1: `${n} Jalan Ampang`,
        city: 'Kuala Lumpur',
        postcode: '50450',
        country: 'MY',
      },
      lines: [{ sku: n % 2 === 0 ? 'KETTLE-1L' : 'MUG-SET-4', quantity: 1 }],
      courier: 'simulator',
      payment: { token: mix.token },
    };
    // A shop retries a create that met an outage, with the same key, for up to 5 minutes
    // (less when the suite gives up on the stack).
    const until = Date.now() + 5 * 60_000;
    const retrying = () => Date.now() < until && !control.giveUp;
    for (;;) {
      const answer = await call(stack, shop.writes, 'POST', '/v1/orders', { token, body, key });
      if (answer.status === 202) {
        const orderId = String(answer.body?.orderId);
        shop.accepted.push(orderId);
        if (mix.cancel) {
          await sleep(1_000 + (n % 5) * 1_000);
          shop.cancels.asked++;
          for (;;) {
            const c = await call(stack, shop.writes, 'POST', `/v1/orders/${orderId}/cancel`, {
              token,
              body: { reason: 'changed my mind' },
              key: `${key}-cancel`,
            });
            if (c.status === 202 || c.status === 200) shop.cancels.accepted++;
            else if (c.status === 409) shop.cancels.refused++;
            else if (c.status >= 500 && retrying()) {
              await sleep(2_000);
              continue;
            }
            break;
          }
        }
        return;
      }
      if ((answer.status >= 500 || answer.status === 0 || answer.status === 409) && retrying()) {
        shop.createRetries++;
        await sleep(2_000);
        continue;
      }
      shop.refusedForGood.push(
        `#${n}: ${answer.status} ${JSON.stringify(answer.body?.error ?? answer.body)}`,
      );
      return;
    }
  };

  const placing: Promise<void>[] = [];
  for (let n = 0; n < args.orders && !control.giveUp; n++) {
    placing.push(place(n));
    await sleep(1_000 / args.rate);
  }
  await Promise.all(placing);
  shop.readerDone = reader;
  return shop;
}

// --- Faults -------------------------------------------------------------------------------

interface FaultLog {
  lines: string[];
  /** Windows (epoch ms) when the broken part was down. */
  down: { from: number; until: number }[];
}

/** Breaks the suite's part of the stack and brings it back; `log` keeps what happened, also when it throws. */
async function injectFaults(
  suite: Suite,
  stack: ProcessStack,
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
      const res = await fetch(`${stack.courier.url}/control/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'outage', durationMs }),
      });
      if (!res.ok) throw new Error(`the simulator refused the outage: ${res.status} ${await res.text()}`);
      const from = Date.now();
      note(`courier outage for ${durationMs / 1000} s (every format answers 503)`);
      await sleep(durationMs);
      log.down.push({ from, until: Date.now() });
      note('courier outage over');
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
      await stack.temporalServer.stop();
      note('Temporal dev server stopped');
      await sleep(15_000);
      await stack.temporalServer.start();
      log.down.push({ from, until: Date.now() });
      note(
        `Temporal dev server started again on the same SQLite file (down ${((Date.now() - from) / 1000).toFixed(1)} s)`,
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

// --- One suite ------------------------------------------------------------------------------

interface SuiteResult {
  suite: Suite;
  orders: number;
  accepted: number;
  outcomes: string;
  createRetries: number;
  cancels: Shop['cancels'];
  faults: string[];
  settleSeconds: number;
  wallSeconds: number;
  writes: Record<string, number>;
  reads: Record<string, number>;
  workerStarts: number;
  checks: Check[];
}

/** The stack of the suite running now, so Ctrl-C can stop it (and its Postgres) before exiting. */
let current: ProcessStack | null = null;
process.once('SIGINT', () => {
  process.stdout.write('\nInterrupted: stopping the stack\n');
  void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});

async function runSuite(suite: Suite, args: Args): Promise<SuiteResult> {
  const t0 = Date.now();
  const say = (line: string) => process.stdout.write(`  [${suite} ${elapsed(t0)}] ${line}\n`);
  const result: SuiteResult = {
    suite,
    orders: args.orders,
    accepted: 0,
    outcomes: '',
    createRetries: 0,
    cancels: { asked: 0, accepted: 0, refused: 0 },
    faults: [],
    settleSeconds: 0,
    wallSeconds: 0,
    writes: {},
    reads: {},
    workerStarts: 0,
    checks: [],
  };
  // What the suite was doing, for the verdict when it cannot go on.
  let stage = 'starting the stack';
  let stack: ProcessStack | null = null;
  try {
    say('starting a fresh stack');
    stack = await startProcessStack({
      name: `faults-${suite}`,
      timeScale: DEMO_TIME_SCALE,
      stock: STOCK,
      env: { ...DEMO_STACK_ENV, LOG_LEVEL: 'info' },
      say,
    });
    current = stack;
    await runOrdersAndCheck(suite, args, stack, result, say, (s) => (stage = s));
  } catch (err) {
    const reason = `${stage}: ${err instanceof Error ? err.message : String(err)}`;
    say(`cannot go on (${reason})`);
    result.checks.unshift({ name: 'the suite ran to its checks', pass: false, detail: reason });
  } finally {
    if (stack) {
      result.workerStarts = stack.worker.starts();
      say('stopping the stack');
      await stack.stop().catch((err: unknown) => say(`the stack did not stop cleanly: ${String(err)}`));
      current = null;
    }
    result.wallSeconds = (Date.now() - t0) / 1000;
  }
  return result;
}

/** Places the orders while the fault runs, waits for them to settle and checks; fills `result` as it goes. */
async function runOrdersAndCheck(
  suite: Suite,
  args: Args,
  stack: ProcessStack,
  result: SuiteResult,
  say: (line: string) => void,
  setStage: (stage: string) => void,
): Promise<void> {
  setStage('placing orders and injecting the fault');
  const started = Date.now();
  const control: ShopControl = { stopReading: false, giveUp: false };
  const faults: FaultLog = { lines: [], down: [] };
  say(`placing ${args.orders} orders at ${args.rate}/s`);
  const [placed, injected] = await Promise.allSettled([
    runShop(stack, args, control),
    // A stack that does not come back from its fault: the shop stops retrying against it.
    injectFaults(suite, stack, started, say, faults).catch((err: unknown) => {
      control.giveUp = true;
      throw err;
    }),
  ]);
  result.faults = faults.lines;
  const shopDone = async (shop: Shop) => {
    control.stopReading = true;
    await shop.readerDone;
    result.accepted = shop.accepted.length;
    result.createRetries = shop.createRetries;
    result.cancels = shop.cancels;
    result.writes = Object.fromEntries(shop.writes.byStatus);
    result.reads = Object.fromEntries(shop.reads.byStatus);
  };
  if (injected.status === 'rejected') {
    if (placed.status === 'fulfilled') await shopDone(placed.value);
    setStage(`the ${suite} fault`);
    throw injected.reason;
  }
  if (placed.status === 'rejected') throw placed.reason;
  const shop = placed.value;
  say(`${shop.accepted.length} orders accepted; waiting for every one to settle`);

  setStage('waiting for the orders to settle');
  const settleFrom = Date.now();
  await settle(stack, shop.accepted, say);
  result.settleSeconds = (Date.now() - settleFrom) / 1000;
  await shopDone(shop);

  setStage('running the checks');
  const checks = await consistencyChecks({
    db: stack.db,
    temporal: stack.temporal,
    payments: stack.payments,
    courier: stack.courier,
    orderIds: shop.accepted,
    initialStock: STOCK,
  });
  checks.unshift({
    name: 'every order the shop placed was accepted',
    pass: shop.refusedForGood.length === 0 && shop.accepted.length === args.orders,
    detail:
      shop.refusedForGood.length === 0
        ? `${shop.accepted.length}/${args.orders} (${shop.createRetries} retries of a 5xx/409 with the same key)`
        : shop.refusedForGood.slice(0, 3).join('; '),
  });
  checks.push(readCheck(suite, shop.reads, faults));
  checks.push(writeCheck(shop.writes));
  result.checks = checks;

  const outcomes = await stack.db
    .selectFrom('orders')
    .select('status')
    .where('id', 'in', shop.accepted.length ? shop.accepted : ['none'])
    .execute();
  result.outcomes = summarise(outcomes.map((o) => o.status));
}

/**
 * Waits until every order is settled on the read model, for at most SETTLE_DEADLINE_MS, or
 * until the open ones have no running workflow left (they will never settle: the checks say so).
 */
async function settle(stack: ProcessStack, orderIds: string[], say: (line: string) => void): Promise<void> {
  const from = Date.now();
  let lastReport = 0;
  for (;;) {
    const rows = orderIds.length
      ? await stack.db
          .selectFrom('orders')
          .select(['id', 'status'])
          .where('id', 'in', orderIds)
          .execute()
          .catch(() => [])
      : [];
    const open = rows.filter((r) => !SETTLED_STATUSES.has(r.status));
    if (rows.length === orderIds.length && open.length === 0) return;
    if (Date.now() - from > SETTLE_DEADLINE_MS) {
      say(`${open.length} orders still open after ${SETTLE_DEADLINE_MS / 60_000} min; checking as they are`);
      return;
    }
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      say(`${open.length} open: ${summarise(rows.map((r) => r.status))}`);
      if (
        open.length > 0 &&
        (await runningWorkflows(
          stack,
          open.map((r) => r.id),
        )) === 0
      ) {
        say(`the workflows of the ${open.length} open orders have all ended: they will not settle; checking`);
        return;
      }
    }
    await sleep(2_000);
  }
}

/** How many of these orders' workflows are running, or could not be asked about. */
async function runningWorkflows(stack: ProcessStack, orderIds: string[]): Promise<number> {
  let running = 0;
  for (const id of orderIds) {
    const status = await stack.temporal.client.workflow
      .getHandle(orderWorkflowId(id))
      .describe()
      .then((d) => d.status.name)
      .catch(() => null);
    if (status === null || status === 'RUNNING') running++;
  }
  return running;
}

/** Reads answer from Postgres only: never 5xx, except 503 + Retry-After while Postgres is down. */
function readCheck(suite: Suite, reads: HttpTally, faults: FaultLog): Check {
  const total = [...reads.byStatus.values()].reduce((a, b) => a + b, 0);
  const figures = [...reads.byStatus].map(([s, n]) => `${n}×${s}`).join(', ');
  if (suite !== 'postgres-restart') {
    return {
      name: 'reads never answered 5xx',
      pass: reads.fivexx.length === 0,
      detail:
        reads.fivexx.length === 0
          ? `${total} reads: ${figures}`
          : `${reads.fivexx.length} of ${total}: ${figures}`,
    };
  }
  // Allow a second either side of the window for requests in flight when it opened or closed.
  const inWindow = (at: number) => faults.down.some((w) => at >= w.from - 1_000 && at <= w.until + 1_000);
  const bad = reads.fivexx.filter((r) => r.status !== 503 || !r.retryAfter || !inWindow(r.at));
  return {
    name: 'reads never 5xx, except 503 + Retry-After while Postgres was down',
    pass: bad.length === 0,
    detail:
      bad.length === 0
        ? `${total} reads: ${figures} (${reads.fivexx.length} × 503 inside the outage)`
        : `${bad.length} bad of ${total}: ${bad
            .slice(0, 3)
            .map((r) => `${r.status} ${r.route}`)
            .join(', ')}`,
  };
}

/** Writes may meet 503 (Temporal or Postgres away) but never a 500 or no answer at all. */
function writeCheck(writes: HttpTally): Check {
  const bad = writes.fivexx.filter((w) => w.status !== 503 || !w.retryAfter);
  const figures = [...writes.byStatus].map(([s, n]) => `${n}×${s}`).join(', ');
  return {
    name: 'writes answered 503 + Retry-After at worst, never 500',
    pass: bad.length === 0,
    detail:
      bad.length === 0
        ? figures
        : `${bad.length} bad: ${bad
            .slice(0, 3)
            .map((w) => `${w.status} ${w.route}`)
            .join(', ')}`,
  };
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  process.stdout.write(
    `Fault suites: ${args.suites.join(', ')} — ${args.orders} orders each at ${args.rate}/s, courier clock ×${DEMO_TIME_SCALE}\n`,
  );
  const results: SuiteResult[] = [];
  const out = path.resolve(__dirname, 'results', 'faults.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const save = () =>
    fs.writeFileSync(
      out,
      `${JSON.stringify({ at: new Date().toISOString(), args, seconds: (Date.now() - t0) / 1000, results }, null, 2)}\n`,
    );
  for (const suite of args.suites) {
    const r = await runSuite(suite, args);
    results.push(r);
    save();
    report(r);
  }
  const failed = results.flatMap((r) => r.checks.filter((c) => !c.pass).map((c) => `${r.suite}: ${c.name}`));
  const verdicts = results.map((r) => {
    const bad = r.checks.filter((c) => !c.pass).length;
    return `${r.suite} ${bad === 0 ? 'PASS' : `FAIL (${bad} of ${r.checks.length} checks)`}`;
  });
  process.stdout.write(
    `\n${verdicts.join(', ')}\n${failed.length === 0 ? 'All checks passed' : `${failed.length} checks FAILED`} (${((Date.now() - t0) / 60_000).toFixed(1)} min); wrote ${path.relative(process.cwd(), out)}\n`,
  );
  // Pools and gRPC channels of the stopped stacks may linger; the run is over.
  process.exit(failed.length > 0 ? 1 : 0);
});

function report(r: SuiteResult): void {
  const how = r.outcomes
    ? `(${r.outcomes}); settled ${r.settleSeconds.toFixed(0)} s after the last create`
    : 'accepted; the suite stopped before its checks';
  process.stdout.write(
    `\n${r.suite}: ${r.accepted}/${r.orders} orders ${how}; ${r.wallSeconds.toFixed(0)} s in all\n`,
  );
  for (const line of r.faults) process.stdout.write(`    ${line}\n`);
  for (const c of r.checks) process.stdout.write(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
}
