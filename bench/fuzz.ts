/**
 * OpenAPI-driven fuzzing of the running API: requests generated from `/openapi.json` for
 * every documented route, half valid (with real ids and skus mixed in, so handlers run
 * deep) and half mutated (a required field dropped, an unknown field added, a wrong type,
 * a value outside its pattern, range or length, SQL and markup in strings, broken JSON,
 * a wrong content type, a 70 KiB body, odd path parameters: very long, unicode,
 * percent-encoded slashes and dots, null bytes, broken percent-encoding; and URLs no route
 * matches).
 *
 *   npm run fuzz -- [requests=10000] [--url http://127.0.0.1:3000 --database-url postgres://…]
 *
 * Without --url it starts its own fresh stack (`devstack/start.ts`, data under .data/fuzz, its
 * own ports, rate limits lifted) and stops it at the end. Checks, each PASS/FAIL:
 * - no response is 5xx;
 * - every JSON response matches the schema its route declares for that status;
 * - every mutated request is refused with a 4xx;
 * - every 4xx and 5xx answers in the one error shape `{ error: { code, message } }`, with
 *   our codes (never Fastify's FST_ ones), router and framework refusals included;
 * - mutated requests write nothing (row counts of every table before and after they run).
 * Prints figures and writes bench/results/fuzz.json; exits 1 when a check fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { createDb } from '../db/client';
import type { Database } from '../db/database';
import { customerToken } from '../src/api/tokens';
import { loadConfig } from '../src/config';
import { build, errorShapeProblem, Facts, operations, type FuzzRequest } from './support/fuzz-requests';
import { firstSeed, pick } from './support/fuzz-values';

// --- The stack ---------------------------------------------------------------------------

const FUZZ_ENV = {
  WAYBILL_DATA_DIR: '.data/fuzz',
  WAYBILL_PORT: '3190',
  TEMPORAL_DEV_PORT: '7290',
  TEMPORAL_UI_PORT: '8290',
  WAYBILL_PG_PORT: '54390',
  COURIER_SIMULATOR_PORT: '4190',
  PAYMENT_SIMULATOR_PORT: '4290',
  WAYBILL_WORKER_METRICS_PORT: '9490',
  WAYBILL_RATE_LIMIT_PER_MINUTE: '10000000',
  WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000',
  LOG_LEVEL: 'warn',
};

async function startStack(): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  // A fresh stack each run: earlier runs' workflows would keep writing rows meanwhile.
  fs.rmSync(FUZZ_ENV.WAYBILL_DATA_DIR, { recursive: true, force: true });
  fs.mkdirSync(FUZZ_ENV.WAYBILL_DATA_DIR, { recursive: true });
  const logFile = fs.openSync(path.join(FUZZ_ENV.WAYBILL_DATA_DIR, 'stack.log'), 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
    env: { ...process.env, ...FUZZ_ENV, DATABASE_URL: '', TEMPORAL_ADDRESS: '' },
    stdio: ['ignore', 'pipe', logFile],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the stack did not come up in 10 minutes')), 600_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      fs.writeSync(logFile, chunk);
      seen += chunk.toString();
      if (seen.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited with ${code}; see ${FUZZ_ENV.WAYBILL_DATA_DIR}/stack.log`));
    });
  });
  return {
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

const TABLES = [
  'orders',
  'order_items',
  'payments',
  'shipments',
  'tracking_events',
  'inventory_reservations',
  'notifications',
  'audit_log',
  'api_idempotency_keys',
  'courier_webhook_events',
] as const;

async function rowCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
    out[table] = Number(rows[0]!.n);
  }
  return out;
}

// --- Run ---------------------------------------------------------------------------------

interface Finding {
  request: string;
  mutated: string | null;
  status: number;
  problem: string;
}

async function send(
  base: string,
  req: FuzzRequest,
): Promise<{ status: number; json: unknown; text: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const res = await fetch(`${base}${req.url}`, {
      method: req.op.method,
      headers: req.headers,
      body: req.body,
      signal: controller.signal,
    });
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream')) {
      controller.abort();
      return { status: res.status, json: undefined, text: '' };
    }
    const text = await res.text();
    return {
      status: res.status,
      json: type.includes('application/json') ? JSON.parse(text) : undefined,
      text,
    };
  } finally {
    clearTimeout(timer);
  }
}

async function runBatch(
  base: string,
  requests: FuzzRequest[],
  concurrency: number,
  onResult: (req: FuzzRequest, res: { status: number; json: unknown; text: string }) => void,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const req = requests[next++]!;
        try {
          onResult(req, await send(base, req));
        } catch (err) {
          onResult(req, { status: 599, json: undefined, text: `no response: ${(err as Error).message}` });
        }
      }
    }),
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const total = Number(args.find((a) => /^\d+$/.test(a)) ?? 10_000);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const started = Date.now();
  let base = flag('--url');
  let databaseUrl = flag('--database-url');
  let stack: Awaited<ReturnType<typeof startStack>> | null = null;
  if (!base) {
    process.stdout.write('starting a stack for fuzzing (data in .data/fuzz)…\n');
    stack = await startStack();
    base = `http://127.0.0.1:${FUZZ_ENV.WAYBILL_PORT}`;
    databaseUrl = `postgres://waybill:waybill@127.0.0.1:${FUZZ_ENV.WAYBILL_PG_PORT}/waybill`;
  }
  const config = loadConfig({ ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) });
  const db = createDb({ url: config.database.url });
  try {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Record<string, unknown>;
    const ops = operations(doc);
    const facts = new Facts();
    await facts.load(db);

    // A few real orders first, so reads, cancels and refreshes find something.
    const orderOp = ops.find((o) => o.method === 'POST' && o.path === '/v1/orders');
    if (orderOp && facts.skus.length > 0) {
      for (let i = 0; i < 5; i++) {
        const req = build(orderOp, facts, config, false);
        req.headers = {
          ...req.headers,
          authorization: `Bearer ${customerToken(config, 'cus_fuzz')}`,
        };
        delete req.headers['x-api-key'];
        await send(base, req);
      }
      await new Promise((r) => setTimeout(r, 3_000));
      await facts.load(db);
    }

    const findings: Finding[] = [];
    const byStatus: Record<string, number> = {};
    const byRoute: Record<string, number> = {};
    let mutatedAccepted = 0;
    let badShapes = 0;
    /** Requests per odd kind (path values, unrouted URLs) and the statuses they got. */
    const oddKinds: Record<string, Record<string, number>> = {};
    const check = (req: FuzzRequest, res: { status: number; json: unknown; text: string }) => {
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const route = req.unrouted ? 'no route' : `${req.op.method} ${req.op.path}`;
      byRoute[route] = (byRoute[route] ?? 0) + 1;
      const where = `${req.op.method} ${req.url.slice(0, 120)}`;
      const odd = /^(path \w+|no route): (.*)$/.exec(req.mutated ?? '');
      if (odd) {
        const kind = odd[1]!.startsWith('path')
          ? `path: ${odd[2]!.replace(/^\d+ /, 'N ')}`
          : `no route: ${odd[2]}`;
        const statuses = (oddKinds[kind] ??= {});
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
      const shape = errorShapeProblem(res);
      if (shape) {
        badShapes++;
        findings.push({ request: where, mutated: req.mutated, status: res.status, problem: shape });
      }
      if (res.status >= 500) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: res.text.slice(0, 300),
        });
        return;
      }
      if (req.mutated && res.status < 400) {
        mutatedAccepted++;
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: 'invalid input accepted',
        });
      }
      if (req.unrouted) return;
      if (!req.op.responses.has(res.status)) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: 'status not declared',
        });
        return;
      }
      const validate = req.op.responses.get(res.status);
      if (validate && res.json !== undefined && !validate(res.json)) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: `response does not match its schema: ${JSON.stringify(validate.errors?.[0])}`,
        });
      }
    };

    // Phase 1: mutated requests only, with row counts around them. The seeded orders'
    // sagas write rows of their own for a while: start once the counts hold still.
    const mutatedCount = Math.floor(total / 2);
    let before = await rowCounts(db);
    for (let stable = 0, i = 0; stable < 3 && i < 60; i++) {
      await new Promise((r) => setTimeout(r, 2_000));
      const now = await rowCounts(db);
      stable = JSON.stringify(now) === JSON.stringify(before) ? stable + 1 : 0;
      before = now;
    }
    await runBatch(
      base,
      Array.from({ length: mutatedCount }, () => build(pick(ops), facts, config, true)),
      16,
      check,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await rowCounts(db);
    const written = Object.entries(after)
      .filter(([table, n]) => n !== before[table])
      .map(([table, n]) => `${table} ${before[table]} → ${n}`);

    // Phase 2: valid requests.
    await runBatch(
      base,
      Array.from({ length: total - mutatedCount }, () => build(pick(ops), facts, config, false)),
      16,
      check,
    );

    const fives = Object.entries(byStatus)
      .filter(([s]) => Number(s) >= 500)
      .reduce((n, [, c]) => n + c, 0);
    const schemaProblems = findings.filter(
      (f) => f.problem.startsWith('response does not match') || f.problem === 'status not declared',
    ).length;
    const checks = {
      no5xx: { value: fives, pass: fives === 0 },
      responsesMatchSchemas: { value: schemaProblems, pass: schemaProblems === 0 },
      mutatedRequestsRefused: { value: mutatedAccepted, pass: mutatedAccepted === 0 },
      errorsInOneShape: { value: badShapes, pass: badShapes === 0 },
      mutatedRequestsWriteNothing: {
        value: written.length === 0 ? 'no table changed' : written.join(', '),
        pass: written.length === 0,
      },
    };
    const lines = [
      '',
      `fuzz: ${total} requests over ${ops.length} operations (${mutatedCount} mutated), seed ${firstSeed}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
      `statuses: ${Object.entries(byStatus)
        .map(([s, n]) => `${s}×${n}`)
        .join('  ')}`,
      'odd path parameters and unrouted URLs (statuses):',
      ...Object.entries(oddKinds)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(
          ([kind, statuses]) =>
            `  ${kind}: ${Object.entries(statuses)
              .map(([st, n]) => `${st}×${n}`)
              .join('  ')}`,
        ),
      ...Object.entries(checks).map(([name, c]) => `${c.pass ? 'PASS' : 'FAIL'}  ${name}: ${c.value}`),
      ...findings
        .slice(0, 15)
        .map((f) => `  ${f.status} ${f.request}${f.mutated ? ` [${f.mutated}]` : ''}: ${f.problem}`),
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const out = path.join(__dirname, 'results', 'fuzz.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(
      out,
      `${JSON.stringify({ at: new Date().toISOString(), seed: firstSeed, total, mutated: mutatedCount, byStatus, byRoute, oddKinds, checks, findings: findings.slice(0, 200) }, null, 2)}\n`,
    );
    process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
    process.exitCode = Object.values(checks).every((c) => c.pass) ? 0 : 1;
  } finally {
    await db.destroy();
    await stack?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
