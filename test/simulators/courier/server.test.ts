/**
 * The simulator's native routes and control API over HTTP: which numbers it knows,
 * booking, cancelling, the clock, call counting and reset.
 */
import { createSimulatorAdapter } from '../../../src/couriers/simulator';
import { CourierRejectedError, type BookingRequest, type CourierAdapter } from '../../../src/couriers/types';
import { startSimulator, type RunningSimulator } from '../../../simulators/courier/server';
import type { SimStats } from '../../../simulators/courier/stats';

const SCALE = 1440;
const HOUR = 3_600_000;

let realNow = Date.parse('2025-05-05T02:00:00.000Z');
function advanceCourier(ms: number): void {
  realNow += ms / SCALE;
}

let sim: RunningSimulator;
let adapter: CourierAdapter;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, timeScale: SCALE, now: () => realNow });
  adapter = createSimulatorAdapter({ baseUrl: sim.url, timeoutMs: 5_000 });
});
afterAll(() => sim.stop());

interface Answer {
  status: number;
  body: unknown;
}

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    ...(body !== undefined
      ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function stats(): Promise<SimStats> {
  return (await call('GET', '/control/stats')).body as SimStats;
}

function booking(reference: string, city = 'Ipoh'): BookingRequest {
  return {
    reference,
    sender: { name: 'Kedai Kopi', city: 'Shah Alam', postcode: '40150', country: 'MY' },
    recipient: {
      name: 'Tan Wei Ming',
      line1: '8 Jalan Sultan Idris Shah',
      city,
      state: 'Perak',
      postcode: '30000',
      country: 'MY',
      phone: null,
    },
    parcel: { weightGrams: 700, description: 'coffee beans' },
  };
}

describe('known and unknown numbers', () => {
  it('a number in the simulator pattern is adopted on first sight; anything else is not found', async () => {
    const results = await adapter.track(['SIM4040404040', 'NOPE-1', 'EP4040404040']);
    expect(results.map((r) => r.kind)).toEqual(['found', 'not_found', 'not_found']);
    expect(results.map((r) => r.trackingNumber)).toEqual(['SIM4040404040', 'NOPE-1', 'EP4040404040']);
    const inspect = await call('GET', '/control/parcels/SIM4040404040');
    expect(inspect.body).toMatchObject({
      parcel: { format: 'native', startedAt: new Date(realNow).toISOString() },
    });
  });

  it('a number registered through the control API is known with the scenario it was given', async () => {
    const registered = await call('POST', '/control/parcels', {
      trackingNumber: 'ACME-77',
      scenario: 'exception',
    });
    expect(registered.body).toMatchObject({
      trackingNumber: 'ACME-77',
      format: 'native',
      scenario: 'exception',
      ageMs: 0,
    });
    advanceCourier(2 * 24 * HOUR);
    const [result] = await adapter.track(['ACME-77']);
    expect(result).toMatchObject({ kind: 'found', status: 'EXCEPTION' });
  });

  it('registering a known number again restarts it with the new scenario', async () => {
    await call('POST', '/control/parcels', {
      trackingNumber: 'SIM5050505050',
      scenario: 'delivered',
      ageMs: 5 * 24 * HOUR,
    });
    const again = await call('POST', '/control/parcels', {
      trackingNumber: 'SIM5050505050',
      scenario: 'never_picked_up',
    });
    expect(again.body).toMatchObject({ scenario: 'never_picked_up', ageMs: 0 });
    advanceCourier(HOUR);
    const [result] = await adapter.track(['SIM5050505050']);
    expect(result).toMatchObject({ kind: 'found', status: 'INFO_RECEIVED' });
  });

  it('the control API refuses an unknown scenario and names the field', async () => {
    const answer = await call('POST', '/control/parcels', { trackingNumber: 'SIM1', scenario: 'teleported' });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    expect(JSON.stringify(answer.body)).toContain('scenario');
  });

  it('a native track call of more than 100 numbers is refused', async () => {
    const numbers = Array.from({ length: 101 }, (_, i) => `SIM${1_000_000 + i}`);
    const answer = await call('POST', '/native/track', { trackingNumbers: numbers });
    expect(answer.status).toBe(400);
    await expect(adapter.track(numbers)).rejects.toBeInstanceOf(CourierRejectedError);
  });
});

describe('booking', () => {
  it('booking the same reference twice returns the same tracking number', async () => {
    const first = await call('POST', '/native/shipments', {
      reference: 'shp_same',
      recipient: booking('x').recipient,
      weightGrams: 500,
    });
    const second = await call('POST', '/native/shipments', {
      reference: 'shp_same',
      recipient: booking('x').recipient,
      weightGrams: 500,
    });
    expect(first).toMatchObject({ status: 201, body: { reference: 'shp_same', created: true } });
    expect(second).toMatchObject({ status: 200, body: { created: false } });
    expect((second.body as { trackingNumber: string }).trackingNumber).toBe(
      (first.body as { trackingNumber: string }).trackingNumber,
    );
    expect((first.body as { trackingNumber: string }).trackingNumber).toMatch(/^SIM\d{10}$/);

    const viaAdapter = await adapter.book(booking('shp_same'));
    const other = await adapter.book(booking('shp_other'));
    expect(viaAdapter.trackingNumber).toBe((first.body as { trackingNumber: string }).trackingNumber);
    expect(other.trackingNumber).not.toBe(viaAdapter.trackingNumber);
  });

  it("a booked parcel's lifecycle starts at booking and ends in the recipient's city", async () => {
    const answer = await call('POST', '/native/shipments', {
      reference: 'shp_kk',
      recipient: { ...booking('x').recipient, city: 'Kota Kinabalu', state: 'Sabah' },
      weightGrams: 900,
      scenario: 'delivered',
    });
    const { trackingNumber } = answer.body as { trackingNumber: string };
    const [atBooking] = await adapter.track([trackingNumber]);
    expect(atBooking).toMatchObject({ kind: 'found', status: 'PENDING', events: [] });

    advanceCourier(3 * 24 * HOUR);
    const [delivered] = await adapter.track([trackingNumber]);
    if (delivered?.kind !== 'found') throw new Error('not found');
    expect(delivered.status).toBe('DELIVERED');
    expect(delivered.events[delivered.events.length - 1]!.location).toEqual({
      city: 'Kota Kinabalu',
      state: 'Sabah',
      country: 'MY',
    });
    const raw = JSON.stringify(delivered.raw);
    expect(raw).not.toContain('Tan Wei Ming');
    expect(raw).toContain('shp_kk');
  });

  it('a booking without a recipient is refused with a 400 naming the field', async () => {
    const answer = await call('POST', '/native/shipments', { reference: 'shp_bad', weightGrams: 1 });
    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer.body)).toContain('recipient');
  });
});

describe('cancelling', () => {
  it('a cancel before pickup succeeds, twice, and the parcel then shows CANCELLED and moves no more', async () => {
    const { trackingNumber } = await adapter.book(booking('shp_cancel_early'));
    advanceCourier(HOUR); // info received, not yet picked up (pickup at 6 h)
    await adapter.cancel(trackingNumber);
    await adapter.cancel(trackingNumber);

    advanceCourier(5 * 24 * HOUR);
    const [result] = await adapter.track([trackingNumber]);
    if (result?.kind !== 'found') throw new Error('not found');
    expect(result.status).toBe('CANCELLED');
    expect(result.events.map((e) => e.status)).toEqual(['INFO_RECEIVED', 'CANCELLED']);
    expect(result.eta).toBeNull();
  });

  it('a cancel after pickup is refused with 409, read as collected, and changes nothing', async () => {
    const { trackingNumber } = await adapter.book(booking('shp_cancel_late'));
    await call('POST', '/control/parcels', { trackingNumber, scenario: 'delivered' });
    advanceCourier(8 * HOUR);
    const [before] = await adapter.track([trackingNumber]);

    const answer = await call('POST', `/native/shipments/${trackingNumber}/cancel`);
    expect(answer).toMatchObject({ status: 409, body: { error: { code: 'ALREADY_PICKED_UP' } } });
    await expect(adapter.cancel(trackingNumber)).rejects.toMatchObject({
      name: 'CourierRejectedError',
      reason: 'collected',
    });

    const [after] = await adapter.track([trackingNumber]);
    expect(after).toEqual(before);
    expect(after).toMatchObject({ status: 'IN_TRANSIT' });
  });

  it('a booking the courier lost (DELETE /control/parcels/:number) answers its cancel 404 until it is booked again', async () => {
    const { trackingNumber } = await adapter.book(booking('shp_lost_booking'));
    expect(await call('DELETE', `/control/parcels/${trackingNumber}`)).toMatchObject({
      status: 200,
      body: { forgotten: true },
    });
    expect(await call('DELETE', `/control/parcels/${trackingNumber}`)).toMatchObject({ status: 404 });
    await expect(adapter.cancel(trackingNumber)).rejects.toMatchObject({ reason: 'unknown_booking' });
    const [tracked] = await adapter.track([trackingNumber]);
    expect(tracked).toMatchObject({ kind: 'not_found' });
    // Booked again under its reference: a live booking once more, which a cancel cancels.
    const again = await adapter.book(booking('shp_lost_booking'));
    await expect(adapter.cancel(again.trackingNumber)).resolves.toBeUndefined();
    expect(sim.backend.inspect(again.trackingNumber)?.parcel.cancelled).toBe(true);
  });

  it('cancelling a number the simulator does not know answers 404, an unknown booking', async () => {
    const answer = await call('POST', '/native/shipments/NOPE-2/cancel');
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    await expect(adapter.cancel('NOPE-2')).rejects.toThrow(/NOT_FOUND/);
    await expect(adapter.cancel('NOPE-2')).rejects.toMatchObject({ reason: 'unknown_booking' });
  });
});

describe('the clock', () => {
  it('changing the time scale keeps every scan already shown exactly as it was', async () => {
    await call('POST', '/control/parcels', { trackingNumber: 'SIM6060606060', scenario: 'delivered' });
    advanceCourier(30 * HOUR);
    const [before] = await adapter.track(['SIM6060606060']);
    if (before?.kind !== 'found') throw new Error('not found');

    const slowed = await call('PUT', '/control/clock', { timeScale: 60 });
    expect(slowed.body).toMatchObject({ timeScale: 60 });
    realNow += (30 * HOUR) / 60; // thirty courier hours at the new scale
    const [after] = await adapter.track(['SIM6060606060']);
    if (after?.kind !== 'found') throw new Error('not found');

    expect(after.events.slice(0, before.events.length)).toEqual(before.events);
    expect(after.status).toBe('OUT_FOR_DELIVERY');
    await call('PUT', '/control/clock', { timeScale: SCALE });
    const clock = await call('GET', '/control/clock');
    expect(clock.body).toMatchObject({ timeScale: SCALE, now: new Date(realNow).toISOString() });
  });

  it('a time scale of zero is refused', async () => {
    const answer = await call('PUT', '/control/clock', { timeScale: 0 });
    expect(answer.status).toBe(400);
    expect(((await call('GET', '/control/clock')).body as { timeScale: number }).timeScale).toBe(SCALE);
  });
});

describe('call counting and reset', () => {
  it('counts every courier call per format and kind, and never counts control calls', async () => {
    await call('POST', '/control/reset');
    await adapter.track(['SIM7070707070', 'SIM7070707071']);
    const { trackingNumber } = await adapter.book(booking('shp_count'));
    await adapter.cancel(trackingNumber);
    await call('POST', '/easyparcel/oauth/token', { grant_type: 'refresh_token' });
    await call('POST', '/easyparcel/open_api/2026-06/shipment/tracking_status', {
      awb_numbers: ['EP1234567'],
    });
    await fetch(
      `${sim.url}/bluedart/servlet/RoutingServlet?handler=tnt&action=custawbquery&numbers=BD1234567`,
    );
    await call('GET', '/control/faults');
    await call('GET', '/control/clock');

    const counted = await stats();
    expect(counted.calls).toBe(6);
    expect(counted.formats.native).toMatchObject({
      calls: 3,
      byKind: { track: 1, book: 1, cancel: 1, token: 0, other: 0 },
      byStatus: { '200': 2, '201': 1 },
      numbersTracked: 2,
    });
    expect(counted.formats.easyparcel).toMatchObject({ calls: 2, byKind: { token: 1, track: 1 } });
    expect(counted.formats.bluedart).toMatchObject({ calls: 1, byKind: { track: 1 } });
  });

  it('reset clears counters and faults but keeps parcels unless asked', async () => {
    await adapter.track(['SIM8080808080']);
    await call('POST', '/control/faults', { kind: 'error', rate: 1, format: 'bluedart' });
    const kept = await call('POST', '/control/reset');
    expect(kept.body).toMatchObject({ parcels: expect.any(Number) });
    expect((kept.body as { parcels: number }).parcels).toBeGreaterThan(0);
    expect((await stats()).calls).toBe(0);
    expect((await call('GET', '/control/faults')).body).toEqual({ faults: [] });
    expect((await call('GET', '/control/parcels/SIM8080808080')).status).toBe(200);

    const { trackingNumber } = await adapter.book(booking('shp_reset'));
    const cleared = await call('POST', '/control/reset?parcels=true');
    expect(cleared.body).toEqual({ parcels: 0 });
    expect((await call('GET', '/control/parcels/SIM8080808080')).status).toBe(404);
    const rebooked = await call('POST', '/native/shipments', {
      reference: 'shp_reset',
      recipient: booking('x').recipient,
      weightGrams: 700,
    });
    // Numbers derive from the reference: the same booking gets the same number again.
    expect(rebooked).toMatchObject({ status: 201, body: { trackingNumber, created: true } });
  });
});
