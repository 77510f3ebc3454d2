/**
 * The native adapter (src/couriers/simulator.ts) against a real simulator: how the native
 * answer maps onto TrackResult, and how it fails.
 */
import { createSimulatorAdapter } from '../../../src/couriers/simulator';
import { eventKey } from '../../../src/couriers/event-key';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type TrackResult,
} from '../../../src/couriers/types';
import { startSimulator, type RunningSimulator } from '../../../simulators/courier/server';
import type { SimStats } from '../../../simulators/courier/stats';

const SCALE = 1440;
const HOUR = 3_600_000;

let realNow = Date.parse('2025-07-07T03:00:00.000Z');
let sim: RunningSimulator;
let adapter: CourierAdapter;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, timeScale: SCALE, now: () => realNow });
  adapter = createSimulatorAdapter({ baseUrl: sim.url, timeoutMs: 5_000 });
});
afterAll(() => sim.stop());

async function control(path: string, body?: unknown, method = 'POST'): Promise<unknown> {
  const res = await fetch(`${sim.url}/control${path}`, {
    method,
    ...(body !== undefined
      ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {}),
  });
  return res.json();
}

type Found = Extract<TrackResult, { kind: 'found' }>;

describe('the simulator adapter', () => {
  it('is the simulator courier with batches of 100', () => {
    expect(adapter.code).toBe('simulator');
    expect(adapter.maxBatch).toBe(100);
  });

  it('maps a parcel to oldest-first events with UTC times, stable keys and source poll', async () => {
    await control('/parcels', { trackingNumber: 'SIM9000000001', scenario: 'failed_attempt_then_delivered' });
    realNow += (3 * 24 * HOUR) / SCALE;
    const [result] = (await adapter.track(['SIM9000000001'])) as Found[];

    expect(result!.status).toBe('ATTEMPT_FAIL');
    expect(result!.subStatus).toBe('RECIPIENT_ABSENT');
    expect(result!.eta).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const times = result!.events.map((e) => e.occurredAt);
    expect(times).toEqual([...times].sort());
    for (const event of result!.events) {
      expect(event.occurredAt).toMatch(/Z$/);
      expect(event.source).toBe('poll');
      expect(event.key).toBe(eventKey('simulator', event.rawCode, event.occurredAt, event.location));
      expect(event.location.country).toBe('MY');
    }
    expect(result!.events[1]).toMatchObject({
      status: 'IN_TRANSIT',
      subStatus: 'PICKED_UP',
      rawCode: 'IN_TRANSIT.PICKED_UP',
      rawText: 'Parcel picked up from shipper',
    });
    const keys = new Set(result!.events.map((e) => e.key));
    expect(keys.size).toBe(result!.events.length);

    const [again] = (await adapter.track(['SIM9000000001'])) as Found[];
    expect(again!.events.map((e) => e.key)).toEqual(result!.events.map((e) => e.key));
  });

  it('answers one result per number, in the order asked, duplicates included', async () => {
    const asked = ['NOPE-3', 'SIM9000000002', 'EP9000000002', 'SIM9000000002'];
    const results = await adapter.track(asked);
    expect(results.map((r) => [r.trackingNumber, r.kind])).toEqual([
      ['NOPE-3', 'not_found'],
      ['SIM9000000002', 'found'],
      ['EP9000000002', 'not_found'],
      ['SIM9000000002', 'found'],
    ]);
  });

  it('tracking nothing makes no call, and more than 100 numbers is refused before any call', async () => {
    await control('/reset');
    expect(await adapter.track([])).toEqual([]);
    const numbers = Array.from({ length: 101 }, (_, i) => `SIM${9_100_000_000 + i}`);
    await expect(adapter.track(numbers)).rejects.toBeInstanceOf(CourierRejectedError);
    const stats = (await control('/stats', undefined, 'GET')) as SimStats;
    expect(stats.calls).toBe(0);
  });

  it('a base URL with a trailing slash and an injected fetch both work', async () => {
    const seen: string[] = [];
    const recording: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const other = createSimulatorAdapter({ baseUrl: `${sim.url}/`, fetch: recording });
    const [result] = await other.track(['SIM9000000003']);
    expect(result?.kind).toBe('found');
    expect(seen).toEqual([`${sim.url}/native/track`]);
  });

  it('books with the shop reference and cancels before pickup', async () => {
    const booking = await adapter.book({
      reference: 'shp_adapter_1',
      sender: { name: 'Kedai', city: 'Shah Alam', postcode: '40150', country: 'MY' },
      recipient: {
        name: 'Priya Nair',
        line1: '4 MG Road',
        city: 'Pune',
        state: 'Maharashtra',
        postcode: '411001',
        country: 'IN',
        phone: '9800000000',
      },
      parcel: { weightGrams: 250, description: 'tea' },
    });
    expect(booking).toEqual({ trackingNumber: expect.stringMatching(/^SIM\d{10}$/), courierRef: null });
    await adapter.cancel(booking.trackingNumber);
    const [result] = (await adapter.track([booking.trackingNumber])) as Found[];
    expect(result!.status).toBe('CANCELLED');
    // An Indian recipient travels an Indian route.
    expect(result!.events.every((e) => e.location.country === 'IN')).toBe(true);
  });

  it('an HTML page answered with 200 is unavailable, with the start of the page as the snippet', async () => {
    await control('/faults', { kind: 'outage', durationMs: 60_000, status: 200 });
    const err = await adapter.track(['SIM9000000001']).catch((e: unknown) => e);
    await control('/faults', undefined, 'DELETE');
    expect(err).toBeInstanceOf(CourierUnavailableError);
    expect((err as CourierUnavailableError).message).toMatch(/HTML page/);
    expect((err as CourierUnavailableError).details).toMatchObject({
      status: 200,
      bodySnippet: expect.stringContaining('<!DOCTYPE html>'),
    });
  });

  it('a refused booking is a CourierRejectedError carrying the simulator message', async () => {
    const err = await adapter
      .book({
        reference: '',
        sender: { name: 'K', city: 'Shah Alam', postcode: '40150', country: 'MY' },
        recipient: {
          name: 'R',
          line1: 'L',
          city: 'Ipoh',
          state: null,
          postcode: '30000',
          country: 'MY',
          phone: null,
        },
        parcel: { weightGrams: 250, description: 'tea' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CourierRejectedError);
    expect((err as CourierRejectedError).reason).toBe('invalid');
    expect((err as Error).message).toMatch(/400 VALIDATION_FAILED/);
    expect((err as Error).message).toMatch(/reference/);
  });
});
