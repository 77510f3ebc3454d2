/**
 * The stack a test file runs on, in one call: a fresh database cloned from the migrated
 * template, the courier simulator (and, unless told otherwise, the payment simulator) over
 * HTTP, a real worker on task queues of the file's own on the shared Temporal dev server,
 * and, when asked, the real API wired to that worker's queues.
 *
 * `useStack()` registers the Jest hooks itself: everything starts once before the file's
 * tests, after each test the simulators' faults and scripted answers are cleared and the
 * workflows handed to `stack.started()` are terminated, the file's own `afterEachTest` runs,
 * and the books of the orders the test created must balance (stock and the money ledger:
 * ./books.ts) wherever a saga can run; everything stops after the last test (once the file's
 * own `afterAllTests` has run).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { createCouriers } from '../../src/couriers';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import type { Logger } from '../../src/logger';
import type { NotificationTransport } from '../../src/notifications/transport';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import type { PollPolicy } from '../../src/domain/polling';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { startTestApi, type TestApi } from './api';
import { expectBooksBalance } from './books';
import { freshDatabase, type TestDatabase } from './db';
import { testConfig, testLog } from './env';
import { startTestWorker, type TestWorker } from './temporal';
import { postgresTokenStore } from '../../src/read-model/courier-tokens';
import { postgresSubmissionJournal } from '../../src/read-model/easyparcel-submissions';

/** Every courier's adapter against the test simulator, EasyParcel's tokens shared in Postgres as the worker does. */
function everyCourier(db: Kysely<Database>, simulatorUrl: string) {
  const config = testConfig({ COURIER_SIMULATOR_URL: simulatorUrl }).courier;
  return createCouriers(config, testLog, {
    easyParcel: postgresTokenStore(db, 'easyparcel', config.easyParcel.refreshToken),
    easyParcelSubmissions: postgresSubmissionJournal(db),
  });
}

/** Courier ms per real ms: a 3-day lifecycle plays in about 5 s. */
export const STACK_TIME_SCALE = 50_000;

export interface StackOptions {
  /** Courier ms per real ms of the courier simulator (default STACK_TIME_SCALE). */
  timeScale?: number;
  /** Start the payment simulator and give the worker its provider (default true). */
  payments?: boolean;
  /** The worker's settings; `false` starts none (read-model tests). */
  worker?:
    | false
    | {
        dailyBudget?: number;
        /** How customer notifications leave (the log transport when omitted). */
        notifications?: () => NotificationTransport;
        /**
         * Every courier's real adapter (EasyParcel, Blue Dart, simulator), each speaking its
         * own wire format to the courier simulator (default: the simulator's adapter only).
         */
        everyCourier?: boolean;
        /** Worker settings on top of the test configuration (e.g. payload keys, its `WAYBILL_POLL_*`). */
        env?: Record<string, string>;
        /**
         * The worker's poll policy, what the shipment workflows of orders placed through the
         * API run on (default: built from the worker's configuration).
         */
        pollPolicy?: PollPolicy;
      };
  /** Start the API too, on the worker's task queues. */
  api?: {
    env?: Record<string, string>;
  };
  /** Runs after each test, once its workflows are terminated (before the ledger check). */
  afterEachTest?: () => Promise<void>;
  /**
   * After each test, the books of the orders it created must balance (./books.ts: stock, and
   * the money ledger). Default: on whenever the stack can run a saga (a worker and the payment
   * simulator). Off only where a file checks them itself (./saga.ts).
   */
  ledger?: boolean;
  /** Runs after the file's last test, before anything stops (e.g. terminating what is still open). */
  afterAllTests?: () => Promise<void>;
}

export interface AnotherApiOptions {
  env?: Record<string, string>;
  /** The API's handle on the stack's database (default its own), e.g. with a plugin that counts queries. */
  db?: Kysely<Database>;
  /** Where this API logs (default: the quiet test logger). */
  log?: Logger;
}

export interface Stack {
  readonly database: TestDatabase;
  readonly couriers: RunningSimulator;
  readonly payments: RunningPaymentSimulator;
  readonly worker: TestWorker;
  readonly api: TestApi;
  /** Hands a workflow to the stack: it is terminated when the running test ends. */
  started<H extends WorkflowHandle>(handle: H): H;
  /**
   * Another API on the same database and the worker's queues, with more settings; closed
   * when the file ends (or earlier by the test).
   */
  anotherApi(opts?: AnotherApiOptions): Promise<TestApi>;
}

export function useStack(opts: StackOptions = {}): Stack {
  let database: TestDatabase | undefined;
  let couriers: RunningSimulator | undefined;
  let payments: RunningPaymentSimulator | undefined;
  let worker: TestWorker | undefined;
  let api: TestApi | undefined;
  const apis: TestApi[] = [];
  const handles: WorkflowHandle[] = [];

  const queues = (): Record<string, string> =>
    worker
      ? { WAYBILL_TASK_QUEUE: worker.taskQueue, WAYBILL_COURIER_TASK_QUEUE: worker.courierTaskQueue }
      : {};
  const present = <T>(what: string, value: T | undefined): T => {
    if (value === undefined)
      throw new Error(`this test file's stack has no ${what} (see useStack's options)`);
    return value;
  };

  async function anotherApi(more: AnotherApiOptions = {}) {
    const db = present('database', database);
    const started = await startTestApi({
      database: more.db ? { ...db, db: more.db } : db,
      env: { ...queues(), ...more.env },
      ...(more.log ? { log: more.log } : {}),
    });
    apis.push(started);
    return started;
  }

  beforeAll(async () => {
    database = await freshDatabase();
    couriers = await startSimulator({ port: 0, timeScale: opts.timeScale ?? STACK_TIME_SCALE });
    if (opts.payments !== false) payments = await startPaymentSimulator({ port: 0 });
    if (opts.worker !== false) {
      const settings = opts.worker ?? {};
      worker = await startTestWorker({
        db: database.db,
        couriers: settings.everyCourier
          ? everyCourier(database.db, couriers.url)
          : { [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: couriers.url, timeoutMs: 2_000 }) },
        ...(payments
          ? { payments: createHttpPaymentProvider({ baseUrl: payments.url, timeoutMs: 2_000 }) }
          : {}),
        ...(settings.dailyBudget !== undefined ? { dailyBudget: settings.dailyBudget } : {}),
        ...(settings.notifications ? { notifications: settings.notifications() } : {}),
        ...(settings.env ? { env: settings.env } : {}),
        ...(settings.pollPolicy ? { pollPolicy: settings.pollPolicy } : {}),
      });
    }
    if (opts.api) api = await anotherApi(opts.api);
  });

  afterEach(async () => {
    couriers?.backend.faults.clear();
    couriers?.backend.answers.clear();
    couriers?.backend.clock.setTimeScale(opts.timeScale ?? STACK_TIME_SCALE); // a test held courier time
    payments?.state.faults.clear();
    for (const handle of handles.splice(0)) await handle.terminate('test over').catch(() => undefined);
    await opts.afterEachTest?.();
    if (checksBooks()) {
      const placed = await database!.db
        .selectFrom('orders')
        .select('id')
        .where('created_at', '>=', testStartedAt!)
        .execute();
      await expectBooksBalance(
        stack,
        placed.map((o) => o.id),
      );
    }
  });

  /** Whether this file's tests end on their books: a saga can run here, and the file did not opt out. */
  const checksBooks = () => opts.ledger !== false && worker !== undefined && payments !== undefined;
  /** When the running test began, on the database's clock (orders created since are its own). */
  let testStartedAt: Date | undefined;
  beforeEach(async () => {
    if (!checksBooks()) return;
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(database!.db);
    testStartedAt = rows[0]!.now;
  });

  afterAll(async () => {
    await opts.afterAllTests?.();
    for (const a of apis.splice(0)) await a.close().catch(() => undefined);
    await worker?.stop();
    await couriers?.stop();
    await payments?.stop();
    await database?.drop();
  });

  const stack: Stack = {
    get database() {
      return present('database', database);
    },
    get couriers() {
      return present('courier simulator', couriers);
    },
    get payments() {
      return present('payment simulator', payments);
    },
    get worker() {
      return present('worker', worker);
    },
    get api() {
      return present('API', api);
    },
    started(handle) {
      handles.push(handle);
      return handle;
    },
    anotherApi,
  };
  return stack;
}
