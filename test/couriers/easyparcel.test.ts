/**
 * The EasyParcel adapter against scripted EasyParcel answers. The fixtures follow EasyParcel's
 * Open API documentation (github.com/easyparcel/OpenAPI, source/includes/2026-06/
 * _tracking_status.md, _authentication.md, _cancelshipment.md) and its own CLI
 * (github.com/easyparcel/easyparcel-cli): the envelope with `request_id` and a count message,
 * code 8 "Cancelled", EasyParcel's own "Schedule In Arrangement" stamped in UTC beside the
 * couriers' scans in Malaysia time, "Place, State, MY" locations, `not_found` items with a
 * message, the refresh-token grant with HTTP Basic client credentials, and the older 1-11 code
 * table. Each test names its fixture; test/fixtures/couriers/README.md says where each comes from.
 */
import { gzipSync } from 'node:zlib';
import { createEasyParcelAdapter, type EasyParcelAdapterOptions } from '../../src/couriers/easyparcel';
import {
  mapEasyParcelStatus,
  parseEasyParcelDate,
  parseEasyParcelLocation,
} from '../../src/couriers/easyparcel-codes';
import { easyParcelEventKey } from '../../src/couriers/event-key';
import { CourierRejectedError, CourierUnavailableError, type TrackResult } from '../../src/couriers/types';
import { isPickedUpStatus } from '../../src/domain/status';
import {
  captureLog,
  failure,
  fakeCourier,
  fixture,
  hangingFetch,
  MY_BOOKING,
  refusal,
  refusedFetch,
  type Answer,
  type RecordedRequest,
} from './fake-courier';

type Found = Extract<TrackResult, { kind: 'found' }>;

const BASE = 'https://ep.example/api';
const API = '/api/open_api/2026-06';
const T0 = Date.parse('2025-03-06T06:00:00.000Z');
const ACCOUNT = {
  apiVersion: '2026-06',
  clientId: 'shop-1',
  clientSecret: 's3cret',
  refreshToken: 'refresh-1',
} satisfies Partial<EasyParcelAdapterOptions>;

function tokenAnswer(token: string, refreshToken: string | null = null, expiresIn = 3600): Answer {
  return {
    body: JSON.stringify({
      token_type: 'Bearer',
      expires_in: expiresIn,
      access_token: token,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    }),
  };
}

const isTokenCall = (request: RecordedRequest) => request.url.pathname.endsWith('/oauth/token');

/** A courier whose token endpoint issues tok-1, tok-2, … and whose other routes `route` answers. */
function courier(route: (request: RecordedRequest, token: string | null) => Answer) {
  let issued = 0;
  return fakeCourier((request) => {
    if (isTokenCall(request)) return tokenAnswer(`tok-${++issued}`);
    const auth = request.headers.get('authorization');
    return route(request, auth?.replace(/^Bearer /, '') ?? null);
  });
}

function setup(
  route: (request: RecordedRequest, token: string | null) => Answer,
  now = () => T0,
  options: Partial<EasyParcelAdapterOptions> = {},
) {
  const fake = courier(route);
  const { log, warnings } = captureLog();
  const adapter = createEasyParcelAdapter({
    ...ACCOUNT,
    baseUrl: `${BASE}/`,
    fetch: fake.fetch,
    now,
    log,
    timeoutMs: 2_000,
    ...options,
  });
  const tokenCalls = () => fake.requests.filter(isTokenCall).length;
  return { adapter, requests: fake.requests, warnings, tokenCalls };
}

const answer = (name: string) => () => ({ body: fixture('easyparcel', name) });
const tracking = answer('tracking-mixed.json');

async function trackOne(awb: string, name = 'tracking-mixed.json') {
  const { adapter, warnings } = setup(answer(name));
  const [result] = await adapter.track([awb]);
  expect(result!.kind).toBe('found');
  return { result: result as Found, warnings };
}

describe('EasyParcel tracking', () => {
  it("is the easyparcel courier with batches of 50 by default, as EasyParcel's CLI sends them", () => {
    const { adapter } = setup(tracking);
    expect(adapter.code).toBe('easyparcel');
    expect(adapter.maxBatch).toBe(50);
  });

  it("takes its batch size as a setting, up to the 100 EasyParcel's docs allow", () => {
    expect(setup(tracking, () => T0, { maxBatch: 100 }).adapter.maxBatch).toBe(100);
    expect(() => setup(tracking, () => T0, { maxBatch: 101 })).toThrow(/1 to 100/);
  });

  it('asks /open_api/<version>/shipment/tracking_status, on the root the token endpoint is on', async () => {
    const { adapter, requests } = setup(tracking);
    await adapter.track(['EP1000000001']);

    expect(requests.map((r) => [r.method, r.url.pathname])).toEqual([
      ['POST', '/api/oauth/token'],
      ['POST', `${API}/shipment/tracking_status`],
    ]);
    expect(requests[1]!.body).toEqual({ awb_numbers: ['EP1000000001'] });
  });

  it("reads EasyParcel's own events as UTC and the couriers' scans as Malaysia time, oldest first", async () => {
    // tracking-mixed.json: an unordered log, both date formats, "Schedule In Arrangement" in UTC.
    const { result } = await trackOne('EP1000000001');

    expect(result.events.map((e) => [e.occurredAt, e.occurredAtRaw, e.rawText])).toEqual([
      // EasyParcel's own event: UTC, although it has no zone.
      ['2025-03-03T01:05:12.000Z', '2025-03-03 01:05:12', 'Schedule In Arrangement'],
      // The courier's scans without a zone are Malaysia time, eight hours ahead of UTC.
      ['2025-03-03T01:06:00.000Z', '2025-03-03 09:06:00', 'Shipment information sent to J&T Express'],
      ['2025-03-03T07:00:00.000Z', '2025-03-03 15:00:00', 'Parcel picked up from shipper'],
      ['2025-03-03T15:00:00.000Z', '2025-03-03T15:00:00Z', 'Departed sorting facility'],
      ['2025-03-05T00:30:00.000Z', '2025-03-05 08:30:00', 'Delivered to Senai hub'],
      ['2025-03-05T01:15:00.000Z', '2025-03-05T01:15:00Z', 'With courier for delivery'],
      ['2025-03-05T05:40:00.000Z', '2025-03-05 13:40:00', 'Recipient not available'],
      ['2025-03-06T01:10:00.000Z', '2025-03-06T01:10:00Z', 'Out for delivery'],
      ['2025-03-06T04:02:33.000Z', '2025-03-06 12:02:33', 'Delivered'],
    ]);
  });

  it("puts EasyParcel's UTC events next to the courier scans they belong with, as its documented samples show", async () => {
    // tracking-documented.json: the 2026-06 docs' example. "Schedule In Arrangement" and the
    // courier's "sent to City-Link" are the same moment, eight clock hours apart.
    const { adapter } = setup(answer('tracking-documented.json'));
    const results = (await adapter.track(['960301021838937', '960301021837659'])) as Found[];

    for (const result of results) {
      const [first, second] = result.events.map((e) => Date.parse(e.occurredAt));
      expect(Math.abs(second! - first!)).toBeLessThan(60_000);
    }
    expect(results[0]!.events.map((e) => e.occurredAt)).toEqual([
      '2025-04-23T08:13:00.000Z',
      '2025-04-23T08:13:12.000Z',
    ]);
  });

  it('reads code 7 as information received and code 8 "Cancelled" as cancelled, from the documented example', async () => {
    const { adapter } = setup(answer('tracking-documented.json'));
    const results = await adapter.track(['7028021894371796', '960301021838937', '1234567890']);

    expect(results[0]).toMatchObject({ kind: 'found', status: 'CANCELLED', subStatus: null });
    expect((results[0] as Found).events.map((e) => [e.rawCode, e.status])).toEqual([
      ['7', 'INFO_RECEIVED'],
      ['7', 'INFO_RECEIVED'],
      ['7', 'INFO_RECEIVED'],
      ['8', 'CANCELLED'],
    ]);
    expect(results[1]).toMatchObject({ kind: 'found', status: 'INFO_RECEIVED', subStatus: 'SCHEDULED' });
    expect(results[2]).toEqual({ kind: 'not_found', trackingNumber: '1234567890' });
  });

  it('reads out-for-delivery and failed attempts from the text, and lets the code win over other text', async () => {
    const { result } = await trackOne('EP1000000001');

    expect(result.events.map((e) => [e.rawCode, e.status, e.subStatus])).toEqual([
      ['7', 'INFO_RECEIVED', 'SCHEDULED'],
      ['7', 'INFO_RECEIVED', 'SCHEDULED'],
      ['3', 'IN_TRANSIT', 'PICKED_UP'],
      ['4', 'IN_TRANSIT', null],
      // The text says "Delivered", the code says in transit: the code wins.
      ['4', 'IN_TRANSIT', null],
      ['4', 'OUT_FOR_DELIVERY', null],
      ['8', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
      ['4', 'OUT_FOR_DELIVERY', null],
      ['5', 'DELIVERED', null],
    ]);
    expect(result.status).toBe('DELIVERED');
    expect(result.subStatus).toBeNull();
    expect(result.eta).toBeNull();
    expect(result.skippedScans).toBe(0);
  });

  it('splits "Place, State, MY" from the right with the country it names, and keys every event', async () => {
    const { result } = await trackOne('EP1000000001');

    expect(result.events[0]!.location).toEqual({ city: null, state: null, country: null });
    expect(result.events[2]!.location).toEqual({ city: 'Shah Alam', state: 'Selangor', country: 'MY' });
    expect(result.events[3]!.location).toEqual({ city: 'Shah Alam Hub', state: 'Selangor', country: 'MY' });
    for (const event of result.events) {
      expect(event.source).toBe('poll');
      expect(event.key).toBe(easyParcelEventKey(event.rawCode!, event.occurredAt, event.rawText));
    }
    expect(new Set(result.events.map((e) => e.key)).size).toBe(result.events.length);
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
    const { result } = await trackOne('EP1000000003');

    expect(result.events.map((e) => [e.occurredAt, e.status, e.subStatus])).toEqual([
      ['2025-03-01T02:00:00.000Z', 'IN_TRANSIT', 'PICKED_UP'],
      ['2025-03-02T01:00:00.000Z', 'ATTEMPT_FAIL', null],
      ['2025-03-03T03:00:00.000Z', 'RETURNING', null],
      ['2025-03-04T02:00:00.000Z', 'RETURNING', null],
    ]);
    expect(result.status).toBe('RETURNING');
  });

  it('reads a cancelled shipment (code 8, "Cancelled") as CANCELLED, never an exception on hold', async () => {
    // tracking-mixed.json EP1000000005: EasyParcel's own event and the courier's data, then "Cancelled".
    const { result } = await trackOne('EP1000000005');

    expect(result).toMatchObject({ status: 'CANCELLED', subStatus: null });
    expect(result.events.at(-1)).toMatchObject({
      rawCode: '8',
      rawText: 'Cancelled',
      occurredAt: '2025-03-05T02:04:18.000Z',
      location: { city: 'Kuala Lumpur Hub', state: 'Kuala Lumpur', country: 'MY' },
    });
    // Schedule In Arrangement (UTC) and the courier's "Data Submitted" (local) are one moment.
    expect(result.events.slice(0, 2).map((e) => e.occurredAt)).toEqual([
      '2025-03-04T06:00:10.000Z',
      '2025-03-04T06:00:10.000Z',
    ]);
  });

  it('falls back to the latest status code when the status log is empty', async () => {
    const { result } = await trackOne('EP1000000004');
    expect(result).toMatchObject({
      kind: 'found',
      status: 'INFO_RECEIVED',
      subStatus: 'SCHEDULED',
      events: [],
    });
  });

  it('orders same-second events by how far along they put the parcel, whatever order the log used', async () => {
    const body = JSON.stringify({
      status_code: 200,
      message: '1 requests success, 0 request error.',
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
                location: 'Ipoh, Perak, MY',
              },
              {
                event_date: '2025-03-06T04:00:00Z',
                shipment_status_code: 4,
                tracking_status: 'Out for delivery',
                location: 'Ipoh, Perak, MY',
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
    const { result } = await trackOne('EP1000000003');
    expect(result.raw).toMatchObject({
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

  it('refuses a batch above its batch size without calling EasyParcel', async () => {
    const { adapter, requests } = setup(tracking);
    const numbers = Array.from({ length: 51 }, (_, i) => `EP${1000 + i}`);
    const err = await failure(adapter.track(numbers));

    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(CourierUnavailableError);
    expect(err).not.toBeInstanceOf(CourierRejectedError);
    expect(err.message).toMatch(/at most 50/);
    expect(requests).toHaveLength(0);
  });

  it('answers an empty batch without calling EasyParcel', async () => {
    const { adapter, requests } = setup(tracking);
    await expect(adapter.track([])).resolves.toEqual([]);
    expect(requests).toHaveLength(0);
  });
});

describe('EasyParcel codes outside the table, and entries that cannot be read', () => {
  const withLog = (statusLog: object[], latest: number) => () => ({
    body: JSON.stringify({
      status_code: 200,
      message: '1 requests success, 0 request error.',
      data: {
        results: [
          {
            status: 'success',
            awb_number: 'EP1',
            latest_shipment_status_code: latest,
            status_log: statusLog,
          },
        ],
      },
    }),
  });
  const scan = (date: string, code: number | string, text: string) => ({
    event_date: date,
    shipment_status_code: code,
    tracking_status: text,
    location: 'Ipoh, Perak, MY',
  });

  it('keeps a code outside the table as UNKNOWN with its raw code, holding the status before it: never a guess, never a pickup', async () => {
    const { adapter, warnings } = setup(
      withLog(
        [scan('2025-03-01T02:00:00Z', 42, 'Teleported'), scan('2025-03-01T01:00:00Z', 2, 'To Be Collected')],
        42,
      ),
    );
    const [result] = (await adapter.track(['EP1'])) as Found[];

    expect(result!.events.map((e) => [e.rawCode, e.status, e.subStatus])).toEqual([
      ['2', 'INFO_RECEIVED', 'TO_BE_COLLECTED'],
      ['42', 'INFO_RECEIVED', 'UNKNOWN'],
    ]);
    expect(result).toMatchObject({ status: 'INFO_RECEIVED', subStatus: 'UNKNOWN' });
    expect(isPickedUpStatus(result!.status)).toBe(false);
    expect(warnings.map((w) => w.msg)).toContain(
      'EasyParcel sent a status code outside its table: kept as UNKNOWN',
    );
  });

  it('reads an unknown latest code without a log as PENDING / UNKNOWN', async () => {
    const { adapter } = setup(withLog([], 42));
    const [result] = (await adapter.track(['EP1'])) as Found[];
    expect(result).toMatchObject({ status: 'PENDING', subStatus: 'UNKNOWN', events: [] });
  });

  it('skips an entry with an unreadable date or no code and counts it; the rest of the answer stands', async () => {
    const { adapter, warnings } = setup(
      withLog(
        [
          scan('05/03/2025 1:40 PM', 4, 'Out for delivery'),
          scan('2025-03-01T02:00:00Z', 'n/a', 'Collected'),
          scan('2025-03-01T03:00:00Z', 3, 'Collected'),
        ],
        3,
      ),
    );
    const [result, other] = await adapter.track(['EP1', 'EP2']);

    expect(result).toMatchObject({ kind: 'found', status: 'IN_TRANSIT', skippedScans: 2 });
    expect((result as Found).events).toHaveLength(1);
    expect(other!.kind).toBe('not_found');
    expect(warnings.map((w) => w.msg)).toEqual(
      expect.arrayContaining([
        'EasyParcel sent a status log entry with an unreadable date: skipped',
        'EasyParcel sent a status log entry without a status code: skipped',
      ]),
    );
  });
});

describe('EasyParcel API versions and code tables', () => {
  it('reads the older 1-11 table when told to: an in-transit parcel stays in transit', async () => {
    // tracking-legacy-codes.json: codes 1, 3, 4, 5, 6 of the older table.
    const { adapter } = setup(answer('tracking-legacy-codes.json'), () => T0, {
      apiVersion: '2026-03',
      statusCodes: '1-11',
    });
    const [result] = (await adapter.track(['EP1000000006'])) as Found[];

    expect(result!.events.map((e) => [e.rawCode, e.status, e.subStatus])).toEqual([
      ['1', 'PENDING', 'ORDER_CREATED'],
      ['3', 'INFO_RECEIVED', 'TO_BE_COLLECTED'],
      ['4', 'IN_TRANSIT', 'PICKED_UP'],
      ['5', 'IN_TRANSIT', null],
      ['6', 'IN_TRANSIT', 'ARRIVED_AT_HUB'],
    ]);
    expect(result!.status).toBe('IN_TRANSIT');
  });

  it('asks the version it speaks', async () => {
    const { adapter, requests } = setup(answer('tracking-legacy-codes.json'), () => T0, {
      apiVersion: '2026-03',
      statusCodes: '1-11',
    });
    await adapter.track(['EP1000000006']);
    expect(requests[1]!.url.pathname).toBe('/api/open_api/2026-03/shipment/tracking_status');
  });

  it('refuses to guess: a version whose docs published both tables needs the table named', () => {
    expect(() => setup(tracking, () => T0, { apiVersion: '2026-03' })).toThrow(/two status code tables/);
    expect(() => setup(tracking, () => T0, { apiVersion: '2025-09', statusCodes: null })).toThrow(
      /two status code tables/,
    );
  });

  it('refuses a version it does not know, a table EasyParcel never published, and one contrary to the docs', () => {
    expect(() => setup(tracking, () => T0, { apiVersion: '2024-01' })).toThrow(/not one Waybill knows/);
    expect(() => setup(tracking, () => T0, { apiVersion: '2026-03', statusCodes: '0-9' })).toThrow(
      /not one EasyParcel published/,
    );
    expect(() => setup(tracking, () => T0, { statusCodes: '1-11' })).toThrow(/publish only the 0-11/);
  });
});

describe('EasyParcel access tokens', () => {
  it('gets a token with the refresh token: form-encoded, client id and secret as HTTP Basic', async () => {
    const { adapter, requests, tokenCalls } = setup(tracking);
    await adapter.track(['EP1000000001']);
    await adapter.track(['EP1000000003']);

    expect(tokenCalls()).toBe(1);
    const token = requests[0]!;
    expect(token.headers.get('authorization')).toBe(
      `Basic ${Buffer.from('shop-1:s3cret').toString('base64')}`,
    );
    expect(token.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(String(token.body)))).toEqual({
      grant_type: 'refresh_token',
      refresh_token: 'refresh-1',
    });
    const bearers = requests.filter((r) => !isTokenCall(r)).map((r) => r.headers.get('authorization'));
    expect(bearers).toEqual(['Bearer tok-1', 'Bearer tok-1']);
  });

  it('keeps the new refresh token EasyParcel hands back for the next refresh', async () => {
    // token.json: the documented token answer, with a new refresh token.
    let now = T0;
    const fake = fakeCourier((request) =>
      isTokenCall(request) ? { body: fixture('easyparcel', 'token.json') } : tracking(),
    );
    const adapter = createEasyParcelAdapter({ ...ACCOUNT, baseUrl: BASE, fetch: fake.fetch, now: () => now });
    await adapter.track(['EP1000000001']);
    now += 36_000_000; // the token lives 10 hours (expires_in 36000)
    await adapter.track(['EP1000000001']);

    const refreshes = fake.requests
      .filter(isTokenCall)
      .map((r) => new URLSearchParams(String(r.body)).get('refresh_token'));
    expect(refreshes).toEqual(['refresh-1', 'refresh-2']);
  });

  it('reads a token answer wrapped in data, as EasyParcel sometimes sends it', async () => {
    const fake = fakeCourier((request) =>
      isTokenCall(request)
        ? {
            body: JSON.stringify({
              status_code: 200,
              message: 'success',
              data: { access_token: 'tok-w', expires_in: 3600 },
            }),
          }
        : tracking(),
    );
    const adapter = createEasyParcelAdapter({ ...ACCOUNT, baseUrl: BASE, fetch: fake.fetch, now: () => T0 });
    await adapter.track(['EP1000000001']);
    expect(fake.requests[1]!.headers.get('authorization')).toBe('Bearer tok-w');
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
      `${API}/shipment/tracking_status`,
      '/api/oauth/token',
      `${API}/shipment/tracking_status`,
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

  it.each([
    [400, '{"error":"invalid_grant"}'],
    [401, '{"status_code":401,"message":"Invalid client"}'],
  ])('rejects with a credentials refusal when the token request is refused (%i)', async (status, body) => {
    const fake = fakeCourier(() => ({ status, body }));
    const adapter = createEasyParcelAdapter({
      ...ACCOUNT,
      clientSecret: 'top-secret-value',
      refreshToken: 'refresh-secret-value',
      baseUrl: BASE,
      fetch: fake.fetch,
    });
    const err = await refusal(adapter.track(['EP1000000001']));

    expect(err.reason).toBe('credentials');
    expect(err.message).toMatch(/EASYPARCEL_REFRESH_TOKEN/);
    expect(err.message).not.toContain('top-secret-value');
    expect(err.message).not.toContain('refresh-secret-value');
    expect(fake.requests).toHaveLength(1);
  });

  it('keeps a token endpoint outage retryable', async () => {
    const fake = fakeCourier(() => ({ status: 503, body: 'Service Unavailable', contentType: 'text/plain' }));
    const adapter = createEasyParcelAdapter({ ...ACCOUNT, baseUrl: BASE, fetch: fake.fetch });
    await expect(adapter.track(['EP1000000001'])).rejects.toBeInstanceOf(CourierUnavailableError);
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
      ...ACCOUNT,
      baseUrl: BASE,
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
      ...ACCOUNT,
      baseUrl: BASE,
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
  const booking = MY_BOOKING;

  it('books through submit_orders, in the documented shape, and returns the AWB and the shipment number', async () => {
    const { adapter, requests } = setup(() => ({ body: fixture('easyparcel', 'submit-orders.json') }));
    const result = await adapter.book(booking);

    expect(result).toEqual({ trackingNumber: '7028021894371796', courierRef: 'ES-2602-VC4KV' });
    const submit = requests.find((r) => r.url.pathname === `${API}/shipment/submit_orders`)!;
    expect(submit.headers.get('authorization')).toBe('Bearer tok-1');
    expect(submit.body).toEqual({
      shipment: [
        expect.objectContaining({
          reference: 'shp_123',
          service_id: expect.any(String),
          collection_date: '2025-03-06', // today in Malaysia
          weight: 0.7,
          item: [
            expect.objectContaining({
              content: 'Batik scarf',
              weight: 0.7,
              currency_code: 'MYR',
              quantity: 1,
            }),
          ],
          sender: expect.objectContaining({
            name: 'Kedai Batik',
            city: 'Shah Alam',
            postcode: '40150',
            country_code: 'MY',
          }),
          receiver: {
            name: 'Tan Wei Ming',
            phone_number_country_code: 'MY',
            phone_number: '123456789',
            address_1: '12 Jalan Ampang',
            postcode: '50450',
            city: 'Kuala Lumpur',
            country_code: 'MY',
          },
          feature: expect.any(Object),
        }),
      ],
    });
  });

  it('rejects a booking EasyParcel answers with an error result, with its errors (HTTP 200 all the same)', async () => {
    const { adapter } = setup(() => ({ body: fixture('easyparcel', 'submit-orders-invalid.json') }));
    const err = await refusal(adapter.book(booking));

    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/receiver postcode field is required/);
  });

  it('takes a booking without an AWB yet (the courier assigns it later) for unavailable, never for booked', async () => {
    const { adapter } = setup(() => ({ body: fixture('easyparcel', 'submit-orders-no-awb.json') }));
    const err = await adapter.book(booking).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CourierUnavailableError);
    expect((err as Error).message).toMatch(/ES-2602-4VW9E but gave no AWB yet/);
  });

  it('cancels by the shipment number its tracking answer gives, and a second cancel succeeds too', async () => {
    const { adapter, requests } = setup(withLookup({ body: fixture('easyparcel', 'cancel.json') }));
    await adapter.cancel('EP2000000001');
    await adapter.cancel('EP2000000001');

    const paths = requests.filter((r) => !isTokenCall(r)).map((r) => r.url.pathname.replace(API, ''));
    expect(paths).toEqual([
      '/shipment/tracking_status',
      '/shipment/cancel',
      '/shipment/tracking_status',
      '/shipment/cancel',
    ]);
    expect(requests.filter((r) => r.url.pathname === `${API}/shipment/cancel`)[0]!.body).toEqual({
      cancel_list: [{ shipment_number: 'ES-2602-00001', remark: expect.any(String) }],
    });
  });

  it('an AWB EasyParcel does not know is an unknown booking, found before any cancel is sent', async () => {
    const { adapter, requests } = setup(answer('tracking-documented.json'));
    const err = await refusal(adapter.cancel('1234567890'));
    expect(err.reason).toBe('unknown_booking');
    expect(requests.some((r) => r.url.pathname.endsWith('/shipment/cancel'))).toBe(false);
  });

  it('refuses to cancel a parcel already collected, saying so: the collected refusal', async () => {
    const { adapter } = setup(
      withLookup({ status: 409, body: fixture('easyparcel', 'cancel-collected.json') }),
    );
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

/** A cancel's look-up answered (shipment number `ES-2602-<last five digits>`), its other calls `then`. */
function withLookup(then: Answer) {
  return (request: RecordedRequest): Answer => {
    if (!request.url.pathname.endsWith('/shipment/tracking_status')) return then;
    const [awb] = (request.body as { awb_numbers: string[] }).awb_numbers;
    const item = {
      status: 'success',
      awb_number: awb,
      shipment_number: `ES-2602-${awb!.slice(-5)}`,
      status_log: [],
    };
    return { body: JSON.stringify({ status_code: 200, data: { results: [item] } }) };
  };
}

describe('EasyParcel cancel refusals', () => {
  const cancelAnswered = async (answer: Answer) => {
    const { adapter } = setup(withLookup(answer));
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
    const { adapter, tokenCalls } = setup(
      withLookup({ status: 403, body: '{"status_code":403,"message":"This action is unauthorized."}' }),
    );
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
      const { adapter } = setup(withLookup(answer));
      await expect(adapter.cancel('EP2000000001')).rejects.toBeInstanceOf(CourierUnavailableError);
    }
  });

  describe("in the Open API's per-shipment shape (HTTP 200, one result per shipment)", () => {
    // EasyParcel's published cancel answer (github.com/easyparcel/OpenAPI, 2026-03): the first
    // four messages are its examples; the fifth is how a refusal naming the pickup reads.
    const results = withLookup({ body: fixture('easyparcel', 'cancel-results.json') });

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
    [0, 'Cancel', 'CANCELLED', null],
    [2, 'To Be Collected', 'INFO_RECEIVED', 'TO_BE_COLLECTED'],
    [3, 'Collected', 'IN_TRANSIT', 'PICKED_UP'],
    [4, 'Delivery In Transit', 'IN_TRANSIT', null],
    [4, 'Out for delivery', 'OUT_FOR_DELIVERY', null],
    [4, 'Parcel is with courier for delivery', 'OUT_FOR_DELIVERY', null],
    [4, 'Return to sender in progress', 'RETURNING', null],
    [5, 'Out for delivery', 'DELIVERED', null],
    [6, 'Returned', 'RETURNED', null],
    [7, 'Schedule In Arrangement', 'INFO_RECEIVED', 'SCHEDULED'],
    [7, 'Shipment information sent to City-Link', 'INFO_RECEIVED', 'SCHEDULED'],
    [8, 'On hold at hub', 'EXCEPTION', 'ON_HOLD'],
    [8, 'Cancelled', 'CANCELLED', null],
    [8, 'Delivery attempt failed', 'ATTEMPT_FAIL', null],
    [8, 'Recipient not available', 'ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
    [8, 'Failed delivery, returning to sender', 'RETURNING', null],
    [11, 'Drop Off', 'IN_TRANSIT', 'DROP_OFF'],
  ])('maps code %i with text "%s" to %s / %s (0-11 table)', (code, text, status, subStatus) => {
    expect(mapEasyParcelStatus(code, text)).toEqual({ status, subStatus });
  });

  it.each([
    [1, 'PENDING', 'ORDER_CREATED'],
    [2, 'PENDING', 'PAYMENT_CONFIRMED'],
    [5, 'IN_TRANSIT', null],
    [6, 'IN_TRANSIT', 'ARRIVED_AT_HUB'],
    [8, 'OUT_FOR_DELIVERY', null],
    [9, 'DELIVERED', null],
    [10, 'ATTEMPT_FAIL', null],
    [11, 'RETURNING', 'RETURN_TO_SENDER'],
  ])('maps code %i to %s / %s in the older 1-11 table', (code, status, subStatus) => {
    expect(mapEasyParcelStatus(code, null, '1-11')).toEqual({ status, subStatus });
  });

  it('maps a code outside the table to nothing', () => {
    expect(mapEasyParcelStatus(42, 'Out for delivery')).toBeNull();
    expect(mapEasyParcelStatus(0, 'Cancel', '1-11')).toBeNull();
    expect(mapEasyParcelStatus(9, 'Delivered')).toBeNull();
  });

  it('reads "Place, State, MY" from the right, drops empty parts, and leaves the country unknown when not named', () => {
    expect(parseEasyParcelLocation('Kuala Lumpur Hub, Kuala Lumpur, MY')).toEqual({
      city: 'Kuala Lumpur Hub',
      state: 'Kuala Lumpur',
      country: 'MY',
    });
    expect(parseEasyParcelLocation('BAYAN BARU, PENANG,, PIN, MY')).toEqual({
      city: 'BAYAN BARU, PENANG',
      state: 'PIN',
      country: 'MY',
    });
    expect(parseEasyParcelLocation('Woodlands, Singapore, SG')).toEqual({
      city: 'Woodlands',
      state: 'Singapore',
      country: 'SG',
    });
    expect(parseEasyParcelLocation('Kota Kinabalu, Sabah')).toEqual({
      city: 'Kota Kinabalu',
      state: 'Sabah',
      country: null,
    });
    expect(parseEasyParcelLocation('Ipoh')).toEqual({ city: 'Ipoh', state: null, country: null });
    expect(parseEasyParcelLocation(null)).toEqual({ city: null, state: null, country: null });
  });

  it("reads a date without a zone as UTC for EasyParcel's own event, Malaysia time for a courier's scan", () => {
    expect(parseEasyParcelDate('2025-04-23 08:13:12', 'Schedule In Arrangement')?.toISOString()).toBe(
      '2025-04-23T08:13:12.000Z',
    );
    expect(
      parseEasyParcelDate('2025-04-23 16:13:00', 'Shipment information sent to City-Link')?.toISOString(),
    ).toBe('2025-04-23T08:13:00.000Z');
    expect(parseEasyParcelDate('2026-01-23T04:28:52.494Z', 'Schedule In Arrangement')?.toISOString()).toBe(
      '2026-01-23T04:28:52.494Z',
    );
    expect(parseEasyParcelDate('23/04/2025 16:13')).toBeNull();
  });
});
