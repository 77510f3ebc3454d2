import { randomBytes } from 'node:crypto';
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { createActivities, type Activities } from '../../src/activities';
import { createDataConverter } from '../../src/codec';
import { CourierCode, type CourierAdapter } from '../../src/couriers/types';
import type { NotificationTransport } from '../../src/notifications/transport';
import type { PaymentProvider } from '../../src/payments/types';
import { createWorkers } from '../../src/worker';
import { refreshNowUpdate, shipmentWorkflowId } from '../../src/workflows/contract';
import { pollPolicyFromConfig } from '../../src/poll-policy';
import type { PollPolicy } from '../../src/domain/polling';
import type { shipmentWorkflow } from '../../src/workflows/shipment';
import { temporal } from '@temporalio/proto';
import { testConfig, testLog } from './env';

/** A worker pair (main + courier queue) on the test server with queues of this file's own. */
export interface TestWorker {
  client: Client;
  activities: Activities;
  taskQueue: string;
  courierTaskQueue: string;
  /** The main task queue's worker and the courier task queue's. */
  workers: Worker[];
  stop(): Promise<void>;
}

const refuse = async (): Promise<never> => {
  throw new Error('this test worker has no payment provider');
};
const noPayments: PaymentProvider = {
  authorise: refuse,
  capture: refuse,
  void: refuse,
  refund: refuse,
  retrieve: refuse,
};

let runtimeInstalled = false;

/** Workflow and worker logs at WARN and above only (set WAYBILL_TEST_LOG_LEVEL=info for more). */
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.WAYBILL_TEST_LOG_LEVEL ?? 'warn').toUpperCase() as 'WARN';
  Runtime.install({ logger: new DefaultLogger(level) });
}

export async function startTestWorker(opts: {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  /** Tests that never touch money may leave it out: any payment call then fails loudly. */
  payments?: PaymentProvider;
  dailyBudget?: number;
  /** Serve another worker's queues (a test that stops a worker and starts it again). */
  taskQueues?: { taskQueue: string; courierTaskQueue: string };
  /** How customer notifications leave (the log transport when omitted). */
  notifications?: NotificationTransport;
  /** Settings on top of the test configuration (e.g. the worker's sizing, other payload keys). */
  env?: Record<string, string>;
  /** Bulk tracking window of the courier queue's polls (ms); 0 (default): one call per poll. */
  batchWindowMs?: number;
  /**
   * The worker's poll policy, which shipment workflows started without one run on (default:
   * built from the worker's configuration, `env` included, as the real worker does).
   */
  pollPolicy?: PollPolicy;
}): Promise<TestWorker> {
  installQuietRuntime();
  const suffix = randomBytes(4).toString('hex');
  const taskQueue = opts.taskQueues?.taskQueue ?? `test-${suffix}`;
  const courierTaskQueue = opts.taskQueues?.courierTaskQueue ?? `test-courier-${suffix}`;
  const config = testConfig({
    WAYBILL_COURIER_CONCURRENCY: '5',
    WAYBILL_COURIER_CALLS_PER_SECOND: '100',
    // Fast policies poll every few hundred ms, one call per poll: no test but the cap's own waits for it.
    WAYBILL_COURIER_REQUESTS_PER_SECOND: '1000',
    ...opts.env,
  });
  const address = process.env.WAYBILL_TEST_TEMPORAL_ADDRESS!;
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  // The same payload codec as the worker (createWorkers) and the API: the history holds ciphertext.
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: createDataConverter(config.payloads),
  });
  const activities = createActivities({
    db: opts.db,
    temporal: client,
    couriers: opts.couriers,
    payments: opts.payments ?? noPayments,
    dailyBudget: opts.dailyBudget ?? 1000,
    requestsPerSecond: config.courier.requestsPerSecond,
    ...(opts.batchWindowMs ? { batchWindowMs: opts.batchWindowMs } : {}),
    // As the worker does: a courier's polls are put off while it is not answering.
    batchSlowAfterMs: config.courier.slowAfterMs,
    log: testLog,
    ...(opts.notifications ? { notifications: opts.notifications } : {}),
    pollPolicy: opts.pollPolicy ?? pollPolicyFromConfig(config),
  });
  const bundle = process.env.WAYBILL_TEST_WORKFLOW_BUNDLE;
  const workers: Worker[] = await createWorkers({
    config,
    connection: nativeConnection,
    activities,
    taskQueue,
    courierTaskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : {}),
  });
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    client,
    activities,
    taskQueue,
    courierTaskQueue,
    workers,
    async stop() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** A parcel's shipment workflow as a test starts it; without `policy` it asks the worker for one. */
interface TestParcel {
  shipmentId: string;
  orderId?: string | null;
  trackingNumber: string;
  policy?: PollPolicy;
  courier?: CourierCode;
}

/** The start options of a parcel's shipment workflow on this worker's queues. */
function shipmentStart(worker: TestWorker, parcel: TestParcel) {
  return {
    workflowId: shipmentWorkflowId(parcel.shipmentId),
    taskQueue: worker.taskQueue,
    args: [
      {
        shipmentId: parcel.shipmentId,
        orderId: parcel.orderId ?? null,
        courier: parcel.courier ?? CourierCode.SIMULATOR,
        trackingNumber: parcel.trackingNumber,
        ...(parcel.policy ? { policy: parcel.policy } : {}),
      },
    ] as Parameters<typeof shipmentWorkflow>,
  };
}

/** Starts tracking a simulator parcel with its own shipment workflow on this worker's queues. */
export function startShipmentWorkflow(worker: TestWorker, parcel: TestParcel & { policy: PollPolicy }) {
  return worker.client.workflow.start<typeof shipmentWorkflow>(
    'shipmentWorkflow',
    shipmentStart(worker, parcel),
  );
}

/**
 * Starts a parcel's shipment workflow and asks it `refreshNow` in one call (update-with-start):
 * the update reaches the run with its start, in its first task. Answers the update's result and
 * the run's handle.
 */
export async function refreshNowWithStart(worker: TestWorker, parcel: TestParcel, requestedBy: string) {
  const start = new WithStartWorkflowOperation<typeof shipmentWorkflow>('shipmentWorkflow', {
    ...shipmentStart(worker, parcel),
    workflowIdConflictPolicy: 'FAIL',
  });
  const answer = await worker.client.workflow.executeUpdateWithStart(refreshNowUpdate, {
    args: [{ requestedBy }],
    startWorkflowOperation: start,
  });
  return { answer, handle: await start.workflowHandle() };
}

/** A poll policy shrunk to milliseconds so lifecycles run in seconds. */
export function fastPolicy(overrides: Partial<PollPolicy> = {}): PollPolicy {
  return {
    intervalMs: {
      PENDING: 300,
      INFO_RECEIVED: 300,
      IN_TRANSIT: 300,
      OUT_FOR_DELIVERY: 150,
      AVAILABLE_FOR_PICKUP: 300,
      ATTEMPT_FAIL: 200,
      EXCEPTION: 200,
      RETURNING: 300,
    },
    backoffBaseMs: 200,
    backoffCapMs: 1_000,
    expireAfterNoScanMs: 3_600_000,
    maxAgeMs: 86_400_000,
    notFoundLimit: 3,
    pollAttempts: 2,
    pollRetryInitialMs: 100,
    maxCyclesPerRun: 1_000,
    // No cooldown unless a test asks for one: most tests refresh back to back on purpose.
    refreshCooldownMs: 0,
    ...overrides,
  };
}

/** A poll policy under which nothing polls on its own for ten minutes: every poll in a test was asked for. */
export function stillPolicy(overrides: Partial<PollPolicy> = {}): PollPolicy {
  const base = fastPolicy();
  return fastPolicy({
    intervalMs: Object.fromEntries(
      Object.keys(base.intervalMs).map((status) => [status, 600_000]),
    ) as PollPolicy['intervalMs'],
    ...overrides,
  });
}

export const uniqueId = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

/**
 * What a workflow has done, for a test that waited for it in vain: its latest run's status and
 * the last `events` of its history (type and time), or that it never started.
 */
export async function workflowStory(client: Client, workflowId: string, events = 20): Promise<string> {
  const handle = client.workflow.getHandle(workflowId);
  const described = await handle.describe().catch((err: unknown) => err as Error);
  if (described instanceof Error) return `${workflowId}: ${described.message}`;
  const history = (await handle.fetchHistory()).events ?? [];
  const lines = history.slice(-events).map((e) => {
    const type = temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
    const at = e.eventTime?.seconds
      ? new Date(
          Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6),
        ).toISOString()
      : '?';
    return `  ${String(e.eventId)} ${at} ${type.replace('EVENT_TYPE_', '')}`;
  });
  return [
    `${workflowId} run ${described.runId}: ${described.status.name}, ${history.length} events, ${described.raw.pendingActivities?.length ?? 0} activities pending; the last ${lines.length}:`,
    ...lines,
  ].join('\n');
}
