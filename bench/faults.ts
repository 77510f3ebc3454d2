/**
 * Fault suites: hundreds of orders through the HTTP API while a part of the stack is broken,
 * then consistency checks over the read model, the payment provider and the courier.
 *
 *   npm run test:faults -- [suite ...] [--orders 150] [--rate 3] [--temporal dev|server]
 *
 * `--temporal server` runs every suite on the real Temporal server on Postgres instead of the
 * CLI's dev server (bench/support/stack.ts); temporal-restart then restarts that server.
 *
 * Suites (default: all, each on its own fresh stack from bench/support/stack.ts):
 *   worker-kill       SIGKILL the worker 4 times while orders run, restarting it each time
 *   courier-outage    every courier format answers 503 for 2 minutes (simulator control API)
 *   postgres-restart  Postgres stopped for 15 s, then started on the same data
 *   temporal-restart  the Temporal server stopped for 15 s, then started on the same data (the dev
 *                     server's SQLite file, or the real server's Postgres databases)
 *   courier-answers   the courier answers books and cancels with random 4xx/5xx while the orders
 *                     are placed (scripted answers), then normally; an admin retries what was parked
 *
 * The shop's side behaves like a real one: it retries a 503 on create with the same
 * Idempotency-Key, cancels one order in ten a few seconds after placing it (courier-answers:
 * three in ten, once booked), and a reader polls the customers' read routes throughout. Checks
 * (PASS/FAIL each, bench/support/consistency.ts): every order settles (read model and
 * Temporal); every parcel of a settled order final; no tracking event twice; the money
 * ledger's rules (devstack/ledger.ts: captured − refunded = value delivered and kept, one
 * capture, the read model agrees with the provider, no authorisation held, no live booking,
 * stock reconciles); reads never answered 5xx (in the Postgres suite: only 503 with
 * Retry-After, and only while Postgres was down); writes 503 + Retry-After at worst.
 * Prints the figures and writes bench/results/faults.json; exits 1 when a check fails.
 *
 * courier-answers (issue 13): for a window while the orders go in (until 10 s after the shop's
 * last cancel, at least 30 s), the courier simulator's scripted answers (`/control/answers`,
 * over HTTP, driven by bench/support/courier-answers.ts) answer a share of bookings
 * 400/401/500/503 and of cancels 400/401/409/500/503, the status drawn anew every few seconds;
 * then they are cleared. A booking refused for good fails its order; a cancel refused for good
 * is parked (NEEDS_ATTENTION); the rest is retried. After the window the suite plays the admin:
 * it retries every open item of `GET /v1/admin/attention` until none is open, and checks that
 * each closed that way, and that no finished parcel keeps a courier incident. Three orders in
 * ten are cancelled once the API shows them booked, so that their cancel meets a live booking
 * at the courier (on a loaded machine a cancel sent a few seconds after the create mostly
 * overtakes the booking), and their parcels play `never_picked_up`: "the courier answers
 * normally again" then means their cancel goes through. A parcel the courier collected while
 * its cancel was refused would need recalling (`recall_parcel`), which a retry cannot do.
 * A cancel is never scripted 404: a scripted answer changes nothing at the courier, so the saga
 * would (rightly) take "unknown booking" as nothing live while the simulator still holds the
 * booking, and the ledger's live-booking rule would flag the courier's own contradiction, not
 * ours. The 404 comes for real instead: one cancelled order in three loses its booking just
 * before its cancel (`DELETE /control/parcels/:number`, the courier forgets it), so the
 * courier's answer and its books agree, as the ledger needs.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { customerToken, staffToken } from '../src/api/tokens';
import { DEMO_STACK_ENV, DEMO_TIME_SCALE } from '../devstack/demo/settings';
import { SETTLED_STATUSES } from '../devstack/ledger';
import { runMain } from '../src/main-helpers';
import { orderWorkflowId } from '../src/workflows/contract';
import { consistencyChecks, summarise, type Check } from './support/consistency';
import {
  attentionCheck,
  incidentCheck,
  playAdmin,
  scriptCourierAnswers,
  type AdminTally,
  type ScriptedTally,
} from './support/courier-answers';
import {
  startProcessStack,
  takeTargetArgs,
  waitForTemporal,
  type ProcessStack,
  type TemporalTarget,
} from './support/stack';

const SUITES = [
  'worker-kill',
  'courier-outage',
  'postgres-restart',
  'temporal-restart',
  'courier-answers',
] as const;
type Suite = (typeof SUITES)[number];

const STOCK = 1_000_000;
const SETTLE_DEADLINE_MS = 8 * 60_000;
/** How long the harness's own Temporal client may take to reach the server after its restart. */
const TEMPORAL_BACK_MS = 120_000;

interface Args {
  suites: Suite[];
  orders: number;
  rate: number;
  temporal: TemporalTarget;
}

function parseArgs(argv: string[]): Args {
  const suites: Suite[] = [];
  let orders = 150;
  let rate = 3;
  const { temporal, rest } = takeTargetArgs(argv);
  argv = rest;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--orders') orders = Number(argv[++i]);
    else if (a === '--rate') rate = Number(argv[++i]);
    else if ((SUITES as readonly string[]).includes(a)) suites.push(a as Suite);
    else
      throw new Error(
        `unknown argument ${a}; suites: ${SUITES.join(', ')}; flags: --orders N, --rate R, --temporal dev|server`,
      );
  }
  if (!Number.isInteger(orders) || orders < 1) throw new Error('--orders must be a whole number ≥ 1');
  if (!(rate > 0)) throw new Error('--rate must be > 0 (orders per second)');
  return { suites: suites.length ? suites : [...SUITES], orders, rate, temporal };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;

// --- The shop ------------------------------------------------------------------------------

/**
 * What kind of order the shop places; the courier simulator's "test card" picks the lifecycle.
 * `cancel`: the shop cancels it a few seconds after placing it (`soon`), or once the API shows
 * it booked (`once-booked`: the cancel then reaches the courier); `loseBooking`: just before
 * that cancel, the courier loses the order's booking (its cancel then answers a real 404).
 */
interface MixEntry {
  kind: string;
  scenario: string;
  token: string;
  cancel: 'never' | 'soon' | 'once-booked';
  loseBooking: boolean;
}
const orderKind = (kind: string, scenario: string, token = 'tok_visa'): MixEntry => ({
  kind,
  scenario,
  token,
  cancel: 'never',
  loseBooking: false,
});

/** One in ten cancelled, some seconds after placing: a race with the parcel's pickup (6 courier hours). */
const MIX: readonly MixEntry[] = [
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('returned', 'return_to_origin'),
  orderKind('declined', 'delivered', 'tok_chargeDeclined'),
  { ...orderKind('cancelled', 'delivered'), cancel: 'soon' },
  orderKind('delivered', 'delivered'),
];

/**
 * courier-answers: three in ten cancelled once booked (so that each cancel reaches the courier
 * to be refused), their parcels never collected (a cancel the courier refused must still be
 * possible when the admin retries it), one of the three losing its booking first.
 */
const ANSWERS_MIX: readonly MixEntry[] = [
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  { ...orderKind('cancelled', 'never_picked_up'), cancel: 'once-booked' },
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('returned', 'return_to_origin'),
  { ...orderKind('cancelled-lost-booking', 'never_picked_up'), cancel: 'once-booked', loseBooking: true },
  orderKind('delivered', 'delivered'),
  orderKind('declined', 'delivered', 'tok_chargeDeclined'),
  { ...orderKind('cancelled', 'never_picked_up'), cancel: 'once-booked' },
  orderKind('delivered', 'delivered'),
];

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
  /** The kind (MixEntry.kind) of each accepted order. */
  kindOf: Map<string, string>;
  refusedForGood: string[];
  createRetries: number;
  cancels: { asked: number; accepted: number; refused: number };
  /**
   * Orders cancelled once booked: how many were booked (and so cancelled at the courier), how
   * many bookings the courier lost just before their cancel, and how many orders had no
   * booking by then (refused, or not booked within 2 min; cancelled anyway).
   */
  onceBooked: { booked: number; lost: number; notBooked: number };
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
  /** Called once every order has been placed and every cancel asked once (or the shop stopped early). */
  allAsked: () => void;
}

async function runShop(
  stack: ProcessStack,
  args: Args,
  mix: readonly MixEntry[],
  control: ShopControl,
): Promise<Shop> {
  const runId = randomBytes(4).toString('hex');
  const token = customerToken(stack.config, `cus_faults_${runId}`, 6 * 3_600_000);
  const shop: Shop = {
    accepted: [],
    kindOf: new Map(),
    refusedForGood: [],
    createRetries: 0,
    cancels: { asked: 0, accepted: 0, refused: 0 },
    onceBooked: { booked: 0, lost: 0, notBooked: 0 },
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

  // Orders not yet placed, or placed with their cancel not asked yet.
  let toAsk = args.orders;
  const place = async (n: number) => {
    let asked = false;
    const askedNow = () => {
      if (asked) return;
      asked = true;
      if (--toAsk === 0) control.allAsked();
    };
    try {
      await placeOne(n, askedNow);
    } finally {
      askedNow();
    }
  };
  const placeOne = async (n: number, askedNow: () => void) => {
    const entry = mix[n % mix.length]!;
    const key = `faults-${runId}-${n}`;
    const body = {
      email: `fault${n}@example.com`,
      shippingAddress: {
        name: `Fault Shopper ${n} [scenario:${entry.scenario}]`,
        line1: `${n} Jalan Ampang`,
        city: 'Kuala Lumpur',
        postcode: '50450',
        country: 'MY',
      },
      lines: [{ sku: n % 2 === 0 ? 'KETTLE-1L' : 'MUG-SET-4', quantity: 1 }],
      payment: { token: entry.token },
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
        shop.kindOf.set(orderId, entry.kind);
        if (entry.cancel !== 'never') {
          if (entry.cancel === 'soon') await sleep(1_000 + (n % 5) * 1_000);
          else await untilBooked(stack, shop, token, orderId, entry.loseBooking);
          shop.cancels.asked++;
          askedNow();
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
  control.allAsked();
  shop.readerDone = reader;
  return shop;
}

/**
 * Waits (up to 2 min) until the API shows the order booked (CONFIRMED, with its parcels), as a
 * shopper who cancels after the confirmation; with `lose`, the courier then loses those
 * bookings (the simulator forgets them). An order that is not booked by then (its booking
 * retrying through scripted answers) or never will be (refused) is counted and left alone.
 */
async function untilBooked(
  stack: ProcessStack,
  shop: Shop,
  token: string,
  orderId: string,
  lose: boolean,
): Promise<void> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const { status, body } = await call(stack, shop.reads, 'GET', `/v1/orders/${orderId}`, { token });
    const shipments = (body?.shipments ?? []) as { trackingNumber: string }[];
    if (status === 200 && body?.status === 'CONFIRMED' && shipments.length > 0) {
      shop.onceBooked.booked++;
      if (!lose) return;
      for (const s of shipments) {
        const url = `${stack.courier.url}/control/parcels/${encodeURIComponent(s.trackingNumber)}`;
        const res = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
        if (!res.ok)
          throw new Error(`the courier simulator did not forget ${s.trackingNumber}: ${res.status}`);
      }
      shop.onceBooked.lost += shipments.length;
      return;
    }
    if (status === 200 && body?.status !== 'PENDING' && body?.status !== 'CONFIRMED') break;
    await sleep(500);
  }
  shop.onceBooked.notBooked++;
}

// --- Faults -------------------------------------------------------------------------------

interface FaultLog {
  lines: string[];
  /** Windows (epoch ms) when the broken part was down. */
  down: { from: number; until: number }[];
  /** courier-answers: the calls the courier answered with a scripted status. */
  scripted?: ScriptedTally;
}

/** Breaks the suite's part of the stack and brings it back; `log` keeps what happened, also when it throws. */
async function injectFaults(
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

// --- One suite ------------------------------------------------------------------------------

interface SuiteResult {
  suite: Suite;
  orders: number;
  accepted: number;
  outcomes: string;
  /** How each kind of order the shop placed ended. */
  byKind: Record<string, string>;
  createRetries: number;
  cancels: Shop['cancels'];
  faults: string[];
  settleSeconds: number;
  wallSeconds: number;
  writes: Record<string, number>;
  reads: Record<string, number>;
  workerStarts: number;
  checks: Check[];
  /** courier-answers: what the courier answered, what the admin found parked and did. */
  answers?: {
    scripted: ScriptedTally | null;
    onceBooked: Shop['onceBooked'];
    admin: AdminTally | null;
  };
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
    byKind: {},
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
      temporal: args.temporal,
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
  let allAsked!: () => void;
  const asked = new Promise<void>((resolve) => (allAsked = resolve));
  const control: ShopControl = { stopReading: false, giveUp: false, allAsked };
  const faults: FaultLog = { lines: [], down: [] };
  say(`placing ${args.orders} orders at ${args.rate}/s`);
  const [placed, injected] = await Promise.allSettled([
    runShop(stack, args, suite === 'courier-answers' ? ANSWERS_MIX : MIX, control),
    // A stack that does not come back from its fault: the shop stops retrying against it.
    injectFaults(suite, stack, asked, started, say, faults).catch((err: unknown) => {
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
  // courier-answers: an admin works the exceptions queue while the orders settle.
  let settled = false;
  const admin =
    suite === 'courier-answers'
      ? playAdmin({
          apiUrl: stack.apiUrl,
          token: staffToken(stack.config, 'adm_faults', 'admin', 6 * 3_600_000),
          stop: () => settled,
          deadline: settleFrom + SETTLE_DEADLINE_MS,
          say,
        }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
      : null;
  await settle(stack, shop.accepted, say);
  settled = true;
  const adminTally = await admin;
  result.settleSeconds = (Date.now() - settleFrom) / 1000;
  await shopDone(shop);
  if (suite === 'courier-answers') {
    result.answers = {
      scripted: faults.scripted ?? null,
      onceBooked: shop.onceBooked,
      admin: adminTally instanceof Error ? null : adminTally,
    };
  }

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
  if (adminTally instanceof Error) {
    checks.push({
      name: 'every parked step was closed by an admin retry',
      pass: false,
      detail: adminTally.message,
    });
  } else if (adminTally) {
    checks.push(attentionCheck(adminTally));
  }
  if (suite === 'courier-answers') checks.push(await incidentCheck(stack.db, shop.accepted));
  result.checks = checks;

  const outcomes = await stack.db
    .selectFrom('orders')
    .select(['id', 'status', 'failure_code'])
    .where('id', 'in', shop.accepted.length ? shop.accepted : ['none'])
    .execute();
  result.outcomes = summarise(outcomes.map((o) => o.status));
  // How each kind of order ended, a failure with its code: "cancelled: 11 CANCELLED, 1 FAILED BOOKING_FAILED".
  const byKind = new Map<string, string[]>();
  for (const o of outcomes) {
    const kind = shop.kindOf.get(o.id) ?? '?';
    const ending = o.status === 'FAILED' ? `FAILED ${o.failure_code}` : o.status;
    byKind.set(kind, [...(byKind.get(kind) ?? []), ending]);
  }
  result.byKind = Object.fromEntries([...byKind].map(([kind, endings]) => [kind, summarise(endings)]));
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
    `Fault suites: ${args.suites.join(', ')} — ${args.orders} orders each at ${args.rate}/s, courier clock ×${DEMO_TIME_SCALE}, Temporal ${args.temporal}\n`,
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
  for (const [kind, endings] of Object.entries(r.byKind)) process.stdout.write(`    ${kind}: ${endings}\n`);
  if (r.answers) {
    const { onceBooked, admin } = r.answers;
    const parked = admin
      ? Object.entries(admin.parkedByStep)
          .map(([step, n]) => `${n} ${step}`)
          .join(', ') || 'none'
      : 'unknown (the admin failed)';
    process.stdout.write(
      `    cancels: ${r.cancels.asked} asked, ${r.cancels.accepted} accepted, ${r.cancels.refused} refused; ` +
        `${onceBooked.booked} cancelled once booked, ${onceBooked.lost} of them after the courier lost the booking ` +
        `(${onceBooked.notBooked} cancelled unbooked: refused, or not booked within 2 min)\n` +
        `    parked for an admin: ${parked}${admin ? ` on ${admin.parkedOrders} orders` : ''}\n`,
    );
    for (const [step, reason] of Object.entries(admin?.reasons ?? {})) {
      process.stdout.write(`      e.g. ${step}: ${reason}\n`);
    }
  }
  for (const c of r.checks) process.stdout.write(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
}
