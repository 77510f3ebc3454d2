/**
 * The EasyParcel adapter against scripted EasyParcel answers (fixtures in the real shapes,
 * quirks included): how tracking maps onto the taxonomy, how tokens are kept, how failures
 * are classed.
 */
import { gzipSync } from 'node:zlib';
import {
  createEasyParcelAdapter,
  mapEasyParcelStatus,
  parseEasyParcelLocation,
} from '../../src/couriers/easyparcel';
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
  type RecordedRequest,
} from './fake-courier';

type Found = Extract<TrackResult, { kind: 'found' }>;

const BASE = 'https://ep.example/api';
const T0 = Date.parse('2025-03-06T06:00:00.000Z');

function tokenAnswer(token: string, expiresIn = 3600): Answer {
  return { body: JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: expiresIn }) };
}

/** A courier whose token endpoint issues tok-1, tok-2, … and whose other routes `route` answers. */
function courier(route: (request: RecordedRequest, token: string | null) => Answer) {
  let issued = 0;
  return fakeCourier((request) => {
    if (request.url.pathname.endsWith('/oauth/token')) return tokenAnswer(`tok-${++issued}`);
    const auth = request.headers.get('authorization');
    return route(request, auth?.replace(/^Bearer /, '') ?? null);
  });
}

function setup(route: (request: RecordedRequest, token: string | null) => Answer, now = () => T0) {
  const fake = courier(route);
  const { log, warnings } = captureLog();
  const adapter = createEasyParcelAdapter({
    baseUrl: `${BASE}/`,
    clientId: 'shop-1',
    clientSecret: 's3cret',
    fetch: fake.fetch,
    now,
    log,
    timeoutMs: 2_000,
  });
  const tokenCalls = () => fake.requests.filter((r) => r.url.pathname.endsWith('/oauth/token')).length;
  return { adapter, requests: fake.requests, warnings, tokenCalls };
}

const tracking = () => ({ body: fixture('easyparcel', 'tracking-mixed.json') });

describe('EasyParcel tracking', () => {
  it('is the easyparcel courier with batches of 100', () => {
    const { adapter } = setup(tracking);
    expect(adapter.code).toBe('easyparcel');
    expect(adapter.maxBatch).toBe(100);
  });

  it('turns an unordered status log with mixed date formats into oldest-first events in UTC', async () => {
    const { adapter, requests } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000001'])) as Found[];

    expect(requests.find((r) => r.url.pathname === '/api/shipment/tracking_status')!.body).toEqual({
      awb_numbers: ['EP1000000001'],
    });
    expect(result!.events.map((e) => [e.occurredAt, e.occurredAtRaw])).toEqual([
      ['2025-03-03T01:05:00.000Z', '2025-03-03T01:05:00Z'],
      // "YYYY-MM-DD HH:mm:ss" is Malaysia time, eight hours ahead of UTC.
      ['2025-03-03T07:00:00.000Z', '2025-03-03 15:00:00'],
      ['2025-03-03T15:00:00.000Z', '2025-03-03T15:00:00Z'],
      ['2025-03-05T00:30:00.000Z', '2025-03-05 08:30:00'],
      ['2025-03-05T01:15:00.000Z', '2025-03-05T01:15:00Z'],
      ['2025-03-05T05:40:00.000Z', '2025-03-05 13:40:00'],
      ['2025-03-06T01:10:00.000Z', '2025-03-06T01:10:00Z'],
      ['2025-03-06T04:02:33.000Z', '2025-03-06 12:02:33'],
    ]);
  });

  it('reads out-for-delivery and failed attempts from the text, and lets the code win over other text', async () => {
    const { adapter } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000001'])) as Found[];

    expect(result!.events.map((e) => [e.rawCode, e.rawText, e.status, e.subStatus])).toEqual([
      ['2', 'Shipment information received', 'INFO_RECEIVED', 'TO_BE_COLLECTED'],
      ['3', 'Parcel picked up from shipper', 'IN_TRANSIT', 'PICKED_UP'],
      ['4', 'Departed sorting facility', 'IN_TRANSIT', null],
      // The text says "Delivered", the code says in transit: the code wins.
      ['4', 'Delivered to Senai hub', 'IN_TRANSIT', null],
      ['4', 'With courier for delivery', 'OUT_FOR_DELIVERY', null],
      ['8', 'Recipient not available', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
      ['4', 'Out for delivery', 'OUT_FOR_DELIVERY', null],
      ['5', 'Delivered', 'DELIVERED', null],
    ]);
    expect(result!.status).toBe('DELIVERED');
    expect(result!.subStatus).toBeNull();
    expect(result!.eta).toBeNull();
  });

  it('places events in Malaysia from "City, State", keeps null locations empty, and keys every event', async () => {
    const { adapter } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000001'])) as Found[];

    expect(result!.events[0]!.location).toEqual({ city: null, state: null, country: null });
    expect(result!.events[1]!.location).toEqual({ city: 'Shah Alam', state: 'Selangor', country: 'MY' });
    for (const event of result!.events) {
      expect(event.source).toBe('poll');
      expect(event.key).toBe(eventKey('easyparcel', event.rawCode, event.occurredAt, event.location));
    }
    expect(new Set(result!.events.map((e) => e.key)).size).toBe(result!.events.length);
  });

  it('answers every number in the order asked, not-found items included', async () => {
    const { adapter } = setup(tracking);
    const results = await adapter.track(['EP1000000004', 'EP1000000002', 'EP1000000003', 'EP1000000001']);

    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['EP1000000004', 'found'],
      ['EP1000000002', 'not_found'],
      ['EP1000000003', 'found'],
      ['EP1000000001', 'found'],
    ]);
  });

  it('sees a return in progress in the text of codes 4 and 8', async () => {
    const { adapter } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000003'])) as Found[];

    expect(result!.events.map((e) => [e.occurredAt, e.status, e.subStatus])).toEqual([
      ['2025-03-01T02:00:00.000Z', 'IN_TRANSIT', 'PICKED_UP'],
      ['2025-03-02T01:00:00.000Z', 'ATTEMPT_FAIL', null],
      ['2025-03-03T03:00:00.000Z', 'RETURNING', null],
      ['2025-03-04T02:00:00.000Z', 'RETURNING', null],
    ]);
    expect(result!.status).toBe('RETURNING');
  });

  it('falls back to the latest status code when the status log is empty', async () => {
    const { adapter } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000004'])) as Found[];

    expect(result).toMatchObject({ kind: 'found', status: 'PENDING', subStatus: 'SCHEDULED', events: [] });
  });

  it('orders same-second events by how far along they put the parcel, whatever order the log used', async () => {
    const body = JSON.stringify({
      status_code: 200,
      message: 'success',
      data: {
        results: [
          {
            status: 'success',
            awb_number: 'EP5',
            latest_shipment_status_code: 4,
            status_log: [
              {
                event_date: '2025-03-06 12:00:00',
                shipment_status_code: 5,
                tracking_status: 'Delivered',
                location: 'Ipoh, Perak',
              },
              {
                event_date: '2025-03-06T04:00:00Z',
                shipment_status_code: 4,
                tracking_status: 'Out for delivery',
                location: 'Ipoh, Perak',
              },
            ],
          },
        ],
      },
    });
    const { adapter } = setup(() => ({ body }));
    const [result] = (await adapter.track(['EP5'])) as Found[];

    expect(result!.events.map((e) => e.status)).toEqual(['OUT_FOR_DELIVERY', 'DELIVERED']);
    expect(result!.status).toBe('DELIVERED');
  });

  it('keeps the result item as raw (it names no person)', async () => {
    const { adapter } = setup(tracking);
    const [result] = (await adapter.track(['EP1000000003'])) as Found[];

    expect(result!.raw).toMatchObject({
      awb_number: 'EP1000000003',
      latest_tracking_status: 'Returning to shipper',
    });
  });

  it('answers not found, with a warning, for a number the courier left out', async () => {
    const { adapter, warnings } = setup(tracking);
    const results = await adapter.track(['EP1000000001', 'EP9999999999']);

    expect(results[1]).toEqual({ kind: 'not_found', trackingNumber: 'EP9999999999' });
    expect(warnings.map((w) => w.msg)).toContain('EasyParcel left a number out of its answer');
  });

  it('flags a status code it does not know as an exception for a person to look at', async () => {
    const body = JSON.stringify({
      status_code: 200,
      message: 'success',
      data: {
        results: [
          {
            status: 'success',
            awb_number: 'EP1',
            latest_shipment_status_code: 42,
            status_log: [
              {
                event_date: '2025-03-01T02:00:00Z',
                shipment_status_code: 42,
                tracking_status: 'Teleported',
                location: null,
              },
            ],
          },
        ],
      },
    });
    const { adapter, warnings } = setup(() => ({ body }));
    const [result] = (await adapter.track(['EP1'])) as Found[];

    expect(result).toMatchObject({ status: 'EXCEPTION', subStatus: 'UNMAPPED_CODE' });
    expect(result!.events[0]!.rawCode).toBe('42');
    expect(warnings.map((w) => w.msg)).toContain('EasyParcel sent an unknown status code');
  });

  it('refuses a batch above 100 numbers without calling EasyParcel', async () => {
    const { adapter, requests } = setup(tracking);
    const numbers = Array.from({ length: 101 }, (_, i) => `EP${1000 + i}`);
    const err = await failure(adapter.track(numbers));

    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(CourierUnavailableError);
    expect(err).not.toBeInstanceOf(CourierRejectedError);
    expect(err.message).toMatch(/at most 100/);
    expect(requests).toHaveLength(0);
  });

  it('answers an empty batch without calling EasyParcel', async () => {
    const { adapter, requests } = setup(tracking);
    await expect(adapter.track([])).resolves.toEqual([]);
    expect(requests).toHaveLength(0);
  });
});

describe('EasyParcel access tokens', () => {
  it('fetches a token once with the client credentials and reuses it', async () => {
    const { adapter, requests, tokenCalls } = setup(tracking);
    await adapter.track(['EP1000000001']);
    await adapter.track(['EP1000000003']);

    expect(tokenCalls()).toBe(1);
    expect(requests[0]!.body).toEqual({
      grant_type: 'client_credentials',
      client_id: 'shop-1',
      client_secret: 's3cret',
    });
    const bearers = requests
      .filter((r) => r.headers.has('authorization'))
      .map((r) => r.headers.get('authorization'));
    expect(bearers).toEqual(['Bearer tok-1', 'Bearer tok-1']);
  });

  it('refreshes the token shortly before it expires', async () => {
    let now = T0;
    const { adapter, requests, tokenCalls } = setup(tracking, () => now);
    await adapter.track(['EP1000000001']);
    now += 3600_000 - 30_000; // 30 s before the hour-long token would expire
    await adapter.track(['EP1000000001']);

    expect(tokenCalls()).toBe(2);
    expect(requests[requests.length - 1]!.headers.get('authorization')).toBe('Bearer tok-2');
  });

  it('shares one token request between concurrent calls', async () => {
    const { adapter, tokenCalls } = setup(tracking);
    await Promise.all([
      adapter.track(['EP1000000001']),
      adapter.track(['EP1000000003']),
      adapter.track(['EP1000000004']),
    ]);

    expect(tokenCalls()).toBe(1);
  });

  it('on a 401 fetches a new token and retries the call once', async () => {
    const { adapter, tokenCalls, requests } = setup((_request, token) =>
      token === 'tok-1' ? { status: 401, body: fixture('easyparcel', 'unauthenticated.json') } : tracking(),
    );
    const [result] = await adapter.track(['EP1000000001']);

    expect(result!.kind).toBe('found');
    expect(tokenCalls()).toBe(2);
    expect(requests.map((r) => r.url.pathname)).toEqual([
      '/api/oauth/token',
      '/api/shipment/tracking_status',
      '/api/oauth/token',
      '/api/shipment/tracking_status',
    ]);
  });

  it('gives up with a credentials refusal when a fresh token is refused too', async () => {
    const { adapter, tokenCalls } = setup(() => ({
      status: 401,
      body: fixture('easyparcel', 'unauthenticated.json'),
    }));
    const err = await refusal(adapter.track(['EP1000000001']));

    expect(err.reason).toBe('credentials');
    expect(tokenCalls()).toBe(2);
  });

  it('rejects with a credentials refusal when the client credentials are refused', async () => {
    const fake = fakeCourier(() => ({
      status: 401,
      body: '{"status_code":401,"message":"Invalid client credentials"}',
    }));
    const adapter = createEasyParcelAdapter({
      baseUrl: BASE,
      clientId: 'x',
      clientSecret: 'top-secret-value',
      fetch: fake.fetch,
    });
    const err = await refusal(adapter.track(['EP1000000001']));

    expect(err.reason).toBe('credentials');
    expect(err.message).toMatch(/EASYPARCEL_CLIENT_ID/);
    expect(err.message).not.toContain('top-secret-value');
    expect(fake.requests).toHaveLength(1);
  });
});

describe('EasyParcel failures', () => {
  const retryable = async (answer: Answer) => {
    const { adapter, warnings } = setup(() => answer);
    const err = await failure(adapter.track(['EP1000000001']));
    expect(err).toBeInstanceOf(CourierUnavailableError);
    return { err: err as CourierUnavailableError, warnings };
  };

  it('treats a cut-off JSON body as a retryable outage, with a short body snippet and a warning', async () => {
    const text = fixture('easyparcel', 'tracking-mixed.json');
    const { err, warnings } = await retryable({ body: text.slice(0, Math.floor(text.length * 0.8)) });

    expect(err.details.status).toBe(200);
    expect(err.details.bodySnippet!.length).toBeLessThanOrEqual(500);
    expect(err.details.bodySnippet).toContain('EP1000000001');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ courier: 'easyparcel', status: 200 });
  });

  it('treats gzip bytes sent without Content-Encoding as a retryable outage', async () => {
    const { err } = await retryable({ body: gzipSync(fixture('easyparcel', 'tracking-mixed.json')) });
    expect(err.details.status).toBe(200);
  });

  it('treats an HTML page as a retryable outage', async () => {
    await retryable({ body: fixture('bluedart', 'outage.html'), contentType: 'text/html' });
  });

  it('treats a JSON answer without data.results as a retryable outage', async () => {
    const { err } = await retryable({ body: '{"status_code":200,"message":"success","data":{}}' });
    expect(err.message).toMatch(/data\.results/);
  });

  it('treats an event with an unreadable date as a retryable outage, never a silent "no change"', async () => {
    const body = fixture('easyparcel', 'tracking-mixed.json').replace(
      '2025-03-05 13:40:00',
      '05/03/2025 1:40 PM',
    );
    const { err } = await retryable({ body });
    expect(err.message).toMatch(/event_date/);
  });

  it('treats a 5xx as a retryable outage', async () => {
    const { err } = await retryable({ status: 502, body: 'Bad Gateway', contentType: 'text/plain' });
    expect(err.details.status).toBe(502);
  });

  it('reads Retry-After seconds from a 429', async () => {
    const { err } = await retryable({
      status: 429,
      body: fixture('easyparcel', 'rate-limited.json'),
      headers: { 'retry-after': '30' },
    });
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 30_000 });
  });

  it('reads a Retry-After date from a 429', async () => {
    const { err } = await retryable({
      status: 429,
      body: fixture('easyparcel', 'rate-limited.json'),
      headers: { 'retry-after': new Date(T0 + 90_000).toUTCString() },
    });
    expect(err.details.retryAfterMs).toBe(90_000);
  });

  it('treats a timeout as a retryable outage', async () => {
    const { log, warnings } = captureLog();
    const adapter = createEasyParcelAdapter({
      baseUrl: BASE,
      clientId: 'a',
      clientSecret: 'b',
      fetch: hangingFetch(),
      timeoutMs: 20,
      log,
    });
    const err = await failure(adapter.track(['EP1000000001']));

    expect(err).toBeInstanceOf(CourierUnavailableError);
    expect(err.message).toMatch(/within 20 ms/);
    expect(warnings).toHaveLength(1);
  });

  it('treats a refused connection as a retryable outage', async () => {
    const adapter = createEasyParcelAdapter({
      baseUrl: BASE,
      clientId: 'a',
      clientSecret: 'b',
      fetch: refusedFetch(),
    });
    const err = await failure(adapter.track(['EP1000000001']));

    expect(err).toBeInstanceOf(CourierUnavailableError);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it.each([
    [400, 'invalid'],
    [403, 'credentials'],
    [404, 'unknown_booking'],
    [422, 'invalid'],
  ])('rejects a tracking call answered %i for good, as %s', async (status, reason) => {
    const { adapter } = setup(() => ({ status, body: `{"status_code":${status},"message":"Refused"}` }));
    const err = await refusal(adapter.track(['EP1000000001']));
    expect(err.reason).toBe(reason);
    expect(err.message).toContain(String(status));
  });
});

describe('EasyParcel booking and cancelling', () => {
  const booking: BookingRequest = {
    reference: 'shp_123',
    sender: { name: 'Kedai Batik', city: 'Shah Alam', postcode: '40150', country: 'MY' },
    recipient: {
      name: 'Tan Wei Ming',
      line1: '12 Jalan Ampang',
      city: 'Kuala Lumpur',
      state: 'Kuala Lumpur',
      postcode: '50450',
      country: 'MY',
      phone: '+60123456789',
    },
    parcel: { weightGrams: 700, description: 'Batik scarf' },
  };

  it('books with our reference and returns the AWB and the order number', async () => {
    const { adapter, requests } = setup(() => ({ body: fixture('easyparcel', 'create.json') }));
    const result = await adapter.book(booking);

    expect(result).toEqual({ trackingNumber: 'EP2000000001', courierRef: 'EI-20250305-0001' });
    const create = requests.find((r) => r.url.pathname === '/api/shipment/create')!;
    expect(create.headers.get('authorization')).toBe('Bearer tok-1');
    expect(create.body).toEqual({
      reference: 'shp_123',
      sender: booking.sender,
      recipient: booking.recipient,
      parcel: { weight_grams: 700, description: 'Batik scarf' },
    });
  });

  it("rejects an invalid booking with EasyParcel's reason", async () => {
    const { adapter } = setup(() => ({ status: 422, body: fixture('easyparcel', 'create-invalid.json') }));
    const err = await refusal(adapter.book(booking));

    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/not a Malaysian postcode/);
  });

  it('cancels, and a second cancel succeeds too', async () => {
    const { adapter, requests } = setup(() => ({ body: fixture('easyparcel', 'cancel.json') }));
    await adapter.cancel('EP2000000001');
    await adapter.cancel('EP2000000001');

    expect(requests.filter((r) => r.url.pathname === '/api/shipment/cancel').map((r) => r.body)).toEqual([
      { awb_number: 'EP2000000001' },
      { awb_number: 'EP2000000001' },
    ]);
  });

  it('refuses to cancel a parcel already collected, saying so: the collected refusal', async () => {
    const { adapter } = setup(() => ({ status: 409, body: fixture('easyparcel', 'cancel-collected.json') }));
    const err = await refusal(adapter.cancel('EP2000000001'));

    expect(err.reason).toBe('collected');
    expect(err.message).toMatch(/already picked up/);
  });

  it('never reads a booking refusal as collected, whatever it says', async () => {
    const { adapter } = setup(() => ({ status: 409, body: fixture('easyparcel', 'cancel-collected.json') }));
    const err = await refusal(adapter.book(booking));

    expect(err.reason).toBe('invalid');
  });
});

describe('EasyParcel cancel refusals', () => {
  const cancelAnswered = async (answer: Answer) => {
    const { adapter } = setup(() => answer);
    return refusal(adapter.cancel('EP2000000001'));
  };

  it('a 409 that does not say the parcel was collected is an invalid request, not a pickup', async () => {
    const err = await cancelAnswered({
      status: 409,
      body: '{"status_code":409,"message":"Shipment is locked for manifesting"}',
    });
    expect(err.reason).toBe('invalid');
    expect(err.message).not.toMatch(/picked up/);
  });

  it('a 409 that says the parcel is not collected yet is not a pickup either', async () => {
    const err = await cancelAnswered({
      status: 409,
      body: '{"status_code":409,"message":"Parcel not yet collected, cancellation pending review"}',
    });
    expect(err.reason).toBe('invalid');
  });

  it('a 404 is an unknown booking', async () => {
    const err = await cancelAnswered({ status: 404, body: fixture('easyparcel', 'cancel-not-found.json') });
    expect(err.reason).toBe('unknown_booking');
    expect(err.message).toMatch(/does not know EP2000000001/);
  });

  it('a 422 is an invalid request', async () => {
    const err = await cancelAnswered({
      status: 422,
      body: '{"status_code":422,"message":"awb_number is required"}',
    });
    expect(err.reason).toBe('invalid');
  });

  it('a 403 is a credentials refusal, without a token retry', async () => {
    const { adapter, tokenCalls } = setup(() => ({
      status: 403,
      body: '{"status_code":403,"message":"This action is unauthorized."}',
    }));
    const err = await refusal(adapter.cancel('EP2000000001'));
    expect(err.reason).toBe('credentials');
    expect(tokenCalls()).toBe(1);
  });

  it('a 401 for the fresh token too is a credentials refusal', async () => {
    const err = await cancelAnswered({ status: 401, body: fixture('easyparcel', 'unauthenticated.json') });
    expect(err.reason).toBe('credentials');
  });

  it('429, 5xx and an HTML page stay retryable', async () => {
    for (const answer of [
      { status: 429, body: fixture('easyparcel', 'rate-limited.json') },
      { status: 503, body: '{"status_code":503,"message":"Service Unavailable"}' },
      { status: 200, body: fixture('bluedart', 'outage.html'), contentType: 'text/html' },
    ]) {
      const { adapter } = setup(() => answer);
      await expect(adapter.cancel('EP2000000001')).rejects.toBeInstanceOf(CourierUnavailableError);
    }
  });

  describe("in the Open API's per-shipment shape (HTTP 200, one result per shipment)", () => {
    // EasyParcel's published cancel answer (github.com/easyparcel/OpenAPI, 2026-03): the first
    // four messages are its examples; the fifth is how a refusal naming the pickup reads.
    const results = () => ({ body: fixture('easyparcel', 'cancel-results.json') });

    it('a success result is a cancel, and "already cancelled" is the cancel we wanted', async () => {
      const { adapter } = setup(results);
      await adapter.cancel('EP2000000001');
      await adapter.cancel('EP2000000002');
    });

    it('an error result is a refusal read from its message, never a success', async () => {
      const { adapter } = setup(results);
      const reasons = [];
      for (const awb of ['EP2000000003', 'EP2000000004', 'EP2000000005']) {
        const err = await refusal(adapter.cancel(awb));
        expect(err.message).toContain(`the cancellation of ${awb}`);
        reasons.push(err.reason);
      }
      // "7 days from collection date" names a date, not a pickup: invalid, not collected.
      expect(reasons).toEqual(['invalid', 'unknown_booking', 'collected']);
    });

    it('an answer without a result for the number is retryable, not a success', async () => {
      const { adapter } = setup(results);
      await expect(adapter.cancel('EP2000000009')).rejects.toBeInstanceOf(CourierUnavailableError);
    });
  });
});

describe('EasyParcel status mapping', () => {
  it.each([
    [0, 'Cancelled by shipper', 'CANCELLED', null],
    [2, 'Pending pickup', 'INFO_RECEIVED', 'TO_BE_COLLECTED'],
    [3, 'Collected', 'IN_TRANSIT', 'PICKED_UP'],
    [4, 'In transit', 'IN_TRANSIT', null],
    [4, 'Out for delivery', 'OUT_FOR_DELIVERY', null],
    [4, 'Parcel is with courier for delivery', 'OUT_FOR_DELIVERY', null],
    [4, 'Return to sender in progress', 'RETURNING', null],
    [5, 'Out for delivery', 'DELIVERED', null],
    [6, 'Returned', 'RETURNED', null],
    [7, 'Schedule in arrangement', 'PENDING', 'SCHEDULED'],
    [8, 'On hold at hub', 'EXCEPTION', 'ON_HOLD'],
    [8, 'Delivery attempt failed', 'ATTEMPT_FAIL', null],
    [8, 'Recipient not available', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
    [8, 'Failed delivery, returning to sender', 'RETURNING', null],
    [11, 'Drop-off at point', 'IN_TRANSIT', 'DROP_OFF'],
  ])('maps code %i with text "%s" to %s / %s', (code, text, status, subStatus) => {
    expect(mapEasyParcelStatus(code, text)).toEqual({ status, subStatus });
  });

  it('maps a code the README does not list to nothing', () => {
    expect(mapEasyParcelStatus(42, 'Out for delivery')).toBeNull();
  });

  it('splits "City, State" and treats a bare name as the city', () => {
    expect(parseEasyParcelLocation('Kota Kinabalu, Sabah')).toEqual({
      city: 'Kota Kinabalu',
      state: 'Sabah',
      country: 'MY',
    });
    expect(parseEasyParcelLocation('Ipoh')).toEqual({ city: 'Ipoh', state: null, country: 'MY' });
    expect(parseEasyParcelLocation(null)).toEqual({ city: null, state: null, country: null });
  });
});
