/**
 * Read API throughput and latency: Waybill's guest tracking route
 * (`GET /v1/tracking/:trackingNumber`: shipment by tracking number, its events, freshness,
 * the full schema-checked response) against a floor — a bare Fastify + pg route doing one
 * primary-key lookup on the same database — in the same run, with random ids over
 * N shipments (default 100,000, three events each).
 *
 *   npm run bench:read-api -- [shipments=100000] [seconds=15]
 *
 * Each server runs alone in its own child process (one core), autocannon in this one.
 * Three runs: the floor flat out, Waybill flat out, then Waybill at 80 % of its own maximum
 * for the p99 goal. Postgres is an embedded server in a temporary folder unless
 * DATABASE_URL is set (then its tables are created in a fresh schema-less database you give).
 * Prints a table and writes bench/results/read-api.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
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
import { loadConfig } from '../src/config';
import { startEmbeddedPostgres } from '../devstack/embedded-postgres';
import { createTemporalClient } from '../src/temporal';

const GOAL_RATIO = 0.9;
const GOAL_P99_MS = 10;
const CONNECTIONS = 32;

type Role = 'waybill' | 'floor';

const trackingNumber = (i: number) => `BNCH${String(i).padStart(8, '0')}`;
const shipmentId = (i: number) => `shp_bench_${i}`;

// --- Child: one server ------------------------------------------------------------------

async function serve(role: Role, databaseUrl: string): Promise<void> {
  let close: () => Promise<void>;
  let port: number;
  if (role === 'floor') {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
    const app = Fastify({ logger: false });
    app.get<{ Params: { id: string } }>('/floor/:id', async (request) => {
      const { rows } = await pool.query(
        'select id, tracking_number, status, last_synced_at from shipments where id = $1',
        [request.params.id],
      );
      return rows[0] ?? null;
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    close = async () => {
      await app.close();
      await pool.end();
    };
  } else {
    const config = loadConfig({
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: '127.0.0.1:1', // reads never touch Temporal
      WAYBILL_RATE_LIMIT_PER_MINUTE: '10000000', // on, as in production, but never reached,
      WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000', // the tracking route allows 6× this per IP
      LOG_LEVEL: 'warn',
    });
    const db = createDb({ url: databaseUrl, poolMax: 10 });
    const temporal = createTemporalClient(config);
    const app = await buildApi({ config, db, temporal, log: pino({ level: 'warn' }) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    close = async () => {
      await app.close();
      await db.destroy();
      await temporal.connection.close();
    };
  }
  process.send!({ port });
  process.on('message', (message) => {
    if (message === 'stop') void close().then(() => process.exit(0));
  });
}

// --- Parent: data, servers, load -----------------------------------------------------------

async function seed(databaseUrl: string, count: number): Promise<void> {
  const db = createDb({ url: databaseUrl });
  try {
    await migrateToLatest(db);
    const existing = await db
      .selectFrom('shipments')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('id', 'like', 'shp_bench_%')
      .executeTakeFirstOrThrow();
    if (Number(existing.n) >= count) return;
    await sql`delete from shipments where id like 'shp_bench_%'`.execute(db);
    // generate_series keeps seeding to seconds; statuses cycle through the live ones.
    await sql`
      insert into shipments (id, courier, tracking_number, status, last_synced_at, last_event_at,
                             destination_city, destination_country, eta)
      select 'shp_bench_' || i, 'simulator', 'BNCH' || lpad(i::text, 8, '0'),
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
        select jsonb_agg(jsonb_build_object('status', e.status, 'occurredAt', e.occurred_at,
                                            'city', e.location_city, 'country', e.location_country)
                         order by e.occurred_at desc, e.id desc)
        from tracking_events e where e.shipment_id = s.id)
      where s.id like 'shp_bench_%'`.execute(db);
    await sql`vacuum analyze shipments`.execute(db);
    await sql`vacuum analyze tracking_events`.execute(db);
  } finally {
    await db.destroy();
  }
}

interface Running {
  child: ChildProcess;
  port: number;
}

async function startServer(role: Role, databaseUrl: string): Promise<Running> {
  const child = fork(__filename, ['--serve', role, databaseUrl], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${role} server exited with ${code}`)));
  });
  return { child, port };
}

async function stopServer(server: Running): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.send('stop');
  await exited;
}

/** A benchmark of error responses would measure nothing: check one request first. */
async function expectOk(port: number, urlPath: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  if (res.status !== 200) throw new Error(`${urlPath} answered ${res.status}: ${await res.text()}`);
}

interface LoadResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  requests: number;
  statusCodes: Record<string, number>;
}

async function load(opts: {
  port: number;
  path: (i: number) => string;
  count: number;
  seconds: number;
  rate?: number;
}): Promise<LoadResult> {
  const result = await autocannon({
    url: `http://127.0.0.1:${opts.port}`,
    connections: CONNECTIONS,
    duration: opts.seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          path: opts.path(Math.floor(Math.random() * opts.count)),
        }),
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    requests: result.requests.total,
    statusCodes: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count ?? 0]),
    ),
  };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 100_000);
  const seconds = Number(process.argv[3] ?? 15);
  const started = Date.now();

  let databaseUrl = process.env.DATABASE_URL;
  let stopPostgres: (() => Promise<void>) | null = null;
  if (!databaseUrl) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waybill-bench-pg-'));
    const pgServer = await startEmbeddedPostgres({
      dir,
      port: 55000 + Math.floor(Math.random() * 5000),
      user: 'bench',
      password: 'bench',
      database: 'bench',
    });
    databaseUrl = pgServer.url;
    stopPostgres = async () => {
      await pgServer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    };
  }
  try {
    process.stdout.write(`seeding ${count.toLocaleString()} shipments (3 events each)…\n`);
    await seed(databaseUrl, count);

    const floorServer = await startServer('floor', databaseUrl);
    await expectOk(floorServer.port, `/floor/${shipmentId(0)}`);
    await load({ port: floorServer.port, path: (i) => `/floor/${shipmentId(i)}`, count, seconds: 3 }); // warm-up
    const floor = await load({
      port: floorServer.port,
      path: (i) => `/floor/${shipmentId(i)}`,
      count,
      seconds,
    });
    await stopServer(floorServer);

    const waybillServer = await startServer('waybill', databaseUrl);
    const route = (i: number) => `/v1/tracking/${trackingNumber(i)}`;
    await expectOk(waybillServer.port, route(0));
    await load({ port: waybillServer.port, path: route, count, seconds: 3 }); // warm-up
    const max = await load({ port: waybillServer.port, path: route, count, seconds });
    const at80 = await load({
      port: waybillServer.port,
      path: route,
      count,
      seconds,
      rate: Math.floor(max.rps * 0.8),
    });
    await stopServer(waybillServer);

    const ratio = max.rps / floor.rps;
    const checks = {
      throughputRatio: {
        goal: `>= ${GOAL_RATIO}`,
        value: Number(ratio.toFixed(3)),
        pass: ratio >= GOAL_RATIO,
      },
      p99At80PercentMs: { goal: `<= ${GOAL_P99_MS}`, value: at80.p99, pass: at80.p99 <= GOAL_P99_MS },
      no5xxOrErrors: {
        goal: '0',
        value: floor.non2xx + max.non2xx + at80.non2xx + floor.errors + max.errors + at80.errors,
        pass: floor.non2xx + max.non2xx + at80.non2xx + floor.errors + max.errors + at80.errors === 0,
      },
    };
    const row = (name: string, r: LoadResult) =>
      `${name.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} ${String(r.p50).padStart(6)} ${String(r.p90).padStart(6)} ${String(r.p99).padStart(6)} ${String(r.non2xx + r.errors).padStart(8)}`;
    process.stdout.write(
      [
        '',
        `read API, ${count.toLocaleString()} shipments, ${CONNECTIONS} connections, ${seconds} s per run, ${os.cpus().length} cores`,
        `${'run'.padEnd(34)} ${'req/s'.padStart(8)} ${'p50'.padStart(6)} ${'p90'.padStart(6)} ${'p99'.padStart(6)} ${'bad'.padStart(8)}   (ms)`,
        row('floor: Fastify + pg, PK lookup', floor),
        row('waybill: GET /v1/tracking/:number', max),
        row(`waybill at 80 % (${Math.floor(max.rps * 0.8)} req/s)`, at80),
        '',
        ...Object.entries(checks).map(
          ([name, c]) => `${c.pass ? 'PASS' : 'FAIL'}  ${name}: ${c.value} (goal ${c.goal})`,
        ),
        `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
        '',
      ].join('\n'),
    );
    const out = path.join(__dirname, 'results', 'read-api.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(
      out,
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          machine: {
            cores: os.cpus().length,
            cpu: os.cpus()[0]?.model,
            memGiB: Math.round(os.totalmem() / 2 ** 30),
          },
          shipments: count,
          connections: CONNECTIONS,
          seconds,
          floor,
          waybill: max,
          waybillAt80Percent: at80,
          checks,
        },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
  } finally {
    await stopPostgres?.();
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
