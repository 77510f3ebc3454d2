/**
 * Read API throughput and latency against a floor, side by side in one run. Waybill's three
 * reads, each with its real hooks (request id, rate limit, credentials, metrics, logging),
 * its one query and its schema-serialised response:
 *
 * - customer: `GET /v1/orders/:orderId/tracking` with a customer bearer token;
 * - guest by number: `GET /v1/tracking/:trackingNumber`;
 * - guest lookup: `POST /v1/tracking/lookup` with the order number and e-mail;
 *
 * against the floor: a bare Fastify + pg route doing one primary-key SELECT on the same
 * database. Random orders over N (default 100,000, one shipment with three events each).
 * The lookup, a POST by design (the e-mail stays out of URLs and logs), is also set beside
 * a like-for-like floor: the same bare server taking the same JSON body by POST and doing
 * one SELECT by the order number's unique key. The customer read is also set beside the floor
 * running that read's own SQL statement (src/read-model/order-tracking.ts), which splits its
 * gap into what its SQL costs and what its route costs. Those figures are printed, not
 * judged: the goals are against the GET floor.
 *
 *   npm run bench:read-api -- [orders=100000] [seconds=8] [rounds=3]
 *
 * Both servers run at once, each alone in its own child process; autocannon (10
 * connections) loads one of them at a time from this process. Each round measures every
 * read back to back with a floor run of its own (the pair's order alternates by round, so
 * a neighbour's load on this shared machine falls on both sides alike), and the ratio is
 * taken within the pair. Then each read runs at 80 % of its median maximum for the p99
 * goal. Prints PASS/MISS per read against both goals and writes bench/results/read-api.json.
 *
 * Customer tokens: 1,000 customers (100 orders each at the default size), one token each,
 * as a signed-in session reuses its token for every read.
 *
 * BENCH_CPU_PROF=<dir> starts both servers with `--cpu-prof`, into `<dir>/waybill` and
 * `<dir>/floor` (written when the servers stop), so where the time goes can be compared side
 * by side; `node --import tsx bench/cpu-profile.ts <dir>/waybill` summarises one.
 * BENCH_HEAP_PROF=<dir> samples what each server allocates, garbage included, into
 * `<dir>/{waybill,floor}.heapprofile` (the same script summarises those). Postgres is an embedded server in a temporary
 * folder unless DATABASE_URL is set (then the bench tables go into that database).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { createDb } from '../db/client';
import { migrateToLatest } from '../db/migrator';
import { buildApi } from '../src/api/app';
import { customerToken } from '../src/api/tokens';
import { loadConfig } from '../src/config';
import { orderTrackingById } from '../src/read-model/order-tracking';
import { recentEventEntry } from '../src/read-model/shipments';
import { createTemporalClient } from '../src/temporal';
import { benchDatabase } from './support/database';
import type { Check } from './support/consistency';
import { checkLine, fmt, machine, percentile, sampleProcess, writeResult } from './support/measure';
import { pacedLoad, type PacedResult } from './support/paced-load';
import { watchPauses, type Pauses } from './support/pauses';

const GOAL_RATIO = 0.9;
const GOAL_P99_MS = 10;
const CONNECTIONS = 10;
/**
 * Connections of the paced load (the p99 step): as many as autocannon's by default, each
 * taking one request at a time, so a request due while all are busy waits for one and that
 * wait counts (as in wrk2). More (BENCH_PACED_CONNECTIONS=64) moves the queue into the
 * server: on this 2-core machine its p99 came out worse for both servers, not better.
 */
const PACED_CONNECTIONS = Number(process.env.BENCH_PACED_CONNECTIONS ?? CONNECTIONS);
/**
 * BENCH_PIN=1: the two servers run on cores of their own (every core but the first, `taskset`),
 * while this process (the load generator) and the embedded Postgres share the first. That is
 * the shape the p99 goal assumes: an API server whose cores no load generator or database
 * takes from it. BENCH_PIN=db-with-servers puts the embedded Postgres with the servers
 * instead, so the load generator has the first core to itself. Unset, all share every core.
 */
const PIN = process.env.BENCH_PIN === '1' || process.env.BENCH_PIN === 'db-with-servers';
const DB_WITH_SERVERS = process.env.BENCH_PIN === 'db-with-servers';
const CUSTOMERS = 1_000;
/** Distinct client addresses (X-Forwarded-For) the load comes from. */
const SHOPPERS = 10_000;
const JWT_SECRET = 'waybill-bench-jwt-secret-0123456789abcdef';

type Role = 'waybill' | 'floor';

const orderId = (i: number) => `ord_bench_${i}`;
const orderNumber = (i: number) => `BN-${i}`;
const email = (i: number) => `shopper${i}@example.com`;
const trackingNumber = (i: number) => `BNCH${String(i).padStart(8, '0')}`;
const shipmentId = (i: number) => `shp_bench_${i}`;

function waybillConfig(databaseUrl: string) {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: '127.0.0.1:1', // reads never touch Temporal
    WAYBILL_JWT_SECRET: JWT_SECRET,
    // Rate limits on, as in production, per shopper address behind one proxy hop (each
    // request comes from one of SHOPPERS addresses), and never reached.
    WAYBILL_TRUST_PROXY: '1',
    WAYBILL_RATE_LIMIT_PER_MINUTE: '100000',
    WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000',
    LOG_LEVEL: 'warn',
  });
}

// --- Child: one server ------------------------------------------------------------------

async function serve(role: Role, databaseUrl: string): Promise<void> {
  let close: () => Promise<void>;
  let port: number;
  let server: Server;
  if (role === 'floor') {
    // Idle connections kept (pg's default closes them after 10 s): the floor's first requests
    // after a pause must not pay for new connections (Waybill's pool keeps them 30 s).
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, idleTimeoutMillis: 0 });
    const app = Fastify({ logger: false });
    app.get<{ Params: { id: string } }>('/floor/:id', async (request) => {
      const { rows } = await pool.query(
        'select id, tracking_number, status, last_synced_at from shipments where id = $1',
        [request.params.id],
      );
      return rows[0] ?? null;
    });
    // The same floor for a read that must be a POST (the lookup keeps the e-mail out of URLs
    // and logs): Fastify parses the same JSON body, one SELECT by the order number's unique key.
    app.post<{ Body: { orderNumber: string; email: string } }>('/floor', async (request) => {
      const { rows } = await pool.query('select id, number, status, email from orders where number = $1', [
        request.body.orderNumber,
      ]);
      return rows[0] ?? null;
    });
    // The floor with the customer read's own statement (the order with its shipments as one
    // JSON value, sent by name): what that read costs Postgres and the driver, without the route.
    const db = createDb({ url: databaseUrl, poolMax: 10 });
    app.get<{ Params: { id: string } }>('/floor/orders/:id', async (request) =>
      orderTrackingById(db, request.params.id),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    server = app.server;
    close = async () => {
      await app.close();
      await pool.end();
      await db.destroy();
    };
  } else {
    const config = waybillConfig(databaseUrl);
    const db = createDb({ url: databaseUrl, poolMax: 10 });
    const temporal = createTemporalClient(config);
    const app = await buildApi({ config, db, temporal, log: pino({ level: 'warn' }) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    server = app.server;
    close = async () => {
      await app.close();
      await db.destroy();
      await temporal.connection.close();
    };
  }
  const pauses = watchPauses(server);
  const heapProfile = await sampleAllocations(role, server);
  process.send!({ port });
  process.on('message', (message) => {
    if (message === 'stop')
      void heapProfile
        .write()
        .catch((err: unknown) => process.stderr.write(`${role}: heap profile not written: ${String(err)}\n`))
        .then(close)
        .finally(() => process.exit(0));
    if (message === 'pauses:reset') {
      pauses.reset();
      process.send!({ reset: true });
    }
    if (message === 'pauses:read') process.send!({ pauses: pauses.window() });
  });
}

/**
 * BENCH_HEAP_PROF=<dir>: V8's sampling heap profiler over the server's whole life, counting
 * objects the GC has collected too (what a request allocates and drops is what makes its
 * scavenges), written to `<dir>/<role>.heapprofile` when the server stops, with the number of
 * requests it answered (the profile covers them all: warm-ups, rounds and the paced steps).
 */
async function sampleAllocations(role: Role, server: Server): Promise<{ write: () => Promise<void> }> {
  const dir = process.env.BENCH_HEAP_PROF;
  if (!dir) return { write: async () => {} };
  let requests = 0;
  server.on('request', () => requests++);
  const session = new inspector.Session();
  session.connect();
  // Spelled out: @types/node lacks the two include* fields, and an untyped call would take a typo.
  const sampling: {
    samplingInterval: number;
    includeObjectsCollectedByMajorGC: boolean;
    includeObjectsCollectedByMinorGC: boolean;
  } = {
    // Every 32 KiB on average: a long run still makes a profile small enough to write as one string.
    samplingInterval: 32_768,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  };
  await session.post('HeapProfiler.startSampling', sampling);
  return {
    write: async () => {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      fs.mkdirSync(dir, { recursive: true });
      // With the requests answered, so the summary can say what one request allocates.
      fs.writeFileSync(path.join(dir, `${role}.heapprofile`), JSON.stringify({ ...profile, requests }));
      session.disconnect();
    },
  };
}

// --- Parent: data, servers, load -----------------------------------------------------------

async function seed(databaseUrl: string, count: number): Promise<void> {
  // Bulk statements over every row (the shipments' insert runs the tracking view's trigger per
  // row): the product's 15-s statement timeout is for requests, and a slow or pinned
  // Postgres took longer than that for 100,000 shipments.
  const db = createDb({ url: databaseUrl, statementTimeoutMs: 10 * 60_000 });
  try {
    await migrateToLatest(db);
    const existing = await db
      .selectFrom('shipments')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('id', 'like', 'shp_bench_%')
      .where('order_id', 'is not', null)
      // Seeded by this version: each row's newest events in the form the record activity writes.
      .where(sql`recent_events->0->>'occurredAt'`, 'like', '%Z')
      .executeTakeFirstOrThrow();
    if (Number(existing.n) === count) return;
    await sql`delete from shipments where id like 'shp_bench_%'`.execute(db);
    await sql`delete from orders where id like 'ord_bench_%'`.execute(db);
    // generate_series keeps seeding to seconds; statuses cycle through the live ones.
    await sql`
      insert into orders (id, number, customer_id, email, postcode, status, currency, total_amount,
                          courier, shipping_address)
      select 'ord_bench_' || i, 'BN-' || i, 'cus_bench_' || (i % ${CUSTOMERS}),
             'shopper' || i || '@example.com', '40150', 'SHIPPED', 'MYR', 4990, 'simulator',
             jsonb_build_object('name', 'Shopper ' || i, 'line1', i || ' Jalan Bench',
                                'city', 'Shah Alam', 'postcode', '40150', 'country', 'MY')
      from generate_series(0, ${count - 1}) as i`.execute(db);
    await sql`
      insert into shipments (id, order_id, courier, tracking_number, status, last_synced_at,
                             last_event_at, destination_city, destination_country, eta)
      select 'shp_bench_' || i, 'ord_bench_' || i, 'simulator', 'BNCH' || lpad(i::text, 8, '0'),
             (array['INFO_RECEIVED','IN_TRANSIT','OUT_FOR_DELIVERY','DELIVERED'])[1 + i % 4],
             now() - (i % 180) * interval '1 minute', now() - (i % 600) * interval '1 minute',
             'Shah Alam', 'MY', now() + interval '2 days'
      from generate_series(0, ${count - 1}) as i`.execute(db);
    await sql`
      insert into tracking_events (shipment_id, event_key, status, raw_code, raw_text, occurred_at,
                                   location_city, location_country, source)
      select 'shp_bench_' || i, 'e' || n, (array['INFO_RECEIVED','IN_TRANSIT','OUT_FOR_DELIVERY'])[n],
             'C' || n, 'scan ' || n, now() - (4 - n) * interval '1 hour', 'Shah Alam', 'MY', 'poll'
      from generate_series(0, ${count - 1}) as i, generate_series(1, 3) as n`.execute(db);
    // What the record activity keeps on each row for reads (the migration's backfill, in bulk).
    await sql`
      update shipments s set recent_events = (
        select jsonb_agg(${recentEventEntry} order by e.occurred_at desc, e.id desc)
        from tracking_events e where e.shipment_id = s.id)
      where s.id like 'shp_bench_%'`.execute(db);
    for (const table of ['orders', 'shipments', 'tracking_events']) {
      await sql`vacuum analyze ${sql.table(table)}`.execute(db);
    }
  } finally {
    await db.destroy();
  }
}

interface Running {
  child: ChildProcess;
  port: number;
}

/** Every server started, so a failed start takes the other one down too. */
const children: ChildProcess[] = [];

/** Binds a process, every thread of it, to these cores (`taskset -a -p -c`); its children inherit them. */
function pin(pid: number, cores: string): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(
      `BENCH_PIN: taskset -a -p -c ${cores} ${pid} failed (is util-linux installed?): ${(err as Error).message}`,
    );
  }
}

/** The cores this process may run on (its cpuset: /proc/self/status's Cpus_allowed_list, e.g. `0-3,6`). */
function allowedCores(): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (!list) throw new Error('BENCH_PIN: no Cpus_allowed_list in /proc/self/status');
  return list.split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number) as [number, number?];
    return Array.from({ length: to! - from + 1 }, (_, i) => from + i);
  });
}

/** Where BENCH_PIN put the embedded Postgres: the servers' cores or the rest's; null for DATABASE_URL's (not pinned). */
function postgresPinnedTo(): 'servers' | 'rest' | null {
  return process.env.DATABASE_URL ? null : DB_WITH_SERVERS ? 'servers' : 'rest';
}

/** What BENCH_PIN did, for the report's header. */
function pinning(): string {
  const pinned = pinnedCores();
  const { servers, rest } = pinned;
  const postgres = postgresPinnedTo();
  return `servers pinned to cores ${servers}, the load generator to ${rest}, ${postgres === null ? "DATABASE_URL's Postgres not pinned" : `the embedded Postgres to ${pinned[postgres]}`}`;
}

let cores: { servers: string; rest: string } | null = null;

/**
 * The cores BENCH_PIN gives the servers and the rest: of the cores this process was allowed
 * at its start (read once, before it pins itself to the rest's), the first is the rest's.
 */
function pinnedCores(): { servers: string; rest: string } {
  if (cores === null) {
    const [rest, ...servers] = allowedCores();
    if (rest === undefined || servers.length === 0) throw new Error('BENCH_PIN needs at least 2 cores');
    cores = { servers: servers.join(','), rest: String(rest) };
  }
  return cores;
}

async function startServer(role: Role, databaseUrl: string): Promise<Running> {
  const profileDir = process.env.BENCH_CPU_PROF;
  // Pinned from its first instruction (taskset runs node in its place): every thread it starts stays on those cores.
  const pinned = PIN
    ? { execPath: 'taskset', prefix: ['-c', pinnedCores().servers, process.execPath] }
    : null;
  const child = fork(__filename, ['--serve', role, databaseUrl], {
    ...(pinned ? { execPath: pinned.execPath } : {}),
    execArgv: [
      ...(pinned?.prefix ?? []),
      '--import',
      'tsx',
      // A folder per server: tsx's loader thread writes a profile of its own next to the main one.
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir, role)}`] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  // A message to a child that has exited fails on its channel: the ask or stop that sent it
  // reports that (below); without a listener the bench would crash before stopping the rest.
  child.on('error', (err) => process.stderr.write(`${role} server: ${err.message}\n`));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${role} server exited with ${code}`)));
  });
  return { child, port };
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** How long a server child may take to answer a message before the bench gives up on it. */
const ASK_TIMEOUT_MS = 30_000;

async function stopServer(server: Running): Promise<void> {
  if (!running(server.child)) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  if (server.child.connected) server.child.send('stop');
  else server.child.kill('SIGKILL');
  // A child that cannot stop (its heap profile too large to write, say) is killed, not waited for.
  const timer = setTimeout(() => server.child.kill('SIGKILL'), ASK_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Sends a child a message and waits for its answer, the one that carries `key`. */
function ask<T>(server: Running, message: string, key: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (!server.child.connected) {
      reject(new Error(`the server child is gone; cannot ask "${message}"`));
      return;
    }
    const done = () => {
      clearTimeout(timer);
      server.child.off('message', onMessage);
      server.child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the server child did not answer "${message}" within ${ASK_TIMEOUT_MS / 1000} s`));
    }, ASK_TIMEOUT_MS);
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`the server child exited (${code}) before answering "${message}"`));
    };
    const onMessage = (answer: unknown) => {
      if (typeof answer !== 'object' || answer === null || !(key in answer)) return;
      done();
      resolve((answer as Record<string, T>)[key]!);
    };
    server.child.on('message', onMessage);
    server.child.once('exit', onExit);
    server.child.send(message);
  });
}

/** A run with what its server saw inside: its own time per request, event-loop delay, GC. */
async function withPauses<T>(server: Running, run: () => Promise<T>): Promise<T & { pauses: Pauses }> {
  await ask(server, 'pauses:reset', 'reset');
  const result = await run();
  return { ...result, pauses: await ask<Pauses>(server, 'pauses:read', 'pauses') };
}

const describePaced = (r: PacedResult) =>
  `p50 ${fmt(r.p50, 1)} / p90 ${fmt(r.p90, 1)} / p99 ${fmt(r.p99, 1)} / max ${fmt(r.max)} ms (from writing: p99 ${fmt(r.serviceP99, 1)} ms; ${r.sentLate} of ${r.requests} sent over 1 ms late, ${r.dueWhileAllBusy} due with no connection free; load generator's loop late p99 ${fmt(r.clientLoopDelayP99, 1)} / max ${fmt(r.clientLoopDelayMax)} ms)`;

const describePauses = (p: Pauses) =>
  `server p50 ${p.serverMs.p50} / p99 ${p.serverMs.p99} / max ${p.serverMs.max} ms; loop p99 ${p.loopDelayMs.p99} / max ${p.loopDelayMs.max} ms; gc ${p.gc.count} pauses, ${fmt(p.gc.totalMs)} ms in all, longest ${fmt(p.gc.maxMs, 1)} ms, ${p.gc.major} major (${fmt(p.gc.majorMs)} ms), ${p.gc.incremental} incremental marking, ${p.gc.weakCallbacks} weak callbacks; waited for a core ${p.cpuWaitMs ?? '?'} ms, machine's steal ${p.stealMs ?? '?'} ms`;

/** One read as autocannon sends it: the request for order `i`. */
interface Read {
  name: string;
  label: string;
  /** A second floor measured beside this read: one that pays what the read's kind of request must. */
  likeFloor?: Read;
  request: (i: number) => {
    method: 'GET' | 'POST';
    path: string;
    headers?: Record<string, string>;
    body?: string;
  };
}

function reads(databaseUrl: string): Read[] {
  const config = waybillConfig(databaseUrl);
  const tokens = Array.from({ length: CUSTOMERS }, (_, c) =>
    customerToken(config, `cus_bench_${c}`, 24 * 3_600_000),
  );
  return [
    {
      name: 'customer',
      label: 'GET /v1/orders/:id/tracking (token)',
      request: (i) => ({
        method: 'GET',
        path: `/v1/orders/${orderId(i)}/tracking`,
        headers: { authorization: `Bearer ${tokens[i % CUSTOMERS]!}` },
      }),
      likeFloor: sqlFloorRead,
    },
    {
      name: 'guestNumber',
      label: 'GET /v1/tracking/:trackingNumber',
      request: (i) => ({ method: 'GET', path: `/v1/tracking/${trackingNumber(i)}` }),
    },
    {
      name: 'guestLookup',
      label: 'POST /v1/tracking/lookup (e-mail)',
      request: (i) => ({
        method: 'POST',
        path: '/v1/tracking/lookup',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderNumber: orderNumber(i), email: email(i) }),
      }),
      likeFloor: postFloorRead,
    },
  ];
}

const floorRead: Read = {
  name: 'floor',
  label: 'floor: Fastify + pg, PK SELECT',
  request: (i) => ({ method: 'GET', path: `/floor/${shipmentId(i)}` }),
};

/** The floor running the customer read's own SQL: splits that read's gap into its SQL and its route. */
const sqlFloorRead: Read = {
  name: 'sqlFloor',
  label: "floor: Fastify + the customer read's SQL",
  request: (i) => ({ method: 'GET', path: `/floor/orders/${orderId(i)}` }),
};

/** The floor as a POST with the lookup's body: what a read that must be a POST costs at least. */
const postFloorRead: Read = {
  name: 'postFloor',
  label: 'floor: Fastify + pg, POST, unique-key SELECT',
  request: (i) => ({
    method: 'POST',
    path: '/floor',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ orderNumber: orderNumber(i), email: email(i) }),
  }),
};

/** A benchmark of error responses would measure nothing: check one request first. */
async function expectOk(port: number, read: Read): Promise<void> {
  const { method, path: urlPath, headers, body } = read.request(0);
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    ...(headers ? { headers } : {}),
    ...(body ? { body } : {}),
  });
  if (res.status !== 200) throw new Error(`${read.label} answered ${res.status}: ${await res.text()}`);
}

/** The request as it comes through the proxy from one of SHOPPERS addresses. */
function withShopper<R extends { headers?: Record<string, string> }>(request: R): R {
  const shopper = Math.floor(Math.random() * SHOPPERS);
  return {
    ...request,
    headers: { ...request.headers, 'x-forwarded-for': `10.1.${shopper >> 8}.${shopper & 255}` },
  };
}

interface LoadResult {
  rps: number;
  /** CPU time the server process used per answered request (µs): what the read costs, whatever the machine's load. */
  cpuUsPerRequest: number;
  p50: number;
  p90: number;
  p99: number;
  bad: number;
  requests: number;
}

async function load(opts: {
  pid: number;
  port: number;
  read: Read;
  count: number;
  seconds: number;
  rate?: number;
}): Promise<LoadResult> {
  const before = sampleProcess(opts.pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${opts.port}`,
    connections: CONNECTIONS,
    duration: opts.seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    requests: [
      {
        setupRequest: (request) => {
          return { ...request, ...withShopper(opts.read.request(Math.floor(Math.random() * opts.count))) };
        },
      },
    ],
  });
  const after = sampleProcess(opts.pid);
  const cpuSeconds = before && after ? after.cpuSeconds - before.cpuSeconds : NaN;
  return {
    rps: result.requests.average,
    cpuUsPerRequest: (cpuSeconds * 1e6) / result.requests.total,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    bad: result.non2xx + result.errors,
    requests: result.requests.total,
  };
}

interface Pair {
  round: number;
  floor: LoadResult;
  waybill: LoadResult;
  ratio: number;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 100_000);
  const seconds = Number(process.argv[3] ?? 8);
  const rounds = Number(process.argv[4] ?? 3);
  const started = Date.now();

  // Before Postgres starts, so its processes inherit the cores it is to run on.
  if (PIN) pin(process.pid, pinnedCores()[postgresPinnedTo() ?? 'rest']);
  const database = await benchDatabase('read-api');
  const databaseUrl = database.url;
  try {
    // Postgres started on the servers' cores and stays there; the load generator moves off them.
    if (DB_WITH_SERVERS) pin(process.pid, pinnedCores().rest);
    process.stdout.write(`seeding ${count.toLocaleString()} orders (one shipment, 3 events each)…\n`);
    await seed(databaseUrl, count);

    const [floorServer, waybillServer] = await Promise.all([
      startServer('floor', databaseUrl),
      startServer('waybill', databaseUrl),
    ]).catch((err: unknown) => {
      for (const child of children) child.kill();
      throw err;
    });
    // BENCH_READS=customer,guestLookup runs only those (a quicker look at one read).
    const only = process.env.BENCH_READS?.split(',').filter(Boolean);
    const wayReads = reads(databaseUrl).filter((r) => !only || only.includes(r.name));
    if (wayReads.length === 0)
      throw new Error(`BENCH_READS names no read (customer, guestNumber, guestLookup)`);
    const serverOf = (read: Read) =>
      read === floorRead || read === postFloorRead || read === sqlFloorRead ? floorServer : waybillServer;
    const portOf = (read: Read) => serverOf(read).port;
    const paced = (read: Read, secs: number, rate: number) =>
      pacedLoad({
        port: portOf(read),
        rate,
        seconds: secs,
        connections: PACED_CONNECTIONS,
        request: () => withShopper(read.request(Math.floor(Math.random() * count))),
      });
    const run = (read: Read, secs: number, rate?: number) =>
      load({
        pid: serverOf(read).child.pid!,
        port: portOf(read),
        read,
        count,
        seconds: secs,
        ...(rate ? { rate } : {}),
      });

    for (const read of [floorRead, postFloorRead, sqlFloorRead, ...wayReads]) {
      await expectOk(portOf(read), read);
      await run(read, 2); // warm-up: JIT, pools, caches
    }

    const pairs = new Map<string, Pair[]>(wayReads.map((r) => [r.name, []]));
    /** Each read with a like-for-like floor, paired with it too (the same runs of the read). */
    const likePairs = new Map<string, Pair[]>(wayReads.map((r) => [r.name, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const read of wayReads) {
        // Alternate which side goes first, so drift in the machine's load falls on both;
        // with a second floor, the read runs between the two.
        const sides = [floorRead, read, ...(read.likeFloor ? [read.likeFloor] : [])];
        if (round % 2 === 0) sides.reverse();
        const results = new Map<Read, LoadResult>();
        for (const side of sides) results.set(side, await run(side, seconds));
        const waybill = results.get(read)!;
        for (const [floorOf, into] of [
          [floorRead, pairs],
          [read.likeFloor, likePairs],
        ] as const) {
          if (!floorOf) continue;
          const floor = results.get(floorOf)!;
          into.get(read.name)!.push({ round, floor, waybill, ratio: waybill.rps / floor.rps });
          process.stdout.write(
            `round ${round} ${read.name.padEnd(12)} ${floorOf.name.padEnd(9)} ${fmt(floor.rps).padStart(6)} req/s (${fmt(floor.cpuUsPerRequest)} µs CPU each), waybill ${fmt(waybill.rps).padStart(6)} req/s (${fmt(waybill.cpuUsPerRequest)} µs): ${fmt(waybill.rps / floor.rps, 3)}\n`,
          );
        }
      }
    }

    const summary = [];
    for (const read of wayReads) {
      const runs = pairs.get(read.name)!;
      const ratios = runs.map((p) => p.ratio);
      const maxRps = percentile(
        runs.map((p) => p.waybill.rps),
        50,
      );
      const rate = Math.floor(maxRps * 0.8);
      // Judged: a steady rate, latency from each request's due time (./support/paced-load.ts).
      const at80 = await withPauses(serverOf(read), () => paced(read, seconds, rate));
      const floorAt80 = await withPauses(serverOf(floorRead), () => paced(floorRead, seconds, rate));
      // Printed beside it: autocannon at that rate, as this bench judged before 2026-12-07
      // (bursts at full speed each second, an answer of x ms adding x - 1 made-up ones).
      const burstAt80 = await run(read, seconds, rate);
      const floorBurstAt80 = await run(floorRead, seconds, rate);
      const ratio = { median: percentile(ratios, 50), min: Math.min(...ratios), max: Math.max(...ratios) };
      const like = likePairs.get(read.name)!;
      const likeRatios = like.map((p) => p.ratio);
      const likeFloor = read.likeFloor
        ? {
            floor: read.likeFloor.label,
            ratio: {
              median: percentile(likeRatios, 50),
              min: Math.min(...likeRatios),
              max: Math.max(...likeRatios),
            },
            pairs: like,
          }
        : null;
      const bad = runs.reduce(
        (n, p) => n + p.floor.bad + p.waybill.bad,
        at80.bad + floorAt80.bad + burstAt80.bad + floorBurstAt80.bad,
      );
      const checks: Check[] = [
        {
          name: `${read.name} throughput vs floor`,
          pass: ratio.median >= GOAL_RATIO,
          detail: `median ${fmt(ratio.median, 3)} (${fmt(ratio.min, 3)}–${fmt(ratio.max, 3)} over ${runs.length} rounds; goal >= ${GOAL_RATIO})`,
        },
        {
          name: `${read.name} p99 at 80 %`,
          pass: at80.p99 <= GOAL_P99_MS,
          detail: `${at80.p99} ms at a steady ${rate} req/s (floor at that rate ${floorAt80.p99} ms; goal <= ${GOAL_P99_MS} ms)`,
        },
        { name: `${read.name} errors`, pass: bad === 0, detail: `${bad} non-2xx or failed (goal 0)` },
      ];
      summary.push({
        read: read.name,
        label: read.label,
        ratio,
        rate,
        at80,
        floorAt80,
        burstAt80,
        floorBurstAt80,
        pairs: runs,
        likeFloor,
        checks,
      });
    }
    await Promise.all([stopServer(floorServer), stopServer(waybillServer)]);

    const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(38) : c.padStart(9))).join(' ');
    const median = (rs: LoadResult[], key: keyof LoadResult) =>
      percentile(
        rs.map((r) => r[key]),
        50,
      );
    process.stdout.write(
      [
        '',
        `read API, ${count.toLocaleString()} orders, ${CONNECTIONS} connections, ${seconds} s per run, ${rounds} rounds, ${os.cpus().length} cores${PIN ? ` (${pinning()})` : ''}, load average ${os.loadavg()[0]!.toFixed(1)}`,
        row([
          'read (medians over rounds)',
          'floor/s',
          'waybill/s',
          'ratio',
          'range',
          'p99',
          'p99@80%',
          'floor µs',
          'waybill µs',
        ]),
        ...summary.map((s) => {
          const floors = s.pairs.map((p) => p.floor);
          const waybills = s.pairs.map((p) => p.waybill);
          return row([
            s.label,
            fmt(median(floors, 'rps')),
            fmt(median(waybills, 'rps')),
            fmt(s.ratio.median, 3),
            `${fmt(s.ratio.min, 2)}–${fmt(s.ratio.max, 2)}`,
            `${median(waybills, 'p99')} ms`,
            `${s.at80.p99} ms`,
            fmt(median(floors, 'cpuUsPerRequest')),
            fmt(median(waybills, 'cpuUsPerRequest')),
          ]);
        }),
        '(µs: CPU time of the server process per request)',
        ...summary.flatMap((s) =>
          s.likeFloor
            ? [
                `${s.read} against ${s.likeFloor.floor} (printed, not judged: the goals are against the GET floor): median ${fmt(s.likeFloor.ratio.median, 3)} (${fmt(s.likeFloor.ratio.min, 2)}–${fmt(s.likeFloor.ratio.max, 2)}), floor ${fmt(
                  median(
                    s.likeFloor.pairs.map((p) => p.floor),
                    'rps',
                  ),
                )} req/s, ${fmt(
                  median(
                    s.likeFloor.pairs.map((p) => p.floor),
                    'cpuUsPerRequest',
                  ),
                )} µs`,
              ]
            : [],
        ),
        "at 80 % of the median maximum, paced (judged): latency from each request's due time; inside each server: its own time per request, event-loop delay, GC pauses:",
        ...summary.flatMap((s) => [
          `  ${s.read.padEnd(12)} ${describePaced(s.at80)}; ${describePauses(s.at80.pauses)}`,
          `  ${'floor'.padEnd(12)} ${describePaced(s.floorAt80)}; ${describePauses(s.floorAt80.pauses)}`,
        ]),
        `at that rate with autocannon's overallRate (printed, not judged: bursts each second; an answer of x ms adds x - 1 made-up ones): ${summary
          .map((s) => `${s.read} p99 ${s.burstAt80.p99} ms (floor ${s.floorBurstAt80.p99} ms)`)
          .join(', ')}`,
        '',
        ...summary.flatMap((s) => s.checks.map(checkLine)),
        `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
        '',
      ].join('\n'),
    );
    const out = writeResult('read-api', {
      machine: machine(),
      loadAverage: os.loadavg(),
      orders: count,
      customers: CUSTOMERS,
      connections: CONNECTIONS,
      pinned: PIN
        ? {
            ...pinnedCores(),
            postgres: postgresPinnedTo(),
          }
        : null,
      seconds,
      rounds,
      reads: summary,
    });
    process.stdout.write(`wrote ${out}\n`);
  } finally {
    // After a failure the servers may still run: none outlives the bench.
    for (const child of children) if (running(child)) child.kill('SIGKILL');
    await database.stop();
  }
}

if (process.argv[2] === '--serve') {
  void serve(process.argv[3] as Role, process.argv[4]!);
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
