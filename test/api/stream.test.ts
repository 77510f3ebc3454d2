/**
 * The tracking stream over real HTTP: the API listening on a port, a shipment workflow
 * running a parcel's whole life against the courier simulator, and a plain SSE client
 * reading what a browser's EventSource would.
 */
import http from 'node:http';
import type { WorkflowHandle } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { startTestApi, type TestApi } from '../support/api';
import { freshDatabase, type TestDatabase } from '../support/db';
import { eventually } from '../support/eventually';
import {
  fastPolicy,
  startShipmentWorkflow,
  startTestWorker,
  uniqueId,
  type TestWorker,
} from '../support/temporal';

/** Courier ms per real ms: the 3-day "delivered" lifecycle plays in about 5 s. */
const TIME_SCALE = 50_000;
const STREAM_ENV = { WAYBILL_STREAM_HEARTBEAT: '200ms', WAYBILL_STREAM_POLL: '100ms' };

jest.setTimeout(90_000);

interface SseClient {
  status: number;
  contentType: string | undefined;
  messages: { event: string; data: unknown }[];
  /** Comment lines (heartbeats) received. */
  comments: string[];
  body: string;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  /** Resolves when the connection is gone, whoever closed it. */
  closed: Promise<void>;
  close(): void;
}

/** A bare SSE client (one connection, no keep-alive pool): what EventSource does, minus reconnecting. */
function connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      url,
      { headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        let buffer = '';
        const client: SseClient = {
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'],
          messages: [],
          comments: [],
          body: '',
          ended: new Promise((r) => res.once('end', r)),
          closed: new Promise((r) => res.once('close', r)),
          close: () => request.destroy(),
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          client.body += chunk;
          buffer += chunk;
          for (let at = buffer.indexOf('\n\n'); at !== -1; at = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) client.comments.push(line);
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) client.messages.push({ event, data: JSON.parse(data.join('\n')) });
          }
        });
        res.on('error', () => undefined);
        resolve(client);
      },
    );
    request.on('error', reject);
  });
}

const connections = (app: FastifyInstance) =>
  new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

describe('GET /v1/orders/:orderId/tracking/stream', () => {
  let database: TestDatabase;
  let simulator: RunningSimulator;
  let worker: TestWorker;
  let api: TestApi;
  let base: string;
  let queries = 0;
  const started: WorkflowHandle[] = [];

  // Counts every statement the API sends, to see a closed stream stop asking.
  const countQueries: KyselyPlugin = {
    transformQuery: (args) => {
      queries++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };

  beforeAll(async () => {
    database = await freshDatabase();
    simulator = await startSimulator({ port: 0, timeScale: TIME_SCALE });
    worker = await startTestWorker({
      db: database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: simulator.url, timeoutMs: 2_000 }),
      },
    });
    api = await startTestApi({
      database: { ...database, db: database.db.withPlugin(countQueries) },
      env: STREAM_ENV,
    });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.app.server.address() as { port: number };
    base = `http://127.0.0.1:${port}`;
  });

  afterEach(async () => {
    for (const handle of started.splice(0)) await handle.terminate('test over').catch(() => undefined);
  });

  afterAll(async () => {
    await api?.close();
    await worker?.stop();
    await simulator?.stop();
    await database?.drop();
  });

  /** An order of `customerId` with one parcel at the simulator (not yet tracked). */
  async function orderWithParcel(customerId: string, scenario: 'delivered' | 'never_picked_up') {
    const orderId = uniqueId('ord');
    const shipmentId = `${orderId}-p1`;
    const { trackingNumber } = simulator.backend.register({ scenario, format: 'native' });
    await database.db
      .insertInto('orders')
      .values({
        id: orderId,
        number: uniqueId('WB'),
        customer_id: customerId,
        email: 'a@example.com',
        postcode: '40000',
        status: 'SHIPPED',
        currency: 'MYR',
        total_amount: 1000,
        courier: CourierCode.SIMULATOR,
        failure_code: null,
        failure_message: null,
        shipping_address: JSON.stringify({
          name: 'A',
          line1: 'B',
          city: 'Shah Alam',
          postcode: '40000',
          country: 'MY',
        }),
      })
      .execute();
    await database.db
      .insertInto('shipments')
      .values({
        id: shipmentId,
        order_id: orderId,
        courier: CourierCode.SIMULATOR,
        tracking_number: trackingNumber,
      })
      .execute();
    return { orderId, shipmentId, trackingNumber };
  }

  async function track(orderId: string, shipmentId: string, trackingNumber: string) {
    const handle = await startShipmentWorkflow(worker, {
      shipmentId,
      orderId,
      trackingNumber,
      policy: fastPolicy(),
    });
    started.push(handle);
    return handle;
  }

  const streamUrl = (orderId: string) => `${base}/v1/orders/${orderId}/tracking/stream`;
  const openStreams = async () => {
    const text = (await api.app.metricsServer.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^waybill_sse_streams_open (\d+)$/m.exec(text)![1]);
  };

  it('sends the current tracking, each event the workflow records, heartbeats, and ends when delivered', async () => {
    const { orderId, shipmentId, trackingNumber } = await orderWithParcel('cus_stream', 'delivered');
    const client = await connect(streamUrl(orderId), api.customer('cus_stream'));
    expect(client.status).toBe(200);
    expect(client.contentType).toMatch(/^text\/event-stream/);
    await eventually(
      async () => client.messages.length,
      (n) => n >= 1,
    );
    expect(client.messages[0]).toEqual({
      event: 'snapshot',
      data: {
        orderId,
        orderStatus: 'SHIPPED',
        shipments: [expect.objectContaining({ shipmentId, trackingNumber, status: 'PENDING', events: [] })],
      },
    });

    await track(orderId, shipmentId, trackingNumber);
    // The first scan the workflow records reaches the open stream.
    await eventually(
      async () => client.messages.filter((m) => m.event === 'tracking'),
      (events) => events.length >= 1,
    );
    await client.ended;

    const recorded = await database.db
      .selectFrom('tracking_events')
      .select(['status', 'occurred_at'])
      .where('shipment_id', '=', shipmentId)
      .orderBy('id')
      .execute();
    const streamed = client.messages.filter((m) => m.event === 'tracking').map((m) => m.data);
    // Every recorded event exactly once, in the order recorded.
    expect(streamed).toEqual(
      recorded.map((e) =>
        expect.objectContaining({
          shipmentId,
          trackingNumber,
          status: e.status,
          occurredAt: e.occurred_at.toISOString(),
        }),
      ),
    );
    expect(recorded.map((e) => e.status)).toContain('DELIVERED');
    const statuses = client.messages
      .filter((m) => m.event === 'shipment')
      .map((m) => (m.data as { status: string }).status);
    // Status changes as the workflow recorded them (a poll may bring several scans at once).
    expect(statuses).toContain('IN_TRANSIT');
    expect(statuses[statuses.length - 1]).toBe('DELIVERED');
    expect(client.comments.length).toBeGreaterThanOrEqual(1);

    const last = client.messages[client.messages.length - 1]!;
    expect(last.event).toBe('end');
    expect(last.data).toMatchObject({ orderId, shipments: [{ shipmentId, status: 'DELIVERED' }] });
    expect(await openStreams()).toBe(0);
  });

  it('sends heartbeats while nothing happens', async () => {
    const { orderId } = await orderWithParcel('cus_quiet', 'never_picked_up');
    const client = await connect(streamUrl(orderId), api.customer('cus_quiet'));
    try {
      await eventually(
        async () => client.comments.length,
        (n) => n >= 3,
        5_000,
      );
      expect(client.messages.map((m) => m.event)).toEqual(['snapshot']);
    } finally {
      client.close();
    }
  });

  it('opens on a finished order with its tracking and ends at once', async () => {
    const { orderId, shipmentId } = await orderWithParcel('cus_done', 'delivered');
    await database.db
      .updateTable('shipments')
      .set({ status: 'DELIVERED' })
      .where('id', '=', shipmentId)
      .execute();
    const client = await connect(streamUrl(orderId), api.customer('cus_done'));
    await client.ended;
    expect(client.messages.map((m) => m.event)).toEqual(['snapshot', 'end']);
  });

  it("answers another customer's order 404 and a caller without a token 401, as JSON errors", async () => {
    const { orderId } = await orderWithParcel('cus_owner', 'never_picked_up');

    const other = await connect(streamUrl(orderId), api.customer('cus_other'));
    await other.ended;
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body)).toEqual({ error: { code: 'NOT_FOUND', message: `no order ${orderId}` } });

    const anonymous = await connect(streamUrl(orderId));
    await anonymous.ended;
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body).error.code).toBe('AUTH_REQUIRED');

    // Admins may follow any order (support).
    const admin = await connect(streamUrl(orderId), api.admin());
    try {
      expect(admin.status).toBe(200);
    } finally {
      admin.close();
    }
  });

  it('stops reading the read model and leaves no connection once the client goes away', async () => {
    const { orderId } = await orderWithParcel('cus_leaving', 'never_picked_up');
    const client = await connect(streamUrl(orderId), api.customer('cus_leaving'));
    await eventually(
      async () => client.comments.length,
      (n) => n >= 1,
    );
    expect(await openStreams()).toBe(1);

    client.close();
    await client.closed;
    await eventually(
      () => openStreams(),
      (n) => n === 0,
      5_000,
    );
    await eventually(
      () => connections(api.app),
      (n) => n === 0,
      5_000,
    );
    // A check already under way when the client left may still finish its statement; after
    // that, no more checks: ten poll intervals later, the API has not queried anything.
    await new Promise((r) => setTimeout(r, 300));
    const after = queries;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(queries).toBe(after);
  });

  it('ends open streams when the server shuts down, instead of holding the shutdown', async () => {
    const { orderId } = await orderWithParcel('cus_shutdown', 'never_picked_up');
    const other = await startTestApi({ database, env: STREAM_ENV });
    await other.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = other.app.server.address() as { port: number };
    const client = await connect(
      `http://127.0.0.1:${port}/v1/orders/${orderId}/tracking/stream`,
      other.customer('cus_shutdown'),
    );
    await eventually(
      async () => client.messages.length,
      (n) => n >= 1,
    );
    const closing = Date.now();
    await other.close();
    await client.ended;
    expect(Date.now() - closing).toBeLessThan(3_000);
  });

  it('is in the OpenAPI document as an event stream', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/v1/orders/{orderId}/tracking/stream'].get;
    expect(op.responses['200'].content['text/event-stream']).toBeDefined();
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '404']));
  });
});
