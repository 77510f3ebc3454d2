/**
 * The CSV exports through the real API on a seeded read model (real Postgres): each export's
 * header and rows for a date range, the quoting of commas, quotes and newlines, formulas
 * turned into text, who may export, and ranges refused with a 400. Streaming (a client that
 * leaves, exports at the cap) is in exports-stream.test.ts.
 */
import { parse } from 'csv-parse/sync';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const RANGE = 'from=2026-10-01&to=2026-10-03';
/** A name with a comma, quotes and a line break: a CSV writer that hand-escapes gets it wrong. */
const TRICKY_NAME = 'Lim, Ana "Annie"\nApt 3';
const address = (name: string, city: string) =>
  JSON.stringify({ name, line1: '1 Jalan Satu', city, postcode: '40000', country: 'MY' });

describe('CSV exports', () => {
  const stack = useStack({
    payments: false,
    worker: false,
    api: { env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000', WAYBILL_COURIER_DAILY_BUDGET: '1200' } },
  });
  const get = (url: string, headers = stack.api.admin()) =>
    stack.api.app.inject({ method: 'GET', url, headers });
  const rowsOf = (body: string): string[][] => parse(body, { relaxColumnCount: false });

  beforeAll(async () => {
    const db = stack.database.db;
    const order = (id: string, createdAt: string, name: string, city: string, status = 'DELIVERED') => ({
      id,
      number: `WB-${id.slice(4).toUpperCase()}`,
      customer_id: 'cus_x',
      email: `${id}@example.com`,
      postcode: '40000',
      status,
      currency: 'MYR',
      total_amount: 4_990,
      courier: 'easyparcel',
      failure_code: null,
      failure_message: null,
      shipping_address: address(name, city),
      created_at: createdAt,
    });
    await db
      .insertInto('orders')
      .values([
        order('ord_x0', '2026-09-30T23:59:59.999Z', 'Before Range', 'Ipoh'),
        order('ord_x1', '2026-10-01T08:00:00.000Z', TRICKY_NAME, '=HYPERLINK("http://evil.example")'),
        order('ord_x2', '2026-10-03T23:59:59.000Z', '@SUM(A1)', 'Shah Alam', 'PENDING'),
        order('ord_x3', '2026-10-04T00:00:00.000Z', 'After Range', 'Klang'),
      ])
      .execute();
    await db
      .insertInto('payments')
      .values({
        id: 'pay_x1',
        order_id: 'ord_x1',
        idempotency_key: 'pay_x1',
        provider: 'simulator',
        provider_ref: 'ch_x1',
        status: 'PARTIALLY_REFUNDED',
        currency: 'MYR',
        amount_authorised: 4_990,
        amount_captured: 4_990,
        amount_refunded: 1_000,
        decline_code: null,
      })
      .execute();

    await db
      .insertInto('shipments')
      .values([
        {
          id: 'shp_x0',
          order_id: 'ord_x0',
          courier: 'easyparcel',
          tracking_number: 'EPX0',
          status: 'DELIVERED',
          created_at: '2026-09-30T10:00:00.000Z',
        },
        {
          id: 'shp_x1',
          order_id: 'ord_x1',
          courier: 'easyparcel',
          tracking_number: 'EPX1',
          status: 'DELIVERED',
          destination_city: 'Kuala Lumpur, "KL"',
          destination_country: 'MY',
          created_at: '2026-10-01T09:00:00.000Z',
          picked_up_at: '2026-10-01T12:00:00.000Z',
          delivered_at: '2026-10-02T12:00:00.000Z',
          eta: '2026-10-02T10:00:00.000Z',
        },
        {
          id: 'shp_x2',
          order_id: null,
          courier: 'bluedart',
          tracking_number: 'BDX2',
          status: 'EXCEPTION',
          sub_status: 'ADDRESS_ISSUE',
          destination_city: 'Pune',
          destination_country: 'IN',
          created_at: '2026-10-02T10:00:00.000Z',
        },
      ])
      .execute();
    const scan = (key: string, occurredAt: string, values: Record<string, string | null> = {}) => ({
      shipment_id: 'shp_x2',
      event_key: key,
      status: 'EXCEPTION',
      sub_status: 'ADDRESS_ISSUE',
      raw_code: 'UD-014',
      raw_text: 'Consignee not available',
      occurred_at: occurredAt,
      location_city: 'Pune',
      location_state: 'MH',
      location_country: 'IN',
      source: 'poll' as const,
      ...values,
    });
    await db
      .insertInto('tracking_events')
      .values([
        scan('x2-a', '2026-10-02T15:00:00.000Z', {
          raw_text: '+91 call the consignee, "gate 2"',
          location_city: 'Pimpri\nChinchwad',
        }),
        // Not an exception, and an exception after the range: neither is listed.
        scan('x2-b', '2026-10-02T16:00:00.000Z', { status: 'IN_TRANSIT' }),
        scan('x2-c', '2026-10-04T00:00:00.000Z'),
      ])
      .execute();

    await db
      .insertInto('courier_api_usage')
      .values([
        { courier: 'easyparcel', day: '2026-10-01', calls: 900, failures: 2 },
        { courier: 'bluedart', day: '2026-10-02', calls: 600, failures: 0 },
        { courier: 'bluedart', day: '2026-10-04', calls: 5, failures: 0 },
      ])
      .execute();
    // The report of 2026-10-01 ran with a budget of 800: that day is judged against it.
    await db
      .insertInto('daily_reports')
      .values({
        day: '2026-10-01',
        deliveries: 0,
        exceptions: 0,
        expired: 0,
        median_delivery_seconds: null,
        courier_calls: 900,
        courier_failures: 2,
        courier_budget: 800,
        by_courier: '[]',
        status_seconds: '[]',
        exceptions_by_reason: '[]',
      })
      .execute();
  });

  it('lists the orders of the range with their money, a header first, quoting what needs quoting', async () => {
    const res = await get(`/v1/admin/exports/orders?${RANGE}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="waybill-orders-2026-10-01-to-2026-10-03.csv"',
    );
    // Quotes doubled inside a quoted field; the line break kept inside it.
    expect(res.body).toContain('"Lim, Ana ""Annie""\nApt 3"');
    expect(rowsOf(res.body)).toEqual([
      [
        'day',
        'created_at',
        'order_id',
        'order_number',
        'status',
        'customer_id',
        'email',
        'customer_name',
        'city',
        'country',
        'courier',
        'currency',
        'total_minor',
        'payment_status',
        'authorised_minor',
        'captured_minor',
        'refunded_minor',
      ],
      [
        '2026-10-01',
        '2026-10-01T08:00:00.000Z',
        'ord_x1',
        'WB-X1',
        'DELIVERED',
        'cus_x',
        'ord_x1@example.com',
        TRICKY_NAME,
        `'=HYPERLINK("http://evil.example")`,
        'MY',
        'easyparcel',
        'MYR',
        '4990',
        'PARTIALLY_REFUNDED',
        '4990',
        '4990',
        '1000',
      ],
      [
        '2026-10-03',
        '2026-10-03T23:59:59.000Z',
        'ord_x2',
        'WB-X2',
        'PENDING',
        'cus_x',
        'ord_x2@example.com',
        `'@SUM(A1)`,
        'Shah Alam',
        'MY',
        'easyparcel',
        'MYR',
        '4990',
        '',
        '0',
        '0',
        '0',
      ],
    ]);
  });

  it('lists the parcels booked in the range with their time from pickup to delivery', async () => {
    const res = await get(`/v1/admin/exports/deliveries?${RANGE}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toMatch(
      /filename="waybill-deliveries-2026-10-01-to-2026-10-03\.csv"/,
    );
    expect(rowsOf(res.body)).toEqual([
      [
        'day',
        'shipment_id',
        'tracking_number',
        'order_number',
        'courier',
        'status',
        'sub_status',
        'recipient',
        'destination_city',
        'destination_country',
        'created_at',
        'picked_up_at',
        'delivered_at',
        'eta',
        'pickup_to_delivery_seconds',
        'late',
      ],
      [
        '2026-10-01',
        'shp_x1',
        'EPX1',
        'WB-X1',
        'easyparcel',
        'DELIVERED',
        '',
        TRICKY_NAME,
        'Kuala Lumpur, "KL"',
        'MY',
        '2026-10-01T09:00:00.000Z',
        '2026-10-01T12:00:00.000Z',
        '2026-10-02T12:00:00.000Z',
        '2026-10-02T10:00:00.000Z',
        '86400',
        'true',
      ],
      ['2026-10-02', 'shp_x2', 'BDX2', '', 'bluedart', 'EXCEPTION', 'ADDRESS_ISSUE', '', 'Pune', 'IN'].concat(
        ['2026-10-02T10:00:00.000Z', '', '', '', '', ''],
      ),
    ]);
  });

  it('lists the exception scans of the range, a phone number and a line break kept as text', async () => {
    const res = await get(`/v1/admin/exports/exceptions?${RANGE}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('"Pimpri\nChinchwad"');
    expect(rowsOf(res.body)).toEqual([
      [
        'day',
        'occurred_at',
        'courier',
        'shipment_id',
        'tracking_number',
        'order_number',
        'shipment_status_now',
        'sub_status',
        'raw_code',
        'raw_text',
        'location_city',
        'location_state',
        'location_country',
        'source',
      ],
      [
        '2026-10-02',
        '2026-10-02T15:00:00.000Z',
        'bluedart',
        'shp_x2',
        'BDX2',
        '',
        'EXCEPTION',
        'ADDRESS_ISSUE',
        'UD-014',
        `'+91 call the consignee, "gate 2"`,
        'Pimpri\nChinchwad',
        'MH',
        'IN',
        'poll',
      ],
    ]);
  });

  it("lists courier calls per day against the budget: the day's reported budget, else today's", async () => {
    const res = await get(`/v1/admin/exports/courier-usage?${RANGE}`);
    expect(res.statusCode).toBe(200);
    expect(rowsOf(res.body)).toEqual([
      ['day', 'courier', 'calls', 'failures', 'budget', 'remaining', 'used_percent', 'over_budget'],
      ['2026-10-01', 'easyparcel', '900', '2', '800', '0', '112.5', 'true'],
      ['2026-10-02', 'bluedart', '600', '0', '1200', '600', '50', 'false'],
    ]);
  });

  it('answers a range with nothing in it with the header alone', async () => {
    const res = await get('/v1/admin/exports/orders?from=2025-01-01&to=2025-01-31');
    expect(res.statusCode).toBe(200);
    expect(rowsOf(res.body)).toHaveLength(1);
  });

  it('lets ops export and refuses support', async () => {
    expect((await get(`/v1/admin/exports/orders?${RANGE}`, stack.api.staff('ops'))).statusCode).toBe(200);
    const refused = await get(`/v1/admin/exports/orders?${RANGE}`, stack.api.staff('support'));
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
  });

  it.each([
    ['from=2026-10-03&to=2026-10-01', 'INVALID_RANGE', /to \(2026-10-01\) is before from \(2026-10-03\)/],
    ['from=2026-01-01&to=2026-04-03', 'INVALID_RANGE', /is 93 days; one export covers at most 92/],
    ['to=2026-10-01', 'VALIDATION_FAILED', /missing "from"/],
    ['from=2026-10-01', 'VALIDATION_FAILED', /missing "to"/],
    ['from=2026-02-30&to=2026-03-01', 'VALIDATION_FAILED', /from must match format "date"/],
    ['from=yesterday&to=2026-03-01', 'VALIDATION_FAILED', /from must match format "date"/],
    ['from=2026-10-01&to=2026-10-02&courier=x', 'VALIDATION_FAILED', /unknown field "courier"/],
  ])('refuses %s with 400 %s', async (query, code, message) => {
    const res = await get(`/v1/admin/exports/deliveries?${query}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
    expect(res.json().error.message).toMatch(message);
  });
});
