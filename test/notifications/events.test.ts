/**
 * Domain events out, on the real stack: orders run their sagas on a real worker, the outbox is
 * written by the real activities, the real dispatcher delivers to a small HTTP receiver on
 * 127.0.0.1 (the shop's system: not ours, so the one thing stood in for), and the admin routes
 * are the real API.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOrderActivities } from '../../src/activities/orders';
import { createShipmentActivities } from '../../src/activities/shipments';
import { CourierCode } from '../../src/couriers/types';
import { startDispatcher, type Dispatcher } from '../../src/notifications/dispatcher';
import { writeOrderEvent } from '../../src/notifications/outbox';
import { startTestApi, type TestApi } from '../support/api';
import { testLog } from '../support/env';
import { insertOrderWithLines } from '../support/db';
import { eventually } from '../support/eventually';
import { recordingMeter } from '../support/meter';
import { useSagaStack } from '../support/saga';
import { uniqueId } from '../support/temporal';

interface Received {
  path: string;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  event: { id: string; type: string; orderId: string | null; sequence: number };
}

const DISABLE_AFTER = 3;
const REASON = { reason: 'checking domain events' };
const SETTINGS = {
  pollIntervalMs: 50,
  retryBaseMs: 100,
  retryMaxMs: 400,
  disableAfterFailures: DISABLE_AFTER,
  timeoutMs: 2_000,
  batchSize: 16,
};

describe('domain events out', () => {
  const saga = useSagaStack({ api: {} });
  let server: http.Server;
  let base: string;
  let dispatcher: Dispatcher;
  const received: Received[] = [];
  /** The receiver's answer per request (default 204). */
  let answer: (path: string, event: Received['event']) => number = () => 204;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const event = JSON.parse(body) as Received['event'];
        const status = answer(req.url ?? '', event);
        received.push({ path: req.url ?? '', status, headers: req.headers, body, event });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    answer = () => 204;
    dispatcher = startDispatcher({ db: saga.database.db, log: testLog, settings: SETTINGS });
  });

  afterEach(async () => {
    await dispatcher.stop();
    // Endpoints of one test must not receive the next test's events.
    await saga.database.db.deleteFrom('event_endpoints').execute();
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const admin = () => saga.api.admin('alice');

  async function createEndpoint(path: string, eventTypes: string[]) {
    const res = await saga.api.app.inject({
      method: 'POST',
      url: '/v1/admin/event-endpoints',
      headers: admin(),
      payload: { url: `${base}${path}`, eventTypes, description: `receiver ${path}` },
    });
    expect(res.statusCode).toBe(201);
    return res.json() as { endpoint: { id: string }; secret: string };
  }

  /** The order's events in the outbox, in their order, as receivers should see them. */
  async function outbox(orderId: string) {
    const rows = await saga.database.db
      .selectFrom('event_outbox')
      .select(['event_key', 'type', 'seq'])
      .where('order_id', '=', orderId)
      .orderBy('seq')
      .execute();
    return rows;
  }

  const delivered = (path: string, orderId: string) =>
    received.filter((r) => r.path === path && r.event.orderId === orderId && r.status < 300);

  async function deliveredOrder(sku: string) {
    await saga.stock(sku, 10);
    const { orderId } = await saga.placeOrder({ sku, quantity: 1 });
    await eventually(
      () => saga.orderRow(orderId),
      (o) => o.status === 'DELIVERED',
      60_000,
    );
    return orderId;
  }

  it("delivers an order's events in order to two endpoints, each only the types it chose, signed", async () => {
    const milestones = [
      'order.created',
      'order.confirmed',
      'order.shipped',
      'order.delivered',
      'shipment.info_received',
      'shipment.in_transit',
      'shipment.out_for_delivery',
      'shipment.delivered',
    ];
    const some = ['order.confirmed', 'shipment.delivered'];
    const all = await createEndpoint('/all', milestones);
    const someEndpoint = await createEndpoint('/some', some);
    const orderId = await deliveredOrder(uniqueId('SKU-EV'));

    const events = await outbox(orderId);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['order.created', 'order.confirmed', 'shipment.delivered', 'order.delivered']),
    );
    const wanted = (types: string[]) => events.filter((e) => types.includes(e.type)).map((e) => e.event_key);
    const allIds = wanted(milestones);
    const someIds = wanted(some);
    await eventually(
      async () => [delivered('/all', orderId).length, delivered('/some', orderId).length],
      ([a, s]) => a === allIds.length && s === someIds.length,
    );
    expect(delivered('/all', orderId).map((r) => r.event.id)).toEqual(allIds);
    expect(delivered('/some', orderId).map((r) => r.event.id)).toEqual(someIds);
    const sequence = delivered('/all', orderId).map((r) => r.event.sequence);
    expect(sequence).toEqual([...sequence].sort((a, b) => a - b));

    for (const [path, secret] of [
      ['/all', all.secret],
      ['/some', someEndpoint.secret],
    ] as const) {
      for (const r of delivered(path, orderId)) {
        const timestamp = String(r.headers['x-waybill-timestamp']);
        const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`;
        expect(r.headers['x-waybill-signature']).toBe(expected);
        expect(r.headers['x-waybill-event-id']).toBe(r.event.id);
      }
    }
    // Another endpoint's secret does not verify: each endpoint has its own.
    const first = delivered('/some', orderId)[0]!;
    const foreign = `sha256=${createHmac('sha256', all.secret)
      .update(`${String(first.headers['x-waybill-timestamp'])}.${first.body}`)
      .digest('hex')}`;
    expect(first.headers['x-waybill-signature']).not.toBe(foreign);

    // Resend: the same event again, with the same id, and the admin's reason in the audit log.
    const again = await saga.api.app.inject({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${someEndpoint.endpoint.id}/events/${first.event.id}/resend`,
      headers: admin(),
      payload: REASON,
    });
    expect(again.statusCode).toBe(202);
    await eventually(
      async () => delivered('/some', orderId).filter((r) => r.event.id === first.event.id).length,
      (n) => n === 2,
    );
    const audit = await saga.database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'event_endpoint.resend')
      .where('subject_id', '=', someEndpoint.endpoint.id)
      .execute();
    expect(audit).toEqual([
      expect.objectContaining({
        actor: 'admin:alice',
        reason: REASON.reason,
        details: expect.objectContaining({ eventId: first.event.id }),
      }),
    ]);
    const missing = await saga.api.app.inject({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${someEndpoint.endpoint.id}/events/order:nothing:PENDING:1/resend`,
      headers: admin(),
      payload: REASON,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('retries a failing receiver, disables the endpoint after a run of failures, and an admin enabling it gets the backlog in order', async () => {
    answer = (path) => (path === '/flaky' ? 503 : 204);
    const flaky = await createEndpoint('/flaky', [
      'order.created',
      'order.confirmed',
      'order.shipped',
      'order.delivered',
    ]);
    const orderId = await deliveredOrder(uniqueId('SKU-FL'));

    const endpoint = await eventually(
      async () =>
        (
          await saga.api.app.inject({
            url: `/v1/admin/event-endpoints/${flaky.endpoint.id}`,
            headers: admin(),
          })
        ).json() as { status: string; consecutiveFailures: number; disabledReason: string | null },
      (e) => e.status === 'DISABLED',
    );
    expect(endpoint.consecutiveFailures).toBe(DISABLE_AFTER);
    expect(endpoint.disabledReason).toMatch(/3 deliveries failed in a row; last: answered 503/);

    // The attempts, as an admin reads them: the order's first event only, retried; its later
    // events waited behind it.
    const attempts = (
      await saga.api.app.inject({
        url: `/v1/admin/event-endpoints/${flaky.endpoint.id}/attempts`,
        headers: admin(),
      })
    ).json() as { items: { eventId: string; ok: boolean; statusCode: number }[] };
    const events = await outbox(orderId);
    expect(attempts.items).toEqual(
      Array.from({ length: DISABLE_AFTER }, () =>
        expect.objectContaining({ eventId: events[0]!.event_key, ok: false, statusCode: 503 }),
      ),
    );
    const autoDisabled = await saga.database.db
      .selectFrom('audit_log')
      .select(['actor'])
      .where('action', '=', 'event_endpoint.auto_disable')
      .where('subject_id', '=', flaky.endpoint.id)
      .execute();
    expect(autoDisabled).toEqual([{ actor: 'system:event-dispatcher' }]);

    answer = () => 204;
    const enabled = await saga.api.app.inject({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${flaky.endpoint.id}/enable`,
      headers: admin(),
      payload: REASON,
    });
    expect(enabled.json()).toMatchObject({ status: 'ENABLED', consecutiveFailures: 0, disabledReason: null });
    const ids = events
      .filter((e) =>
        ['order.created', 'order.confirmed', 'order.shipped', 'order.delivered'].includes(e.type),
      )
      .map((e) => e.event_key);
    // Done when the dispatcher has recorded every delivery (the receiver sees each one first).
    const deliveries = await eventually(
      async () =>
        (
          await saga.api.app.inject({
            url: `/v1/admin/event-endpoints/${flaky.endpoint.id}/deliveries`,
            headers: admin(),
          })
        ).json() as { items: { status: string; attempts: number }[] },
      (d) => d.items.length === ids.length && d.items.every((i) => i.status === 'DELIVERED'),
    );
    expect(delivered('/flaky', orderId).map((r) => r.event.id)).toEqual(ids);
    expect(deliveries.items.at(-1)!.attempts).toBe(DISABLE_AFTER + 1);
  });

  it('counts attempts by outcome, times deliveries, disables at once on 410 Gone, and gauges the backlog', async () => {
    await dispatcher.stop();
    const meter = recordingMeter();
    dispatcher = startDispatcher({ db: saga.database.db, log: testLog, settings: SETTINGS, meter });
    answer = (path) => (path === '/gone' ? 410 : path === '/down' ? 500 : 204);
    const ok = await createEndpoint('/ok', ['order.confirmed']);
    const gone = await createEndpoint('/gone', ['order.confirmed']);
    const down = await createEndpoint('/down', ['order.confirmed']);
    const orderId = uniqueId('ord_metrics');
    await saga.database.db.transaction().execute((trx) =>
      writeOrderEvent(trx, {
        orderId,
        orderNumber: orderId,
        status: 'CONFIRMED',
        failureCode: null,
        failureMessage: null,
      }),
    );
    const outcomes = () =>
      ['delivered', 'failed', 'disabled'].map((outcome) =>
        meter.value('waybill_event_deliveries', { outcome }),
      );
    // /down fails DISABLE_AFTER times in a row: failed, failed, then the attempt that disables it.
    await eventually(
      async () => outcomes(),
      ([, failed, disabled]) => failed === DISABLE_AFTER - 1 && disabled === 2,
    );
    expect(outcomes()).toEqual([1, DISABLE_AFTER - 1, 2]);
    const endpoint = async (id: string) =>
      (await saga.api.app.inject({ url: `/v1/admin/event-endpoints/${id}`, headers: admin() })).json();
    // 410 Gone disabled its endpoint by its first attempt, not after a run of failures.
    expect(await endpoint(gone.endpoint.id)).toMatchObject({
      status: 'DISABLED',
      consecutiveFailures: 1,
      disabledReason: 'the endpoint answered 410 Gone',
    });
    expect((await endpoint(ok.endpoint.id)).status).toBe('ENABLED');
    const latency = meter.observations('waybill_event_delivery_latency');
    expect(latency).toHaveLength(1);
    expect(latency[0]).toBeGreaterThanOrEqual(0);

    // A pending delivery at an enabled endpoint shows in the backlog gauges; disabled ones do not.
    await saga.api.app.inject({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${down.endpoint.id}/enable`,
      headers: admin(),
      payload: REASON,
    });
    answer = () => 500;
    await saga.database.db
      .updateTable('event_outbox')
      .set({ occurred_at: new Date(Date.now() - 90_000) })
      .where('order_id', '=', orderId)
      .execute();
    await dispatcher.refreshGauges();
    expect(meter.value('waybill_events_pending')).toBe(1);
    expect(meter.value('waybill_events_oldest_pending_age')).toBeGreaterThanOrEqual(90);
    expect(meter.value('waybill_event_endpoints_disabled')).toBe(1);
  });

  it("holds back a failing order's later events at that endpoint, not other orders'", async () => {
    const endpoint = await createEndpoint('/one', ['order.created', 'order.confirmed']);
    const stuck = await insertTestOrder();
    answer = (_path, event) => (event.orderId === stuck ? 500 : 204);
    const flowing = await insertTestOrder();
    const orders = createOrderActivities({ db: saga.database.db, log: testLog });
    for (const orderId of [stuck, flowing]) await orders.setOrderStatus({ orderId, status: 'CONFIRMED' });

    await eventually(
      async () => delivered('/one', flowing).map((r) => r.event.type),
      (types) => types.join() === 'order.created,order.confirmed',
    );
    const stuckEvents = await outbox(stuck);
    const tried = received
      .filter((r) => r.path === '/one' && r.event.orderId === stuck)
      .map((r) => r.event.id);
    expect(tried.length).toBeGreaterThan(0);
    expect(new Set(tried)).toEqual(new Set([stuckEvents[0]!.event_key]));

    answer = () => 204;
    await saga.api.app.inject({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${endpoint.endpoint.id}/enable`,
      headers: admin(),
      payload: REASON,
    });
    await eventually(
      async () => delivered('/one', stuck).map((r) => r.event.type),
      (types) => types.join() === 'order.created,order.confirmed',
    );
  });

  it('writes one event for one change however often the activity runs, even at once', async () => {
    const orderId = await insertTestOrder();
    const orders = createOrderActivities({ db: saga.database.db, log: testLog });
    const confirm = { orderId, status: 'CONFIRMED' };
    await Promise.all([orders.setOrderStatus(confirm), orders.setOrderStatus(confirm)]);
    await orders.setOrderStatus(confirm);

    const shipmentId = uniqueId('shp');
    await saga.database.db
      .insertInto('shipments')
      .values({
        id: shipmentId,
        order_id: orderId,
        courier: CourierCode.SIMULATOR,
        tracking_number: `SIM-${shipmentId.slice(-8)}`,
      })
      .execute();
    const shipments = createShipmentActivities({
      db: saga.database.db,
      couriers: {},
      dailyBudget: 10,
      log: testLog,
    });
    const transit = {
      shipmentId,
      events: [],
      status: 'IN_TRANSIT' as const,
      subStatus: null,
      eta: null,
      syncedAt: new Date().toISOString(),
      nextPollAt: new Date().toISOString(),
    };
    await Promise.all([shipments.recordTracking(transit), shipments.recordTracking(transit)]);
    await shipments.recordTracking(transit);

    expect((await outbox(orderId)).map((e) => [e.type, e.event_key])).toEqual([
      ['order.created', `order:${orderId}:PENDING:1`],
      ['order.confirmed', `order:${orderId}:CONFIRMED:1`],
      ['shipment.in_transit', `shipment:${shipmentId}:IN_TRANSIT:1`],
    ]);
  });

  it('refuses endpoint URLs that are not http(s), carry credentials, or are plain http where that is off', async () => {
    const post = (api: TestApi, url: string, eventTypes: string[] = ['order.created']) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/admin/event-endpoints',
        headers: api.admin('alice'),
        payload: { url, eventTypes },
      });
    const refusals = async (api: TestApi, url: string, eventTypes?: string[]) => {
      const res = await post(api, url, eventTypes);
      return {
        status: res.statusCode,
        message: (res.json() as { error: { message: string } }).error.message,
      };
    };
    expect(await refusals(saga.api, 'ftp://shop.example/hooks')).toEqual({
      status: 400,
      message: 'body.url must use http:// or https://, not ftp://',
    });
    expect(await refusals(saga.api, 'not a url at all')).toEqual({
      status: 400,
      message: 'body.url must match format "uri"',
    });
    expect(await refusals(saga.api, 'https://user:pw@shop.example/hooks')).toEqual({
      status: 400,
      message: 'body.url must not carry a user name or password',
    });
    expect((await refusals(saga.api, 'https://shop.example/hooks', ['order.teleported'])).status).toBe(400);

    const strict = await startTestApi({
      database: saga.database,
      env: { WAYBILL_EVENTS_ALLOW_HTTP: 'false' },
    });
    try {
      expect(await refusals(strict, 'http://shop.example/hooks')).toEqual({
        status: 400,
        message:
          'body.url must use https:// (plain http:// is refused here: WAYBILL_EVENTS_ALLOW_HTTP is off)',
      });
      const created = await post(strict, 'https://shop.example/hooks');
      expect(created.statusCode).toBe(201);
      const { endpoint, secret } = created.json() as { endpoint: { id: string }; secret: string };
      expect(secret).toMatch(/^whsec_/);
      // The secret is shown once: reads never carry it; a rotation answers a new one.
      const read = await strict.app.inject({
        url: `/v1/admin/event-endpoints/${endpoint.id}`,
        headers: strict.admin(),
      });
      expect(read.body).not.toContain(secret);
      const rotated = await strict.app.inject({
        method: 'POST',
        url: `/v1/admin/event-endpoints/${endpoint.id}/rotate-secret`,
        headers: strict.admin(),
        payload: REASON,
      });
      expect((rotated.json() as { secret: string }).secret).not.toBe(secret);
    } finally {
      await strict.close();
    }
  });

  /** An order row (and its order.created event) with no saga behind it: the activities are run by hand. */
  async function insertTestOrder(): Promise<string> {
    const orderId = uniqueId('ord');
    const sku = uniqueId('SKU-ROW');
    await saga.stock(sku, 1);
    await insertOrderWithLines(saga.database.db, orderId, [
      { lineNo: 1, sku, name: 'Kettle', quantity: 1, unitAmount: 4_990 },
    ]);
    return orderId;
  }
});
