/**
 * The Blue Dart adapter against scripted Blue Dart answers (fixtures in the real shapes,
 * quirks included): IST times, unknown waybills, outage pages, returns to origin and the
 * consignee's personal data.
 */
import { createBlueDartAdapter, mapBlueDartScan } from '../../src/couriers/bluedart';
import { eventKey } from '../../src/couriers/event-key';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type BookingRequest,
  type TrackResult,
} from '../../src/couriers/types';
import {
  captureLog,
  failure,
  fakeCourier,
  fixture,
  hangingFetch,
  refusal,
  refusedFetch,
  type Answer,
} from './fake-courier';

type Found = Extract<TrackResult, { kind: 'found' }>;

const BASE = 'https://bd.example/bd';

function setup(answer: Answer | (() => Answer)) {
  const fake = fakeCourier(() => (typeof answer === 'function' ? answer() : answer));
  const { log, warnings } = captureLog();
  const adapter = createBlueDartAdapter({
    baseUrl: BASE,
    loginId: 'SHOP1',
    licenceKey: 'lic-0123456789',
    fetch: fake.fetch,
    now: () => Date.parse('2025-06-10T00:00:00Z'),
    log,
    timeoutMs: 2_000,
  });
  return { adapter, requests: fake.requests, warnings };
}

const xml = (name: string): Answer => ({ body: fixture('bluedart', name), contentType: 'text/xml' });

describe('Blue Dart tracking', () => {
  it('is the bluedart courier with batches of 25', () => {
    const { adapter } = setup(xml('delivered.xml'));
    expect(adapter.code).toBe('bluedart');
    expect(adapter.maxBatch).toBe(25);
  });

  it('asks the RoutingServlet for every number at once, with the login and licence key', async () => {
    const { adapter, requests } = setup(xml('delivered.xml'));
    await adapter.track(['BD1000000001', 'BD1000000002']);

    expect(requests).toHaveLength(1);
    const { url, method } = requests[0]!;
    expect(method).toBe('GET');
    expect(url.pathname).toBe('/bd/servlet/RoutingServlet');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      handler: 'tnt',
      action: 'custawbquery',
      loginid: 'SHOP1',
      lickey: 'lic-0123456789',
      awb: 'awb',
      format: 'xml',
      numbers: 'BD1000000001,BD1000000002',
      verno: '1.3',
      scan: '1',
    });
  });

  it('turns newest-first scans in Indian time into oldest-first events in UTC', async () => {
    const { adapter } = setup(xml('delivered.xml'));
    const [result] = (await adapter.track(['BD1000000001'])) as Found[];

    expect(
      result!.events.map((e) => [e.occurredAt, e.occurredAtRaw, e.rawCode, e.status, e.subStatus]),
    ).toEqual([
      ['2025-06-05T06:15:00.000Z', '05-Jun-2025 11:45', '001', 'INFO_RECEIVED', null],
      ['2025-06-05T12:30:00.000Z', '05-Jun-2025 18:00', '015', 'IN_TRANSIT', 'PICKED_UP'],
      ['2025-06-05T17:10:00.000Z', '05-Jun-2025 22:40', '002', 'IN_TRANSIT', null],
      // 02:15 IST on the 6th is still the 5th in UTC.
      ['2025-06-05T20:45:00.000Z', '06-Jun-2025 02:15', '003', 'IN_TRANSIT', null],
      ['2025-06-06T03:30:00.000Z', '06-Jun-2025 09:00', '004', 'OUT_FOR_DELIVERY', null],
      ['2025-06-06T08:50:00.000Z', '06-Jun-2025 14:20', '005', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
      ['2025-06-07T03:40:00.000Z', '07-Jun-2025 09:10', '004', 'OUT_FOR_DELIVERY', null],
      ['2025-06-07T07:35:00.000Z', '07-Jun-2025 13:05', '000', 'DELIVERED', null],
    ]);
    expect(result!.status).toBe('DELIVERED');
  });

  it('places events at the scanned city in India and keys every event', async () => {
    const { adapter } = setup(xml('delivered.xml'));
    const [result] = (await adapter.track(['BD1000000001'])) as Found[];

    expect(result!.events[3]!.location).toEqual({ city: 'GURUGRAM', state: null, country: 'IN' });
    expect(result!.events[3]!.rawText).toBe('SHIPMENT ARRIVED AT HUB');
    for (const event of result!.events) {
      expect(event.source).toBe('poll');
      expect(event.key).toBe(eventKey('bluedart', event.rawCode, event.occurredAt, event.location));
    }
    expect(new Set(result!.events.map((e) => e.key)).size).toBe(8);
  });

  it('reads the expected delivery date as the end of that day in India', async () => {
    const { adapter } = setup(xml('delivered.xml'));
    const [result] = (await adapter.track(['BD1000000001'])) as Found[];

    expect(result!.eta).toBe('2025-06-08T18:29:59.000Z');
  });

  it("removes the consignee's name, address, pincode and phone from the stored raw payload", async () => {
    const { adapter } = setup(xml('delivered.xml'));
    const [result] = (await adapter.track(['BD1000000001'])) as Found[];
    const raw = JSON.stringify(result!.raw);

    for (const personal of ['Asha Rao', '12 MG Road', 'Rajiv Chowk', '110001', '9800000000', 'ASHA']) {
      expect(raw).not.toContain(personal);
    }
    expect(result!.raw).toMatchObject({
      '@WaybillNo': 'BD1000000001',
      Status: 'SHIPMENT DELIVERED',
      Service: 'Apex & Priority',
    });
  });

  it('answers not found for a Shipment without Status or with an Error, in the order asked', async () => {
    const { adapter } = setup(xml('delivered.xml'));
    const results = await adapter.track(['BD1000000003', 'BD1000000001', 'BD1000000002']);

    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['BD1000000003', 'not_found'],
      ['BD1000000001', 'found'],
      ['BD1000000002', 'not_found'],
    ]);
  });

  it('answers not found, with a warning, for a number missing from the answer', async () => {
    const { adapter, warnings } = setup(xml('delivered.xml'));
    const results = await adapter.track(['BD1000000001', 'BD7777777777']);

    expect(results).toHaveLength(2);
    expect(results[1]).toEqual({ kind: 'not_found', trackingNumber: 'BD7777777777' });
    expect(warnings.map((w) => w.msg)).toContain('Blue Dart left a waybill out of its answer');
  });
});

describe('Blue Dart returns to origin', () => {
  it('folds the return leg into the original: returning, then returned when the leg is delivered', async () => {
    const { adapter } = setup(xml('return-to-origin.xml'));
    const results = await adapter.track(['BD2000000001']);

    expect(results).toHaveLength(1);
    const result = results[0] as Found;
    expect(result.trackingNumber).toBe('BD2000000001');
    expect(result.events.map((e) => [e.occurredAt, e.rawCode, e.status])).toEqual([
      ['2025-06-05T04:30:00.000Z', '001', 'INFO_RECEIVED'],
      ['2025-06-05T11:30:00.000Z', '015', 'IN_TRANSIT'],
      ['2025-06-05T17:30:00.000Z', '002', 'IN_TRANSIT'],
      ['2025-06-06T22:30:00.000Z', '003', 'IN_TRANSIT'],
      ['2025-06-07T04:00:00.000Z', '004', 'OUT_FOR_DELIVERY'],
      ['2025-06-07T09:30:00.000Z', '005', 'ATTEMPT_FAIL'],
      ['2025-06-08T12:30:00.000Z', '074', 'RETURNING'],
      // The return leg's own scans: the parcel is on its way back…
      ['2025-06-08T12:35:00.000Z', '001', 'RETURNING'],
      ['2025-06-08T20:30:00.000Z', '002', 'RETURNING'],
      ['2025-06-10T00:30:00.000Z', '003', 'RETURNING'],
      ['2025-06-10T03:30:00.000Z', '004', 'RETURNING'],
      // …until the leg is delivered: back with the shipper.
      ['2025-06-10T08:30:00.000Z', '000', 'RETURNED'],
    ]);
    expect(result.status).toBe('RETURNED');
  });

  it('stays returning while the return leg travels', async () => {
    const { adapter } = setup(xml('return-in-progress.xml'));
    const [result] = (await adapter.track(['BD2000000001'])) as Found[];

    expect(result!.status).toBe('RETURNING');
    expect(result!.subStatus).toBe('RETURN_TO_ORIGIN');
    expect(result!.events.map((e) => e.status).slice(-3)).toEqual(['RETURNING', 'RETURNING', 'RETURNING']);
  });

  it('keeps a sensible order when scans share a minute: courier order, return leg after, stages never backwards', async () => {
    // A high simulator time scale: the whole return to origin within four minutes.
    const { adapter } = setup(xml('return-same-minute.xml'));
    const [result] = (await adapter.track(['BD2000000002'])) as Found[];

    expect(result!.events.map((e) => [e.occurredAt, e.rawCode, e.status])).toEqual([
      ['2025-06-12T04:30:00.000Z', '001', 'INFO_RECEIVED'],
      ['2025-06-12T04:30:00.000Z', '015', 'IN_TRANSIT'],
      ['2025-06-12T04:30:00.000Z', '002', 'IN_TRANSIT'],
      ['2025-06-12T04:31:00.000Z', '003', 'IN_TRANSIT'],
      ['2025-06-12T04:31:00.000Z', '004', 'OUT_FOR_DELIVERY'],
      ['2025-06-12T04:31:00.000Z', '005', 'ATTEMPT_FAIL'],
      // The original's return scan, then the return leg's, in the same minute.
      ['2025-06-12T04:32:00.000Z', '074', 'RETURNING'],
      ['2025-06-12T04:32:00.000Z', '001', 'RETURNING'],
      ['2025-06-12T04:32:00.000Z', '002', 'RETURNING'],
      // The original's "returned to shipper" shares its minute with the leg's last scans:
      // it comes after every RETURNING of that minute, not before.
      ['2025-06-12T04:33:00.000Z', '003', 'RETURNING'],
      ['2025-06-12T04:33:00.000Z', '004', 'RETURNING'],
      ['2025-06-12T04:33:00.000Z', '188', 'RETURNED'],
      ['2025-06-12T04:33:00.000Z', '000', 'RETURNED'],
    ]);
    expect(result!.status).toBe('RETURNED');
    expect(result!.subStatus).toBeNull();
  });

  it('reports the status of the last event in that order as the snapshot', async () => {
    // The original says "returned to shipper" in the same minute as the leg's last scan,
    // before the leg shows its delivered scan.
    const body = fixture('bluedart', 'return-same-minute.xml').replace(
      /<ScanDetail>\s*<Scan>SHIPMENT DELIVERED<\/Scan>[\s\S]*?<\/ScanDetail>/,
      '',
    );
    const { adapter } = setup({ body, contentType: 'text/xml' });
    const [result] = (await adapter.track(['BD2000000002'])) as Found[];

    expect(result!.events.map((e) => [e.rawCode, e.status]).slice(-3)).toEqual([
      ['003', 'RETURNING'],
      ['004', 'RETURNING'],
      ['188', 'RETURNED'],
    ]);
    expect(result!.status).toBe(result!.events[result!.events.length - 1]!.status);
    expect(result!.status).toBe('RETURNED');
  });

  it("keeps the return leg in raw, without anybody's personal data", async () => {
    const { adapter } = setup(xml('return-to-origin.xml'));
    const [result] = (await adapter.track(['BD2000000001'])) as Found[];
    const raw = JSON.stringify(result!.raw);

    for (const personal of [
      'Priya Nair',
      'Anna Salai',
      '600002',
      '9811111111',
      'Kala Crafts',
      'Andheri',
      '9822222222',
    ]) {
      expect(raw).not.toContain(personal);
    }
    expect(result!.raw).toMatchObject({
      ReturnLegs: [{ '@WaybillNo': 'BD2000000001R', '@RefNo': 'BD2000000001' }],
    });
  });
});

describe('Blue Dart failures', () => {
  const retryable = async (answer: Answer) => {
    const { adapter, warnings } = setup(answer);
    const err = await failure(adapter.track(['BD1000000001']));
    expect(err).toBeInstanceOf(CourierUnavailableError);
    return { err: err as CourierUnavailableError, warnings };
  };

  it('treats an HTML outage page answered with 200 as a retryable outage', async () => {
    const { err, warnings } = await retryable({
      body: fixture('bluedart', 'outage.html'),
      contentType: 'text/html',
    });

    expect(err.message).toMatch(/HTML/);
    expect(err.details.bodySnippet).toContain('Service Temporarily Unavailable');
    expect(err.details.bodySnippet!.length).toBeLessThanOrEqual(500);
    expect(warnings).toHaveLength(1);
  });

  it('treats an HTML page even when labelled as XML as a retryable outage', async () => {
    await retryable({ body: fixture('bluedart', 'outage.html'), contentType: 'text/xml' });
  });

  it('treats a 503 as a retryable outage', async () => {
    const { err } = await retryable({
      status: 503,
      body: fixture('bluedart', 'outage.html'),
      contentType: 'text/html',
    });
    expect(err.details.status).toBe(503);
  });

  it('treats cut-off XML as a retryable outage, with the consignee redacted from the snippet', async () => {
    const text = fixture('bluedart', 'delivered.xml');
    const { err, warnings } = await retryable({ body: text.slice(0, 1200), contentType: 'text/xml' });

    expect(err.details.bodySnippet).toContain('BD1000000001');
    expect(err.details.bodySnippet).not.toContain('Asha Rao');
    expect(err.details.bodySnippet).not.toContain('9800000000');
    expect(JSON.stringify(warnings)).not.toContain('Asha Rao');
  });

  it('treats XML that is not a ShipmentData document as a retryable outage', async () => {
    await retryable({
      body: '<?xml version="1.0"?><Fault><Reason>busy</Reason></Fault>',
      contentType: 'text/xml',
    });
  });

  it('treats a call-wide Error as a retryable outage', async () => {
    const { err } = await retryable({
      body: '<ShipmentData><Error>Service unavailable</Error></ShipmentData>',
      contentType: 'text/xml',
    });
    expect(err.message).toMatch(/Service unavailable/);
  });

  it('treats a scan with an unreadable date as a retryable outage, never a silent "no change"', async () => {
    const body = fixture('bluedart', 'delivered.xml').replace(
      '<ScanDate>06-Jun-2025</ScanDate>',
      '<ScanDate>06/06/2025</ScanDate>',
    );
    const { err } = await retryable({ body, contentType: 'text/xml' });
    expect(err.message).toMatch(/ScanDate/);
  });

  it('reads Retry-After seconds from a 429', async () => {
    const { err } = await retryable({
      status: 429,
      body: 'Too Many Requests',
      contentType: 'text/plain',
      headers: { 'retry-after': '45' },
    });
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 45_000 });
  });

  it('treats a timeout and a refused connection as retryable outages', async () => {
    for (const fetchImpl of [hangingFetch(), refusedFetch()]) {
      const adapter = createBlueDartAdapter({
        baseUrl: BASE,
        loginId: 'a',
        licenceKey: 'b',
        fetch: fetchImpl,
        timeoutMs: 20,
      });
      await expect(adapter.track(['BD1000000001'])).rejects.toBeInstanceOf(CourierUnavailableError);
    }
  });

  it('rejects with a credentials refusal when the licence key is refused, without repeating the key', async () => {
    for (const status of [401, 403]) {
      const { adapter } = setup({
        status,
        body: '<ShipmentData><Error>Invalid login id or licence key</Error></ShipmentData>',
        contentType: 'text/xml',
      });
      const err = await refusal(adapter.track(['BD1000000001']));

      expect(err.reason).toBe('credentials');
      expect(err.message).not.toContain('lic-0123456789');
    }
  });

  it('rejects a tracking call answered 400 as invalid and 404 as unknown', async () => {
    const answer = (status: number): Answer => ({
      status,
      body: '<ShipmentData><Error>Refused</Error></ShipmentData>',
      contentType: 'text/xml',
    });
    expect((await refusal(setup(answer(400)).adapter.track(['BD1']))).reason).toBe('invalid');
    expect((await refusal(setup(answer(404)).adapter.track(['BD1']))).reason).toBe('unknown_booking');
  });

  it('refuses a batch above 25 numbers without calling Blue Dart', async () => {
    const { adapter, requests } = setup(xml('delivered.xml'));
    const err = await failure(adapter.track(Array.from({ length: 26 }, (_, i) => `BD${5000 + i}`)));

    expect(err).not.toBeInstanceOf(CourierUnavailableError);
    expect(err).not.toBeInstanceOf(CourierRejectedError);
    expect(err.message).toMatch(/at most 25/);
    expect(requests).toHaveLength(0);
  });
});

describe('Blue Dart booking and cancelling', () => {
  const booking: BookingRequest = {
    reference: 'shp_789',
    sender: { name: 'Kala Crafts', city: 'Mumbai', postcode: '400053', country: 'IN' },
    recipient: {
      name: 'Rahul Sharma',
      line1: '7 Park Street',
      city: 'Kolkata',
      state: 'West Bengal',
      postcode: '700016',
      country: 'IN',
      phone: '9833333333',
    },
    parcel: { weightGrams: 1200, description: 'Brass lamp' },
  };

  it('generates a waybill with our reference and the consignee', async () => {
    const { adapter, requests } = setup({ body: fixture('bluedart', 'generate.json') });
    const result = await adapter.book(booking);

    expect(result).toEqual({ trackingNumber: 'BD3000000001', courierRef: null });
    expect(requests[0]!.url.pathname).toBe('/bd/waybill/generate');
    expect(requests[0]!.body).toEqual({
      reference: 'shp_789',
      consignee: {
        name: 'Rahul Sharma',
        address1: '7 Park Street',
        city: 'Kolkata',
        state: 'West Bengal',
        pincode: '700016',
        country: 'IN',
        mobile: '9833333333',
      },
      weight_grams: 1200,
    });
  });

  it('rejects a booking Blue Dart does not call valid', async () => {
    const { adapter } = setup({ body: '{"Status":"Invalid","Message":"Pincode not serviceable"}' });
    expect((await refusal(adapter.book(booking))).reason).toBe('invalid');
  });

  it('classifies a refused booking by its status, never as collected', async () => {
    const answer = (status: number, message: string): Answer => ({
      status,
      body: JSON.stringify({ Status: 'Invalid', Message: message }),
    });
    const reasons = [];
    for (const [status, message] of [
      [422, 'consignee.pincode is required'],
      [401, 'Invalid login id or licence key'],
      [403, 'Licence key is not authorised for this service'],
      [409, 'AWB BD3000000001 is already picked up'],
    ] as const) {
      reasons.push((await refusal(setup(answer(status, message)).adapter.book(booking))).reason);
    }
    expect(reasons).toEqual(['invalid', 'credentials', 'credentials', 'invalid']);
  });

  it('cancels a waybill', async () => {
    const { adapter, requests } = setup({ body: '{"AWBNo":"BD3000000001","Status":"Cancelled"}' });
    await adapter.cancel('BD3000000001');

    expect(requests[0]!.url.pathname).toBe('/bd/waybill/cancel');
    expect(requests[0]!.body).toEqual({ AWBNo: 'BD3000000001' });
  });

  it('refuses to cancel a parcel already picked up, saying so: the collected refusal', async () => {
    const { adapter } = setup({ status: 409, body: fixture('bluedart', 'cancel-picked-up.json') });
    const err = await refusal(adapter.cancel('BD3000000001'));

    expect(err.reason).toBe('collected');
    expect(err.message).toMatch(/already picked up/);
  });

  it.each([
    [
      'a 409 that does not say picked up',
      'invalid',
      409,
      '{"Status":"Rejected","Message":"Cancellation window closed"}',
    ],
    ['a 404', 'unknown_booking', 404, fixture('bluedart', 'cancel-not-found.json')],
    [
      '"Invalid Waybill No." with 400',
      'unknown_booking',
      400,
      fixture('bluedart', 'cancel-invalid-waybill.json'),
    ],
    ['a 422', 'invalid', 422, '{"Status":"Invalid","Message":"AWBNo is required"}'],
    ['a 401', 'credentials', 401, '{"Status":"Invalid","Message":"Invalid login id or licence key"}'],
    ['a 403', 'credentials', 403, '{"Status":"Invalid","Message":"Licence key is not authorised"}'],
  ])('reads %s on a cancel as %s', async (_label, reason, status, body) => {
    const { adapter } = setup({ status, body });
    expect((await refusal(adapter.cancel('BD3000000001'))).reason).toBe(reason);
  });

  it('keeps 429, 5xx and an outage page on a cancel retryable', async () => {
    for (const answer of [
      { status: 429, body: 'Too Many Requests', contentType: 'text/plain' },
      { status: 502, body: 'Bad Gateway', contentType: 'text/plain' },
      { status: 200, body: fixture('bluedart', 'outage.html'), contentType: 'text/html' },
    ]) {
      await expect(setup(answer).adapter.cancel('BD3000000001')).rejects.toBeInstanceOf(
        CourierUnavailableError,
      );
    }
  });

  it('treats an outage page on booking as a retryable outage', async () => {
    const { adapter } = setup({ body: fixture('bluedart', 'outage.html'), contentType: 'text/html' });
    await expect(adapter.book(booking)).rejects.toBeInstanceOf(CourierUnavailableError);
  });
});

describe('Blue Dart scan codes', () => {
  it.each([
    ['001', 'INFO_RECEIVED', null],
    ['015', 'IN_TRANSIT', 'PICKED_UP'],
    ['002', 'IN_TRANSIT', null],
    ['003', 'IN_TRANSIT', null],
    ['004', 'OUT_FOR_DELIVERY', null],
    ['005', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
    ['006', 'AVAILABLE_FOR_PICKUP', null],
    ['007', 'EXCEPTION', null],
    ['000', 'DELIVERED', null],
    ['074', 'RETURNING', 'RETURN_TO_ORIGIN'],
    ['188', 'RETURNED', null],
    ['099', 'CANCELLED', null],
  ])('maps scan code %s to %s / %s', (code, status, subStatus) => {
    expect(mapBlueDartScan(code, 'ANY TEXT')).toEqual({ status, subStatus });
  });

  it('tells damaged from lost from an address problem on code 007', () => {
    expect(mapBlueDartScan('007', 'SHIPMENT DAMAGED IN TRANSIT')?.subStatus).toBe('DAMAGED');
    expect(mapBlueDartScan('007', 'SHIPMENT LOST')?.subStatus).toBe('LOST');
    expect(mapBlueDartScan('007', 'INCOMPLETE ADDRESS')?.subStatus).toBe('ADDRESS_PROBLEM');
  });

  it('reads an unknown code by its scan type, and says so', async () => {
    const body = fixture('bluedart', 'delivered.xml').replace(
      '<ScanCode>002</ScanCode>',
      '<ScanCode>321</ScanCode>',
    );
    const { adapter, warnings } = setup({ body, contentType: 'text/xml' });
    const [result] = (await adapter.track(['BD1000000001'])) as Found[];

    expect(result!.events[2]).toMatchObject({ rawCode: '321', status: 'IN_TRANSIT' });
    expect(warnings.map((w) => w.msg)).toContain('Blue Dart sent an unknown scan code');
  });
});
