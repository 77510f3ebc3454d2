/**
 * Each tracking read is one round trip to Postgres: the statements the API sends through
 * its database handle are counted (Kysely's query log sees every statement it executes,
 * compiled ahead or not) while a customer, a guest with a tracking number and a guest with
 * an order number read an order with two shipments. The answers are checked too, so a
 * read cannot get to one statement by leaving data out.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { createPool } from '../../db/client';
import { withPreparedStatements } from '../../db/prepared';
import type { Database } from '../../db/database';
import type { TestApi } from '../support/api';
import { insertOrderRow } from '../support/db';
import { useStack } from '../support/stack';

describe('tracking reads', () => {
  const stack = useStack({ worker: false, payments: false });
  let db: Kysely<Database>;
  let api: TestApi;
  const statements: string[] = [];
  let orderId: string;
  let orderNumber: string;

  beforeAll(async () => {
    const database = stack.database;
    db = new Kysely<Database>({
      // As createDb builds it (named statements), plus a log of every statement sent.
      dialect: new PostgresDialect({
        pool: withPreparedStatements(createPool({ url: database.url, poolMax: 2 })),
      }),
      log: (event) => {
        if (event.level === 'query') statements.push(event.query.sql);
      },
    });
    api = await stack.anotherApi({ db });
    orderId = await insertOrderRow(database.db, { customerId: 'cus_reads' });
    // Order numbers are upper case, as the API gives them (the lookup upper-cases what it is sent).
    ({ number: orderNumber } = await database.db
      .updateTable('orders')
      .set((eb) => ({ number: eb.fn<string>('upper', ['number']) }))
      .where('id', '=', orderId)
      .returning('number')
      .executeTakeFirstOrThrow());
    const events = (city: string) =>
      JSON.stringify([
        { status: 'IN_TRANSIT', occurredAt: '2026-12-01T09:30:00.25+00:00', city, country: 'MY' },
        { status: 'INFO_RECEIVED', occurredAt: '2026-12-01T08:00:00+00:00', city: null, country: null },
      ]);
    await database.db
      .insertInto('shipments')
      .values([
        {
          id: 'shp_reads_a',
          order_id: orderId,
          courier: 'simulator',
          tracking_number: 'SIM-READS-A',
          status: 'IN_TRANSIT',
          last_synced_at: new Date(),
          next_poll_at: new Date(Date.now() + 3_600_000),
          recent_events: events('Shah Alam'),
        },
        {
          id: 'shp_reads_b',
          order_id: orderId,
          courier: 'simulator',
          tracking_number: 'SIM-READS-B',
          status: 'INFO_RECEIVED',
          last_synced_at: null,
          // Its first poll was due at its creation, an hour ago: stale.
          created_at: new Date(Date.now() - 3_600_000),
          recent_events: events('Klang'),
        },
      ])
      .execute();
  });

  afterAll(async () => {
    await db.destroy();
  });

  beforeEach(() => {
    statements.length = 0;
  });

  it("a customer's tracking of an order with two shipments is one statement", async () => {
    const res = await api.app.inject({
      url: `/v1/orders/${orderId}/tracking`,
      headers: api.customer('cus_reads'),
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ orderId, orderNumber, status: 'PENDING' });
    expect(body.shipments.map((s: { shipmentId: string }) => s.shipmentId)).toEqual([
      'shp_reads_a',
      'shp_reads_b',
    ]);
    expect(body.shipments[0].events).toEqual([
      {
        status: 'IN_TRANSIT',
        description: 'On its way',
        occurredAt: '2026-12-01T09:30:00.250Z',
        city: 'Shah Alam',
        country: 'MY',
      },
      {
        status: 'INFO_RECEIVED',
        description: 'The courier has the shipment details',
        occurredAt: '2026-12-01T08:00:00.000Z',
        city: null,
        country: null,
      },
    ]);
    expect(body.shipments[1]).toMatchObject({ lastUpdatedAt: null, freshness: 'stale' });
    expect(statements).toHaveLength(1);
  });

  it("another customer's read of the order is one statement and the same 404 as no order", async () => {
    const res = await api.app.inject({
      url: `/v1/orders/${orderId}/tracking`,
      headers: api.customer('cus_other'),
    });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no order ${orderId}` } });
    expect(statements).toHaveLength(1);
  });

  it('a guest read by tracking number is one statement', async () => {
    const res = await api.app.inject({ url: '/v1/tracking/SIM-READS-B' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ trackingNumber: 'SIM-READS-B', status: 'INFO_RECEIVED' });
    expect(res.json()).not.toHaveProperty('shipmentId');
    expect(statements).toHaveLength(1);
  });

  it.each([
    ['e-mail', { email: 'ANA@example.com ' }],
    ['postcode', { postcode: '40-000' }],
  ])('a guest lookup by order number and %s is one statement', async (_proof, proof) => {
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/tracking/lookup',
      payload: { orderNumber: orderNumber.toLowerCase(), ...proof },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ orderNumber, status: 'PENDING' });
    expect(body.shipments.map((s: { trackingNumber: string }) => s.trackingNumber)).toEqual([
      'SIM-READS-A',
      'SIM-READS-B',
    ]);
    expect(body.shipments[0]).not.toHaveProperty('shipmentId');
    expect(statements).toHaveLength(1);
  });

  it('a guest lookup with the wrong e-mail is one statement and a 404', async () => {
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/tracking/lookup',
      payload: { orderNumber, email: 'someone@example.com' },
    });
    expect(res.statusCode).toBe(404);
    expect(statements).toHaveLength(1);
  });
});
