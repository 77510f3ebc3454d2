/**
 * The Blue Dart adapter against scripted Blue Dart answers. The fixtures follow the shape of
 * Blue Dart's tracking answers as captured in public integrations of its RoutingServlet
 * (`custawbquery`, XML, `verno=1.3&scan=1`): element names and order, `ScanGroupType` S/T
 * families, scans newest first (oldest first in some answers), Indian wall-clock times,
 * `ToAttention` repeating the consignee, a return leg with `RefNo="074 - <original>"` and the
 * original's `<NewWaybillNo>`, `StatusType` NF and the root `<Error>Incorrect waybill number or
 * No information</Error>` for a waybill it shows nothing about. Each test names its fixture;
 * test/fixtures/couriers/README.md says where each shape comes from.
 */
import { createBlueDartAdapter } from '../../src/couriers/bluedart';
import { mapBlueDartScan } from '../../src/couriers/bluedart-codes';
import { eventKey } from '../../src/couriers/event-key';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type BookingRequest,
  type TrackResult,
} from '../../src/couriers/types';
import { isPickedUpStatus } from '../../src/domain/status';
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
const edited = (name: string, edit: (text: string) => string): Answer => ({
  body: edit(fixture('bluedart', name)),
  contentType: 'text/xml',
});

async function trackOne(answer: Answer, awb = 'BD1000000001') {
  const { adapter, warnings } = setup(answer);
  const [result] = await adapter.track([awb]);
  expect(result!.kind).toBe('found');
  return { result: result as Found, warnings };
}

const rows = (result: Found) => result.events.map((e) => [e.occurredAt, e.rawCode, e.status, e.subStatus]);

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

  it('reads each scan code with its family, newest-first scans in Indian time becoming oldest-first events in UTC', async () => {
    // delivered.xml: a captured answer's shape, both families, a failed attempt and a holiday.
    const { result } = await trackOne(xml('delivered.xml'));

    expect(
      result.events.map((e) => [e.occurredAt, e.occurredAtRaw, e.rawCode, e.status, e.subStatus]),
    ).toEqual([
      ['2025-06-05T06:15:00.000Z', '05-Jun-2025 11:45', 'S-015', 'IN_TRANSIT', 'PICKED_UP'],
      ['2025-06-05T10:02:00.000Z', '05-Jun-2025 15:32', 'S-001', 'IN_TRANSIT', null],
      ['2025-06-05T17:10:00.000Z', '05-Jun-2025 22:40', 'S-003', 'IN_TRANSIT', 'DEPARTED_FACILITY'],
      // 02:15 IST on the 6th is still the 5th in UTC.
      ['2025-06-05T20:45:00.000Z', '06-Jun-2025 02:15', 'S-020', 'IN_TRANSIT', 'ARRIVED_AT_HUB'],
      ['2025-06-06T02:10:00.000Z', '06-Jun-2025 07:40', 'S-009', 'IN_TRANSIT', null],
      // S-002 is "out for delivery" (T-002 would be "out of delivery area").
      ['2025-06-06T03:30:00.000Z', '06-Jun-2025 09:00', 'S-002', 'OUT_FOR_DELIVERY', null],
      // A real failed-attempt code, and a holiday that is no attempt at all.
      ['2025-06-06T08:50:00.000Z', '06-Jun-2025 14:20', 'T-139', 'ATTEMPT_FAIL', 'ADDRESS_PROBLEM'],
      ['2025-06-07T03:00:00.000Z', '07-Jun-2025 08:30', 'T-005', 'IN_TRANSIT', 'HOLIDAY'],
      ['2025-06-08T03:40:00.000Z', '08-Jun-2025 09:10', 'S-002', 'OUT_FOR_DELIVERY', null],
      ['2025-06-08T07:35:00.000Z', '08-Jun-2025 13:05', 'T-000', 'DELIVERED', null],
    ]);
    expect(result.status).toBe('DELIVERED');
    expect(result.skippedScans).toBe(0);
  });

  it('reads scans listed oldest first in the courier order too, also within one minute', async () => {
    // oldest-first.xml: the same parcel, scans oldest first; "arrived" and "further connected" share 22:40.
    const { result } = await trackOne(xml('oldest-first.xml'));

    expect(result.events.slice(0, 3).map((e) => [e.occurredAt, e.rawCode])).toEqual([
      ['2025-06-05T06:15:00.000Z', 'S-015'],
      ['2025-06-05T17:10:00.000Z', 'S-001'],
      ['2025-06-05T17:10:00.000Z', 'S-003'],
    ]);
    expect(result.events.at(-1)!.rawCode).toBe('T-000');
    expect(result.status).toBe('DELIVERED');
  });

  it('places events at the scanned location in India and keys every event with its family', async () => {
    const { result } = await trackOne(xml('delivered.xml'));

    expect(result.events[3]!.location).toEqual({ city: 'GURUGRAM HUB', state: null, country: 'IN' });
    expect(result.events[3]!.rawText).toBe('SHIPMENT ARRIVED AT HUB');
    for (const event of result.events) {
      expect(event.source).toBe('poll');
      expect(event.key).toBe(eventKey('bluedart', event.rawCode, event.occurredAt, event.location));
    }
    expect(new Set(result.events.map((e) => e.key)).size).toBe(10);
  });

  it('reads the expected delivery date as the end of that day in India', async () => {
    const { result } = await trackOne(xml('delivered.xml'));
    expect(result.eta).toBe('2025-06-08T18:29:59.000Z');
  });

  it("removes the consignee's name (also in ToAttention), address, pincode and phone from the stored raw payload", async () => {
    const { result } = await trackOne(xml('delivered.xml'));
    const raw = JSON.stringify(result.raw);

    for (const personal of ['Asha Rao', '12 MG Road', 'Rajiv Chowk', '110001', '9800000000', 'ASHA']) {
      expect(raw).not.toContain(personal);
    }
    expect(result.raw).toMatchObject({
      '@WaybillNo': 'BD1000000001',
      Status: 'SHIPMENT DELIVERED',
      Service: 'Dart Apex - Door To Door',
    });
  });

  it('answers not found for StatusType NF and for a Shipment without Status, in the order asked', async () => {
    // batch-not-found.xml: Blue Dart's per-waybill "Incorrect Waybill number or No Information".
    const { adapter } = setup(xml('batch-not-found.xml'));
    const results = await adapter.track(['BD1000000003', 'BD1000000001', 'BD1000000002']);

    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['BD1000000003', 'not_found'],
      ['BD1000000001', 'found'],
      ['BD1000000002', 'not_found'],
    ]);
  });

  it('reads only Blue Dart\'s own "no information" words in a Status as not found, not a scan\'s words', async () => {
    const { result } = await trackOne(
      edited('delivered.xml', (t) =>
        t.replace(
          '<Status>SHIPMENT DELIVERED</Status>',
          '<Status>SHIPMENT NOT FOUND AT HUB; TRACE INITIATED</Status>',
        ),
      ),
    );
    expect(result.status).toBe('DELIVERED');
  });

  it('answers not found, with a warning, for a number missing from the answer', async () => {
    const { adapter, warnings } = setup(xml('delivered.xml'));
    const results = await adapter.track(['BD1000000001', 'BD7777777777']);

    expect(results).toHaveLength(2);
    expect(results[1]).toEqual({ kind: 'not_found', trackingNumber: 'BD7777777777' });
    expect(warnings.map((w) => w.msg)).toContain('Blue Dart left a waybill out of its answer');
  });

  it('reads a root <Error> saying "no information" as not found for every number, never an outage', async () => {
    // no-information.xml: Blue Dart's whole answer for an unknown, unscanned or cancelled waybill.
    const { adapter } = setup(xml('no-information.xml'));
    const results = await adapter.track(['BD1000000001', 'BD9999999999']);

    expect(results).toEqual([
      { kind: 'not_found', trackingNumber: 'BD1000000001' },
      { kind: 'not_found', trackingNumber: 'BD9999999999' },
    ]);
  });

  it('reads a root <Error> about the licence as a credentials refusal', async () => {
    // license-mismatch.xml: "License Mismatch", Blue Dart's refusal of the call's login or key.
    const { adapter } = setup(xml('license-mismatch.xml'));
    const err = await refusal(adapter.track(['BD1000000001']));

    expect(err.reason).toBe('credentials');
    expect(err.message).not.toContain('lic-0123456789');
  });
});

describe('Blue Dart codes outside the table', () => {
  it('keeps "Online shipment booked" (an unknown code with ScanType PU) as UNKNOWN: no pickup', async () => {
    // online-booked.xml: booked, the booking scan's code is not in the table.
    const { result, warnings } = await trackOne(xml('online-booked.xml'), 'BD1000000004');

    expect(rows(result)).toEqual([['2025-06-05T04:32:00.000Z', 'S-030', 'PENDING', 'UNKNOWN']]);
    expect(result).toMatchObject({ status: 'PENDING', subStatus: 'UNKNOWN' });
    expect(isPickedUpStatus(result.status)).toBe(false);
    expect(result.events.some((e) => isPickedUpStatus(e.status))).toBe(false);
    expect(warnings.map((w) => w.msg)).toContain(
      'Blue Dart sent a scan code outside its table: kept as UNKNOWN',
    );
  });

  it('gives an unknown code the status the parcel already had, with the raw code, never a guess', async () => {
    const { result } = await trackOne(
      edited('delivered.xml', (t) => t.replace('<ScanCode>139</ScanCode>', '<ScanCode>999</ScanCode>')),
    );

    expect(result.events[6]).toMatchObject({
      rawCode: 'T-999',
      status: 'OUT_FOR_DELIVERY',
      subStatus: 'UNKNOWN',
    });
    expect(result.status).toBe('DELIVERED');
  });

  it('reports UNKNOWN as the snapshot when the newest scan is unknown', async () => {
    const { result } = await trackOne(
      edited('delivered.xml', (t) => t.replace('<ScanCode>000</ScanCode>', '<ScanCode>321</ScanCode>')),
    );

    expect(result).toMatchObject({ status: 'OUT_FOR_DELIVERY', subStatus: 'UNKNOWN' });
    expect(result.events.at(-1)).toMatchObject({ rawCode: 'T-321', status: 'OUT_FOR_DELIVERY' });
  });

  it('keeps a code without its ScanGroupType as UNKNOWN: the three digits alone are ambiguous', async () => {
    const { result } = await trackOne(
      edited('delivered.xml', (t) =>
        t.replace(
          '<ScanCode>002</ScanCode>\n        <ScanType>UD</ScanType>\n        <ScanGroupType>S</ScanGroupType>',
          '<ScanCode>002</ScanCode>\n        <ScanType>UD</ScanType>',
        ),
      ),
    );

    expect(result.events[8]).toMatchObject({ rawCode: '002', status: 'IN_TRANSIT', subStatus: 'UNKNOWN' });
  });
});

describe('Blue Dart scans that cannot be read', () => {
  it('skips a scan without ScanCode and counts it; the rest of the answer stands', async () => {
    // older-capture.xml: an older captured answer, one scan without ScanCode or ScanGroupType.
    const { adapter, warnings } = setup(xml('older-capture.xml'));
    const [result, other] = (await adapter.track(['BD1000000001', 'BD1000000002'])) as [Found, TrackResult];

    expect(result.skippedScans).toBe(1);
    expect(result.events.map((e) => e.rawCode)).not.toContain('T-005');
    expect(result.events).toHaveLength(9);
    expect(result.status).toBe('DELIVERED');
    expect(other.kind).toBe('not_found');
    expect(warnings.map((w) => w.msg)).toContain('Blue Dart sent a scan without ScanCode: skipped');
  });

  it('skips a scan with an unreadable date and counts it, logged', async () => {
    const { result, warnings } = await trackOne(
      edited('delivered.xml', (t) =>
        t.replace('<ScanDate>06-Jun-2025</ScanDate>', '<ScanDate>06/06/2025</ScanDate>'),
      ),
    );

    expect(result.skippedScans).toBe(1);
    expect(result.events).toHaveLength(9);
    expect(warnings.map((w) => w.msg)).toContain('Blue Dart sent a scan with an unreadable time: skipped');
  });

  it('falls back on the status letters, cautiously, when no scan can be read', async () => {
    const { result } = await trackOne(
      edited('online-booked.xml', (t) => t.replace(/<ScanCode>030<\/ScanCode>/, '')),
      'BD1000000004',
    );

    expect(result).toMatchObject({ events: [], skippedScans: 1, status: 'PENDING', subStatus: null });
  });
});

describe('Blue Dart returns to origin', () => {
  const outbound = [
    ['2025-06-05T04:30:00.000Z', 'S-030', 'PENDING', 'UNKNOWN'],
    ['2025-06-05T11:30:00.000Z', 'S-015', 'IN_TRANSIT', 'PICKED_UP'],
    ['2025-06-05T17:30:00.000Z', 'S-003', 'IN_TRANSIT', 'DEPARTED_FACILITY'],
    ['2025-06-06T22:30:00.000Z', 'S-020', 'IN_TRANSIT', 'ARRIVED_AT_HUB'],
    ['2025-06-07T04:00:00.000Z', 'S-002', 'OUT_FOR_DELIVERY', null],
    ['2025-06-07T09:30:00.000Z', 'T-013', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
    ['2025-06-08T05:14:00.000Z', 'S-024', 'IN_TRANSIT', null],
    ['2025-06-08T12:15:00.000Z', 'T-074', 'RETURNING', 'RETURN_TO_ORIGIN'],
  ];

  it('links the return leg by RefNo "074 - <original>": returning, then returned when the leg is delivered', async () => {
    // return-to-origin.xml: the captured shape of a return to origin (original + return leg).
    const { adapter } = setup(xml('return-to-origin.xml'));
    const results = await adapter.track(['BD2000000001']);

    expect(results).toHaveLength(1);
    const result = results[0] as Found;
    expect(result.trackingNumber).toBe('BD2000000001');
    expect(rows(result)).toEqual([
      ...outbound,
      // The return leg's first scan shares the minute of the original's T-074 and comes after it…
      ['2025-06-08T12:15:00.000Z', 'S-001', 'RETURNING', 'RETURN_TO_ORIGIN'],
      ['2025-06-08T20:30:00.000Z', 'S-003', 'RETURNING', 'RETURN_TO_ORIGIN'],
      ['2025-06-09T17:40:00.000Z', 'S-020', 'RETURNING', 'RETURN_TO_ORIGIN'],
      ['2025-06-10T00:30:00.000Z', 'S-007', 'RETURNING', 'RETURN_TO_ORIGIN'],
      ['2025-06-10T03:30:00.000Z', 'S-002', 'RETURNING', 'RETURN_TO_ORIGIN'],
      // …until the leg is delivered: back with the shipper.
      ['2025-06-10T08:30:00.000Z', 'T-000', 'RETURNED', null],
    ]);
    expect(result.status).toBe('RETURNED');
  });

  it.each([
    ['RefNo alone', (t: string) => t.replace(/<NewWaybillNo>[^<]*<\/NewWaybillNo>/, '')],
    ['NewWaybillNo alone', (t: string) => t.replace('RefNo="074 - BD2000000001"', 'RefNo="RTO-REF-1"')],
  ])('links the leg by %s too', async (_label, edit) => {
    const { result } = await trackOne(edited('return-to-origin.xml', edit), 'BD2000000001');
    expect(result.status).toBe('RETURNED');
    expect(result.events).toHaveLength(14);
  });

  it('links no leg when neither says so: the parcel stays returning', async () => {
    const { result } = await trackOne(
      edited('return-to-origin.xml', (t) =>
        t
          .replace(/<NewWaybillNo>[^<]*<\/NewWaybillNo>/, '')
          .replace('RefNo="074 - BD2000000001"', 'RefNo="RTO-REF-1"'),
      ),
      'BD2000000001',
    );
    expect(result.status).toBe('RETURNING');
    expect(rows(result)).toEqual(outbound);
  });

  it('never takes a redirect on a fresh waybill for a return', async () => {
    // redirected.xml: T-027 "SHIPMENT REDIRECTED ON FRESH AWB", the new waybill's RefNo "027 - <original>".
    const { result } = await trackOne(xml('redirected.xml'), 'BD2000000003');

    expect(result.events.map((e) => e.rawCode)).toEqual(['S-015', 'T-027']);
    expect(result).toMatchObject({ status: 'IN_TRANSIT', subStatus: 'UNKNOWN' });
  });

  it('stays returning while the return leg travels', async () => {
    const { result } = await trackOne(xml('return-in-progress.xml'), 'BD2000000001');

    expect(result.status).toBe('RETURNING');
    expect(result.subStatus).toBe('RETURN_TO_ORIGIN');
    expect(result.events.map((e) => e.status).slice(-3)).toEqual(['RETURNING', 'RETURNING', 'RETURNING']);
  });

  it('keeps a sensible order when scans share a minute: courier order, return leg after, stages never backwards', async () => {
    // return-same-minute.xml: a whole return to origin within four minutes (a high simulator time scale).
    const { result } = await trackOne(xml('return-same-minute.xml'), 'BD2000000002');

    expect(result.events.map((e) => [e.occurredAt, e.rawCode, e.status])).toEqual([
      ['2025-06-12T04:30:00.000Z', 'S-015', 'IN_TRANSIT'],
      ['2025-06-12T04:30:00.000Z', 'S-003', 'IN_TRANSIT'],
      ['2025-06-12T04:31:00.000Z', 'S-020', 'IN_TRANSIT'],
      ['2025-06-12T04:31:00.000Z', 'S-002', 'OUT_FOR_DELIVERY'],
      ['2025-06-12T04:31:00.000Z', 'T-013', 'ATTEMPT_FAIL'],
      // The original's return scan, then the return leg's, in the same minute.
      ['2025-06-12T04:32:00.000Z', 'T-074', 'RETURNING'],
      ['2025-06-12T04:32:00.000Z', 'S-001', 'RETURNING'],
      ['2025-06-12T04:32:00.000Z', 'S-003', 'RETURNING'],
      // The original's "delivered back to shipper" shares its minute with the leg's last scans:
      // it comes after every RETURNING of that minute, not before.
      ['2025-06-12T04:33:00.000Z', 'S-020', 'RETURNING'],
      ['2025-06-12T04:33:00.000Z', 'S-002', 'RETURNING'],
      ['2025-06-12T04:33:00.000Z', 'T-188', 'RETURNED'],
      ['2025-06-12T04:33:00.000Z', 'T-000', 'RETURNED'],
    ]);
    expect(result.status).toBe('RETURNED');
    expect(result.subStatus).toBeNull();
  });

  it("keeps the return leg in raw, without anybody's personal data", async () => {
    const { result } = await trackOne(xml('return-to-origin.xml'), 'BD2000000001');
    const raw = JSON.stringify(result.raw);

    for (const personal of [
      'Priya Nair',
      'Anna Salai',
      '600002',
      '9811111111',
      'Returns Desk',
      'Andheri',
      '9822222222',
    ]) {
      expect(raw).not.toContain(personal);
    }
    expect(result.raw).toMatchObject({
      NewWaybillNo: 'BD2000000009',
      ReturnLegs: [{ '@WaybillNo': 'BD2000000009', '@RefNo': '074 - BD2000000001' }],
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

  it('treats any other call-wide Error as a retryable outage', async () => {
    const { err } = await retryable({
      body: '<ShipmentData><Error>Service unavailable</Error></ShipmentData>',
      contentType: 'text/xml',
    });
    expect(err.message).toMatch(/Service unavailable/);
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
    ['S-001', 'IN_TRANSIT', null],
    ['S-002', 'OUT_FOR_DELIVERY', null],
    ['S-007', 'IN_TRANSIT', null],
    ['S-015', 'IN_TRANSIT', 'PICKED_UP'],
    ['T-000', 'DELIVERED', null],
    ['T-002', 'EXCEPTION', 'OUT_OF_DELIVERY_AREA'],
    ['T-005', 'IN_TRANSIT', 'HOLIDAY'],
    ['T-011', 'ATTEMPT_FAIL', 'REFUSED'],
    ['T-013', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
    ['T-139', 'ATTEMPT_FAIL', 'ADDRESS_PROBLEM'],
    ['T-074', 'RETURNING', 'RETURN_TO_ORIGIN'],
    ['T-188', 'RETURNED', null],
    ['T-098', 'CANCELLED', 'PICKUP_CANCELLED'],
    ['T-130', 'EXCEPTION', 'DAMAGED'],
    ['T-208', 'AVAILABLE_FOR_PICKUP', 'PARCEL_SHOP'],
  ])('maps %s to %s / %s', (code, status, subStatus) => {
    expect(mapBlueDartScan(code)).toEqual({ status, subStatus });
  });

  it('knows no code without its family, and no code outside the table', () => {
    expect(mapBlueDartScan('002')).toBeNull();
    expect(mapBlueDartScan('S-030')).toBeNull();
    expect(mapBlueDartScan('T-999')).toBeNull();
  });

  it('reads every known scan of a return leg as returning, its delivery as returned', () => {
    expect(mapBlueDartScan('S-002', 'return')).toEqual({
      status: 'RETURNING',
      subStatus: 'RETURN_TO_ORIGIN',
    });
    expect(mapBlueDartScan('T-000', 'return')).toEqual({ status: 'RETURNED', subStatus: null });
    expect(mapBlueDartScan('T-188', 'return')).toEqual({ status: 'RETURNED', subStatus: null });
    expect(mapBlueDartScan('S-030', 'return')).toBeNull();
  });
});
