/**
 * The tracking stream over real HTTP: the API listening on a port, a shipment workflow
 * running a parcel's whole life against the courier simulator, and a plain SSE client
 * reading what a browser's EventSource would.
 */
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { sql, type KyselyPlugin } from 'kysely';
import { CourierCode } from '../../src/couriers/types';
import type { TestApi } from '../support/api';
import { eventually } from '../support/eventually';
import { useStack } from '../support/stack';
import { fastPolicy, startShipmentWorkflow, uniqueId } from '../support/temporal';

const STREAM_ENV = { WAYBILL_STREAM_HEARTBEAT: '200ms' };

jest.setTimeout(90_000);

interface SseClient {
  status: number;
  contentType: string | undefined;
  messages: { event: string; id: string | undefined; data: unknown }[];
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
            let id: string | undefined;
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) client.comments.push(line);
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('id: ')) id = line.slice(4);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) client.messages.push({ event, id, data: JSON.parse(data.join('\n')) });
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
  // The courier simulator at STACK_TIME_SCALE: the 3-day "delivered" lifecycle plays in about 5 s.
  const stack = useStack({ payments: false });
  let api: TestApi;
  let base: string;
  let queries = 0;

  // Counts every statement the API sends, to see a closed stream stop asking.
  const countQueries: KyselyPlugin = {
    transformQuery: (args) => {
      queries++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };

  beforeAll(async () => {
    api = await stack.anotherApi({ env: STREAM_ENV, db: stack.database.db.withPlugin(countQueries) });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.app.server.address() as { port: number };
    base = `http://127.0.0.1:${port}`;
  });

  /** An order of `customerId` with one parcel at the simulator (not yet tracked). */
  async function orderWithParcel(customerId: string, scenario: 'delivered' | 'never_picked_up') {
    const orderId = uniqueId('ord');
    const shipmentId = `${orderId}-p1`;
    const { trackingNumber } = stack.couriers.backend.register({ scenario, format: 'native' });
    await stack.database.db
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
    await stack.database.db
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
    const handle = await startShipmentWorkflow(stack.worker, {
      shipmentId,
      orderId,
      trackingNumber,
      policy: fastPolicy(),
    });
    stack.started(handle);
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
      id: '0',
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

    const recorded = await stack.database.db
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
    await stack.database.db
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
    const other = await stack.anotherApi({ env: STREAM_ENV });
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

  /** A scan written straight into the read model, the way any writer (an activity, psql) would. */
  async function writeScan(shipmentId: string, status: string, city: string) {
    return stack.database.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto('tracking_events')
        .values({
          shipment_id: shipmentId,
          event_key: uniqueId('evt'),
          status,
          sub_status: null,
          raw_code: null,
          raw_text: null,
          occurred_at: new Date(),
          occurred_at_raw: null,
          location_city: city,
          location_state: null,
          location_country: 'MY',
          source: 'manual',
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .updateTable('shipments')
        .set((eb) => ({ status, version: eb('version', '+', 1) }))
        .where('id', '=', shipmentId)
        .execute();
      return Number(id);
    });
  }

  const trackingCities = (client: SseClient) =>
    client.messages
      .filter((m) => m.event === 'tracking')
      .map((m) => (m.data as { city: string | null }).city);

  it('asks the read model nothing while nothing changes, and delivers a change any writer makes', async () => {
    const { orderId, shipmentId } = await orderWithParcel('cus_notify', 'never_picked_up');
    const client = await connect(streamUrl(orderId), api.customer('cus_notify'));
    try {
      await eventually(
        async () => client.comments.length,
        (n) => n >= 1,
      );
      // No polling: an open stream with nothing happening sends heartbeats and no query.
      const before = queries;
      await new Promise((r) => setTimeout(r, 1_500));
      expect(queries).toBe(before);

      const eventId = await writeScan(shipmentId, 'IN_TRANSIT', 'Shah Alam');
      await eventually(
        async () => client.messages.map((m) => m.event),
        (events) => events.includes('shipment'),
        10_000,
      );
      const tracking = client.messages.find((m) => m.event === 'tracking')!;
      expect(tracking).toMatchObject({
        id: String(eventId),
        data: { shipmentId, status: 'IN_TRANSIT', city: 'Shah Alam' },
      });
      expect(client.messages.find((m) => m.event === 'shipment')!.data).toMatchObject({
        shipmentId,
        status: 'IN_TRANSIT',
      });

      // An order status change alone (no shipment touched) reaches the stream too.
      await stack.database.db
        .updateTable('orders')
        .set({ status: 'DELIVERED' })
        .where('id', '=', orderId)
        .execute();
      await eventually(
        async () => client.messages.filter((m) => m.event === 'order').map((m) => m.data),
        (orders) => orders.length === 1,
        10_000,
      );
    } finally {
      client.close();
    }
  });

  it('resumes after Last-Event-ID with exactly the events missed and the current state, not a snapshot', async () => {
    const { orderId, shipmentId } = await orderWithParcel('cus_resume', 'never_picked_up');
    await writeScan(shipmentId, 'INFO_RECEIVED', 'Klang');
    const first = await connect(streamUrl(orderId), api.customer('cus_resume'));
    await eventually(
      async () => first.messages.length,
      (n) => n >= 1,
    );
    const seen = first.messages[first.messages.length - 1]!.id!;
    first.close();
    await first.closed;

    // Written while the client was away.
    const missedA = await writeScan(shipmentId, 'IN_TRANSIT', 'Shah Alam');
    const missedB = await writeScan(shipmentId, 'OUT_FOR_DELIVERY', 'Petaling Jaya');

    const again = await connect(streamUrl(orderId), {
      ...api.customer('cus_resume'),
      'last-event-id': seen,
    });
    try {
      expect(again.status).toBe(200);
      await eventually(
        async () => again.messages.map((m) => m.event),
        (events) => events.includes('order'),
        10_000,
      );
      expect(again.messages.map((m) => m.event)).toEqual(['tracking', 'tracking', 'shipment', 'order']);
      expect(trackingCities(again)).toEqual(['Shah Alam', 'Petaling Jaya']);
      expect(again.messages.map((m) => m.id)).toEqual([
        String(missedA),
        String(missedB),
        String(missedB),
        String(missedB),
      ]);
      expect(again.messages[2]!.data).toMatchObject({ shipmentId, status: 'OUT_FOR_DELIVERY' });
      expect(again.messages[3]!.data).toEqual({ orderId, orderStatus: 'SHIPPED' });
    } finally {
      again.close();
    }
  });

  it('refuses a Last-Event-ID that is not one of its ids, in the one error shape', async () => {
    const { orderId } = await orderWithParcel('cus_badid', 'never_picked_up');
    const res = await api.app.inject({
      url: `/v1/orders/${orderId}/tracking/stream`,
      headers: { ...api.customer('cus_badid'), 'last-event-id': 'abc' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'VALIDATION_FAILED', message: expect.stringMatching(/last-event-id/) },
    });
  });

  describe('with caps of 2 streams per caller and 3 in all, and a 1.5 s lifetime', () => {
    let capped: TestApi;
    let cappedBase: string;

    beforeAll(async () => {
      capped = await stack.anotherApi({
        env: {
          ...STREAM_ENV,
          WAYBILL_STREAM_MAX_PER_CALLER: '2',
          WAYBILL_STREAM_MAX_OPEN: '3',
          WAYBILL_STREAM_MAX_LIFETIME: '1500ms',
        },
      });
      await capped.app.listen({ host: '127.0.0.1', port: 0 });
      cappedBase = `http://127.0.0.1:${(capped.app.server.address() as { port: number }).port}`;
    });

    // Closed here, not at the end of the file: its LISTEN connection would be a second
    // listener for the test that cuts the listener's connection.
    afterAll(async () => {
      await capped.close();
    });

    const url = (orderId: string) => `${cappedBase}/v1/orders/${orderId}/tracking/stream`;

    it('answers streams over the cap 429 TOO_MANY_STREAMS while other routes still answer', async () => {
      const a = await orderWithParcel('cus_cap_a', 'never_picked_up');
      const b = await orderWithParcel('cus_cap_b', 'never_picked_up');
      const c = await orderWithParcel('cus_cap_c', 'never_picked_up');
      const held: SseClient[] = [];
      try {
        for (let i = 0; i < 2; i++) held.push(await connect(url(a.orderId), capped.customer('cus_cap_a')));
        expect(held.map((h) => h.status)).toEqual([200, 200]);

        const third = await connect(url(a.orderId), capped.customer('cus_cap_a'));
        await third.ended;
        expect(third.status).toBe(429);
        expect(JSON.parse(third.body)).toEqual({
          error: { code: 'TOO_MANY_STREAMS', message: expect.stringMatching(/2 tracking streams open/) },
        });

        // Another customer still gets one: the cap is per caller ...
        held.push(await connect(url(b.orderId), capped.customer('cus_cap_b')));
        expect(held[2]!.status).toBe(200);
        // ... and the process's cap holds for everyone.
        const fourth = await connect(url(c.orderId), capped.customer('cus_cap_c'));
        await fourth.ended;
        expect(fourth.status).toBe(429);
        expect(JSON.parse(fourth.body).error.code).toBe('TOO_MANY_STREAMS');

        // With every stream taken, the rest of the API answers as usual.
        const read = await fetch(`${cappedBase}/v1/orders/${c.orderId}/tracking`, {
          headers: capped.customer('cus_cap_c'),
        });
        expect(read.status).toBe(200);
        expect((await fetch(`${cappedBase}/health/ready`)).status).toBe(200);
      } finally {
        for (const h of held) h.close();
      }
      // A closed stream gives its place back.
      await eventually(
        async () => {
          const again = await connect(url(c.orderId), capped.customer('cus_cap_c'));
          again.close();
          return again.status;
        },
        (status) => status === 200,
        5_000,
      );
    });

    it('ends a stream at its lifetime without `end`; the reconnect with Last-Event-ID loses nothing', async () => {
      const { orderId, shipmentId } = await orderWithParcel('cus_lifetime', 'never_picked_up');
      const first = await connect(url(orderId), capped.customer('cus_lifetime'));
      await first.ended;
      expect(first.messages.map((m) => m.event)).toEqual(['snapshot']);
      expect(first.comments.some((c) => /lifetime/.test(c))).toBe(true);
      expect(first.body).toMatch(/^retry: \d+$/m);

      const missed = await writeScan(shipmentId, 'IN_TRANSIT', 'Ipoh');
      const again = await connect(url(orderId), {
        ...capped.customer('cus_lifetime'),
        'last-event-id': first.messages[0]!.id!,
      });
      await again.ended;
      expect(again.messages.filter((m) => m.event === 'tracking').map((m) => m.id)).toEqual([String(missed)]);
      expect(trackingCities(again)).toEqual(['Ipoh']);
    });
  });

  it('catches up after its LISTEN connection to Postgres is lost', async () => {
    const { orderId, shipmentId } = await orderWithParcel('cus_relisten', 'never_picked_up');
    const client = await connect(streamUrl(orderId), api.customer('cus_relisten'));
    try {
      await eventually(
        async () => client.messages.length,
        (n) => n >= 1,
      );
      const listeners = async () =>
        (
          await sql<{ pid: number }>`
            select pid from pg_stat_activity
            where application_name = 'waybill-stream-listener' and datname = current_database()`.execute(
            stack.database.db,
          )
        ).rows.map((r) => r.pid);
      const [first] = await listeners();
      expect(first).toBeDefined();

      // What a Postgres restart does to the listener, held for 1.5 s: its connection is cut
      // from the server side, and so is every reconnect meanwhile. The scan is written in the
      // middle, while nobody listens: the stream can only learn of it by catching up.
      const cut = async () => {
        await sql`select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = 'waybill-stream-listener' and datname = current_database()`.execute(
          stack.database.db,
        );
      };
      const until = Date.now() + 1_500;
      let written = false;
      while (Date.now() < until) {
        await cut();
        if (!written && Date.now() > until - 1_000 && (await listeners()).length === 0) {
          await writeScan(shipmentId, 'IN_TRANSIT', 'Seremban');
          written = true;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(written).toBe(true);

      await eventually(
        async () => trackingCities(client),
        (cities) => cities.includes('Seremban'),
        15_000,
      );
      // Listening again, on one connection, not the one that was cut.
      const now = await eventually(listeners, (pids) => pids.length === 1, 15_000);
      expect(now[0]).not.toBe(first);
    } finally {
      client.close();
    }
  });

  it('is in the OpenAPI document as an event stream', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/v1/orders/{orderId}/tracking/stream'].get;
    expect(op.responses['200'].content['text/event-stream']).toBeDefined();
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '404']));
  });
});
