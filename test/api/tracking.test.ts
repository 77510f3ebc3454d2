import type { FastifyInstance } from 'fastify';
import { createShipmentActivities } from '../../src/activities/shipments';
import { buildApi } from '../../src/api/app';
import type { ShipmentStatus } from '../../src/domain/status';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testConfig, testLog } from '../support/env';

describe('GET /v1/tracking/:trackingNumber (guest view)', () => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let temporal: TemporalClient;

  beforeAll(async () => {
    database = await freshDatabase();
    const config = testConfig({ DATABASE_URL: database.url });
    temporal = createTemporalClient(config);
    app = await buildApi({ config, db: database.db, temporal, log: testLog });
    await database.db
      .insertInto('orders')
      .values({
        id: 'ord_guest',
        number: 'WB-1',
        customer_id: 'cus_1',
        email: 'asha@example.com',
        postcode: '110001',
        currency: 'INR',
        total_amount: 1000,
        courier: 'bluedart',
        failure_code: null,
        failure_message: null,
        shipping_address: JSON.stringify({
          name: 'Asha Rao',
          line1: '12 MG Road',
          city: 'Delhi',
          postcode: '110001',
          country: 'IN',
          phone: '9800000000',
        }),
      })
      .execute();
    await database.db
      .insertInto('shipments')
      .values({
        id: 'shp_guest',
        order_id: 'ord_guest',
        courier: 'bluedart',
        tracking_number: 'BD12345678',
        status: 'OUT_FOR_DELIVERY',
        last_synced_at: new Date(),
        raw_latest: JSON.stringify({ Consignee: 'Asha Rao', ConsigneeMobile: '9800000000' }),
      })
      .execute();
    // Events arrive the way the shipment workflow writes them: through the record activity.
    const event = (key: string, status: ShipmentStatus, at: string, text: string) => ({
      key,
      status,
      subStatus: null,
      rawCode: '004',
      // Courier free text can name people: it must never reach a guest.
      rawText: text,
      occurredAt: at,
      occurredAtRaw: null,
      location: { city: 'Delhi', state: 'DL', country: 'IN' },
      source: 'poll' as const,
    });
    await createShipmentActivities({
      db: database.db,
      couriers: {},
      dailyBudget: 10,
      log: testLog,
    }).recordTracking({
      shipmentId: 'shp_guest',
      events: [
        event('e1', 'IN_TRANSIT', '2026-11-20T10:00:00.000Z', 'Picked up from Ravi Kumar, 4 Park Street'),
        event(
          'e2',
          'OUT_FOR_DELIVERY',
          '2026-11-21T08:00:00.000Z',
          'Out for delivery to Asha Rao, 12 MG Road, 9800000000',
        ),
      ],
      status: 'OUT_FOR_DELIVERY',
      subStatus: null,
      eta: null,
      syncedAt: new Date().toISOString(),
      // Out for delivery: polled again in 30 minutes, as the workflow would plan it.
      nextPollAt: new Date(Date.now() + 30 * 60_000).toISOString(),
    });
  });

  afterAll(async () => {
    await app.close();
    await temporal.connection.close();
    await database.drop();
  });

  it('shows status, events and city-level places, newest first', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/tracking/BD12345678' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      trackingNumber: 'BD12345678',
      courier: 'bluedart',
      status: 'OUT_FOR_DELIVERY',
      description: 'Out for delivery',
      freshness: 'fresh',
      dataSource: { isLive: false, isCached: true, unavailable: false },
    });
    expect(body.events).toEqual([
      {
        status: 'OUT_FOR_DELIVERY',
        description: 'Out for delivery',
        occurredAt: '2026-11-21T08:00:00.000Z',
        city: 'Delhi',
        country: 'IN',
      },
      {
        status: 'IN_TRANSIT',
        description: 'On its way',
        occurredAt: '2026-11-20T10:00:00.000Z',
        city: 'Delhi',
        country: 'IN',
      },
    ]);
  });

  it("keeps the newest events on the shipment's row with their times already as the API writes them", async () => {
    const row = await database.db
      .selectFrom('shipments')
      .select('recent_events')
      .where('id', '=', 'shp_guest')
      .executeTakeFirstOrThrow();
    // The read passes these through without parsing them.
    expect(row.recent_events.map((e) => e.occurredAt)).toEqual([
      '2026-11-21T08:00:00.000Z',
      '2026-11-20T10:00:00.000Z',
    ]);
  });

  it('contains no names, phone numbers, street addresses or order contents', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/tracking/BD12345678' });
    for (const secret of [
      'Asha',
      'Rao',
      'Ravi',
      '9800000000',
      'MG Road',
      'Park Street',
      'asha@example.com',
      '110001',
      'ord_guest',
      'WB-1',
    ]) {
      expect(res.body).not.toContain(secret);
    }
  });

  it('finds a number typed in lower or mixed case: couriers issue them upper case, and they are stored as issued', async () => {
    for (const typed of ['bd12345678', 'Bd12345678']) {
      const res = await app.inject({ method: 'GET', url: `/v1/tracking/${typed}` });
      expect({ typed, status: res.statusCode, trackingNumber: res.json().trackingNumber }).toEqual({
        typed,
        status: 200,
        trackingNumber: 'BD12345678',
      });
    }
    const unknown = await app.inject({ method: 'GET', url: '/v1/tracking/nope0000' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.message).toBe('no shipment with tracking number nope0000');
  });

  it('answers 404 in the one error shape for a number it does not know', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/tracking/NOPE0000' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'no shipment with tracking number NOPE0000' },
    });
  });

  it.each([
    ['too short', 'AB1'],
    ['SQL-looking', "x'%20OR%201=1--"],
    ['too long', 'A'.repeat(41)],
  ])('answers 400 naming the parameter for a malformed number (%s)', async (_case, value) => {
    const res = await app.inject({ method: 'GET', url: `/v1/tracking/${value}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
    expect(res.json().error.message).toMatch(/trackingNumber/);
  });
});
