/**
 * A 1,000,000-row CSV export through the real HTTP route, in flat memory. Seeds N orders
 * (default 1,000,000), each with a payment, all placed on one UTC day, then streams
 * `GET /v1/admin/exports/orders` for that day from an API running alone in a child process,
 * reading the body as it arrives. Prints rows/s and the API process's peak RSS (sampled
 * from /proc every 50 ms) against its RSS before the export, with PASS/MISS against the
 * goal that memory stays flat (peak growth under 100 MiB), and writes bench/results/export.json.
 *
 *   npm run bench:export -- [orders=1000000] [heapMiB=256]
 *
 * `heapMiB` caps the API process's V8 old space (--max-old-space-size); the default is the
 * cap `npm run start:api`, compose and the image run the API with, `0` leaves V8's own
 * (a quarter of the machine's memory), under which V8 lets garbage pile up before it
 * collects, so RSS grows with the bytes that passed through. Under a small cap an export
 * that held its rows would run out of memory instead.
 *
 * Postgres is an embedded server in a temporary folder unless DATABASE_URL is set (then the
 * bench rows go into that database). Temporal is not needed: exports read Postgres only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { sql } from 'kysely';
import pino from 'pino';
import { createDb } from '../db/client';
import { migrateToLatest } from '../db/migrator';
import { buildApi } from '../src/api/app';
import { DEV_ADMIN_API_KEY, loadConfig } from '../src/config';
import { createTemporalClient } from '../src/temporal';
import { benchDatabase } from './support/database';
import { checkLine, fmt, machine, mib, sampleProcess, sleep, writeResult } from './support/measure';

/** The API's old-space cap in production (package.json start:api, Dockerfile, compose). */
const API_HEAP_MIB = 256;
/** Flat memory: the API's RSS may grow by less than this while it streams the whole export. */
const GOAL_GROWTH_MIB = 100;
const DAY = '2026-11-01';
const SAMPLE_MS = 50;

// --- Child: the API alone in its process -----------------------------------------------------

async function serve(databaseUrl: string): Promise<void> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: '127.0.0.1:1', // exports never touch Temporal
    LOG_LEVEL: 'warn',
  });
  const db = createDb({ url: databaseUrl, poolMax: 4 });
  const temporal = createTemporalClient(config);
  const app = await buildApi({ config, db, temporal, log: pino({ level: 'warn' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.send!({ port: (app.server.address() as { port: number }).port });
  process.on('message', (message) => {
    if (message !== 'stop') return;
    void (async () => {
      await app.close();
      await db.destroy();
      await temporal.connection.close();
      process.exit(0);
    })();
  });
}

// --- Parent: data, the export, the samples ----------------------------------------------------

async function seed(databaseUrl: string, count: number): Promise<void> {
  // A million-row INSERT … SELECT outlasts the API's 15 s statement cap on a loaded machine.
  const db = createDb({ url: databaseUrl, statementTimeoutMs: 30 * 60_000 });
  try {
    await migrateToLatest(db);
    const existing = await sql<{ n: string }>`
      select count(*) as n from orders where id like 'ord_xbench_%'`.execute(db);
    if (Number(existing.rows[0]!.n) === count) return;
    await sql`delete from payments where order_id like 'ord_xbench_%'`.execute(db);
    await sql`delete from orders where id like 'ord_xbench_%'`.execute(db);
    // One INSERT … SELECT generate_series per table: seconds, not a million round trips.
    // Every 7th name carries a comma and quotes, so the writer quotes as it would in life.
    await sql`
      insert into orders (id, number, customer_id, email, postcode, status, currency, total_amount,
                          courier, shipping_address, created_at)
      select 'ord_xbench_' || i, 'XB-' || i, 'cus_xbench_' || (i % 1000), 'shopper' || i || '@example.com',
             '40150', 'DELIVERED', 'MYR', 1000 + i % 9000, 'easyparcel',
             jsonb_build_object('name', case when i % 7 = 0 then 'Lim, "Ana" ' || i else 'Shopper ' || i end,
                                'line1', i || ' Jalan Bench', 'city', 'Shah Alam', 'postcode', '40150',
                                'country', 'MY'),
             ${DAY}::timestamptz + (i::float8 / ${count}) * interval '86399 seconds'
      from generate_series(1, ${count}) as i`.execute(db);
    await sql`
      insert into payments (id, order_id, idempotency_key, provider, provider_ref, status, currency,
                            amount_authorised, amount_captured, amount_refunded)
      select 'pay_xbench_' || i, 'ord_xbench_' || i, 'pay_xbench_' || i, 'simulator', 'ch_' || i,
             case when i % 10 = 0 then 'PARTIALLY_REFUNDED' else 'CAPTURED' end, 'MYR',
             1000 + i % 9000, 1000 + i % 9000, case when i % 10 = 0 then 500 else 0 end
      from generate_series(1, ${count}) as i`.execute(db);
    for (const table of ['orders', 'payments']) await sql`vacuum analyze ${sql.table(table)}`.execute(db);
  } finally {
    await db.destroy();
  }
}

async function startApi(
  databaseUrl: string,
  heapMiB: number | null,
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(__filename, ['--serve', databaseUrl], {
    execArgv: ['--import', 'tsx', ...(heapMiB ? [`--max-old-space-size=${heapMiB}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`API exited with ${code}`)));
  });
  return { child, port };
}

interface Streamed {
  rows: number;
  bytes: number;
  seconds: number;
  firstByteMs: number;
}

/** The export read as it arrives, counting lines (the seeded cells hold no line breaks). */
async function streamExport(port: number): Promise<Streamed> {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/admin/exports/orders?from=${DAY}&to=${DAY}`, {
    headers: { 'x-api-key': DEV_ADMIN_API_KEY },
  });
  if (res.status !== 200 || !res.body) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  let firstByteMs = NaN;
  let lines = 0;
  let bytes = 0;
  for await (const chunk of res.body) {
    if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - started;
    bytes += chunk.byteLength;
    for (const byte of chunk) if (byte === 10) lines++;
  }
  return { rows: lines - 1, bytes, seconds: (performance.now() - started) / 1000, firstByteMs };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1_000_000);
  const heapMiB = process.argv[3] === undefined ? API_HEAP_MIB : Number(process.argv[3]) || null;
  const started = Date.now();
  const database = await benchDatabase('export');
  const databaseUrl = database.url;
  let api: { child: ChildProcess; port: number } | undefined;
  try {
    process.stdout.write(`seeding ${count.toLocaleString()} orders with a payment each…\n`);
    const seedStarted = Date.now();
    await seed(databaseUrl, count);
    process.stdout.write(`seeded in ${((Date.now() - seedStarted) / 1000).toFixed(0)} s\n`);

    api = await startApi(databaseUrl, heapMiB);
    const pid = api.child.pid!;
    // Warm: one small export first, so the baseline includes code and pools already loaded.
    await fetch(`http://127.0.0.1:${api.port}/v1/admin/exports/orders?from=2020-01-01&to=2020-01-01`, {
      headers: { 'x-api-key': DEV_ADMIN_API_KEY },
    }).then((r) => r.text());
    await sleep(500);
    const baseline = sampleProcess(pid)!.rssBytes;

    let peak = baseline;
    let samples = 0;
    const sampler = setInterval(() => {
      const s = sampleProcess(pid);
      if (s) {
        samples++;
        peak = Math.max(peak, s.rssBytes);
      }
    }, SAMPLE_MS);
    let streamed: Streamed;
    try {
      streamed = await streamExport(api.port);
    } finally {
      clearInterval(sampler);
    }
    const after = sampleProcess(pid)!.rssBytes;
    const growthMiB = mib(peak - baseline);
    const rowsPerSecond = streamed.rows / streamed.seconds;
    const checks = [
      {
        name: 'every row exported',
        pass: streamed.rows === count,
        detail: `${streamed.rows.toLocaleString()} of ${count.toLocaleString()} rows`,
      },
      {
        name: 'flat memory',
        pass: growthMiB < GOAL_GROWTH_MIB,
        detail: `API peak RSS ${fmt(mib(peak))} MiB, ${fmt(growthMiB)} MiB over its ${fmt(mib(baseline))} MiB before the export (goal < ${GOAL_GROWTH_MIB} MiB)`,
      },
    ];
    process.stdout.write(
      [
        '',
        `export orders ${DAY}${heapMiB ? ` (API old space capped at ${heapMiB} MiB)` : ''}: ${streamed.rows.toLocaleString()} rows, ${fmt(mib(streamed.bytes))} MiB of CSV in ${streamed.seconds.toFixed(1)} s`,
        `  ${fmt(rowsPerSecond)} rows/s, first byte after ${fmt(streamed.firstByteMs)} ms`,
        `  API RSS: ${fmt(mib(baseline))} MiB before, peak ${fmt(mib(peak))} MiB (${samples} samples every ${SAMPLE_MS} ms), ${fmt(mib(after))} MiB after`,
        `  load average ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} on ${os.cpus().length} cores`,
        '',
        ...checks.map(checkLine),
        `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
        '',
      ].join('\n'),
    );
    const out = writeResult('export', {
      machine: machine(),
      loadAverage: os.loadavg(),
      rows: streamed.rows,
      bytes: streamed.bytes,
      seconds: streamed.seconds,
      rowsPerSecond,
      firstByteMs: streamed.firstByteMs,
      rssMiB: { baseline: mib(baseline), peak: mib(peak), after: mib(after), growth: growthMiB, samples },
      goalGrowthMiB: GOAL_GROWTH_MIB,
      heapCapMiB: heapMiB,
      checks,
    });
    process.stdout.write(`wrote ${out}\n`);
  } finally {
    if (api) {
      const exited = new Promise((resolve) => api!.child.once('exit', resolve));
      api.child.send('stop');
      await Promise.race([exited, sleep(10_000)]);
      api.child.kill();
    }
    await database.stop();
  }
}

if (process.argv[2] === '--serve') {
  void serve(process.argv[3]!);
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
