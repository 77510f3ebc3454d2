/**
 * The worker process: workflows and read-model activities on the main task queue, courier
 * calls on their own task queue whose worker caps concurrency and calls per second.
 * `node dist/src/worker.js` runs it alone (production); the dev stack runs it in-process.
 */
import { postgresTokenStore } from './read-model/courier-tokens';
import { postgresSubmissionJournal } from './read-model/easyparcel-submissions';
import { getHeapStatistics } from 'node:v8';
import { Client, Connection } from '@temporalio/client';
import {
  NativeConnection,
  Runtime,
  Worker,
  type Logger as TemporalLogger,
  type LogLevel,
  type LogMetadata,
} from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database';
import { createDb } from '../db/client';
import { createActivities, type Activities } from './activities';
import { createDataConverter } from './codec';
import { loadConfig, type Config } from './config';
import { createCouriers, LARGEST_TRACKING_BATCH } from './couriers';
import { publishEventLoopDelay } from './event-loop-delay';
import { dispatcherSettings, startDispatcher } from './notifications/dispatcher';
import { createWebhookTransport } from './notifications/transport';
import { createHttpPaymentProvider } from './payments/http-provider';
import { pollPolicyFromConfig } from './poll-policy';
import { createLogger, type Logger } from './logger';
import { assertDatabaseReachable, runMain, StartupError } from './main-helpers';
import { ensureSchedules, type EnsuredSchedule } from './schedules';
import { ensureSearchAttributes, type EnsuredSearchAttribute } from './search-attributes';
import { temporalConnectionOptions } from './temporal';
import { workflowBundlerOptions } from './workflow-bundle';

/** Where the worker's Prometheus endpoint answers; null when WAYBILL_WORKER_METRICS_PORT is 0. */
export function workerMetricsUrl(config: Config): string | null {
  const { metricsHost, metricsPort } = config.worker;
  if (metricsPort === null) return null;
  const host = metricsHost === '0.0.0.0' || metricsHost === '::' ? 'localhost' : metricsHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${metricsPort}/metrics`;
}

/**
 * The SDK's warnings that describe Waybill's intended setup, not a fault: logged at info, so a
 * warning at start always means something to look at. The courier task queue's worker runs
 * activities only (src/worker.ts), and the SDK warns that it polls no workflow tasks.
 */
const EXPECTED_SDK_WARNINGS = new Set(['No workflows registered, not polling for workflow tasks']);

/** The Temporal runtime's logger, writing into pino (see {@link EXPECTED_SDK_WARNINGS}). */
export function temporalLogger(log: Logger): TemporalLogger {
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const write = (level: LogLevel, message: string, meta?: LogMetadata) => {
    const expected = level === 'WARN' && EXPECTED_SDK_WARNINGS.has(message);
    log[expected ? 'info' : levels[level]](meta ?? {}, message);
  };
  return {
    log: write,
    trace: (message, meta) => write('TRACE', message, meta),
    debug: (message, meta) => write('DEBUG', message, meta),
    info: (message, meta) => write('INFO', message, meta),
    warn: (message, meta) => write('WARN', message, meta),
    error: (message, meta) => write('ERROR', message, meta),
  };
}

/**
 * Installs the process's one Temporal runtime: its logs (core, worker internals, workflow and
 * activity loggers) go into pino, and its metrics — Temporal's own and Waybill's, recorded
 * through the SDK's metric meter (src/metrics.ts) — are served for Prometheus on
 * WAYBILL_WORKER_METRICS_HOST:PORT. Call before any connection or worker is created.
 */
export function installTemporalRuntime(
  log: Logger,
  opts: { ownSignals?: boolean; metrics?: Config['worker'] } = {},
): void {
  const logger = temporalLogger(log);
  // With ownSignals the caller stops the workers itself, in its own order (the dev stack
  // closes the API first); otherwise the runtime shuts workers down on SIGINT/SIGTERM.
  const host = opts.metrics?.metricsHost ?? '';
  const metrics = opts.metrics?.metricsPort
    ? {
        prometheus: {
          bindAddress: `${host.includes(':') ? `[${host}]` : host}:${opts.metrics.metricsPort}`,
        },
      }
    : undefined;
  try {
    Runtime.install({
      logger,
      ...(metrics ? { telemetryOptions: { metrics } } : {}),
      ...(opts.ownSignals ? { shutdownSignals: [] } : {}),
    });
  } catch (err) {
    if (!metrics) throw err;
    throw new StartupError(
      `the worker metrics endpoint cannot listen on ${metrics.prometheus.bindAddress} (set WAYBILL_WORKER_METRICS_PORT, 0 turns it off): ${(err as Error).message}`,
    );
  }
}

/**
 * Heap a worker needs (docs/benchmarks.md#worker-sizing): its code, connections and
 * activities, plus each cached workflow. The cached workflows live in the SDK's workflow
 * thread, whose heap has the same `--max-old-space-size` cap as the main thread's and is not
 * in the main thread's heap statistics; the per-workflow figure is bench:scale's RSS growth
 * per cached shipment workflow at 10,000 open parcels (0.57–0.58 MiB before the workflow
 * modules were shared, ~0.47 since: src/workflow-bundle.ts), rounded to 512 KiB of heap; the
 * heap alone was not measured again. Under 32 KiB (the main thread's heap alone) a 512 MiB worker ran out of heap with
 * 4,000 cached.
 */
export const WORKER_BASE_HEAP_MIB = 150;
export const CACHED_WORKFLOW_HEAP_KIB = 512;

/**
 * The heap the configured sticky cache needs, when it exceeds `heapLimitBytes` (V8's
 * `heap_size_limit`, set by NODE_OPTIONS=--max-old-space-size); null when it fits. A cache
 * that outgrows its heap does not fail: the worker collects garbage ever more often and then
 * dies of "heap out of memory", so this is said at start, once.
 */
export function heapShortfall(
  config: Config,
  heapLimitBytes: number,
): { neededMiB: number; limitMiB: number } | null {
  const neededMiB = Math.ceil(
    WORKER_BASE_HEAP_MIB + (config.workerSizing.maxCachedWorkflows * CACHED_WORKFLOW_HEAP_KIB) / 1024,
  );
  const limitMiB = Math.floor(heapLimitBytes / 2 ** 20);
  return neededMiB > limitMiB ? { neededMiB, limitMiB } : null;
}

/**
 * The activities that call a courier from an order workflow run on the courier task queue,
 * under its caps (activities per second, concurrency) and the daily budget: bookings, cancels,
 * and the last poll of a parcel whose tracking died. A shipment workflow's polls are local
 * activities on the main worker instead (src/workflows/shipment-tracking.ts): its batcher holds
 * the caps per courier, the daily budget is the same.
 */
const COURIER_ACTIVITIES = [
  'pollCourier',
  'bookShipment',
  'cancelBooking',
] as const satisfies readonly (keyof Activities)[];
/** Of those, the ones only the courier worker runs (the main worker runs `pollCourier` too, locally). */
const COURIER_QUEUE_ONLY: readonly string[] = [
  'bookShipment',
  'cancelBooking',
] satisfies (keyof Activities)[];

export interface WorkerDeps {
  config: Config;
  connection: NativeConnection;
  activities: Activities;
  /** A prebuilt workflow bundle (tests bundle once); otherwise bundled from source at start. */
  workflowBundle?: { codePath: string };
  /** Task queue names override (tests give each file its own). */
  taskQueue?: string;
  courierTaskQueue?: string;
}

export async function createWorkers(deps: WorkerDeps): Promise<Worker[]> {
  const { config, connection, activities } = deps;
  // Workflows and activities see plain values; Temporal sees sealed payloads (src/codec).
  const dataConverter = createDataConverter(config.payloads);
  const sizing = config.workerSizing;
  const courierActivities = Object.fromEntries(COURIER_ACTIVITIES.map((name) => [name, activities[name]]));
  const otherActivities = Object.fromEntries(
    Object.entries(activities).filter(([name]) => !COURIER_QUEUE_ONLY.includes(name)),
  );
  const bundling = workflowBundlerOptions(sizing.sharedWorkflowModules);
  const main = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    dataConverter,
    taskQueue: deps.taskQueue ?? config.temporal.taskQueue,
    ...(deps.workflowBundle
      ? { workflowBundle: deps.workflowBundle }
      : {
          workflowsPath: bundling.workflowsPath,
          bundlerOptions: { preloadModules: bundling.preloadModules },
        }),
    activities: otherActivities,
    // Sized from config (docs/benchmarks.md#worker-sizing), not the SDK's defaults: those size
    // the cache from the heap limit and poll the non-sticky queue with 2 pollers of 10.
    maxCachedWorkflows: sizing.maxCachedWorkflows,
    workflowThreadPoolSize: sizing.workflowThreads,
    maxConcurrentWorkflowTaskExecutions: sizing.workflowTaskSlots,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: sizing.workflowTaskPollers },
    // Half of them on the non-sticky queue (the SDK's default is a fifth): every new workflow's
    // first task and every evicted workflow's next one arrive there, a booking burst or a
    // restarted worker at once.
    nonStickyToStickyPollRatio: 0.5,
    maxConcurrentActivityTaskExecutions: sizing.activityTaskSlots,
    activityTaskPollerBehavior: { type: 'simple-maximum', maximum: sizing.activityTaskPollers },
    // A poll holds a workflow task and a local activity while it waits for its bulk call: as
    // many of one as of the other (the read-model writes are short and come after the poll).
    maxConcurrentLocalActivityExecutions: sizing.workflowTaskSlots,
  });
  const courier = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    dataConverter,
    taskQueue: deps.courierTaskQueue ?? config.temporal.courierTaskQueue,
    activities: courierActivities,
    // The courier budget is daily; these caps protect the courier (and us) from bursts of
    // bookings, cancels and last polls. A last poll waits in its courier's batch like a local
    // one, so the worker takes enough at once to fill the calls.
    maxConcurrentActivityTaskExecutions: config.courier.concurrency * LARGEST_TRACKING_BATCH,
    maxTaskQueueActivitiesPerSecond: config.courier.callsPerSecond * LARGEST_TRACKING_BATCH,
    activityTaskPollerBehavior: { type: 'simple-maximum', maximum: sizing.courierTaskPollers },
  });
  return [main, courier];
}

export async function connectWorker(config: Config): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(temporalConnectionOptions(config.temporal));
  } catch (err) {
    throw new StartupError(`cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message}`);
  }
}

export interface RunningWorker {
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
  /** What the start did to the schedules (created, updated, unchanged). */
  schedules: EnsuredSchedule[];
  /** What the start did to the custom search attributes (created, unchanged). */
  searchAttributes: EnsuredSearchAttribute[];
  shutdown(): Promise<void>;
}

/**
 * A client connection besides the workers' native one: for the schedules, and for activities
 * that ask Temporal about workflows (housekeeping checks whether a shipment is still tracked).
 */
async function connectClient(config: Config): Promise<Connection> {
  try {
    return await Connection.connect({ ...temporalConnectionOptions(config.temporal), connectTimeout: '10s' });
  } catch (err) {
    throw new StartupError(`cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message}`);
  }
}

/**
 * Creates and runs the workers, after making sure the custom search attributes exist (or
 * stopping with what to run where they cannot be added from here) and the schedules exist and
 * match the configuration; shutdown() drains in-flight tasks, then closes the connections.
 */
export async function startWorker(opts: {
  config: Config;
  db: Kysely<Database>;
  log: Logger;
  connection?: NativeConnection;
}): Promise<RunningWorker> {
  const connection = opts.connection ?? (await connectWorker(opts.config));
  let clientConnection: Connection | null = null;
  let closing: Promise<void> | null = null;
  const closeConnections = () =>
    (closing ??= (async () => {
      await clientConnection?.close();
      if (!opts.connection) await connection.close();
    })());

  let schedules: EnsuredSchedule[];
  let searchAttributes: EnsuredSearchAttribute[];
  let workers: Worker[];
  try {
    clientConnection = await connectClient(opts.config);
    // Before anything starts a workflow: an order or shipment started without them fails.
    try {
      searchAttributes = await ensureSearchAttributes(clientConnection, opts.config.temporal, opts.log);
    } catch (err) {
      if (err instanceof StartupError) throw err;
      throw new StartupError(
        `could not check the search attributes of the Temporal namespace ${opts.config.temporal.namespace}: ${(err as Error).message}`,
      );
    }
    const temporal = new Client({
      connection: clientConnection,
      namespace: opts.config.temporal.namespace,
      dataConverter: createDataConverter(opts.config.payloads),
    });
    const activities = createActivities({
      db: opts.db,
      temporal,
      couriers: createCouriers(opts.config.courier, opts.log.child({ component: 'courier' }), {
        // EasyParcel's refresh tokens rotate: every worker shares one pair, refreshed under a row lock.
        easyParcel: postgresTokenStore(opts.db, 'easyparcel', opts.config.courier.easyParcel.refreshToken),
        // A booking is submitted to EasyParcel once: what it answered is kept for the retries.
        easyParcelSubmissions: postgresSubmissionJournal(opts.db),
      }),
      payments: createHttpPaymentProvider({
        baseUrl: opts.config.payments.baseUrl,
        ...(opts.config.payments.apiKey ? { apiKey: opts.config.payments.apiKey } : {}),
        timeoutMs: opts.config.payments.timeoutMs,
        log: opts.log.child({ component: 'payments' }),
      }),
      paymentProviderName: opts.config.payments.baseUrl.includes(`:${opts.config.payments.simulatorPort}`)
        ? 'simulator'
        : 'http',
      dailyBudget: opts.config.courier.dailyBudget,
      bookingReserve: opts.config.courier.bookingReserve,
      requestsPerSecond: opts.config.courier.requestsPerSecond,
      batchWindowMs: opts.config.courier.batchWindowMs,
      batchConcurrency: opts.config.courier.concurrency,
      batchCallsPerSecond: opts.config.courier.callsPerSecond,
      batchSlowAfterMs: opts.config.courier.slowAfterMs,
      pollPolicy: pollPolicyFromConfig(opts.config),
      ...(opts.config.notifications.webhookUrl && opts.config.notifications.webhookSecret
        ? {
            notifications: createWebhookTransport({
              url: opts.config.notifications.webhookUrl,
              secret: opts.config.notifications.webhookSecret,
            }),
          }
        : {}),
      log: opts.log.child({ component: 'activities' }),
    });
    try {
      schedules = await ensureSchedules(temporal, opts.config, opts.log);
    } catch (err) {
      throw new StartupError(`could not create or update the schedules: ${(err as Error).message}`);
    }
    workers = await createWorkers({ config: opts.config, connection, activities });
  } catch (err) {
    await closeConnections();
    throw err;
  }
  const stopWorkers = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  // If one worker fails, stop the other too, so `done` settles and the caller can react.
  const runs = workers.map((w) =>
    w.run().catch((err: unknown) => {
      stopWorkers();
      throw err;
    }),
  );
  // Domain events out: one dispatcher per worker process; several share the work (docs/events.md).
  const dispatcher = startDispatcher({
    db: opts.db,
    log: opts.log.child({ component: 'events' }),
    settings: dispatcherSettings(opts.config),
    // The runtime's meter: the dispatcher's metrics are served with the worker's others.
    meter: Runtime.instance().metricMeter,
  });
  const stopLoopDelay = publishEventLoopDelay(Runtime.instance().metricMeter);
  // However the workers stop, the dispatcher and then the connections stop after them: after
  // every worker has drained (a connection still held by a worker cannot close, and that
  // error would hide why the first one failed, e.g. its workflow thread out of heap).
  const done = Promise.allSettled(runs)
    .finally(stopLoopDelay)
    .finally(() => dispatcher.stop())
    .finally(closeConnections)
    .then((settled) => {
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
  return {
    done,
    schedules,
    searchAttributes,
    async shutdown() {
      stopWorkers();
      await done;
    },
  };
}

if (require.main === module) {
  runMain(async () => {
    const config = loadConfig();
    const log = createLogger(config).child({ component: 'worker' });
    installTemporalRuntime(log.child({ component: 'temporal' }), {
      metrics: config.worker,
    });
    const short = heapShortfall(config, getHeapStatistics().heap_size_limit);
    if (short) {
      log.warn(
        short,
        `WAYBILL_WORKER_CACHED_WORKFLOWS=${config.workerSizing.maxCachedWorkflows} needs about ${short.neededMiB} MiB of heap and this process has ${short.limitMiB} MiB: start it with NODE_OPTIONS=--max-old-space-size=${short.neededMiB} or cache fewer workflows`,
      );
    }
    const db = createDb({
      url: config.database.url,
      poolMax: config.workerSizing.dbPoolMax,
      onError: (err) => log.warn({ err }, 'idle Postgres client failed'),
    });
    await assertDatabaseReachable(db, config.database.url);
    const worker = await startWorker({ config, db, log });
    log.info(
      {
        taskQueues: [config.temporal.taskQueue, config.temporal.courierTaskQueue],
        metrics: workerMetricsUrl(config),
        schedules: worker.schedules.map((s) => `${s.scheduleId} (${s.outcome})`),
        searchAttributes: worker.searchAttributes.map((a) => `${a.name} (${a.outcome})`),
      },
      'worker running',
    );
    const stop = () => void worker.shutdown();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await worker.done;
    await db.destroy();
    log.info('worker stopped');
  });
}
