/**
 * The stack as separate parts the benchmarks and fault suites can measure and break one at
 * a time: a Temporal server as a child process of its own, of either target (`--temporal`):
 * - `dev` (default): the CLI's `server start-dev`, SQLite file kept across restarts;
 * - `server`: the real Temporal server built from its Go module
 *   (devstack/temporal-server-target.ts) on an embedded Postgres of its own (not Waybill's: the
 *   postgres-restart suite stops one without the other), 16 history shards (`--shards N`: another
 *   count, fixed for that run), its own Prometheus metrics served with BENCH_SERVER_METRICS=1; the worker adds
 *   the search attributes at its start, as on any Temporal a user points it at;
 * then an embedded Postgres for Waybill,
 * the courier and payment simulators and the API in this process, and the worker (one or more) as a
 * child process (`node --import tsx src/worker.ts`, as `npm run start:worker` runs the
 * built one) that can be killed with SIGKILL and started again, and whose RSS is its own.
 *
 * Everything listens on free loopback ports and keeps its data under `.data/bench/<name>…`,
 * emptied at every start, so a run never touches the dev stack's data or a user's services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { TypedSearchAttributes } from '@temporalio/common';
import { sql, type Kysely } from 'kysely';
import { createDb } from '../../db/client';
import type { Database } from '../../db/database';
import { migrateToLatest } from '../../db/migrator';
import { seedCatalogue } from '../../db/seed';
import { startApi, type RunningApi } from '../../src/api/main';
import { environmentWith, loadConfig, type Config } from '../../src/config';
import { DEMO_STACK_UNSET } from '../../devstack/demo/settings';
import {
  startEmbeddedPostgres,
  takeOverShutdownSignals,
  type RunningPostgres,
} from '../../devstack/embedded-postgres';
import { resolveTemporalCli } from '../../devstack/temporal-cli';
import { superviseTemporal, type SupervisedTemporal } from '../../devstack/temporal-process';
import { SQLITE_FILE_PRAGMA_ARGS } from '../../devstack/temporal-server';
import {
  resolveTemporalServer,
  startTemporalServer,
  temporalPostgresFromUrl,
  TEMPORAL_HISTORY_SHARDS,
  TEMPORAL_SERVER_VERSION,
} from '../../devstack/temporal-server-target';
import { createLogger } from '../../src/logger';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { StartupError } from '../../src/main-helpers';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';
import { freePort } from '../../test/support/ports';
import { sampleProcess } from './measure';

export { waitForTemporal } from '../../devstack/temporal-process';

/** Which Temporal a stack runs on: the CLI's dev server, or the real server on Postgres. */
export const TEMPORAL_TARGETS = ['dev', 'server'] as const;
export type TemporalTarget = (typeof TEMPORAL_TARGETS)[number];

/** The stack's own flags, taken out of a script's arguments: `--temporal dev|server` and `--workers N`. */
export interface TargetArgs {
  temporal: TemporalTarget;
  workers: number;
  /** The real server's history shards (`--shards`); its default when absent. */
  shards?: number;
  /** The script's other arguments, in order. */
  rest: string[];
}

export function takeTargetArgs(argv: readonly string[]): TargetArgs {
  let temporal: TemporalTarget = 'dev';
  let workers = 1;
  let shards: number | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--temporal') {
      const value = argv[++i];
      if (!(TEMPORAL_TARGETS as readonly (string | undefined)[]).includes(value))
        throw new Error(`--temporal takes ${TEMPORAL_TARGETS.join(' or ')}, not ${value ?? 'nothing'}`);
      temporal = value as TemporalTarget;
    } else if (a === '--workers') {
      workers = Number(argv[++i]);
      if (!Number.isInteger(workers) || workers < 1 || workers > 8)
        throw new Error('--workers takes a whole number from 1 to 8 (worker processes)');
    } else if (a === '--shards') {
      shards = Number(argv[++i]);
      if (!Number.isInteger(shards) || shards < 1 || shards > 1_024)
        throw new Error("--shards takes a whole number from 1 to 1024 (the real server's history shards)");
    } else rest.push(a);
  }
  if (shards !== undefined && temporal !== 'server') throw new Error('--shards is for --temporal server');
  return { temporal, workers, ...(shards !== undefined ? { shards } : {}), rest };
}

/** Variables a bench stack never inherits (the demo's list): it must not reach the user's own services. */
const NEVER_INHERITED = DEMO_STACK_UNSET;

export interface StackOptions {
  /**
   * Data folder `.data/bench/<name>`, `<name>-server` on the real server and `-<N>w` with N
   * workers: runs on different targets or worker counts can go side by side.
   */
  name: string;
  /** Settings for the worker and the API (poll intervals, budgets, rate limits…). */
  env?: Record<string, string>;
  /** Courier simulator clock speed (simulated ms per real ms). */
  timeScale?: number;
  /** Stock every catalogue sku starts with. */
  stock?: number;
  /** Progress lines. */
  say?: (line: string) => void;
  /** Which Temporal (default `dev`). */
  temporal?: TemporalTarget;
  /** Worker processes (default 1); each has its own metrics port. */
  workers?: number;
  /** The real server's history shards (default {@link TEMPORAL_HISTORY_SHARDS}). */
  shards?: number;
  /**
   * Ctrl-C (SIGINT) stops every part started so far, then exits with 130: for a script that
   * runs one stack at a time (bench/faults.ts, running several, keeps its own handler).
   */
  stopOnInterrupt?: boolean;
}

export interface WorkerProcess {
  /** Null while no worker runs. */
  pid(): number | null;
  /** Starts one and waits for its "worker running" line. */
  start(): Promise<void>;
  /** SIGKILL: no drain, no goodbye. Waits for the process to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM and wait (graceful drain). */
  stop(): Promise<void>;
  /** Resident set size of the worker process in bytes (0 when none runs). */
  rssBytes(): number;
  /** How many worker processes this stack has started. */
  starts(): number;
}

export interface Restartable {
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface ProcessStack {
  dataDir: string;
  config: Config;
  /** The environment the worker runs with. */
  env: Record<string, string>;
  apiUrl: string;
  db: Kysely<Database>;
  temporal: TemporalClient;
  courier: RunningSimulator;
  payments: RunningPaymentSimulator;
  /** The first worker process (the one the suites kill and restart). */
  worker: WorkerProcess;
  /** Every worker process, the first included. */
  workers: WorkerProcess[];
  /** Which Temporal this stack runs on. */
  target: TemporalTarget;
  postgres: Restartable;
  temporalServer: Restartable;
  /** The Temporal server's process; null while it is down. */
  temporalServerPid(): number | null;
  /** The real server's own Postgres (its postmaster; its backends are its children); null on the dev server. */
  temporalPostgresPid(): number | null;
  /** The Temporal server's own Prometheus metrics (either target), with BENCH_SERVER_METRICS=1; else null. */
  temporalMetricsUrl: string | null;
  /** The real server's history shards; null on the dev server. */
  temporalShards: number | null;
  stop(): Promise<void>;
}

function workerProcess(
  root: string,
  env: Record<string, string>,
  logFile: string,
  say: (l: string) => void,
): WorkerProcess {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let starts = 0;

  const waitGone = async (ms: number) =>
    Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  return {
    pid: () => child?.pid ?? null,
    starts: () => starts,
    async start() {
      if (child) throw new Error('a worker is already running');
      const out = fs.createWriteStream(logFile, { flags: 'a' });
      // BENCH_WORKER_CPU_PROF=<dir>: a CPU profile of each worker start, written when it stops.
      const profile = process.env.BENCH_WORKER_CPU_PROF;
      const profiling = profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profile)}`] : [];
      // BENCH_WORKER_TRACE_GC=1: every collection of each thread's heap (V8's --trace-gc) in the worker's log.
      if (process.env.BENCH_WORKER_TRACE_GC === '1') profiling.push('--trace-gc');
      const proc = spawn(process.execPath, [...profiling, '--import', 'tsx', 'src/worker.ts'], {
        cwd: root,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      starts += 1;
      exited = new Promise((resolve) =>
        proc.once('exit', () => {
          if (child === proc) child = null;
          resolve();
        }),
      );
      proc.stderr!.pipe(out, { end: false });
      const t0 = Date.now();
      await new Promise<void>((resolve, reject) => {
        const lines = readline.createInterface({ input: proc.stdout! });
        let ready = false;
        lines.on('line', (line) => {
          out.write(`${line}\n`);
          if (!ready && line.includes('"worker running"')) {
            ready = true;
            resolve();
          }
        });
        proc.once('exit', (code, signal) => {
          if (!ready)
            reject(new Error(`the worker exited (${code ?? signal}) before it ran; see ${logFile}`));
        });
      });
      say(`worker ${proc.pid} running (${((Date.now() - t0) / 1000).toFixed(1)} s to start)`);
    },
    async kill9() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!child) return;
      child.kill('SIGTERM');
      if (!(await waitGone(60_000))) {
        child?.kill('SIGKILL');
        await exited;
      }
    },
    rssBytes() {
      const pid = child?.pid;
      return pid === undefined ? 0 : (sampleProcess(pid)?.rssBytes ?? 0);
    },
  };
}

/** The CLI's dev server on a SQLite file that survives its restarts. */
function devServerProcess(opts: {
  executable: string;
  port: number;
  metricsPort: number | null;
  namespace: string;
  dbFilename: string;
  logFile: string;
}): SupervisedTemporal {
  return superviseTemporal({
    label: 'the Temporal dev server',
    executable: opts.executable,
    address: `127.0.0.1:${opts.port}`,
    logFile: opts.logFile,
    args: [
      ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--headless'],
      ...(opts.metricsPort !== null ? ['--metrics-port', String(opts.metricsPort)] : []),
      ...['--namespace', opts.namespace, '--db-filename', opts.dbFilename, ...SQLITE_FILE_PRAGMA_ARGS],
      ...['--log-format', 'json', '--log-level', 'warn'],
      ...SEARCH_ATTRIBUTES.flatMap((key) => [
        '--search-attribute',
        `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`,
      ]),
    ],
  });
}

/**
 * Whether the Temporal server serves its own metrics: BENCH_SERVER_METRICS=1. Off by default:
 * they cost the server enough to change what is measured (bench:scale on the dev server, same
 * code: 50 starts/s and not settled with them, 67 and settled in 191 s without).
 */
export const serverMetrics = () => process.env.BENCH_SERVER_METRICS === '1';

interface TargetStart {
  dataDir: string;
  /** The real server's history shards. */
  shards: number;
  /** The dev server's port (the real server draws its own: its ports must fit a smallint). */
  port: number;
  config: Config;
  say: (line: string) => void;
  stoppers: (() => Promise<unknown>)[];
}

/** The CLI's dev server on a SQLite file in the data folder. */
async function startDevTarget(t: TargetStart): Promise<SupervisedTemporal & { metricsUrl: string | null }> {
  const cli = await resolveTemporalCli({
    cliPath: t.config.temporal.cliPath,
    cacheDir: t.config.paths.cacheDir,
    log: t.say,
  });
  if (cli.executable.type !== 'existing-path') {
    throw new StartupError(
      'a bench stack runs the Temporal CLI binary itself: build it with `npm run temporal:cli` or set TEMPORAL_CLI_PATH',
    );
  }
  const dbFilename = path.join(t.dataDir, 'temporal.sqlite');
  const metricsPort = serverMetrics() ? await freePort() : null;
  const server = devServerProcess({
    executable: cli.executable.path,
    port: t.port,
    metricsPort,
    namespace: t.config.temporal.namespace,
    dbFilename,
    logFile: path.join(t.dataDir, 'temporal.log'),
  });
  await server.start();
  t.stoppers.push(() => server.stop());
  t.say(`Temporal dev server on ${server.address} (SQLite ${path.relative(process.cwd(), dbFilename)})`);
  return {
    ...server,
    metricsUrl: metricsPort === null ? null : `http://127.0.0.1:${metricsPort}/metrics`,
  };
}

/** A Postgres cluster's postmaster, from the first line of its data directory's postmaster.pid; null when it is not running. */
function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The real Temporal server on an embedded Postgres of its own (both stopped with the stack). */
async function startServerTarget(
  t: TargetStart,
): Promise<Restartable & { address: string; pid(): number | null; metricsUrl: string | null }> {
  const binaries = await resolveTemporalServer({ cacheDir: t.config.paths.cacheDir, log: t.say });
  const pg = await startEmbeddedPostgres({
    dir: path.join(t.dataDir, 'temporal-pg'),
    port: await freePort(),
    user: 'temporal',
    password: 'temporal',
    database: 'postgres',
    log: () => undefined,
  });
  t.stoppers.push(() => pg.stop());
  const server = await startTemporalServer({
    binaries,
    postgres: temporalPostgresFromUrl(pg.url),
    dir: path.join(t.dataDir, 'temporal-server'),
    namespace: t.config.temporal.namespace,
    log: t.say,
    metrics: serverMetrics(),
    shards: t.shards,
  });
  t.stoppers.push(() => server.stop());
  t.say(
    `Temporal server ${TEMPORAL_SERVER_VERSION} on ${server.address} (Postgres, ${t.shards} history shards; log ${path.relative(process.cwd(), server.logFile)})`,
  );
  return server;
}

/** Starts every part, migrated and seeded, with the worker running. */
export async function startProcessStack(opts: StackOptions): Promise<ProcessStack> {
  const say = opts.say ?? (() => undefined);
  const root = path.resolve(__dirname, '..', '..');
  const folder = [
    opts.name,
    ...(opts.temporal === 'server' ? ['server'] : []),
    ...((opts.workers ?? 1) > 1 ? [`${opts.workers}w`] : []),
  ].join('-');
  const dataDir = path.join(root, '.data', 'bench', folder);
  await fsp.rm(dataDir, { recursive: true, force: true });
  await fsp.mkdir(dataDir, { recursive: true });
  takeOverShutdownSignals();

  const workerCount = opts.workers ?? 1;
  const [temporalPort, pgPort, courierPort, paymentsPort, apiPort, ...metricsPorts] = await Promise.all(
    Array.from({ length: 5 + workerCount }, () => freePort()),
  );
  const stoppers: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    process.off('SIGINT', interrupted);
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    stoppers.length = 0;
  };
  function interrupted(): void {
    process.stdout.write('\nInterrupted: stopping the stack\n');
    void stopAll().finally(() => process.exit(130));
  }
  if (opts.stopOnInterrupt) process.once('SIGINT', interrupted);

  try {
    const baseConfig = loadConfig(environmentWith({ WAYBILL_DATA_DIR: dataDir }, NEVER_INHERITED));
    const target = opts.temporal ?? 'dev';
    const shards = opts.shards ?? TEMPORAL_HISTORY_SHARDS;
    const start: TargetStart = { dataDir, port: temporalPort!, config: baseConfig, say, stoppers, shards };
    const temporalServer = target === 'server' ? await startServerTarget(start) : await startDevTarget(start);

    const pg: RunningPostgres = await startEmbeddedPostgres({
      dir: path.join(dataDir, 'pg'),
      port: pgPort!,
      user: 'waybill',
      password: 'waybill',
      database: 'waybill',
      log: () => undefined,
    });
    let pgRunning = true;
    const postgres: Restartable = {
      async stop() {
        await pg.stop();
        pgRunning = false;
      },
      async start() {
        await pg.start();
        pgRunning = true;
      },
    };
    stoppers.push(() => (pgRunning ? pg.stop() : Promise.resolve()));
    say(`Postgres on 127.0.0.1:${pgPort}`);

    const courier = await startSimulator({ port: courierPort!, timeScale: opts.timeScale ?? 1 });
    stoppers.push(() => courier.stop());
    const payments = await startPaymentSimulator({ port: paymentsPort! });
    stoppers.push(() => payments.stop());

    const env = environmentWith(
      {
        WAYBILL_DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
        DATABASE_URL: pg.url,
        TEMPORAL_ADDRESS: temporalServer.address,
        COURIER_SIMULATOR_URL: courier.url,
        COURIER_SIMULATOR_PORT: String(courierPort),
        PAYMENTS_BASE_URL: payments.url,
        PAYMENT_SIMULATOR_PORT: String(paymentsPort),
        WAYBILL_PORT: String(apiPort),
        WAYBILL_WORKER_METRICS_PORT: String(metricsPorts[0]),
        WAYBILL_RATE_LIMIT_PER_MINUTE: '1000000',
        WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000', // the most src/config accepts
        WAYBILL_COURIER_DAILY_BUDGET: '10000000', // the most src/config accepts
        // The benchmarks measure Waybill and Temporal, not a courier account's limit.
        WAYBILL_COURIER_REQUESTS_PER_SECOND: '10000', // the most src/config accepts
        ...opts.env,
      },
      NEVER_INHERITED,
    );
    const config = loadConfig(env);

    const db = createDb({ url: pg.url, poolMax: 10, onError: () => undefined });
    stoppers.push(() => db.destroy());
    await migrateToLatest(db);
    await seedCatalogue(db);
    await sql`update inventory_items set on_hand = ${opts.stock ?? 1_000_000}`.execute(db);

    const temporal = createTemporalClient(config);
    stoppers.push(() => temporal.connection.close());

    // Each worker its own metrics port and log; the first keeps the names a single worker had.
    const workers = metricsPorts.map((port, i) =>
      workerProcess(
        root,
        i === 0 ? env : { ...env, WAYBILL_WORKER_METRICS_PORT: String(port) },
        path.join(dataDir, i === 0 ? 'worker.log' : `worker-${i + 1}.log`),
        say,
      ),
    );
    for (const worker of workers) {
      stoppers.push(() => worker.stop());
      await worker.start();
    }
    const worker = workers[0]!;

    // Errors only: during an outage every refused request would log a warning with its stack.
    const apiLog = createLogger({ logLevel: 'error' });
    const apiDb = createDb({ url: pg.url, poolMax: 10, onError: () => undefined });
    stoppers.push(() => apiDb.destroy());
    const api: RunningApi = await startApi({ config, db: apiDb, log: apiLog });
    stoppers.push(() => api.close());
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    say(`API on ${apiUrl}`);

    return {
      dataDir,
      config,
      env,
      apiUrl,
      db,
      temporal,
      courier,
      payments,
      worker,
      workers,
      target,
      postgres,
      temporalServer,
      temporalServerPid: () => temporalServer.pid(),
      temporalPostgresPid: () =>
        target === 'server' ? postmasterPid(path.join(dataDir, 'temporal-pg')) : null,
      temporalMetricsUrl: temporalServer.metricsUrl,
      temporalShards: target === 'server' ? shards : null,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
