/**
 * The admin read routes (the exceptions queue, stats, access) through Fastify's injector on
 * a seeded read model on real Postgres; with Temporal down, reads still answer.
 */
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { budgetDay } from '../../src/domain/polling';
import { type TestApi } from '../support/api';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };
const FRESHNESS = { WAYBILL_FRESHNESS_GRACE: '15m', WAYBILL_FRESHNESS_EXPIRED_AFTER: '4h' };

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

describe('admin routes on a seeded read model', () => {
  const stack = useStack({
    payments: false,
    worker: false,
    // Freshness is judged by each row's next_poll_at; data 4 h old and not kept current is expired.
    api: { env: { ...QUIET, ...FRESHNESS, WAYBILL_COURIER_DAILY_BUDGET: '400' } },
  });
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms);
  const TIES = ['shp_t1', 'shp_t2', 'shp_t3', 'shp_t4', 'shp_t5', 'shp_t6'];
  /** (created_at, id) ascending: the queue's order. */
  const ALL = ['shp_07', 'shp_06', 'shp_05', 'shp_04', 'shp_03', 'shp_02', 'shp_01', ...TIES];

  const get = (url: string) => stack.api.app.inject({ method: 'GET', url, headers: stack.api.admin() });
  const ids = (body: { items: { shipmentId: string }[] }) => body.items.map((i) => i.shipmentId);

  beforeAll(async () => {
    await stack.database.db
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
        /** When its workflow polls next (default: in an hour once synced). */
        nextPoll?: Date;
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
      next_poll_at: fields.nextPoll ?? (fields.synced ? new Date(now + HOUR) : null),
      sync_error: fields.syncError ?? null,
      sync_failing_since: fields.failures ? ago(5 * HOUR) : null,
      consecutive_failures: fields.failures ?? 0,
      archived_at: fields.archived ? ago(DAY) : null,
    });
    await stack.database.db
      .insertInto('shipments')
      .values([
        // Fresh: synced 30 min ago, next poll in an hour.
        row('shp_01', 'IN_TRANSIT', 'simulator', {
          created: ago(2 * DAY),
          synced: ago(30 * MINUTE),
          lastEvent: ago(HOUR),
        }),
        // Stale: its next poll was due an hour ago (past the grace), data 3 h old (not yet expired).
        row('shp_02', 'IN_TRANSIT', 'easyparcel', {
          created: ago(3 * DAY),
          synced: ago(3 * HOUR),
          nextPoll: ago(HOUR),
          lastEvent: ago(3 * DAY),
        }),
        // Expired and failing: polls failing for 5 h (the backoff's next try in an hour), data 5 h old.
        row('shp_03', 'OUT_FOR_DELIVERY', 'bluedart', {
          created: ago(4 * DAY + HOUR),
          synced: ago(5 * HOUR),
          lastEvent: ago(2 * DAY),
          syncError: 'courier unavailable since yesterday: 503',
          failures: 3,
        }),
        // An exception with the courier denying the number; no scan ever; polled on schedule: fresh.
        row('shp_04', 'EXCEPTION', 'easyparcel', {
          created: ago(5 * DAY),
          synced: ago(10 * MINUTE),
          syncError: 'the courier does not know TN-shp_04 (5 answers)',
        }),
        // Never synced, its first poll due 10 days ago: stale, and the oldest of the open ones.
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
    await stack.database.db
      .insertInto('shipments')
      .values(
        ['shp_t4', 'shp_t1', 'shp_t6', 'shp_t3', 'shp_t5', 'shp_t2'].map((id, i) => ({
          id,
          order_id: 'ord_seed',
          courier: 'simulator',
          tracking_number: `TN-${id}`,
          status: i % 2 === 0 ? 'ATTEMPT_FAIL' : 'AVAILABLE_FOR_PICKUP',
          last_synced_at: new Date(now - MINUTE),
          next_poll_at: new Date(now + HOUR),
          created_at: sql<Date>`now() - interval '1 day'`,
        })),
      )
      .execute();
    const today = budgetDay(Date.now());
    const yesterday = budgetDay(Date.now() - DAY);
    await stack.database.db
      .insertInto('courier_api_usage')
      .values([
        { courier: 'simulator', day: today, calls: 120, failures: 4 },
        { courier: 'bluedart', day: today, calls: 400, failures: 0 },
        { courier: 'easyparcel', day: yesterday, calls: 999, failures: 50 },
      ])
      .execute();
  });

  describe('access', () => {
    it.each(ROUTES)('$name refuses customers (403), anonymous callers and bad keys (401)', async (route) => {
      const send = (headers: Record<string, string>) =>
        stack.api.app.inject({
          method: route.method,
          url: route.url,
          headers,
          ...(route.payload ? { payload: route.payload } : {}),
        });
      const customer = await send(stack.api.customer('cus_1'));
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
        for (const headers of [stack.api.admin(), stack.api.adminKey()]) {
          const res = await stack.api.app.inject({ method: 'GET', url, headers });
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

    it('lists an expired parcel among the exceptions', async () => {
      const expired = { id: 'shp_x1', courier: 'simulator', tracking_number: 'TN-shp_x1' };
      await stack.database.db
        .insertInto('shipments')
        .values({ ...expired, status: 'EXPIRED', created_at: ago(60 * DAY) })
        .execute();
      try {
        expect(ids((await get('/v1/admin/shipments?exception=true')).json())).toEqual([
          'shp_x1',
          'shp_06',
          'shp_04',
          'shp_03',
        ]);
        expect(ids((await get('/v1/admin/shipments?exception=false')).json())).not.toContain('shp_x1');
      } finally {
        await stack.database.db.deleteFrom('shipments').where('id', '=', expired.id).execute();
      }
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
        'in a year that does not exist (Postgres has no year 0)',
        Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000000Z', 'shp_01'])).toString('base64url'),
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
          {
            courier: 'bluedart',
            calls: 400,
            failures: 0,
            budget: 400,
            remaining: 0,
            bookingReserve: 40,
            requestsPerSecond: 10,
          },
          {
            courier: 'easyparcel',
            calls: 0,
            failures: 0,
            budget: 400,
            remaining: 400,
            bookingReserve: 40,
            requestsPerSecond: 10,
          },
          {
            courier: 'simulator',
            calls: 120,
            failures: 4,
            budget: 400,
            remaining: 280,
            bookingReserve: 40,
            requestsPerSecond: 10,
          },
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
      down = await stack.anotherApi({
        env: { ...QUIET, ...FRESHNESS, TEMPORAL_ADDRESS: '127.0.0.1:1' },
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
      const audit = await stack.database.db
        .selectFrom('audit_log')
        .select('id')
        .where('subject_id', '=', 'shp_02')
        .execute();
      expect(audit).toEqual([]);
    });
  });
});
