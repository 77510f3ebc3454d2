/**
 * Every scenario played end to end over HTTP: a real simulator on a random port, a real
 * adapter, and an injected clock moved forward instead of sleeping.
 */
import type { CourierAdapter, TrackResult } from '../../../src/couriers/types';
import {
  SCENARIO_NAMES,
  SCENARIOS,
  scenarioFor,
  TOTAL_WEIGHT,
  type ScenarioName,
} from '../../../simulators/courier/scenarios';
import { startSimulator, type RunningSimulator } from '../../../simulators/courier/server';
import { useCourierSimulator } from '../../support/simulator';

const SCALE = 1440; // one courier day per real minute
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let realNow = Date.parse('2025-03-03T01:00:00.000Z');
/** Moves the injected real clock by a courier-time duration. */
function advanceCourier(ms: number): void {
  realNow += ms / SCALE;
}

let sim: RunningSimulator;
let adapter: CourierAdapter;

useCourierSimulator({ now: () => realNow, timeScale: SCALE }, (running) => ({ sim, adapter } = running));

async function register(scenario: ScenarioName): Promise<string> {
  const res = await fetch(`${sim.url}/control/parcels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scenario }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { trackingNumber: string }).trackingNumber;
}

async function trackOne(trackingNumber: string): Promise<Extract<TrackResult, { kind: 'found' }>> {
  const [result] = await adapter.track([trackingNumber]);
  if (result?.kind !== 'found') throw new Error(`${trackingNumber} not found`);
  return result;
}

/**
 * Polls every courier hour for `days`; returns the statuses seen (consecutive repeats
 * collapsed) and checks on the way that every answer extends the previous one: a scan once
 * shown never changes its time or key, and never disappears.
 */
type Found = Extract<TrackResult, { kind: 'found' }>;

async function playFor(trackingNumber: string, days: number): Promise<{ statuses: string[]; last: Found }> {
  const statuses: string[] = [];
  let previousKeys: string[] = [];
  let last!: Found;
  for (let hour = 0; hour <= days * 24; hour++) {
    last = await trackOne(trackingNumber);
    const keys = last.events.map((event) => event.key);
    expect(keys.slice(0, previousKeys.length)).toEqual(previousKeys);
    previousKeys = keys;
    if (statuses[statuses.length - 1] !== last.status) statuses.push(last.status);
    advanceCourier(HOUR);
  }
  return { statuses, last };
}

describe('scenario lifecycles', () => {
  it('delivered: info received, in transit, out for delivery, delivered within three courier days', async () => {
    const number = await register('delivered');
    const { statuses, last } = await playFor(number, 3);
    expect(statuses).toEqual(['PENDING', 'INFO_RECEIVED', 'IN_TRANSIT', 'OUT_FOR_DELIVERY', 'DELIVERED']);
    expect(last.eta).toBeNull();
  });

  it('failed_attempt_then_delivered: one failed attempt, then delivered the next day', async () => {
    const number = await register('failed_attempt_then_delivered');
    const { statuses, last } = await playFor(number, 4);
    expect(statuses).toEqual([
      'PENDING',
      'INFO_RECEIVED',
      'IN_TRANSIT',
      'OUT_FOR_DELIVERY',
      'ATTEMPT_FAIL',
      'OUT_FOR_DELIVERY',
      'DELIVERED',
    ]);
    expect(last.events.find((e) => e.status === 'ATTEMPT_FAIL')?.subStatus).toBe('RECIPIENT_ABSENT');
  });

  it('available_for_pickup: held at the counter after a failed attempt, then collected', async () => {
    const number = await register('available_for_pickup');
    const { statuses, last } = await playFor(number, 5);
    expect(statuses).toEqual([
      'PENDING',
      'INFO_RECEIVED',
      'IN_TRANSIT',
      'OUT_FOR_DELIVERY',
      'ATTEMPT_FAIL',
      'AVAILABLE_FOR_PICKUP',
      'DELIVERED',
    ]);
    expect(last.subStatus).toBe('COLLECTED');
  });

  it('exception: damaged at the hub and still in EXCEPTION weeks later', async () => {
    const number = await register('exception');
    const { statuses } = await playFor(number, 3);
    expect(statuses).toEqual(['PENDING', 'INFO_RECEIVED', 'IN_TRANSIT', 'EXCEPTION']);
    advanceCourier(30 * DAY);
    const later = await trackOne(number);
    expect(later.status).toBe('EXCEPTION');
    expect(later.subStatus).toBe('DAMAGED');
  });

  it('return_to_origin: attempts fail, the parcel returns on a leg of its own and ends RETURNED', async () => {
    const number = await register('return_to_origin');
    const { statuses } = await playFor(number, 7);
    expect(statuses).toEqual([
      'PENDING',
      'INFO_RECEIVED',
      'IN_TRANSIT',
      'OUT_FOR_DELIVERY',
      'ATTEMPT_FAIL',
      'OUT_FOR_DELIVERY',
      'ATTEMPT_FAIL',
      'RETURNING',
      'RETURNED',
    ]);

    const res = await fetch(`${sim.url}/native/track`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ trackingNumbers: [number] }),
    });
    const body = (await res.json()) as {
      results: {
        returnTrackingNumber: string | null;
        returnEvents: { status: string; location: { city: string } }[];
        events: { location: { city: string } }[];
      }[];
    };
    const result = body.results[0]!;
    expect(result.returnTrackingNumber).toBe(`${number}R`);
    expect(result.returnEvents.map((e) => e.status)).toEqual([
      'INFO_RECEIVED',
      'IN_TRANSIT',
      'IN_TRANSIT',
      'OUT_FOR_DELIVERY',
      'DELIVERED',
    ]);
    // The return leg ends where the parcel started: back with the shipper.
    expect(result.returnEvents[result.returnEvents.length - 1]!.location.city).toBe(
      result.events[0]!.location.city,
    );
  });

  it('return_to_origin has no return number until the return starts', async () => {
    const number = await register('return_to_origin');
    advanceCourier(3 * DAY);
    const inspect = await fetch(`${sim.url}/control/parcels/${number}`);
    const { view } = (await inspect.json()) as {
      view: { returnTrackingNumber: string | null; returnScans: unknown[] };
    };
    expect(view).toMatchObject({ returnTrackingNumber: null, returnScans: [] });
  });

  it('never_picked_up: info received and nothing else, even two months later', async () => {
    const number = await register('never_picked_up');
    const { statuses } = await playFor(number, 2);
    advanceCourier(60 * DAY);
    const later = await trackOne(number);
    expect(statuses).toEqual(['PENDING', 'INFO_RECEIVED']);
    expect(later.status).toBe('INFO_RECEIVED');
    expect(later.events).toHaveLength(1);
  });

  it('lost: the courier knows the number but never scans it', async () => {
    const number = await register('lost');
    advanceCourier(60 * DAY);
    const later = await trackOne(number);
    expect(later).toMatchObject({ kind: 'found', status: 'PENDING', events: [], eta: null });
  });

  it('a parcel registered with an age starts mid-lifecycle, its earlier scans dated in the past', async () => {
    const res = await fetch(`${sim.url}/control/parcels`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scenario: 'delivered', ageMs: 2 * DAY }),
    });
    const { trackingNumber } = (await res.json()) as { trackingNumber: string };
    const result = await trackOne(trackingNumber);
    expect(result.status).toBe('IN_TRANSIT');
    expect(result.subStatus).toBe('ARRIVED_AT_HUB');
    for (const event of result.events) expect(Date.parse(event.occurredAt)).toBeLessThanOrEqual(realNow);
  });
});

describe('scenario choice', () => {
  it('the same number always plays the same scenario, on any simulator', async () => {
    const other = await startSimulator({ port: 0, timeScale: SCALE, now: () => realNow });
    try {
      const numbers = Array.from({ length: 40 }, (_, i) => `SIM${String(7_000_000 + i).padStart(10, '0')}`);
      const scenarioOn = async (url: string, number: string) => {
        await fetch(`${url}/native/track`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ trackingNumbers: [number] }),
        });
        return (
          (await (await fetch(`${url}/control/parcels/${number}`)).json()) as { parcel: { scenario: string } }
        ).parcel.scenario;
      };
      for (const number of numbers) {
        expect(await scenarioOn(sim.url, number)).toBe(await scenarioOn(other.url, number));
        expect(await scenarioOn(sim.url, number)).toBe(scenarioFor(number));
      }
    } finally {
      await other.stop();
    }
  });

  it('the hash rule is pinned: these numbers play these scenarios in every release', () => {
    expect(
      ['SIM0000000001', 'SIM0000000003', 'SIM1002', 'SIM1003', 'SIM1007', 'EP0000000001', 'BD0000000001'].map(
        scenarioFor,
      ),
    ).toEqual([
      'delivered',
      'return_to_origin',
      'exception',
      'failed_attempt_then_delivered',
      'available_for_pickup',
      'delivered',
      'delivered',
    ]);
  });

  it('over many numbers, each scenario gets close to its documented share', () => {
    const counts = Object.fromEntries(SCENARIO_NAMES.map((name) => [name, 0])) as Record<
      ScenarioName,
      number
    >;
    const total = 20_000;
    for (let i = 0; i < total; i++) counts[scenarioFor(`SIM${String(i).padStart(10, '0')}`)]++;
    expect(TOTAL_WEIGHT).toBe(100);
    for (const name of SCENARIO_NAMES) {
      expect(Math.abs(counts[name] / total - SCENARIOS[name].weight / TOTAL_WEIGHT)).toBeLessThan(0.015);
    }
  });

  it('every scenario lists its steps in time order', () => {
    for (const name of SCENARIO_NAMES) {
      const afters = SCENARIOS[name].steps.map((step) => step.after);
      expect(afters).toEqual([...afters].sort((a, b) => a - b));
    }
  });
});
