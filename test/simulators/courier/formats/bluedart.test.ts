/**
 * The simulator's Blue Dart format: the XML renderer alone (quirks rendered on purpose), the
 * routes, and round trips through the real Blue Dart adapter over HTTP, which prove the
 * simulator and the adapter agree.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { createBlueDartAdapter } from '../../../../src/couriers/bluedart';
import { CourierRejectedError, type TrackResult } from '../../../../src/couriers/types';
import Fastify from 'fastify';
import {
  blueDartPlugin,
  registerBlueDartRoutes,
  renderBlueDartTracking,
} from '../../../../simulators/courier/formats/bluedart';
import type { SimTrackingItem } from '../../../../simulators/courier/model';
import { SCENARIO_NAMES } from '../../../../simulators/courier/scenarios';
import { SimulatorCore } from '../../../../simulators/courier/core';
import {
  FAILED_ATTEMPT_THEN_DELIVERED,
  RETURN_TO_ORIGIN,
  serve,
  stubBackend,
  truncatedIso,
  view,
} from './sim-views';

type Found = Extract<TrackResult, { kind: 'found' }>;
type Node = Record<string, unknown>;

const START = new Date('2025-06-05T06:00:30.500Z');
const ETA = new Date('2025-06-08T14:30:00.000Z'); // 20:00 IST on the 8th

const delivered = view({
  trackingNumber: 'BD1000000001',
  region: 'IN',
  start: START,
  steps: FAILED_ATTEMPT_THEN_DELIVERED,
  eta: ETA,
  reference: 'shp_1',
});
const returned = view({
  trackingNumber: 'BD1000000002',
  region: 'IN',
  start: START,
  ...RETURN_TO_ORIGIN,
  reference: 'shp_2',
});

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) => name === 'Shipment' || name === 'ScanDetail',
});

function shipments(items: SimTrackingItem[]): { xml: string; shipments: Node[] } {
  const rendered = renderBlueDartTracking(items);
  expect(rendered.status).toBe(200);
  expect(rendered.contentType).toMatch(/^text\/xml/);
  expect(XMLValidator.validate(rendered.body)).toBe(true);
  const doc = parser.parse(rendered.body) as { ShipmentData: { Shipment: Node[] } };
  return { xml: rendered.body, shipments: doc.ShipmentData.Shipment };
}

function scans(shipment: Node): Node[] {
  return (shipment.Scans as { ScanDetail?: Node[] }).ScanDetail ?? [];
}

describe('Blue Dart tracking renderer', () => {
  it('writes scans newest first, in Indian time, with both date styles and no seconds', () => {
    const [shipment] = shipments([{ found: true, view: delivered }]).shipments;
    const list = scans(shipment!);

    expect(list).toHaveLength(8);
    // Each code in its family: S movement scans, T status scans; the booking scan is S-030.
    expect(list.map((s) => `${String(s.ScanGroupType)}-${String(s.ScanCode)}`)).toEqual([
      'T-000',
      'S-002',
      'T-013',
      'S-002',
      'S-020',
      'S-003',
      'S-015',
      'S-030',
    ]);
    expect(list.map((s) => s.ScanType)).toEqual(['DL', 'UD', 'UD', 'UD', 'UD', 'UD', 'PU', 'PU']);
    expect(list.at(-1)!.Scan).toBe('Online shipment booked');
    // 06:05:30 UTC is 11:35 IST; 20:00:30 UTC on the 5th is 01:30 IST on the 6th.
    expect(list.at(-1)).toMatchObject({
      ScanDate: '05-Jun-2025',
      ScanTime: '11:35',
      ScannedLocation: 'MUMBAI',
    });
    expect(list.at(-3)).toMatchObject({
      ScanDate: '06-Jun-2025',
      ScanTime: '01:30',
      ScannedLocation: 'BHIWANDI',
    });
    expect(shipment).toMatchObject({
      Status: 'DELIVERED',
      StatusType: 'DL',
      StatusDate: '08 June 2025',
      StatusTime: '23:30',
      ExpectedDeliveryDate: '08 June 2025',
      '@WaybillNo': 'BD1000000001',
      '@RefNo': 'shp_1',
    });
  });

  it("carries the consignee's personal data, escaped, as Blue Dart does", () => {
    const {
      xml,
      shipments: [shipment],
    } = shipments([{ found: true, view: delivered }]);

    expect(xml).toContain('<Consignee>Asha Rao &amp; Sons &lt;Ltd&gt;</Consignee>');
    expect(shipment).toMatchObject({
      Consignee: 'Asha Rao & Sons <Ltd>',
      ConsigneeAddress1: '12 MG Road',
      ConsigneePincode: '110001',
      ConsigneeMobile: '9800000000',
    });
  });

  it('answers a waybill it shows nothing about with StatusType NF beside the ones it knows', () => {
    const { shipments: list } = shipments([
      { found: false, trackingNumber: 'BD404' },
      { found: true, view: delivered },
    ]);

    expect(list.map((s) => s['@WaybillNo'])).toEqual(['BD404', 'BD1000000001']);
    expect(list[0]).toEqual({
      '@WaybillNo': 'BD404',
      StatusType: 'NF',
      Status: 'Incorrect Waybill number or No Information',
    });
  });

  it('answers with a root Error when it shows none of the waybills asked, a cancelled one included', () => {
    const cancelled = {
      ...delivered,
      trackingNumber: 'BD1000000003',
      scans: [
        delivered.scans[0]!,
        { ...delivered.scans[0]!, status: 'CANCELLED' as const, text: 'Shipment cancelled by shipper' },
      ],
    };
    const rendered = renderBlueDartTracking([
      { found: false, trackingNumber: 'BD404' },
      { found: true, view: cancelled },
    ]);

    expect(rendered.status).toBe(200);
    expect(rendered.body).toContain(
      '<ShipmentData><Error>Incorrect Waybill number or No Information</Error></ShipmentData>',
    );
  });

  it('adds the return leg as a second Shipment pointing back at the original', () => {
    const { shipments: list } = shipments([{ found: true, view: returned }]);

    expect(list.map((s) => [s['@WaybillNo'], s['@RefNo']])).toEqual([
      ['BD1000000002', 'shp_2'],
      ['BD1000000002R', '074 - BD1000000002'],
    ]);
    // The original ends with its return-to-origin scan and names the leg; the leg's delivery
    // is the parcel back with the shipper.
    expect(list[0]).toMatchObject({ StatusType: 'RT', NewWaybillNo: 'BD1000000002R' });
    expect(
      scans(list[0]!)
        .map((s) => s.ScanCode)
        .slice(0, 2),
    ).toEqual(['074', '013']);
    expect(scans(list[1]!).map((s) => `${String(s.ScanGroupType)}-${String(s.ScanCode)}`)).toEqual([
      'T-000',
      'S-002',
      'S-020',
      'S-003',
      'S-001',
    ]);
    expect(list[1]).toMatchObject({ StatusType: 'DL' });
  });

  it('says only "AWB GENERATED" before the first scan', () => {
    const [shipment] = shipments([{ found: true, view: { ...delivered, scans: [] } }]).shipments;

    expect(shipment).toMatchObject({ Status: 'AWB GENERATED' });
    expect(shipment!.StatusType).toBeUndefined();
    expect(scans(shipment!)).toEqual([]);
  });
});

describe('Blue Dart routes', () => {
  const backend = stubBackend([delivered], { BD1000000001: 'already_picked_up', BD1000000003: 'cancelled' });
  let server: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    server = await serve('/bluedart', (scope) =>
      registerBlueDartRoutes(scope, backend, { loginId: 'SHOP1', licenceKey: 'lic' }),
    );
  });
  afterAll(() => server.app.close());

  const creds = 'loginid=SHOP1&lickey=lic';
  const track = (query: string) =>
    server.app.inject({ method: 'GET', url: `/bluedart/servlet/RoutingServlet?${query}` });
  const post = (path: string, body: object, query = creds) =>
    server.app.inject({ method: 'POST', url: `/bluedart${path}?${query}`, payload: body });

  it('answers a tracking query with XML', async () => {
    const res = await track(
      `handler=tnt&action=custawbquery&${creds}&awb=awb&format=xml&numbers=BD1000000001,BD404&verno=1.3&scan=1`,
    );

    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/xml/);
    expect(backend.tracked.at(-1)).toEqual(['BD1000000001', 'BD404']);
  });

  it('refuses a wrong licence key with 401, and more than 25 waybills with 400', async () => {
    const wrong = await track('handler=tnt&action=custawbquery&loginid=SHOP1&lickey=guess&numbers=BD1');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('<Error>');

    const many = Array.from({ length: 26 }, (_, i) => `BD${5000 + i}`).join(',');
    expect((await track(`handler=tnt&action=custawbquery&${creds}&numbers=${many}`)).statusCode).toBe(400);
  });

  it('generates a waybill through the backend, the same reference giving the same AWB', async () => {
    const order = {
      reference: 'shp_9',
      consignee: {
        name: 'Vikram Singh',
        address1: '9 FC Road',
        city: 'Pune',
        pincode: '411004',
        mobile: '9844444444',
      },
      weight_grams: 900,
    };
    const first = await post('/waybill/generate', order);
    const again = await post('/waybill/generate', order);

    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ Status: 'Valid', AWBNo: expect.stringMatching(/^BD\d{10}$/) });
    expect(again.json<{ AWBNo: string }>().AWBNo).toBe(first.json<{ AWBNo: string }>().AWBNo);
    expect(backend.bookings[0]!.request).toEqual({
      reference: 'shp_9',
      recipient: {
        name: 'Vikram Singh',
        line1: '9 FC Road',
        city: 'Pune',
        state: null,
        postcode: '411004',
        country: 'IN',
        phone: '9844444444',
      },
      weightGrams: 900,
    });
  });

  it('mounts as a plugin under a prefix too, accepting any credentials when none are set', async () => {
    const app = Fastify({ logger: false });
    await app.register(blueDartPlugin, { prefix: '/bd', backend });
    const res = await app.inject({
      method: 'GET',
      url: '/bd/servlet/RoutingServlet?handler=tnt&action=custawbquery&numbers=BD404',
    });
    await app.close();

    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<Error>Incorrect Waybill number or No Information</Error>');
  });

  it('cancels with "Cancelled", answers 409 once picked up and 404 for an unknown AWB', async () => {
    expect((await post('/waybill/cancel', { AWBNo: 'BD1000000003' })).json()).toMatchObject({
      Status: 'Cancelled',
    });
    expect((await post('/waybill/cancel', { AWBNo: 'BD1000000001' })).statusCode).toBe(409);
    expect((await post('/waybill/cancel', { AWBNo: 'BD404' })).statusCode).toBe(404);
  });
});

describe('Blue Dart round trip: simulator renders, adapter parses', () => {
  async function withServer<T>(
    backend: Parameters<typeof registerBlueDartRoutes>[1],
    run: (adapter: ReturnType<typeof createBlueDartAdapter>) => Promise<T>,
  ): Promise<T> {
    const server = await serve('/bluedart', (scope) =>
      registerBlueDartRoutes(scope, backend, { loginId: 'L', licenceKey: 'K' }),
    );
    try {
      return await run(
        createBlueDartAdapter({ baseUrl: server.url, loginId: 'L', licenceKey: 'K', timeoutMs: 5_000 }),
      );
    } finally {
      await server.app.close();
    }
  }

  it('brings back every scan with its status, city and time to the minute, and the ETA day', async () => {
    const [result] = (await withServer(stubBackend([delivered]), (a) =>
      a.track(['BD1000000001']),
    )) as Found[];

    // The booking scan's code is outside the adapter's table: UNKNOWN, and no pickup.
    expect(result!.events[0]).toMatchObject({ rawCode: 'S-030', status: 'PENDING', subStatus: 'UNKNOWN' });
    expect(result!.events.slice(1).map((e) => e.status)).toEqual(
      delivered.scans.slice(1).map((s) => s.status),
    );
    expect(result!.events.map((e) => e.occurredAt)).toEqual(
      delivered.scans.map((s) => truncatedIso(s.at, 60_000)),
    );
    expect(result!.events[0]!.location).toEqual({ city: 'MUMBAI', state: null, country: 'IN' });
    expect(result!.status).toBe('DELIVERED');
    expect(result!.eta).toBe('2025-06-08T18:29:59.000Z');
  });

  it('strips the consignee the simulator sends from the stored raw payload', async () => {
    const [result] = (await withServer(stubBackend([delivered, returned]), (a) =>
      a.track(['BD1000000001']),
    )) as Found[];
    const raw = JSON.stringify(result!.raw);

    for (const personal of ['Asha Rao', '12 MG Road', '110001', '9800000000'])
      expect(raw).not.toContain(personal);
  });

  it('brings back a return to origin as one result: returning on the way back, returned at the end', async () => {
    const results = (await withServer(stubBackend([returned]), (a) => a.track(['BD1000000002']))) as Found[];

    expect(results).toHaveLength(1);
    const statuses = results[0]!.events.map((e) => e.status);
    expect(statuses.slice(6)).toEqual([
      'RETURNING',
      'RETURNING',
      'RETURNING',
      'RETURNING',
      'RETURNING',
      'RETURNED',
    ]);
    // The original's own "returned" is the leg's delivery, linked through RefNo "074 - …".
    expect(results[0]!.events).toHaveLength(returned.scans.length - 1 + returned.returnScans.length);
    expect(results[0]!.events.at(-1)).toMatchObject({ rawCode: 'T-000', status: 'RETURNED' });
    expect(results[0]!.status).toBe('RETURNED');
  });

  it('answers a mixed batch in the order asked, unknown waybills not found', async () => {
    const results = await withServer(stubBackend([delivered, returned]), (a) =>
      a.track(['BD404', 'BD1000000002', 'BD405', 'BD1000000001']),
    );

    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['BD404', 'not_found'],
      ['BD1000000002', 'found'],
      ['BD405', 'not_found'],
      ['BD1000000001', 'found'],
    ]);
  });

  it('books and cancels through the adapter; a picked-up parcel cannot be cancelled', async () => {
    const backend = stubBackend([], { BD9: 'already_picked_up', BD8: 'cancelled' });
    await withServer(backend, async (adapter) => {
      const booking = await adapter.book({
        reference: 'shp_bd',
        sender: { name: 'Kala Crafts', city: 'Mumbai', postcode: '400053', country: 'IN' },
        recipient: {
          name: 'Meera Iyer',
          line1: '2 Anna Salai',
          city: 'Chennai',
          state: 'Tamil Nadu',
          postcode: '600002',
          country: 'IN',
          phone: '9855555555',
        },
        parcel: { weightGrams: 300, description: 'Silk' },
      });

      expect(booking.trackingNumber).toMatch(/^BD\d{10}$/);
      expect(backend.bookings[0]!.request.recipient).toMatchObject({
        city: 'Chennai',
        postcode: '600002',
        phone: '9855555555',
      });
      await adapter.cancel('BD8');
      await expect(adapter.cancel('BD9')).rejects.toBeInstanceOf(CourierRejectedError);
      await expect(adapter.cancel('BD9')).rejects.toMatchObject({ reason: 'collected' });
    });
  });

  it("ends every simulator scenario in the same status as the simulator's own view", async () => {
    const now = Date.parse('2025-07-01T00:00:00.000Z');
    const core = new SimulatorCore({ now: () => now, timeScale: 1, seed: 1 });
    const numbers = SCENARIO_NAMES.map((scenario, i) => {
      const trackingNumber = `BD77000000${i}`;
      core.register({ trackingNumber, scenario, format: 'bluedart', ageMs: 8 * 24 * 3600_000 });
      return trackingNumber;
    });
    const results = (await withServer(core, (a) => a.track(numbers))) as Found[];

    // Blue Dart's booking scan is outside the table: a parcel never picked up stays PENDING.
    const expected = numbers.map((n) => {
      const status = core.inspect(n)!.view.scans.at(-1)?.status ?? 'PENDING';
      return status === 'INFO_RECEIVED' ? 'PENDING' : status;
    });
    expect(results.map((r) => r.status)).toEqual(expected);
    expect(new Set(expected).size).toBeGreaterThanOrEqual(4);
    const views = numbers.map((n) => core.inspect(n)!.view);
    expect(results.map((r) => r.events.length)).toEqual(
      views.map((v) => v.scans.length + v.returnScans.length - (v.returnTrackingNumber ? 1 : 0)),
    );
  });
});
