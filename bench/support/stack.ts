/**
 * The stack as separate parts the benchmarks and fault suites can measure and break one at
 * a time: a Temporal dev server (the CLI's `server start-dev` as a child process of its own,
 * SQLite file kept across restarts), an embedded Postgres,
 * the courier and payment simulators and the API in this process, and the worker as a
 * child process (`node --import tsx src/worker.ts`, as `npm run start:worker` runs the
 * built one) that can be killed with SIGKILL and started again, and whose RSS is its own.
 *
 * Everything listens on free loopback ports and keeps its data under `.data/bench/<name>`,
 * emptied at every start, so a run never touches the dev stack's data or a user's services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { Connection } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { sql, type Kysely } from 'kysely';
import { createDb } from '../../db/client';
import type { Database } from '../../db/database';
import { migrateToLatest } from '../../db/migrator';
import { seedCatalogue } from '../../db/seed';
import { startApi, type RunningApi } from '../../src/api/main';
import { environmentWith, loadConfig, type Config } from '../../src/config';
import { DEMO_STACK_UNSET } from '../../devstack/demo/plan';
import {
  startEmbeddedPostgres,
  takeOverShutdownSignals,
  type RunningPostgres,
} from '../../devstack/embedded-postgres';
import { resolveTemporalCli } from '../../devstack/temporal-cli';
import { createLogger } from '../../src/logger';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { StartupError } from '../../src/main-helpers';
import { createTemporalClient, temporalIsServing, type TemporalClient } from '../../src/temporal';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';
import { freePort } from '../../test/support/ports';
import { sampleProcess } from './measure';

/** Variables a bench stack never inherits (the demo's list): it must not reach the user's own services. */
const NEVER_INHERITED = DEMO_STACK_UNSET;

export interface StackOptions {
  /** Data folder `.data/bench/<name>`. */
  name: string;
  /** Settings for the worker and the API (poll intervals, budgets, rate limits…). */
  env?: Record<string, string>;
  /** Courier simulator clock speed (simulated ms per real ms). */
  timeScale?: number;
  /** Stock every catalogue sku starts with. */
  stock?: number;
  /** Progress lines. */
  say?: (line: string) => void;
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
  worker: WorkerProcess;
  postgres: Restartable;
  temporalServer: Restartable;
  /** The dev server's process; null while it is down. */
  temporalServerPid(): number | null;
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
      const proc = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
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

/** How long a dev server may take to answer after it is started (a restart on a busy machine recovers its SQLite file first). */
const TEMPORAL_START_DEADLINE_MS = 120_000;

/**
 * Polls Temporal's health check every half second until it answers SERVING; false when
 * `timeoutMs` passes first.
 */
export async function waitForTemporal(connection: Connection, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await temporalIsServing(connection, Math.min(2_000, Math.max(1, deadline - Date.now())))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The Temporal dev server as a child process of this one, so that a restart waits on a
 * deadline of its own: the SDK's `createLocal` gives its client 10 s to connect and, when
 * that passes (a restart under load), throws and leaves the server it started running.
 */
function devServerProcess(opts: {
  executable: string;
  port: number;
  namespace: string;
  dbFilename: string;
  logFile: string;
}): Restartable & { pid(): number | null } {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const address = `127.0.0.1:${opts.port}`;
  const args = [
    ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--headless'],
    ...['--namespace', opts.namespace, '--db-filename', opts.dbFilename],
    ...['--log-format', 'json', '--log-level', 'warn'],
    ...SEARCH_ATTRIBUTES.flatMap((key) => [
      '--search-attribute',
      `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`,
    ]),
  ];

  const stop = async () => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
    ]);
    if (!gone) {
      proc.kill('SIGKILL');
      await exited;
    }
  };

  return {
    pid: () => child?.pid ?? null,
    stop,
    async start() {
      if (child) throw new Error('the Temporal dev server is already running');
      const out = fs.openSync(opts.logFile, 'a');
      const proc = spawn(opts.executable, args, { stdio: ['ignore', out, out] });
      fs.closeSync(out);
      child = proc;
      let exitCode: number | string | null = null;
      exited = new Promise((resolve) =>
        proc.once('exit', (code, signal) => {
          exitCode = code ?? signal;
          if (child === proc) child = null;
          resolve();
        }),
      );
      // A probe of its own: channels to this address from before a restart may still be backing off.
      const probe = Connection.lazy({ address, channelArgs: { 'grpc.use_local_subchannel_pool': 1 } });
      try {
        const deadline = Date.now() + TEMPORAL_START_DEADLINE_MS;
        while (child === proc && Date.now() < deadline) {
          if (await waitForTemporal(probe, Math.min(2_000, deadline - Date.now()))) return;
        }
      } finally {
        await probe.close().catch(() => undefined);
      }
      if (child !== proc) {
        throw new StartupError(
          `the Temporal dev server exited (${exitCode}) before it served; see ${opts.logFile}`,
        );
      }
      await stop();
      throw new StartupError(
        `the Temporal dev server did not answer on ${address} within ${TEMPORAL_START_DEADLINE_MS / 1000} s of starting; see ${opts.logFile}`,
      );
    },
  };
}

/** Starts every part, migrated and seeded, with the worker running. */
export async function startProcessStack(opts: StackOptions): Promise<ProcessStack> {
  const say = opts.say ?? (() => undefined);
  const root = path.resolve(__dirname, '..', '..');
  const dataDir = path.join(root, '.data', 'bench', opts.name);
  await fsp.rm(dataDir, { recursive: true, force: true });
  await fsp.mkdir(dataDir, { recursive: true });
  takeOverShutdownSignals();

  const [temporalPort, pgPort, courierPort, paymentsPort, apiPort, metricsPort] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
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
    const cli = await resolveTemporalCli({
      cliPath: baseConfig.temporal.cliPath,
      cacheDir: baseConfig.paths.cacheDir,
      log: say,
    });
    if (cli.executable.type !== 'existing-path') {
      throw new StartupError(
        'a bench stack runs the Temporal CLI binary itself: build it with `npm run temporal:cli` or set TEMPORAL_CLI_PATH',
      );
    }
    const dbFilename = path.join(dataDir, 'temporal.sqlite');
    const temporalServer = devServerProcess({
      executable: cli.executable.path,
      port: temporalPort!,
      namespace: baseConfig.temporal.namespace,
      dbFilename,
      logFile: path.join(dataDir, 'temporal.log'),
    });
    await temporalServer.start();
    stoppers.push(() => temporalServer.stop());
    say(`Temporal dev server on 127.0.0.1:${temporalPort} (SQLite ${path.relative(root, dbFilename)})`);

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
        TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        COURIER_SIMULATOR_URL: courier.url,
        COURIER_SIMULATOR_PORT: String(courierPort),
        PAYMENTS_BASE_URL: payments.url,
        PAYMENT_SIMULATOR_PORT: String(paymentsPort),
        WAYBILL_PORT: String(apiPort),
        WAYBILL_WORKER_METRICS_PORT: String(metricsPort),
        WAYBILL_RATE_LIMIT_PER_MINUTE: '1000000',
        WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000', // the most src/config.ts accepts
        WAYBILL_COURIER_DAILY_BUDGET: '10000000', // the most src/config.ts accepts
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

    const worker = workerProcess(root, env, path.join(dataDir, 'worker.log'), say);
    stoppers.push(() => worker.stop());
    await worker.start();

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
      postgres,
      temporalServer,
      temporalServerPid: () => temporalServer.pid(),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
