/**
 * Fault injection over HTTP, and what the native adapter makes of each fault: always a
 * retryable CourierUnavailableError, never a crash or a wrong answer.
 */
import { gunzipSync } from 'node:zlib';
import { createSimulatorAdapter } from '../../../src/couriers/simulator';
import { CourierUnavailableError, type CourierAdapter } from '../../../src/couriers/types';
import { startSimulator, type RunningSimulator } from '../../../simulators/courier/server';
import type { SimStats } from '../../../simulators/courier/stats';

let realNow = Date.parse('2025-06-01T00:00:00.000Z');
let sim: RunningSimulator;
let adapter: CourierAdapter;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, timeScale: 60, now: () => realNow });
  adapter = createSimulatorAdapter({ baseUrl: sim.url, timeoutMs: 2_000 });
});
afterAll(() => sim.stop());
beforeEach(async () => {
  await fetch(`${sim.url}/control/reset`, { method: 'POST' });
});

async function setFault(fault: Record<string, unknown>): Promise<Response> {
  return fetch(`${sim.url}/control/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
}

async function nativeTrack(numbers = ['SIM1111111111']): Promise<Response> {
  return fetch(`${sim.url}/native/track`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trackingNumbers: numbers }),
  });
}

async function unavailable(promise: Promise<unknown>): Promise<CourierUnavailableError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CourierUnavailableError);
  return err as CourierUnavailableError;
}

async function stats(): Promise<SimStats> {
  return (await (await fetch(`${sim.url}/control/stats`)).json()) as SimStats;
}

describe('latency', () => {
  it('delays every answer by the configured time (plus jitter) and still answers correctly', async () => {
    expect((await setFault({ kind: 'latency', ms: 150, jitterMs: 50 })).status).toBe(200);
    const started = Date.now();
    const [result] = await adapter.track(['SIM2222222222']);
    const took = Date.now() - started;
    expect(result?.kind).toBe('found');
    expect(took).toBeGreaterThanOrEqual(150);
    expect(took).toBeLessThan(1_500);
    expect((await stats()).formats.native.faults.latency).toBe(1);
  });

  it('beyond the adapter timeout, the adapter gives up with a retryable error and the simulator keeps serving', async () => {
    await setFault({ kind: 'latency', ms: 800 });
    const quick = createSimulatorAdapter({ baseUrl: sim.url, timeoutMs: 100 });
    const err = await unavailable(quick.track(['SIM2222222222']));
    expect(err.message).toMatch(/within 100 ms/);

    await fetch(`${sim.url}/control/faults?kind=latency`, { method: 'DELETE' });
    expect((await quick.track(['SIM2222222222']))[0]?.kind).toBe('found');
  });
});

describe('error rate', () => {
  it('a rate of 1 answers every call 500, which the adapter reports as unavailable with the status', async () => {
    await setFault({ kind: 'error', rate: 1 });
    const res = await nativeTrack();
    expect(res.status).toBe(500);
    const err = await unavailable(adapter.track(['SIM1111111111']));
    expect(err.details).toMatchObject({ status: 500, bodySnippet: 'Internal Server Error' });
  });

  it('a partial rate fails about that share of calls, the same calls on every run with the same seed', async () => {
    const outcomes = async (target: RunningSimulator) => {
      await fetch(`${target.url}/control/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'error', rate: 0.3 }),
      });
      const statuses: number[] = [];
      for (let i = 0; i < 200; i++) {
        const res = await fetch(`${target.url}/native/track`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ trackingNumbers: ['SIM1111111111'] }),
        });
        await res.text();
        statuses.push(res.status);
      }
      return statuses;
    };
    const second = await startSimulator({ port: 0, now: () => realNow });
    try {
      const a = await outcomes(sim);
      const b = await outcomes(second);
      expect(a).toEqual(b);
      const failed = a.filter((status) => status === 500).length;
      expect(failed).toBeGreaterThan(40);
      expect(failed).toBeLessThan(80);
      expect(a.filter((status) => status !== 500 && status !== 200)).toEqual([]);
    } finally {
      await second.stop();
    }
  });
});

describe('429 with Retry-After', () => {
  it('"next N calls" answers exactly N calls 429 and then serves again', async () => {
    await setFault({ kind: 'rate_limit', calls: 2, retryAfterSeconds: 7 });
    const first = await nativeTrack();
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');

    const err = await unavailable(adapter.track(['SIM1111111111']));
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 7_000 });

    expect((await nativeTrack()).status).toBe(200);
    expect((await stats()).formats.native.faults.rate_limit).toBe(2);
  });

  it('a rate of 1 rate-limits every call until the fault is cleared', async () => {
    await setFault({ kind: 'rate_limit', rate: 1, retryAfterSeconds: 1 });
    for (let i = 0; i < 3; i++) expect((await nativeTrack()).status).toBe(429);
    await fetch(`${sim.url}/control/faults`, { method: 'DELETE' });
    expect((await nativeTrack()).status).toBe(200);
  });

  it('asking for both a rate and a number of calls is refused', async () => {
    const res = await setFault({ kind: 'rate_limit', rate: 0.5, calls: 3 });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'INVALID_FAULT' } });
  });
});

describe('outage window', () => {
  it('answers an HTML 503 page inside the window only, and the adapter reports it as unavailable', async () => {
    await setFault({ kind: 'outage', startsInMs: 60_000, durationMs: 600_000 });
    expect((await nativeTrack()).status).toBe(200);

    realNow += 60_000;
    const down = await nativeTrack();
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toContain('text/html');
    expect(await down.text()).toContain('Service Temporarily Unavailable');
    const err = await unavailable(
      adapter.book({
        reference: 'shp_outage',
        sender: { name: 'S', city: 'Shah Alam', postcode: '40150', country: 'MY' },
        recipient: {
          name: 'R',
          line1: '1 Jalan',
          city: 'Ipoh',
          state: null,
          postcode: '30000',
          country: 'MY',
          phone: null,
        },
        parcel: { weightGrams: 1, description: 'x' },
      }),
    );
    expect(err.details.status).toBe(503);
    expect(err.details.bodySnippet).toContain('503 Service Temporarily Unavailable');
    expect(err.details.bodySnippet!.length).toBeLessThanOrEqual(201);

    realNow += 600_000;
    expect((await nativeTrack()).status).toBe(200);
  });

  it('an outage scoped to one format leaves the others and the control API answering', async () => {
    await setFault({ kind: 'outage', durationMs: 600_000, format: 'easyparcel' });
    const easyParcel = await fetch(`${sim.url}/easyparcel/open_api/2026-06/shipment/tracking_status`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ awb_numbers: ['EP1234567'] }),
    });
    expect(easyParcel.status).toBe(503);
    expect((await nativeTrack()).status).toBe(200);
    const faults = (await (await fetch(`${sim.url}/control/faults`)).json()) as { faults: unknown[] };
    expect(faults.faults).toEqual([
      expect.objectContaining({ kind: 'outage', format: 'easyparcel', active: true }),
    ]);
    const counted = await stats();
    expect(counted.formats.easyparcel.faults.outage).toBe(1);
    expect(counted.formats.native.faults.outage).toBe(0);
  });

  it('an outage for every format still lets control calls through uncounted', async () => {
    await setFault({ kind: 'outage', durationMs: 600_000 });
    const res = await fetch(`${sim.url}/control/stats`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as SimStats).calls).toBe(0);
  });
});

describe('malformed bodies', () => {
  it('truncated: a 200 whose JSON is cut short, which the adapter reports as unavailable', async () => {
    await setFault({ kind: 'malformed', rate: 1, mode: 'truncated' });
    const res = await nativeTrack();
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.startsWith('{"results":')).toBe(true);
    expect(() => JSON.parse(text)).toThrow();

    const err = await unavailable(adapter.track(['SIM1111111111']));
    expect(err.message).toMatch(/malformed JSON/);
    expect(err.details.status).toBe(200);
  });

  it('gzipped: compressed bytes sent as if they were JSON, which the adapter reports as unavailable', async () => {
    await setFault({ kind: 'malformed', rate: 1, mode: 'gzipped' });
    const res = await nativeTrack();
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(JSON.parse(gunzipSync(bytes).toString('utf8'))).toHaveProperty('results');

    await unavailable(adapter.track(['SIM1111111111']));
    expect((await stats()).formats.native.faults.malformed).toBe(2);
  });

  it('a booking answer spoiled in flight is retryable, and the retry returns the same number', async () => {
    const request = {
      reference: 'shp_spoiled',
      sender: { name: 'S', city: 'Shah Alam', postcode: '40150', country: 'MY' },
      recipient: {
        name: 'R',
        line1: '1 Jalan',
        city: 'Ipoh',
        state: null,
        postcode: '30000',
        country: 'MY',
        phone: null,
      },
      parcel: { weightGrams: 1, description: 'x' },
    };
    await setFault({ kind: 'malformed', rate: 1 });
    await unavailable(adapter.book(request));
    await fetch(`${sim.url}/control/faults`, { method: 'DELETE' });
    const first = await adapter.book(request);
    const again = await adapter.book(request);
    expect(first.trackingNumber).toBe(again.trackingNumber);
  });
});

describe('the adapter under mixed faults', () => {
  it('every call either answers correctly or fails with CourierUnavailableError, never anything else', async () => {
    await setFault({ kind: 'error', rate: 0.2 });
    await setFault({ kind: 'rate_limit', rate: 0.1, retryAfterSeconds: 3 });
    await setFault({ kind: 'malformed', rate: 0.25 });
    const outcomes = { ok: 0, unavailable: 0, other: 0 };
    for (let i = 0; i < 150; i++) {
      try {
        const results = await adapter.track(['SIM3333333333', 'NOPE-9']);
        expect(results.map((r) => r.kind)).toEqual(['found', 'not_found']);
        outcomes.ok++;
      } catch (err) {
        if (err instanceof CourierUnavailableError) outcomes.unavailable++;
        else outcomes.other++;
      }
    }
    expect(outcomes.other).toBe(0);
    expect(outcomes.ok).toBeGreaterThan(30);
    expect(outcomes.unavailable).toBeGreaterThan(30);
    const counted = (await stats()).formats.native;
    expect(counted.calls).toBe(150);
    expect(counted.faults.error + counted.faults.rate_limit + counted.faults.malformed).toBe(
      outcomes.unavailable,
    );
  });

  it('a stopped simulator is unavailable, not a crash', async () => {
    const gone = await startSimulator({ port: 0 });
    await gone.stop();
    const err = await unavailable(
      createSimulatorAdapter({ baseUrl: gone.url, timeoutMs: 1_000 }).track(['SIM1111111111']),
    );
    expect(err.message).toMatch(/unreachable/);
  });
});
