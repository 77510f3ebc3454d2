/**
 * The admin routes through Fastify's injector on real Postgres and the real Temporal dev
 * server. Reads run on a seeded read model; actions run against real order and shipment
 * workflows on a real worker, with the courier and payment simulators over HTTP.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import { insertOrder } from '../../src/orders/queries';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import {
  orderShipmentId,
  orderWorkflowId,
  shipmentWorkflowId,
  type OrderWorkflowInput,
  type PollPolicy,
} from '../../src/workflows/contract';
import type { orderWorkflow } from '../../src/workflows/order';
import { budgetDay } from '../../src/workflows/policy';
import { ADDRESS } from '../support/shopper';
import { startTestApi, type TestApi } from '../support/api';
import { freshDatabase, type TestDatabase } from '../support/db';
import { eventually } from '../support/eventually';
import {
  fastPolicy,
  startShipmentWorkflow,
  startTestWorker,
  stillPolicy,
  uniqueId,
  type TestWorker,
} from '../support/temporal';

jest.setTimeout(120_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };

type Method = 'GET' | 'POST';
interface RouteCase {
  name: string;
  method: Method;
  url: string;
  payload?: Record<string, unknown>;
}

/** Every admin route with a well-formed request (ids need not exist: access is decided first). */
const ROUTES: RouteCase[] = [
  { name: 'refresh one', method: 'POST', url: '/v1/admin/shipments/shp_any/refresh' },
  {
    name: 'bulk refresh',
    method: 'POST',
    url: '/v1/admin/shipments/refresh',
    payload: { shipmentIds: ['shp_any'] },
  },
  {
    name: 'cancel order',
    method: 'POST',
    url: '/v1/admin/orders/ord_any/cancel',
    payload: { reason: 'customer asked' },
  },
  { name: 'list shipments', method: 'GET', url: '/v1/admin/shipments' },
  { name: 'stats', method: 'GET', url: '/v1/admin/stats' },
  {
    name: 'mark delivered',
    method: 'POST',
    url: '/v1/admin/shipments/shp_any/mark-delivered',
    payload: { reason: 'signed for at the door' },
  },
];

/** The production poll intervals, so seeded sync times read as fresh / stale / expired. */
const HOURS_POLICY: PollPolicy = fastPolicy({
  intervalMs: {
    PENDING: 6 * HOUR,
    INFO_RECEIVED: 6 * HOUR,
    IN_TRANSIT: 2 * HOUR,
    OUT_FOR_DELIVERY: 30 * MINUTE,
    AVAILABLE_FOR_PICKUP: 6 * HOUR,
    ATTEMPT_FAIL: HOUR,
    EXCEPTION: HOUR,
    RETURNING: 2 * HOUR,
  },
});

describe('admin routes on a seeded read model', () => {
  let database: TestDatabase;
  let api: TestApi;
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms);
  const TIES = ['shp_t1', 'shp_t2', 'shp_t3', 'shp_t4', 'shp_t5', 'shp_t6'];
  /** (created_at, id) ascending: the queue's order. */
  const ALL = ['shp_07', 'shp_06', 'shp_05', 'shp_04', 'shp_03', 'shp_02', 'shp_01', ...TIES];

  const get = (url: string) => api.app.inject({ method: 'GET', url, headers: api.admin() });
  const ids = (body: { items: { shipmentId: string }[] }) => body.items.map((i) => i.shipmentId);

  beforeAll(async () => {
    database = await freshDatabase();
    api = await startTestApi({
      database,
      env: { ...QUIET, WAYBILL_COURIER_DAILY_BUDGET: '400' },
      shipmentPolicy: HOURS_POLICY,
    });
    await database.db
      .insertInto('orders')
      .values({
        id: 'ord_seed',
        number: 'WB-SEED',
        customer_id: 'cus_1',
        email: 'seed@example.com',
        postcode: '40000',
        currency: 'MYR',
        total_amount: 100,
        courier: 'simulator',
        failure_code: null,
        failure_message: null,
        shipping_address: JSON.stringify({
          name: 'A',
          line1: 'B',
          city: 'C',
          postcode: '40000',
          country: 'MY',
        }),
      })
      .execute();
    const row = (
      id: string,
      status: string,
      courier: string,
      fields: {
        created: Date;
        synced?: Date;
        lastEvent?: Date;
        syncError?: string;
        failures?: number;
        archived?: boolean;
      },
    ) => ({
      id,
      courier,
      tracking_number: `TN-${id}`,
      status,
      created_at: fields.created,
      last_synced_at: fields.synced ?? null,
      last_event_at: fields.lastEvent ?? null,
      next_poll_at: fields.synced ? new Date(now + HOUR) : null,
      sync_error: fields.syncError ?? null,
      sync_failing_since: fields.failures ? ago(5 * HOUR) : null,
      consecutive_failures: fields.failures ?? 0,
      archived_at: fields.archived ? ago(DAY) : null,
    });
    await database.db
      .insertInto('shipments')
      .values([
        // Fresh: synced 30 min ago on a 2 h interval.
        row('shp_01', 'IN_TRANSIT', 'simulator', {
          created: ago(2 * DAY),
          synced: ago(30 * MINUTE),
          lastEvent: ago(HOUR),
        }),
        // Stale: 3 h on a 2 h interval (past 1.25 intervals, within 4).
        row('shp_02', 'IN_TRANSIT', 'easyparcel', {
          created: ago(3 * DAY),
          synced: ago(3 * HOUR),
          lastEvent: ago(3 * DAY),
        }),
        // Expired and failing: 5 h on a 30 min interval, the courier down.
        row('shp_03', 'OUT_FOR_DELIVERY', 'bluedart', {
          created: ago(4 * DAY + HOUR),
          synced: ago(5 * HOUR),
          lastEvent: ago(2 * DAY),
          syncError: 'courier unavailable since yesterday: 503',
          failures: 3,
        }),
        // An exception with the courier denying the number; no scan ever.
        row('shp_04', 'EXCEPTION', 'easyparcel', {
          created: ago(5 * DAY),
          synced: ago(10 * MINUTE),
          syncError: 'the courier does not know TN-shp_04 (5 answers)',
        }),
        // Never synced: stale, and the oldest of the open ones.
        row('shp_05', 'PENDING', 'simulator', { created: ago(10 * DAY) }),
        // Finished long ago (fresh for good), with a leftover sync error.
        row('shp_06', 'DELIVERED', 'bluedart', {
          created: ago(25 * DAY),
          synced: ago(20 * DAY),
          lastEvent: ago(20 * DAY),
          syncError: 'old hiccup',
        }),
        // Finished before its first sync: stale by the freshness rule, but not tracked any more.
        row('shp_07', 'CANCELLED', 'simulator', { created: ago(30 * DAY) }),
        // Archived: in no admin view.
        row('shp_08', 'IN_TRANSIT', 'bluedart', { created: ago(40 * DAY), archived: true }),
      ])
      .execute();
    // Six parcels of one order created in the same microsecond, inserted out of id order:
    // pages must break ties by id without skipping or repeating one.
    await database.db
      .insertInto('shipments')
      .values(
        ['shp_t4', 'shp_t1', 'shp_t6', 'shp_t3', 'shp_t5', 'shp_t2'].map((id, i) => ({
          id,
          order_id: 'ord_seed',
          courier: 'simulator',
          tracking_number: `TN-${id}`,
          status: i % 2 === 0 ? 'ATTEMPT_FAIL' : 'AVAILABLE_FOR_PICKUP',
          last_synced_at: new Date(now - MINUTE),
          created_at: sql<Date>`now() - interval '1 day'`,
        })),
      )
      .execute();
    const today = budgetDay(Date.now());
    const yesterday = budgetDay(Date.now() - DAY);
    await database.db
      .insertInto('courier_api_usage')
      .values([
        { courier: 'simulator', day: today, calls: 120, failures: 4 },
        { courier: 'bluedart', day: today, calls: 400, failures: 0 },
        { courier: 'easyparcel', day: yesterday, calls: 999, failures: 50 },
      ])
      .execute();
  });

  afterAll(async () => {
    await api?.close();
    await database?.drop();
  });

  describe('access', () => {
    it.each(ROUTES)('$name refuses customers (403), anonymous callers and bad keys (401)', async (route) => {
      const send = (headers: Record<string, string>) =>
        api.app.inject({
          method: route.method,
          url: route.url,
          headers,
          ...(route.payload ? { payload: route.payload } : {}),
        });
      const customer = await send(api.customer('cus_1'));
      expect(customer.statusCode).toBe(403);
      expect(customer.json().error.code).toBe('FORBIDDEN');
      const anonymous = await send({});
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().error.code).toBe('AUTH_REQUIRED');
      const badKey = await send({ 'x-api-key': 'not-the-admin-key' });
      expect(badKey.statusCode).toBe(401);
      expect(badKey.json().error.code).toBe('INVALID_API_KEY');
    });

    it.each(['/v1/admin/shipments', '/v1/admin/stats'])(
      'GET %s answers admins with a JWT and with an API key',
      async (url) => {
        for (const headers of [api.admin(), api.adminKey()]) {
          const res = await api.app.inject({ method: 'GET', url, headers });
          expect(res.statusCode).toBe(200);
        }
      },
    );
  });

  describe('GET /v1/admin/shipments', () => {
    it('lists every shipment that is not archived, oldest first, with its sync state', async () => {
      const res = await get('/v1/admin/shipments');
      expect(res.statusCode).toBe(200);
      expect(ids(res.json())).toEqual(ALL);
      expect(res.json().nextCursor).toBeNull();
      const failing = res.json().items.find((i: { shipmentId: string }) => i.shipmentId === 'shp_03');
      expect(failing).toEqual({
        shipmentId: 'shp_03',
        orderId: null,
        courier: 'bluedart',
        trackingNumber: 'TN-shp_03',
        status: 'OUT_FOR_DELIVERY',
        subStatus: null,
        freshness: 'expired',
        lastSyncedAt: ago(5 * HOUR).toISOString(),
        nextPollAt: new Date(now + HOUR).toISOString(),
        lastEventAt: ago(2 * DAY).toISOString(),
        syncError: 'courier unavailable since yesterday: 503',
        syncFailingSince: ago(5 * HOUR).toISOString(),
        consecutiveFailures: 3,
        createdAt: ago(4 * DAY + HOUR).toISOString(),
      });
      const freshness = Object.fromEntries(
        res.json().items.map((i: { shipmentId: string; freshness: string }) => [i.shipmentId, i.freshness]),
      );
      expect(freshness).toMatchObject({
        shp_01: 'fresh',
        shp_02: 'stale',
        shp_03: 'expired',
        shp_05: 'stale',
        shp_06: 'fresh',
      });
    });

    it.each([
      ['one status', 'status=IN_TRANSIT', ['shp_02', 'shp_01']],
      ['several statuses', 'status=IN_TRANSIT&status=EXCEPTION', ['shp_04', 'shp_02', 'shp_01']],
      ['a courier', 'courier=bluedart', ['shp_06', 'shp_03']],
      ['stale or expired data', 'stale=true', ['shp_07', 'shp_05', 'shp_03', 'shp_02']],
      ['fresh data', 'stale=false', ['shp_06', 'shp_04', 'shp_01', ...TIES]],
      ['exceptions and sync errors', 'exception=true', ['shp_06', 'shp_04', 'shp_03']],
      ['no exception', 'exception=false', ['shp_07', 'shp_05', 'shp_02', 'shp_01', ...TIES]],
      ['no scan for 4 days', 'noScanForDays=4', ['shp_07', 'shp_06', 'shp_05', 'shp_04']],
      ['an order', 'orderId=ord_seed', TIES],
      ['filters together', 'noScanForDays=4&stale=true&courier=simulator', ['shp_07', 'shp_05']],
      ['nothing matching', 'status=RETURNING', []],
    ])('filters by %s', async (_case, query, expected) => {
      const res = await get(`/v1/admin/shipments?${query}`);
      expect(res.statusCode).toBe(200);
      expect(ids(res.json())).toEqual(expected);
    });

    it('pages with an opaque cursor: every row once, in order, ties broken by id', async () => {
      const seen: string[] = [];
      const sizes: number[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/v1/admin/shipments?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await get(url);
        expect(res.statusCode).toBe(200);
        sizes.push(res.json().items.length);
        seen.push(...ids(res.json()));
        cursor = res.json().nextCursor;
      } while (cursor !== null && sizes.length < 10);
      expect(sizes).toEqual([4, 4, 4, 1]);
      expect(seen).toEqual(ALL);
    });

    it('pages a filtered list the same way', async () => {
      const first = await get('/v1/admin/shipments?orderId=ord_seed&limit=5');
      expect(ids(first.json())).toEqual(TIES.slice(0, 5));
      const second = await get(
        `/v1/admin/shipments?orderId=ord_seed&limit=5&cursor=${encodeURIComponent(first.json().nextCursor)}`,
      );
      expect(ids(second.json())).toEqual(TIES.slice(5));
      expect(second.json().nextCursor).toBeNull();
    });

    it('caps the page size at 200', async () => {
      expect((await get('/v1/admin/shipments?limit=200')).statusCode).toBe(200);
      for (const limit of ['201', '0', 'ten']) {
        const res = await get(`/v1/admin/shipments?limit=${limit}`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED' });
        expect(res.json().error.message).toMatch(/limit/);
      }
    });

    it.each([
      ['garbage', 'not-a-cursor'],
      ['the wrong shape', Buffer.from(JSON.stringify({ id: 'shp_01' })).toString('base64url')],
      [
        'a time that is not one',
        Buffer.from(JSON.stringify(['2026-13-45T99:00:00.000000Z', 'shp_01'])).toString('base64url'),
      ],
      ['SQL', Buffer.from(JSON.stringify(["' OR 1=1 --", 'shp_01'])).toString('base64url')],
      [
        'a day that does not exist',
        Buffer.from(JSON.stringify(['2026-02-30T00:00:00.000000Z', 'shp_01'])).toString('base64url'),
      ],
      [
        'an id with a NUL',
        Buffer.from(JSON.stringify(['2026-02-01T00:00:00.000000Z', 'shp\u0000'])).toString('base64url'),
      ],
    ])('answers 400 INVALID_CURSOR for a cursor that is %s', async (_case, cursor) => {
      const res = await get(`/v1/admin/shipments?cursor=${encodeURIComponent(cursor)}`);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_CURSOR');
      expect(res.json().error.message).toMatch(/cursor/);
    });

    it.each([
      ['status', 'status=NOPE'],
      ['stale', 'stale=maybe'],
      ['exception', 'exception=sometimes'],
      ['noScanForDays', 'noScanForDays=0'],
      ['courier', 'courier=Blue%20Dart'],
      ['orderId', "orderId=x'%20OR%201=1"],
    ])('answers 400 naming %s when it is malformed', async (field, query) => {
      const res = await get(`/v1/admin/shipments?${query}`);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toContain(field);
    });
  });

  describe('GET /v1/admin/stats', () => {
    it('counts shipments by status, courier calls today against the budget, failures and the oldest stale one', async () => {
      const res = await get('/v1/admin/stats');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.shipmentsByStatus).toEqual({
        PENDING: 1,
        INFO_RECEIVED: 0,
        IN_TRANSIT: 2,
        OUT_FOR_DELIVERY: 1,
        AVAILABLE_FOR_PICKUP: 3,
        ATTEMPT_FAIL: 3,
        DELIVERED: 1,
        EXCEPTION: 1,
        RETURNING: 0,
        RETURNED: 0,
        CANCELLED: 1,
        EXPIRED: 0,
      });
      expect(body.courierCalls).toEqual({
        day: budgetDay(Date.now()),
        couriers: [
          { courier: 'bluedart', calls: 400, failures: 0, budget: 400, remaining: 0 },
          { courier: 'easyparcel', calls: 0, failures: 0, budget: 400, remaining: 400 },
          { courier: 'simulator', calls: 120, failures: 4, budget: 400, remaining: 280 },
        ],
      });
      // shp_03 and shp_04 are failing to sync; shp_06's old error does not count (delivered).
      expect(body.pollFailures).toEqual({ failingNow: 2, failuresToday: 4 });
      expect(body.oldestStale).toEqual({
        shipmentId: 'shp_05',
        status: 'PENDING',
        courier: 'simulator',
        lastSyncedAt: null,
      });
    });
  });

  describe('with Temporal down', () => {
    let down: TestApi;
    const answers = {} as Record<'refresh' | 'bulk' | 'markDelivered', LightMyRequestResponse>;

    beforeAll(async () => {
      down = await startTestApi({
        database,
        env: { ...QUIET, TEMPORAL_ADDRESS: '127.0.0.1:1' },
        shipmentPolicy: HOURS_POLICY,
      });
      // Sent together: each waits out the client's connection retries before it answers.
      const [refresh, bulk, markDelivered] = await Promise.all([
        down.app.inject({ method: 'POST', url: '/v1/admin/shipments/shp_01/refresh', headers: down.admin() }),
        down.app.inject({
          method: 'POST',
          url: '/v1/admin/shipments/refresh',
          headers: down.adminKey(),
          payload: { shipmentIds: ['shp_01', 'shp_02', 'shp_03'] },
        }),
        down.app.inject({
          method: 'POST',
          url: '/v1/admin/shipments/shp_02/mark-delivered',
          headers: down.admin(),
          payload: { reason: 'the customer has it' },
        }),
      ]);
      Object.assign(answers, { refresh, bulk, markDelivered });
    });
    afterAll(async () => {
      await down?.close();
    });

    it('answers a refresh 503 TEMPORAL_UNAVAILABLE while the queue and the stats still answer', async () => {
      expect(answers.refresh.statusCode).toBe(503);
      expect(answers.refresh.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
      expect(answers.refresh.headers['retry-after']).toBeDefined();

      const list = await down.app.inject({
        method: 'GET',
        url: '/v1/admin/shipments',
        headers: down.admin(),
      });
      expect(list.statusCode).toBe(200);
      expect(ids(list.json())).toEqual(ALL);
      const stats = await down.app.inject({ method: 'GET', url: '/v1/admin/stats', headers: down.admin() });
      expect(stats.statusCode).toBe(200);
      expect(stats.json().shipmentsByStatus.IN_TRANSIT).toBe(2);
    });

    it('answers a bulk refresh 503 instead of a list of failures', () => {
      expect(answers.bulk.statusCode).toBe(503);
      expect(answers.bulk.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
    });

    it('answers mark-delivered 503 and audits nothing', async () => {
      expect(answers.markDelivered.statusCode).toBe(503);
      expect(answers.markDelivered.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
      const audit = await database.db
        .selectFrom('audit_log')
        .select('id')
        .where('subject_id', '=', 'shp_02')
        .execute();
      expect(audit).toEqual([]);
    });
  });
});

describe('admin actions on running workflows', () => {
  /** Courier ms per real ms: a 3-day lifecycle plays in about 5 s. */
  const TIME_SCALE = 50_000;
  const PAYMENT = { token: 'tok_visa' };
  /** No poll on its own for ten minutes: any poll during a test was asked for. */
  const SLOW = fastPolicy({
    intervalMs: { ...fastPolicy().intervalMs, PENDING: 600_000, INFO_RECEIVED: 600_000 },
  });

  let database: TestDatabase;
  let couriers: RunningSimulator;
  let payments: RunningPaymentSimulator;
  let worker: TestWorker;
  let api: TestApi;
  const started: WorkflowHandle[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    couriers = await startSimulator({ port: 0, timeScale: TIME_SCALE });
    payments = await startPaymentSimulator({ port: 0 });
    worker = await startTestWorker({
      db: database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: couriers.url, timeoutMs: 2_000 }),
      },
      payments: createHttpPaymentProvider({ baseUrl: payments.url, timeoutMs: 2_000 }),
    });
    // The policy the parcels here run with (no refresh cooldown), so the API judges them alike.
    api = await startTestApi({ database, env: QUIET, shipmentPolicy: SLOW });
  });

  afterEach(async () => {
    for (const handle of started.splice(0)) await handle.terminate('test over').catch(() => undefined);
    // Each test starts from a read model with nothing left open: archived rows are in no admin view.
    await database.db.updateTable('shipments').set({ archived_at: new Date() }).execute();
  });

  afterAll(async () => {
    await api?.close();
    await worker?.stop();
    await couriers?.stop();
    await payments?.stop();
    await database?.drop();
  });

  const nativeTrackCalls = () => couriers.backend.stats.snapshot().formats.native.byKind.track;
  const shipmentRow = (id: string) =>
    database.db.selectFrom('shipments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const orderRow = (id: string) =>
    database.db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const auditOf = (subjectId: string) =>
    database.db.selectFrom('audit_log').selectAll().where('subject_id', '=', subjectId).execute();
  const post = (url: string, payload?: unknown, headers: Record<string, string> = api.admin()) =>
    api.app.inject({
      method: 'POST',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  /** A parcel tracked by its own workflow (no order), polled once, then only when asked. */
  async function track(scenario: ScenarioName, policy: PollPolicy = SLOW, ageMs?: number) {
    const shipmentId = uniqueId('shp');
    const { trackingNumber } = couriers.backend.register({
      scenario,
      format: 'native',
      ...(ageMs === undefined ? {} : { ageMs }),
    });
    await database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: CourierCode.SIMULATOR, tracking_number: trackingNumber })
      .execute();
    const handle = await startShipmentWorkflow(worker, { shipmentId, trackingNumber, policy });
    started.push(handle);
    return { shipmentId, handle };
  }

  /** A parcel the courier delivered days ago: its workflow ends DELIVERED after its first poll. */
  async function finishedOnItsOwn() {
    const tracked = await track('delivered', fastPolicy(), 3 * DAY);
    await tracked.handle.result();
    return tracked;
  }

  /** Tracked and synced once (INFO_RECEIVED); returns its last sync time. */
  async function trackedAndSynced() {
    const tracked = await track('never_picked_up');
    const row = await eventually(
      () => shipmentRow(tracked.shipmentId),
      (r) => r.status === 'INFO_RECEIVED' && r.last_synced_at !== null,
    );
    return { ...tracked, syncedAt: row.last_synced_at! };
  }

  /** An order whose saga runs to CONFIRMED; its one parcel plays `scenario`. */
  async function placeOrder(scenario: ScenarioName, policy: PollPolicy = SLOW) {
    const orderId = uniqueId('ord');
    const sku = uniqueId('KETTLE');
    await database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, low_stock_threshold: 1 })
      .execute();
    const total = await insertOrder(database.db, {
      id: orderId,
      number: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      email: 'aisyah@example.com',
      currency: 'MYR',
      courier: CourierCode.SIMULATOR,
      shippingAddress: ADDRESS,
      lines: [{ lineNo: 1, sku, name: 'Kettle', quantity: 1, unitAmount: 4_990 }],
    });
    // The courier books by reference: pre-book our parcel with the lifecycle this test wants.
    couriers.backend.bookParcel(
      'native',
      { reference: orderShipmentId(orderId, 1), recipient: { ...ADDRESS }, weightGrams: 500 },
      scenario,
    );
    const input: OrderWorkflowInput = {
      orderId,
      orderNumber: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      currency: 'MYR',
      totalAmount: total,
      courier: CourierCode.SIMULATOR,
      lines: [{ lineNo: 1, sku, quantity: 1, unitAmount: 4_990, shipFrom: 'main' }],
      payment: PAYMENT,
      shipmentPolicy: policy,
      courierTaskQueue: worker.courierTaskQueue,
    };
    const handle = await worker.client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
      workflowId: orderWorkflowId(orderId),
      taskQueue: worker.taskQueue,
      args: [input],
    });
    started.push(handle);
    const shipmentId = orderShipmentId(orderId, 1);
    await eventually(
      () => orderRow(orderId),
      (o) => o.status === 'CONFIRMED',
    );
    await eventually(
      () =>
        database.db.selectFrom('shipments').select('status').where('id', '=', shipmentId).executeTakeFirst(),
      (s) => s?.status === 'INFO_RECEIVED',
    );
    return { orderId, shipmentId, handle, total };
  }

  it('lets admins with a JWT and with an API key use every action route', async () => {
    const { shipmentId } = await trackedAndSynced();
    const order = await placeOrder('never_picked_up');
    for (const headers of [api.admin(), api.adminKey()]) {
      expect((await post(`/v1/admin/shipments/${shipmentId}/refresh`, undefined, headers)).statusCode).toBe(
        202,
      );
      expect(
        (await post('/v1/admin/shipments/refresh', { shipmentIds: [shipmentId] }, headers)).statusCode,
      ).toBe(202);
      expect(
        (await post(`/v1/admin/orders/${order.orderId}/cancel`, { reason: 'duplicate order' }, headers))
          .statusCode,
      ).toBe(200);
    }
    const { shipmentId: other } = await trackedAndSynced();
    const first = await post(
      `/v1/admin/shipments/${other}/mark-delivered`,
      { reason: 'signed for' },
      api.admin(),
    );
    expect(first.statusCode).toBe(202);
    await eventually(
      () => shipmentRow(other),
      (r) => r.status === 'DELIVERED',
    );
    const second = await post(
      `/v1/admin/shipments/${other}/mark-delivered`,
      { reason: 'signed for' },
      api.adminKey(),
    );
    expect(second.statusCode).toBe(200);
  });

  describe('POST /v1/admin/shipments/:shipmentId/refresh', () => {
    it('makes the shipment workflow poll its courier now', async () => {
      const { shipmentId, syncedAt } = await trackedAndSynced();
      const calls = nativeTrackCalls();
      const res = await post(`/v1/admin/shipments/${shipmentId}/refresh`, undefined, api.admin('alice'));
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        shipmentId,
        workflowId: shipmentWorkflowId(shipmentId),
        signalled: true,
        requestedBy: 'admin:alice',
        cooldownUntil: null,
      });
      // Without the signal the next poll is ten minutes away.
      const row = await eventually(
        () => shipmentRow(shipmentId),
        (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
        10_000,
      );
      expect(row.status).toBe('INFO_RECEIVED');
      expect(nativeTrackCalls()).toBeGreaterThan(calls);
    });

    it('answers 409 for a shipment whose tracking has finished, and polls nothing', async () => {
      const { shipmentId } = await finishedOnItsOwn();
      const calls = nativeTrackCalls();
      const res = await post(`/v1/admin/shipments/${shipmentId}/refresh`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toEqual({
        code: 'SHIPMENT_FINISHED',
        message: `shipment ${shipmentId} is DELIVERED: tracking has finished, there is nothing to refresh`,
      });
      expect(nativeTrackCalls()).toBe(calls);
    });

    it('answers 404 for a shipment it does not know and 409 for one with no running workflow', async () => {
      const unknown = await post('/v1/admin/shipments/shp_nope/refresh');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().error).toEqual({ code: 'NOT_FOUND', message: 'no shipment shp_nope' });
      await database.db
        .insertInto('shipments')
        .values({ id: 'shp_orphan', courier: 'simulator', tracking_number: 'ORPHAN-1', status: 'IN_TRANSIT' })
        .execute();
      const orphan = await post('/v1/admin/shipments/shp_orphan/refresh');
      expect(orphan.statusCode).toBe(409);
      expect(orphan.json().error.code).toBe('NOT_TRACKING');
    });

    it('answers 400 naming the id when it is malformed', async () => {
      const res = await post("/v1/admin/shipments/x'%20OR%201=1/refresh");
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/shipmentId/);
    });
  });

  describe('POST /v1/admin/shipments/refresh', () => {
    it('refreshes by ids: open ones signalled, finished ones skipped, unknown ones named', async () => {
      const a = await trackedAndSynced();
      const b = await trackedAndSynced();
      const done = await finishedOnItsOwn();
      const res = await post('/v1/admin/shipments/refresh', {
        shipmentIds: [a.shipmentId, done.shipmentId, 'shp_unknown', b.shipmentId],
      });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        matched: 3,
        signalled: 2,
        inCooldown: 0,
        skipped: 1,
        failed: 0,
        notFound: ['shp_unknown'],
        capped: false,
        cap: 500,
        failures: [],
      });
      for (const { shipmentId, syncedAt } of [a, b]) {
        await eventually(
          () => shipmentRow(shipmentId),
          (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
          10_000,
        );
      }
    });

    it('refreshes by filter: every open match signalled, one without a workflow reported as failed', async () => {
      const a = await trackedAndSynced();
      const b = await trackedAndSynced();
      // Finished: not matched by a filter (there is nothing to refresh).
      await finishedOnItsOwn();
      // Open in the read model, but no workflow tracks it.
      const orphan = { id: uniqueId('shp') };
      await database.db
        .insertInto('shipments')
        .values({
          id: orphan.id,
          courier: 'simulator',
          tracking_number: uniqueId('LOST'),
          status: 'INFO_RECEIVED',
        })
        .execute();

      const res = await post('/v1/admin/shipments/refresh', { filter: { courier: 'simulator' } });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        matched: 3,
        signalled: 2,
        inCooldown: 0,
        skipped: 0,
        failed: 1,
        notFound: [],
        capped: false,
        cap: 500,
        failures: [{ shipmentId: orphan.id, reason: 'no tracking workflow is running for it' }],
      });
      for (const { shipmentId, syncedAt } of [a, b]) {
        await eventually(
          () => shipmentRow(shipmentId),
          (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
          10_000,
        );
      }
      const none = await post('/v1/admin/shipments/refresh', { filter: { status: ['EXCEPTION'] } });
      expect(none.json()).toMatchObject({ matched: 0, signalled: 0, failed: 0 });
    });

    it('takes at most 500 matches of a filter and says so; lists 50 a page by default', async () => {
      await database.db
        .insertInto('shipments')
        .values(
          Array.from({ length: 501 }, (_, i) => ({
            id: `shp_many_${String(i).padStart(3, '0')}`,
            courier: 'bluedart',
            tracking_number: `MANY${i}`,
            status: 'IN_TRANSIT',
          })),
        )
        .execute();
      const res = await post('/v1/admin/shipments/refresh', { filter: { courier: 'bluedart', stale: true } });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toMatchObject({ matched: 500, capped: true, cap: 500, signalled: 0, failed: 500 });
      expect(res.json().failures).toHaveLength(50);

      const page = await api.app.inject({
        method: 'GET',
        url: '/v1/admin/shipments?courier=bluedart',
        headers: api.admin(),
      });
      expect(page.json().items).toHaveLength(50);
      expect(page.json().nextCursor).toEqual(expect.any(String));
    });

    it.each([
      ['both ids and a filter', { shipmentIds: ['shp_1'], filter: {} }, /either shipmentIds or filter/],
      ['neither', {}, /either shipmentIds or filter/],
      ['too many ids', { shipmentIds: Array.from({ length: 501 }, (_, i) => `shp_${i}`) }, /shipmentIds/],
      ['no ids', { shipmentIds: [] }, /shipmentIds/],
      ['an unknown field', { shipmentIds: ['shp_1'], force: true }, /body has an unknown field "force"/],
      ['an unknown filter', { filter: { colour: 'red' } }, /body.filter has an unknown field "colour"/],
      ['a bad status', { filter: { status: ['LOST'] } }, /body.filter.status\[0\] must be one of PENDING/],
    ])('answers 400 for %s', async (_case, payload, message) => {
      const res = await post('/v1/admin/shipments/refresh', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toMatch(message);
    });
  });

  describe('POST /v1/admin/orders/:orderId/cancel', () => {
    it('cancels before pickup: the order ends CANCELLED and the audit log says who, when and why', async () => {
      const { orderId, shipmentId } = await placeOrder('never_picked_up');
      const res = await post(
        `/v1/admin/orders/${orderId}/cancel`,
        { reason: '  fraud check  ' },
        api.admin('ops'),
      );
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ orderId, status: 'CANCELLED' });
      expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
      const payment = await database.db
        .selectFrom('payments')
        .select('status')
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment.status).toBe('VOIDED');
      await eventually(
        () => shipmentRow(shipmentId),
        (r) => r.status === 'CANCELLED',
      );
      const audit = await auditOf(orderId);
      expect(audit).toEqual([
        expect.objectContaining({
          actor: 'admin:ops',
          action: 'order.cancel',
          subject_type: 'order',
          reason: 'fraud check',
        }),
      ]);
      expect(Date.now() - audit[0]!.created_at.getTime()).toBeLessThan(60_000);
    });

    it('answers 202 CANCELLING while the compensations are still running, then the order ends CANCELLED', async () => {
      const { orderId } = await placeOrder('never_picked_up');
      // Voiding fails four times (retried after 1, 2, 4, 8 s): longer than the route waits (10 s).
      payments.state.faults.set({ kind: 'error', calls: 4, operation: 'void' });
      try {
        const res = await post(`/v1/admin/orders/${orderId}/cancel`, { reason: 'fraud check' });
        expect(res.statusCode).toBe(202);
        expect(res.json()).toEqual({ orderId, status: 'CANCELLING' });
        await eventually(
          () => orderRow(orderId),
          (o) => o.status === 'CANCELLED',
        );
      } finally {
        payments.state.faults.clear();
      }
    });

    it('refuses with 409 ALREADY_PICKED_UP once the courier has the parcel, and changes nothing', async () => {
      // Nothing polls on its own: the pickup is seen by the refresh below, and the parcel then
      // stays IN_TRANSIT for the rest of the test.
      const { orderId, shipmentId, total } = await placeOrder('never_picked_up', stillPolicy());
      // The courier picks the parcel up: its lifecycle restarts as a normal delivery, just after pickup.
      const { tracking_number } = await shipmentRow(shipmentId);
      couriers.backend.register({
        trackingNumber: tracking_number,
        scenario: 'delivered',
        format: 'native',
        ageMs: 6 * HOUR + MINUTE,
      });
      expect((await post(`/v1/admin/shipments/${shipmentId}/refresh`)).statusCode).toBe(202);
      await eventually(
        () => orderRow(orderId),
        (o) => o.status === 'SHIPPED',
      );

      const res = await post(`/v1/admin/orders/${orderId}/cancel`, { reason: 'too late now' });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('ALREADY_PICKED_UP');
      expect(res.json().error.message).toMatch(/picked up/);
      expect(await orderRow(orderId)).toMatchObject({ status: 'SHIPPED' });
      const payment = await database.db
        .selectFrom('payments')
        .selectAll()
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: total, amount_refunded: 0 });
      expect(await auditOf(orderId)).toEqual([]);
    });

    it('answers 404 for an order it does not know', async () => {
      const res = await post('/v1/admin/orders/ord_nope/cancel', { reason: 'customer asked' });
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toEqual({ code: 'NOT_FOUND', message: 'no order ord_nope' });
    });

    it.each([
      ['no reason', {}, /body is missing "reason"/],
      ['a short reason', { reason: 'no' }, /reason must NOT have fewer than 3 characters/],
      ['a reason of spaces', { reason: '   a    ' }, /reason must have at least 3 characters besides/],
      ['a reason too long', { reason: 'x'.repeat(501) }, /reason must NOT have more than 500 characters/],
      ['a reason that is not text', { reason: { text: 'hi' } }, /reason must be string/],
      ['an unknown field', { reason: 'customer asked', refund: false }, /body has an unknown field "refund"/],
    ])('answers 400 naming the field for %s', async (_case, payload, message) => {
      const res = await post('/v1/admin/orders/ord_nope/cancel', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toMatch(message);
    });
  });

  describe('POST /v1/admin/shipments/:shipmentId/mark-delivered', () => {
    it('delivers through the shipment workflow: tracking stops, the order moves on, one audit entry', async () => {
      const { orderId, shipmentId, handle, total } = await placeOrder('never_picked_up');
      const calls = nativeTrackCalls();
      // A double click: both answered, one event, one audit entry.
      const answers = await Promise.all(
        [1, 2].map(() =>
          post(
            `/v1/admin/shipments/${shipmentId}/mark-delivered`,
            { reason: 'signed for at the door' },
            api.admin('bob'),
          ),
        ),
      );
      for (const res of answers) {
        expect([200, 202]).toContain(res.statusCode);
        expect(res.json()).toMatchObject({ shipmentId, eventKey: `manual:delivered:${shipmentId}` });
      }

      const shipment = await worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)).result();
      expect(shipment).toMatchObject({ status: 'DELIVERED', finished: true });
      const row = await shipmentRow(shipmentId);
      expect(row).toMatchObject({ status: 'DELIVERED', next_poll_at: null });
      expect(row.delivered_at).toBeInstanceOf(Date);
      const events = await database.db
        .selectFrom('tracking_events')
        .selectAll()
        .where('shipment_id', '=', shipmentId)
        .where('status', '=', 'DELIVERED')
        .execute();
      expect(events).toEqual([
        expect.objectContaining({ event_key: `manual:delivered:${shipmentId}`, source: 'manual' }),
      ]);
      // The courier was not asked: the delivery came from the admin.
      expect(nativeTrackCalls()).toBe(calls);

      // The order hears of it: captured at the (first) pickup milestone, then DELIVERED.
      expect((await handle.result()).status).toBe('DELIVERED');
      expect(await orderRow(orderId)).toMatchObject({ status: 'DELIVERED' });
      const payment = await database.db
        .selectFrom('payments')
        .selectAll()
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: total });

      const again = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, {
        reason: 'clicked again',
      });
      expect(again.statusCode).toBe(200);
      expect(again.json().outcome).toBe('already_delivered');
      const audit = await auditOf(shipmentId);
      expect(audit).toEqual([
        expect.objectContaining({
          actor: 'admin:bob',
          action: 'shipment.mark_delivered',
          subject_type: 'shipment',
          reason: 'signed for at the door',
          dedupe_key: `shipment.mark_delivered:${shipmentId}`,
        }),
      ]);
    });

    it('answers 409 for a shipment that finished on its own, and audits nothing', async () => {
      const { shipmentId } = await finishedOnItsOwn();
      const res = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, { reason: 'signed for' });
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toEqual({
        code: 'SHIPMENT_FINISHED',
        message: `shipment ${shipmentId} is already DELIVERED: it cannot be marked delivered`,
      });
      expect(await auditOf(shipmentId)).toEqual([]);
    });

    it('answers 404 for a shipment it does not know, 409 for one nothing tracks, 400 without a reason', async () => {
      const unknown = await post('/v1/admin/shipments/shp_nope/mark-delivered', { reason: 'signed for' });
      expect(unknown.statusCode).toBe(404);
      await database.db
        .insertInto('shipments')
        .values({
          id: 'shp_untracked',
          courier: 'simulator',
          tracking_number: 'UNTRACKED-1',
          status: 'IN_TRANSIT',
        })
        .execute();
      const untracked = await post('/v1/admin/shipments/shp_untracked/mark-delivered', {
        reason: 'signed for',
      });
      expect(untracked.statusCode).toBe(409);
      expect(untracked.json().error.code).toBe('NOT_TRACKING');
      expect(await auditOf('shp_untracked')).toEqual([]);
      const noReason = await post('/v1/admin/shipments/shp_nope/mark-delivered', {});
      expect(noReason.statusCode).toBe(400);
      expect(noReason.json().error.message).toMatch(/reason/);
    });
  });
});
