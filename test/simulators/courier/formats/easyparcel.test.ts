/**
 * The simulator's EasyParcel format: the renderer alone (quirks rendered on purpose, in the
 * shape of EasyParcel's Open API docs: github.com/easyparcel/OpenAPI), the routes (tokens by
 * the refresh-token grant, `/open_api/<version>/` paths, batches, booking, cancelling), and
 * round trips through the real EasyParcel adapter over HTTP, which prove the simulator and
 * the adapter agree.
 */
import { createEasyParcelAdapter } from '../../../../src/couriers/easyparcel';
import { CourierRejectedError, type TrackResult } from '../../../../src/couriers/types';
import { SHIPMENT_STATUSES, type ShipmentStatus } from '../../../../src/domain/status';
import Fastify from 'fastify';
import {
  easyParcelPlugin,
  registerEasyParcelRoutes,
  renderEasyParcelTracking,
  type EasyParcelRouteOptions,
} from '../../../../simulators/courier/formats/easyparcel';
import type { SimScan, SimTrackingItem } from '../../../../simulators/courier/model';
import { SCENARIO_NAMES } from '../../../../simulators/courier/scenarios';
import { SimulatorCore } from '../../../../simulators/courier/core';
import {
  FAILED_ATTEMPT_THEN_DELIVERED,
  PLACES,
  RETURN_TO_ORIGIN,
  serve,
  stubBackend,
  truncatedIso,
  view,
} from './sim-views';

type Found = Extract<TrackResult, { kind: 'found' }>;

/** The app and account the simulators below accept, and the adapter settings that match. */
const SIM_ACCOUNT = { clientId: 'c', clientSecret: 's', refreshToken: 'r' };
const ADAPTER = { ...SIM_ACCOUNT, apiVersion: '2026-06' };

interface WireEntry {
  event_date: string;
  shipment_status_code: number;
  tracking_status: string;
  location: string | null;
}
interface WireItem {
  status: string;
  awb_number: string;
  shipment_number?: string;
  message?: string;
  latest_shipment_status_code?: number;
  latest_tracking_status?: string;
  latest_event_date?: string | null;
  status_log?: WireEntry[];
}

const START = new Date('2025-03-03T01:00:07.456Z');
const LATER = START.getTime() + 30 * 24 * 3600_000;

const delivered = view({
  trackingNumber: 'EP1000000001',
  region: 'MY',
  start: START,
  steps: FAILED_ATTEMPT_THEN_DELIVERED,
});
const returned = view({ trackingNumber: 'EP1000000002', region: 'MY', start: START, ...RETURN_TO_ORIGIN });

function results(items: SimTrackingItem[], now = LATER): WireItem[] {
  const rendered = renderEasyParcelTracking(items, now);
  expect(rendered.status).toBe(200);
  expect(rendered.contentType).toMatch(/^application\/json/);
  const body = JSON.parse(rendered.body) as {
    status_code: number;
    request_id: string;
    message: string;
    data: { results: WireItem[] };
  };
  const found = items.filter((item) => item.found).length;
  expect(body).toMatchObject({
    status_code: 200,
    message: `${found} requests success, ${items.length - found} request error.`,
  });
  expect(body.request_id).toMatch(/^\d+\.\w+$/);
  return body.data.results;
}

/**
 * EasyParcel dates back to instants, by hand: ISO with Z; without a zone, UTC for EasyParcel's
 * own "Schedule In Arrangement", Malaysia time (UTC+8) for the couriers' scans.
 */
function instant(entry: WireEntry): number {
  const { event_date: date } = entry;
  if (date.endsWith('Z')) return Date.parse(date);
  const zone = entry.tracking_status === 'Schedule In Arrangement' ? 'Z' : '+08:00';
  return Date.parse(`${date.replace(' ', 'T')}${zone}`);
}

function chronological(log: WireEntry[]): WireEntry[] {
  return [...log].sort((a, b) => instant(a) - instant(b));
}

describe('EasyParcel tracking renderer', () => {
  it('answers unknown numbers as not_found items inside a 200, in the order asked', () => {
    const items = results([
      { found: false, trackingNumber: 'EP404' },
      { found: true, view: delivered },
    ]);

    expect(items.map((i) => [i.awb_number, i.status])).toEqual([
      ['EP404', 'not_found'],
      ['EP1000000001', 'success'],
    ]);
    expect(items[0]).toEqual({ status: 'not_found', awb_number: 'EP404', message: 'AWB number not found' });
    expect(items[1]!.shipment_number).toMatch(/^ES-\d+$/);
  });

  it("stamps EasyParcel's own event in UTC and alternates ISO UTC and Malaysia-time dates for the couriers' scans, to the second", () => {
    const [item] = results([{ found: true, view: delivered }]);
    const log = chronological(item!.status_log!);

    expect(log.slice(0, 4).map((e) => e.event_date)).toEqual([
      '2025-03-03 01:05:07', // "Schedule In Arrangement": UTC, with no zone
      '2025-03-03 15:00:07', // 07:00:07 UTC
      '2025-03-03T15:00:07Z',
      '2025-03-05 05:00:07', // 21:00:07 UTC on the 4th
    ]);
    expect(log.map(instant)).toEqual(delivered.scans.map((s) => Date.parse(truncatedIso(s.at, 1000))));
  });

  it('shuffles the status log the same way every time, never oldest first', () => {
    const once = renderEasyParcelTracking([{ found: true, view: delivered }], LATER).body;
    const twice = renderEasyParcelTracking([{ found: true, view: delivered }], LATER).body;
    const log = (JSON.parse(once) as { data: { results: WireItem[] } }).data.results[0]!.status_log!;

    expect(twice).toBe(once);
    expect(log.map((e) => e.event_date)).not.toEqual(chronological(log).map((e) => e.event_date));
  });

  it('writes out for delivery as code 4 and a failed attempt as code 8, the status only in the text', () => {
    const [item] = results([{ found: true, view: delivered }]);

    expect(chronological(item!.status_log!).map((e) => [e.shipment_status_code, e.tracking_status])).toEqual([
      [7, 'Schedule In Arrangement'],
      [3, 'Parcel picked up from shipper'],
      [4, 'Departed sorting facility'],
      [4, 'Arrived at destination hub'],
      [4, 'Out for delivery'],
      [8, 'Delivery attempt failed: consignee not available'],
      [4, 'Out for delivery'],
      [5, 'Delivered'],
    ]);
    expect(item).toMatchObject({ latest_shipment_status_code: 5, latest_tracking_status: 'Delivered' });
  });

  it("adds the phrase EasyParcel uses when a scan's own words lack it", () => {
    const scan = (status: ShipmentStatus, text: string): SimScan => ({
      status,
      subStatus: null,
      text,
      at: START,
      location: PLACES.MY.destination,
    });
    const custom = {
      ...delivered,
      scans: [scan('OUT_FOR_DELIVERY', 'On the van'), scan('ATTEMPT_FAIL', 'Nobody home')],
    };
    const [item] = results([{ found: true, view: custom }]);

    expect(item!.status_log!.map((e) => e.tracking_status).sort()).toEqual([
      'Delivery attempt failed: Nobody home',
      'Out for delivery: On the van',
    ]);
  });

  it('leaves the location null for its own paperwork and writes "Place, State, MY" for physical scans', () => {
    const [item] = results([{ found: true, view: delivered }]);
    const log = chronological(item!.status_log!);

    expect(log[0]!.location).toBeNull();
    expect(log[1]!.location).toBe('Shah Alam, Selangor, MY');
    expect(log[7]!.location).toBe('Johor Bahru, Johor, MY');
  });

  it('writes a cancelled shipment as code 8 "Cancelled", as its tracking answers do', () => {
    const cancelled = {
      ...delivered,
      scans: [
        delivered.scans[0]!,
        { ...delivered.scans[0]!, status: 'CANCELLED' as const, text: 'Shipment cancelled by shipper' },
      ],
    };
    const [item] = results([{ found: true, view: cancelled }]);

    expect(item).toMatchObject({ latest_shipment_status_code: 8, latest_tracking_status: 'Cancelled' });
  });

  it('folds the return leg\'s movements into the same AWB, with "return" in the text', () => {
    const [item] = results([{ found: true, view: returned }]);

    expect(
      chronological(item!.status_log!)
        .map((e) => [e.shipment_status_code, e.tracking_status])
        .slice(6),
    ).toEqual([
      [4, 'Return to origin initiated'],
      [4, 'Return to shipper: Departed sorting facility'],
      [4, 'Return to shipper: Arrived at origin hub'],
      [4, 'Return to shipper: Out for delivery to shipper'],
      [6, 'Returned to shipper'],
    ]);
  });

  it('answers code 7 with no event date before the first scan', () => {
    const [item] = results([{ found: true, view: { ...delivered, scans: [] } }]);

    expect(item).toMatchObject({
      latest_shipment_status_code: 7,
      latest_tracking_status: 'Schedule In Arrangement',
      latest_event_date: null,
      status_log: [],
    });
  });

  it('shows no scan later than now', () => {
    const now = START.getTime() + 7 * 3600_000;
    const [item] = results([{ found: true, view: delivered }], now);

    expect(item!.status_log!.map((e) => e.shipment_status_code).sort()).toEqual([3, 7]);
  });
});

describe('EasyParcel routes', () => {
  let now = START.getTime();
  const opts: EasyParcelRouteOptions = {
    clientId: 'shop',
    clientSecret: 'secret',
    refreshToken: 'refresh',
    tokenTtlSeconds: 600,
    now: () => now,
  };
  const backend = stubBackend([delivered], { EP1000000001: 'already_picked_up', EP1000000003: 'cancelled' });
  let server: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    server = await serve('/easyparcel', (scope) => registerEasyParcelRoutes(scope, backend, opts));
  });
  afterAll(() => server.app.close());

  /** A call to the Open API, under `/open_api/2026-06/` unless `url` is the token endpoint. */
  const post = (url: string, body: unknown, token?: string) =>
    server.app.inject({
      method: 'POST',
      url: `/easyparcel${url.startsWith('/oauth/') ? '' : '/open_api/2026-06'}${url}`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      payload: body as object,
    });

  /** The token endpoint as EasyParcel's CLI calls it: a form, the app as HTTP Basic. */
  const tokenRequest = (form: Record<string, string>, client = 'shop:secret') =>
    server.app.inject({
      method: 'POST',
      url: '/easyparcel/oauth/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(client).toString('base64')}`,
      },
      payload: new URLSearchParams(form).toString(),
    });

  async function token(): Promise<string> {
    const res = await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'refresh' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      access_token: string;
      token_type: string;
      expires_in: number;
      refresh_token: string;
    }>();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, refresh_token: 'refresh' });
    return body.access_token;
  }

  it('issues tokens for the refresh token of the right app only; no client_credentials grant', async () => {
    expect(await token()).toMatch(/^\S{20,}$/);
    const wrongClient = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: 'refresh' },
      'shop:guess',
    );
    const wrongRefresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'stale' });
    const clientCredentials = await tokenRequest({ grant_type: 'client_credentials' });
    expect([wrongClient.statusCode, wrongRefresh.statusCode, clientCredentials.statusCode]).toEqual([
      401, 400, 400,
    ]);
  });

  it('answers an API version EasyParcel never had with 404', async () => {
    const res = await server.app.inject({
      method: 'POST',
      url: '/easyparcel/open_api/2024-01/shipment/tracking_status',
      headers: { authorization: `Bearer ${await token()}` },
      payload: { awb_numbers: ['EP1000000001'] },
    });
    expect(res.statusCode).toBe(404);
  });

  it('answers 401 Unauthenticated without a token, with an unknown one, and once it has expired', async () => {
    const valid = await token();
    const track = (t?: string) => post('/shipment/tracking_status', { awb_numbers: ['EP1000000001'] }, t);

    expect((await track(valid)).statusCode).toBe(200);
    for (const res of [await track(), await track('forged')]) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ status_code: 401, message: 'Unauthenticated' });
    }
    now += 601_000;
    expect((await track(valid)).statusCode).toBe(401);
  });

  it('refuses an empty batch or one above 100 numbers with 422', async () => {
    const t = await token();
    const many = Array.from({ length: 101 }, (_, i) => `EP${10_000 + i}`);
    for (const awbNumbers of [[], many]) {
      const res = await post('/shipment/tracking_status', { awb_numbers: awbNumbers }, t);
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ status_code: 422 });
    }
  });

  it('books through the backend, the same reference giving the same AWB', async () => {
    const t = await token();
    const order = {
      reference: 'shp_1',
      sender: { name: 'Kedai', city: 'Shah Alam', postcode: '40150', country: 'MY' },
      recipient: {
        name: 'Lim Mei Ling',
        line1: '3 Jalan Ampang',
        city: 'Kuala Lumpur',
        state: null,
        postcode: '50450',
        country: 'MY',
        phone: null,
      },
      parcel: { weight_grams: 500, description: 'Tea' },
    };
    const submit = {
      shipment: [
        {
          reference: 'shp_1',
          service_id: 'EP-CS096',
          collection_date: '2025-03-06',
          weight: 0.5,
          length: 20,
          width: 15,
          height: 10,
          item: [{ content: 'Tea', weight: 0.5, quantity: 1, value: 0, currency_code: 'MYR' }],
          receiver: {
            name: order.recipient.name,
            phone_number: '123456789',
            phone_number_country_code: 'MY',
            address_1: order.recipient.line1,
            postcode: order.recipient.postcode,
            city: order.recipient.city,
            country_code: 'MY',
          },
        },
      ],
    };
    const first = await post('/shipment/submit_orders', submit, t);
    const again = await post('/shipment/submit_orders', submit, t);

    expect(first.statusCode).toBe(200);
    type Answer = {
      data: { shipments: { status: string; awb_number: string; shipment_number: string }[] }[];
    };
    const shipment = first.json<Answer>().data[0]!.shipments[0]!;
    expect(shipment).toMatchObject({ status: 'success', awb_number: expect.stringMatching(/^EP\d{10}$/) });
    expect(shipment.shipment_number).toBe(`ES-${shipment.awb_number.slice(2)}`);
    expect(again.json<Answer>().data[0]!.shipments[0]!.awb_number).toBe(shipment.awb_number);
    expect(backend.bookings[0]).toEqual({
      format: 'easyparcel',
      request: {
        reference: 'shp_1',
        recipient: { ...order.recipient, phone: '123456789' },
        weightGrams: 500,
      },
    });
  });

  it("answers a shipment without a receiver postcode with an error result in a 200, in EasyParcel's words", async () => {
    const res = await post(
      '/shipment/submit_orders',
      {
        shipment: [
          {
            reference: 'shp_2',
            service_id: 'EP-CS096',
            collection_date: '2025-03-06',
            weight: 1,
            receiver: { name: 'A', phone_number: '1', address_1: 'B', city: 'C', country_code: 'MY' },
          },
        ],
      },
      await token(),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      message: '0 requests success, 1 request error.',
      data: [{ shipments: [{ status: 'error', errors: ['The receiver postcode field is required'] }] }],
    });
  });

  it('mounts as a plugin under a prefix too', async () => {
    const app = Fastify({ logger: false });
    await app.register(easyParcelPlugin, { prefix: '/ep', backend, ...opts });
    const res = await app.inject({
      method: 'POST',
      url: '/ep/oauth/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('shop:secret').toString('base64')}`,
      },
      payload: 'grant_type=refresh_token&refresh_token=refresh',
    });
    await app.close();

    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ token_type: 'Bearer', expires_in: 600 });
  });

  it('cancels by shipment number with one result each: cancelled, collected, not found', async () => {
    const t = await token();
    const cancel = async (shipment_number: string) =>
      (await post('/shipment/cancel', { cancel_list: [{ shipment_number, remark: 'test' }] }, t)).json<{
        data: { status: string; message: string }[];
      }>().data[0];

    expect(await cancel('ES-1000000003')).toMatchObject({ status: 'success', message: 'Shipment Cancelled' });
    expect(await cancel('ES-1000000003')).toMatchObject({ status: 'success' });
    expect(await cancel('ES-1000000001')).toMatchObject({
      status: 'error',
      message: expect.stringMatching(/collected/),
    });
    expect(await cancel('ES-404')).toMatchObject({ status: 'error', message: 'Shipment Not Found' });
  });
});

describe('EasyParcel round trip: simulator renders, adapter parses', () => {
  async function roundTrip(
    views: Parameters<typeof stubBackend>[0],
    numbers: string[],
    simNow = () => LATER,
  ) {
    const backend = stubBackend(views);
    const server = await serve('/easyparcel', (scope) =>
      registerEasyParcelRoutes(scope, backend, { ...SIM_ACCOUNT, tokenTtlSeconds: 3600, now: simNow }),
    );
    try {
      const adapter = createEasyParcelAdapter({ ...ADAPTER, baseUrl: server.url, timeoutMs: 5_000 });
      return await adapter.track(numbers);
    } finally {
      await server.app.close();
    }
  }

  it('brings back every scan of a failed attempt then delivery with its status, place and time to the second', async () => {
    const [result] = (await roundTrip([delivered], ['EP1000000001'])) as Found[];

    expect(result!.events.map((e) => e.status)).toEqual(delivered.scans.map((s) => s.status));
    expect(result!.events.map((e) => e.occurredAt)).toEqual(
      delivered.scans.map((s) => truncatedIso(s.at, 1000)),
    );
    expect(result!.events[5]).toMatchObject({ status: 'ATTEMPT_FAIL', subStatus: 'RECIPIENT_ABSENT' });
    expect(result!.events[7]!.location).toEqual({ city: 'Johor Bahru', state: 'Johor', country: 'MY' });
    expect(result!.status).toBe('DELIVERED');
  });

  it('brings back a return to origin as returning, then returned', async () => {
    const [result] = (await roundTrip([returned], ['EP1000000002'])) as Found[];

    expect(result!.events.map((e) => e.status).slice(6)).toEqual([
      'RETURNING',
      'RETURNING',
      'RETURNING',
      'RETURNING',
      'RETURNED',
    ]);
    expect(result!.status).toBe('RETURNED');
  });

  it('answers a mixed batch in the order asked, unknown numbers not found', async () => {
    const results = await roundTrip([delivered, returned], ['EP404', 'EP1000000002', 'EP1000000001']);

    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['EP404', 'not_found'],
      ['EP1000000002', 'found'],
      ['EP1000000001', 'found'],
    ]);
  });

  it('brings back every status EasyParcel can express; held-for-collection and expired come back on hold', async () => {
    const statuses = SHIPMENT_STATUSES;
    const single = statuses.map((status, i) =>
      view({
        trackingNumber: `EP20000000${10 + i}`,
        region: 'MY',
        start: START,
        steps: [[60, status, null, `Scan ${status}`, 'destination']],
      }),
    );
    const results = (await roundTrip(
      single,
      single.map((v) => v.trackingNumber),
    )) as Found[];

    const back = Object.fromEntries(
      statuses.map((status, i) => [status, [results[i]!.status, results[i]!.subStatus]]),
    );
    expect(back).toEqual({
      // EasyParcel's own "Schedule In Arrangement" (code 7) for both.
      PENDING: ['INFO_RECEIVED', 'SCHEDULED'],
      INFO_RECEIVED: ['INFO_RECEIVED', 'SCHEDULED'],
      IN_TRANSIT: ['IN_TRANSIT', null],
      OUT_FOR_DELIVERY: ['OUT_FOR_DELIVERY', null],
      AVAILABLE_FOR_PICKUP: ['EXCEPTION', 'ON_HOLD'],
      ATTEMPT_FAIL: ['ATTEMPT_FAIL', null],
      DELIVERED: ['DELIVERED', null],
      EXCEPTION: ['EXCEPTION', 'ON_HOLD'],
      RETURNING: ['RETURNING', null],
      RETURNED: ['RETURNED', null],
      CANCELLED: ['CANCELLED', null],
      EXPIRED: ['EXCEPTION', 'ON_HOLD'],
    });
  });

  it('recovers from a token the simulator let expire: one 401, a new token, the same call again', async () => {
    let simNow = START.getTime();
    const backend = stubBackend([delivered]);
    const server = await serve('/easyparcel', (scope) =>
      registerEasyParcelRoutes(scope, backend, { ...SIM_ACCOUNT, tokenTtlSeconds: 60, now: () => simNow }),
    );
    const paths: string[] = [];
    const counting: typeof fetch = (input, init) => {
      paths.push(new URL(String(input)).pathname);
      return fetch(input, init);
    };
    try {
      // The adapter's clock stands still, so only the simulator knows the token expired.
      const adapter = createEasyParcelAdapter({
        ...ADAPTER,
        baseUrl: server.url,
        fetch: counting,
        now: () => START.getTime(),
      });
      await adapter.track(['EP1000000001']);
      simNow += 61_000;
      const [result] = await adapter.track(['EP1000000001']);

      expect(result!.kind).toBe('found');
      expect(paths.map((p) => p.replace('/easyparcel', ''))).toEqual([
        '/oauth/token',
        '/open_api/2026-06/shipment/tracking_status',
        '/open_api/2026-06/shipment/tracking_status',
        '/oauth/token',
        '/open_api/2026-06/shipment/tracking_status',
      ]);
    } finally {
      await server.app.close();
    }
  });

  it('books and cancels through the adapter; a collected parcel cannot be cancelled', async () => {
    // Cancelling asks for the shipment number first: the parcel must be known to tracking.
    const backend = stubBackend([delivered], { [delivered.trackingNumber]: 'already_picked_up' });
    const server = await serve('/easyparcel', (scope) =>
      registerEasyParcelRoutes(scope, backend, { ...SIM_ACCOUNT, tokenTtlSeconds: 3600, now: Date.now }),
    );
    try {
      const adapter = createEasyParcelAdapter({ ...ADAPTER, baseUrl: server.url });
      const booking = await adapter.book({
        reference: 'shp_rt',
        sender: { name: 'Kedai', city: 'Shah Alam', postcode: '40150', country: 'MY' },
        recipient: {
          name: 'Siti',
          line1: '1 Jalan SS2/24',
          city: 'Petaling Jaya',
          state: 'Selangor',
          postcode: '46200',
          country: 'MY',
          phone: '0123456789',
        },
        parcel: { weightGrams: 250, description: 'Book' },
      });

      expect(booking.trackingNumber).toMatch(/^EP\d{10}$/);
      expect(booking.courierRef).toBe(`ES-${booking.trackingNumber.slice(2)}`);
      expect(backend.bookings[0]!.request.recipient.city).toBe('Petaling Jaya');
      await expect(adapter.cancel(delivered.trackingNumber)).rejects.toBeInstanceOf(CourierRejectedError);
      await expect(adapter.cancel(delivered.trackingNumber)).rejects.toMatchObject({ reason: 'collected' });
    } finally {
      await server.app.close();
    }
  });

  it("ends every simulator scenario in the same status as the simulator's own view", async () => {
    const now = Date.parse('2025-07-01T00:00:00.000Z');
    const core = new SimulatorCore({ now: () => now, timeScale: 1, seed: 1 });
    const numbers = SCENARIO_NAMES.map((scenario, i) => {
      const trackingNumber = `EP77000000${i}`;
      core.register({ trackingNumber, scenario, format: 'easyparcel', ageMs: 8 * 24 * 3600_000 });
      return trackingNumber;
    });
    const server = await serve('/easyparcel', (scope) =>
      registerEasyParcelRoutes(scope, core, { ...SIM_ACCOUNT, tokenTtlSeconds: 3600, now: () => now }),
    );
    try {
      const adapter = createEasyParcelAdapter({ ...ADAPTER, baseUrl: server.url });
      const results = (await adapter.track(numbers)) as Found[];

      // Before any scan EasyParcel already says "Schedule In Arrangement": information received.
      const expected = numbers.map((n) => core.inspect(n)!.view.scans.at(-1)?.status ?? 'INFO_RECEIVED');
      expect(results.map((r) => r.status)).toEqual(expected);
      expect(new Set(expected).size).toBeGreaterThanOrEqual(4);
    } finally {
      await server.app.close();
    }
  });
});
