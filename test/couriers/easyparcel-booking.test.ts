/**
 * EasyParcel books a reference at most once (src/couriers/easyparcel-bookings.ts). EasyParcel's
 * docs do not say a repeated `reference` is deduplicated, so every answer is recorded before the
 * next step and a retry never submits again. First against scripted answers (fixtures from the
 * 2026-06 `_submitorder.md` and `_shipmentdetail.md`), then against the courier simulator with
 * its opt-in quirks (AWB given later, a repeated reference books again) and the Postgres journal.
 */
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { createEasyParcelAdapter, type EasyParcelAdapterOptions } from '../../src/couriers/easyparcel';
import { memorySubmissionJournal } from '../../src/couriers/easyparcel-bookings';
import { gatedRequests } from '../../src/couriers/http';
import { CourierOutcomeUnknownError, CourierUnavailableError } from '../../src/couriers/types';
import { postgresSubmissionJournal } from '../../src/read-model/easyparcel-submissions';
import { freshDatabase, type TestDatabase } from '../support/db';
import {
  failure,
  fakeCourier,
  fixture,
  MY_BOOKING,
  refusal,
  type Answer,
  type RecordedRequest,
} from './fake-courier';

const T0 = Date.parse('2026-12-05T02:00:00.000Z');
const ACCOUNT = { apiVersion: '2026-06', clientId: 'waybill-dev', clientSecret: 'waybill-dev-secret' };

const BOOKING = MY_BOOKING;

const path = (r: RecordedRequest) => r.url.pathname.replace(/^.*\/open_api\/[^/]+/, '');

/** An adapter against scripted answers by path (the token endpoint always grants). */
function scripted(answers: Record<string, () => Answer>, options: Partial<EasyParcelAdapterOptions> = {}) {
  const fake = fakeCourier((request) => {
    if (request.url.pathname.endsWith('/oauth/token')) {
      return { body: JSON.stringify({ token_type: 'Bearer', expires_in: 3600, access_token: 'tok' }) };
    }
    const answer = answers[path(request)];
    return answer ? answer() : { status: 404, body: '{"status_code":404,"message":"Not Found"}' };
  });
  const adapter = createEasyParcelAdapter({
    ...ACCOUNT,
    refreshToken: 'r',
    baseUrl: 'https://ep.example',
    fetch: fake.fetch,
    now: () => T0,
    timeoutMs: 2_000,
    submissions: memorySubmissionJournal(),
    ...options,
  });
  const calls = (p: string) => fake.requests.filter((r) => path(r) === p).length;
  return { adapter, requests: fake.requests, calls };
}

const file =
  (name: string, status = 200) =>
  () => ({ status, body: fixture('easyparcel', name) });

describe('EasyParcel booking retries (scripted answers)', () => {
  it('records a shipment answered without an AWB and then asks shipment/details for it, never submitting again', async () => {
    const { adapter, calls, requests } = scripted({
      '/shipment/submit_orders': file('submit-orders-no-awb.json'),
      '/shipment/details': file('shipment-details.json'),
    });
    expect(await failure(adapter.book(BOOKING))).toBeInstanceOf(CourierUnavailableError);
    const booking = await adapter.book(BOOKING);

    expect(booking).toEqual({ trackingNumber: '238725629', courierRef: 'ES-2602-4VW9E' });
    expect(calls('/shipment/submit_orders')).toBe(1);
    const details = requests.find((r) => path(r) === '/shipment/details')!;
    expect(details.body).toEqual({ shipment_number: 'ES-2602-4VW9E' });
    // Once the AWB is recorded, a third attempt asks nothing at all.
    expect(await adapter.book(BOOKING)).toEqual(booking);
    expect(calls('/shipment/details')).toBe(1);
  });

  it('keeps asking shipment/details while it has no AWB: retryable, and still one submit', async () => {
    const noAwb = JSON.parse(fixture('easyparcel', 'shipment-details.json'));
    noAwb.data[0].shipment_details.awb_number = null;
    const { adapter, calls } = scripted({
      '/shipment/submit_orders': file('submit-orders-no-awb.json'),
      '/shipment/details': () => ({ body: JSON.stringify(noAwb) }),
    });
    for (let i = 0; i < 3; i++) {
      const err = await failure(adapter.book(BOOKING));
      expect(err).toBeInstanceOf(CourierUnavailableError);
      expect(err.message).toMatch(/ES-2602-4VW9E but (gave|gives) no AWB yet/);
    }
    expect([calls('/shipment/submit_orders'), calls('/shipment/details')]).toEqual([1, 2]);
  });

  it.each([
    ['an unreadable 200', () => ({ body: fixture('easyparcel', 'submit-orders.json').slice(0, 80) })],
    ['a 200 without shipments', () => ({ body: '{"status_code":200,"data":[{"shipments":[]}]}' })],
    ['a 500', () => ({ status: 500, body: '{"status_code":500,"message":"Server Error"}' })],
  ])('takes %s to a submit for an unknown outcome: never submitted again', async (_what, answer) => {
    const { adapter, calls } = scripted({ '/shipment/submit_orders': answer });
    const first = await failure(adapter.book(BOOKING));
    const second = await failure(adapter.book(BOOKING));

    expect(first).toBeInstanceOf(CourierOutcomeUnknownError);
    expect(second).toBeInstanceOf(CourierOutcomeUnknownError);
    expect(second.message).toMatch(/may hold a booking of shp_123.*find reference shp_123/);
    expect(calls('/shipment/submit_orders')).toBe(1);
  });

  it('submits again after a refusal, a 503 or a connection that was never made: nothing was booked', async () => {
    let next = [
      file('submit-orders-invalid.json'),
      file('rate-limited.json', 503),
      file('submit-orders.json'),
    ];
    const { adapter, calls } = scripted({ '/shipment/submit_orders': () => next.shift()!() });
    expect((await refusal(adapter.book(BOOKING))).reason).toBe('invalid');
    expect(await failure(adapter.book(BOOKING))).toBeInstanceOf(CourierUnavailableError);
    expect((await adapter.book(BOOKING)).courierRef).toBe('ES-2602-VC4KV');
    expect(calls('/shipment/submit_orders')).toBe(3);

    next = [];
    const refused = scripted(
      {},
      {
        fetch: (async () => {
          throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
        }) as typeof fetch,
      },
    );
    const err = await failure(refused.adapter.book(BOOKING));
    expect(err).toBeInstanceOf(CourierUnavailableError);
    expect((err as CourierUnavailableError).details.notSent).toBe(true);
  });

  it('the saga’s clean-up only looks: with nothing submitted it answers no booking and sends nothing', async () => {
    const { adapter, calls } = scripted({ '/shipment/submit_orders': file('submit-orders.json') });
    expect((await refusal(adapter.book({ ...BOOKING, lookupOnly: true }))).reason).toBe('invalid');
    expect(calls('/shipment/submit_orders')).toBe(0);
    // Once booked, the clean-up finds that booking (to cancel it) without submitting again.
    const booked = await adapter.book(BOOKING);
    expect(await adapter.book({ ...BOOKING, lookupOnly: true })).toEqual(booked);
    expect(calls('/shipment/submit_orders')).toBe(1);
  });

  it('a submit stopped by the daily budget before it went out is not an unknown outcome: it is submitted later', async () => {
    const { adapter, calls } = scripted({ '/shipment/submit_orders': file('submit-orders.json') });
    const spent = new Error('the day’s booking budget is spent');
    let budgetLeft = false;
    const gate = async (requestPath: string) => {
      if (requestPath.endsWith('/submit_orders') && !budgetLeft) throw spent;
    };
    expect(await failure(gatedRequests(gate, () => adapter.book(BOOKING)))).toBe(spent);
    expect(calls('/shipment/submit_orders')).toBe(0);
    budgetLeft = true;
    expect((await gatedRequests(gate, () => adapter.book(BOOKING))).courierRef).toBe('ES-2602-VC4KV');
    expect(calls('/shipment/submit_orders')).toBe(1);
  });

  it('refuses a receiver without a phone before sending anything, unless a fallback phone is set', async () => {
    const noPhone = { ...BOOKING, recipient: { ...BOOKING.recipient, phone: null } };
    const bare = scripted({ '/shipment/submit_orders': file('submit-orders.json') });
    const err = await refusal(bare.adapter.book(noPhone));
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/requires the receiver's phone.*EASYPARCEL_RECEIVER_PHONE_FALLBACK/);
    expect(bare.requests).toHaveLength(0);

    const shipping = {
      serviceId: 'EP-CS0AP',
      senderAddress: '3 Jalan Shop',
      senderPhone: '+60 3-5555 0000',
      receiverPhoneFallback: '0387654321',
    };
    const withFallback = scripted({ '/shipment/submit_orders': file('submit-orders.json') }, { shipping });
    await withFallback.adapter.book(noPhone);
    const submitted = withFallback.requests.find((r) => path(r) === '/shipment/submit_orders')!;
    const [shipment] = (submitted.body as { shipment: Record<string, Record<string, unknown>>[] }).shipment;
    expect(shipment!.service_id).toBe('EP-CS0AP');
    expect(shipment!.sender).toMatchObject({ address_1: '3 Jalan Shop', phone_number: '355550000' });
    expect(shipment!.receiver).toMatchObject({ phone_number: '387654321' });
  });
});

describe('EasyParcel booking retries (simulator, Postgres journal)', () => {
  let database: TestDatabase;
  let sim: RunningSimulator;
  beforeAll(async () => {
    [database, sim] = await Promise.all([freshDatabase(), startSimulator({ port: 0 })]);
  });
  afterAll(async () => {
    await Promise.all([sim?.stop(), database?.drop()]);
  });

  /** A worker's adapter: every one shares the journal in Postgres, as the worker's do. */
  const worker = () =>
    createEasyParcelAdapter({
      ...ACCOUNT,
      refreshToken: 'waybill-dev-refresh-token',
      baseUrl: `${sim.url}/easyparcel`,
      submissions: postgresSubmissionJournal(database.db),
    });
  const bookingsOf = (reference: string) => sim.backend.list().filter((p) => p.reference === reference);
  const quirks = (body: object) =>
    fetch(`${sim.url}/control/easyparcel/booking`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeEach(() => sim.backend.reset({ parcels: true }));

  it('a simulator that books again on a repeated reference still holds one booking after retries on other workers', async () => {
    expect((await quirks({ awbAfterLookups: 1, repeatBooksAgain: true })).status).toBe(200);
    const request = { ...BOOKING, reference: 'shp_once_1' };
    const attempts = [worker(), worker(), worker()];
    const errors = [await failure(attempts[0]!.book(request)), await failure(attempts[1]!.book(request))];
    const booking = await attempts[2]!.book(request);

    expect(errors.every((e) => e instanceof CourierUnavailableError)).toBe(true);
    expect(bookingsOf('shp_once_1').map((p) => p.trackingNumber)).toEqual([booking.trackingNumber]);
    const row = await database.db
      .selectFrom('easyparcel_submissions')
      .selectAll()
      .where('reference', '=', 'shp_once_1')
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ shipment_number: booking.courierRef, awb_number: booking.trackingNumber });
    // Two workers that do not share the journal book twice there: the quirk is real.
    await quirks({ awbAfterLookups: 0 });
    const unshared = () =>
      createEasyParcelAdapter({
        ...ACCOUNT,
        refreshToken: 'waybill-dev-refresh-token',
        baseUrl: `${sim.url}/easyparcel`,
      });
    await unshared().book({ ...request, reference: 'shp_twice' });
    await unshared().book({ ...request, reference: 'shp_twice' });
    expect(bookingsOf('shp_twice')).toHaveLength(2);
  });

  it('an answer lost after the booking was made is never submitted again, on any worker', async () => {
    await quirks({ repeatBooksAgain: true });
    // This worker holds a token already: only the submit's answer is spoiled.
    const sending = worker();
    await sending.track(['EP0000000001']);
    await fetch(`${sim.url}/control/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'malformed', rate: 1, format: 'easyparcel', mode: 'truncated' }),
    });
    const request = { ...BOOKING, reference: 'shp_lost_1' };
    const first = await failure(sending.book(request));
    await fetch(`${sim.url}/control/faults`, { method: 'DELETE' });
    const second = await failure(worker().book(request));

    expect(first).toBeInstanceOf(CourierOutcomeUnknownError);
    expect(second).toBeInstanceOf(CourierOutcomeUnknownError);
    expect(bookingsOf('shp_lost_1')).toHaveLength(1);
  });
});
