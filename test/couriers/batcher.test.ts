/**
 * The batcher's caps per courier, which hold a worker's polls since they run as local
 * activities (no task queue limits them): calls in flight, and calls started per second.
 * The courier call is the batcher's own seam (`call`); the adapter is never asked.
 */
import { createTrackBatcher } from '../../src/couriers/batcher';
import { CourierCode, type CourierAdapter, type TrackResult } from '../../src/couriers/types';

const adapter = (maxBatch: number): CourierAdapter =>
  ({
    code: CourierCode.EASYPARCEL,
    maxBatch,
    track: () => Promise.reject(new Error('the batcher must call through `call`')),
  }) as unknown as CourierAdapter;

const notFound = (numbers: string[]): TrackResult[] =>
  numbers.map((trackingNumber) => ({ kind: 'not_found', trackingNumber }));

/** A courier that answers after `ms`, recording when each call started and how many were out at once. */
function recordingCall(ms: number) {
  const starts: number[] = [];
  let out = 0;
  let mostOut = 0;
  const call = async (numbers: string[]) => {
    starts.push(Date.now());
    out += 1;
    mostOut = Math.max(mostOut, out);
    await new Promise((resolve) => setTimeout(resolve, ms));
    out -= 1;
    return notFound(numbers);
  };
  return { call, starts, mostOut: () => mostOut };
}

/** A batcher of `maxBatch` numbers a call over `call`: no window and no caps unless given. */
const batcherOf = (
  maxBatch: number,
  call: (numbers: string[]) => Promise<TrackResult[]>,
  caps: { windowMs?: number; concurrency?: number; callsPerSecond?: number },
) =>
  createTrackBatcher({
    adapter: adapter(maxBatch),
    windowMs: caps.windowMs ?? 0,
    concurrency: caps.concurrency ?? Number.POSITIVE_INFINITY,
    ...(caps.callsPerSecond ? { callsPerSecond: caps.callsPerSecond } : {}),
    call,
  });

/**
 * The most calls started within any one second, as the courier saw them. A start is read a
 * moment after the batcher took its own time for it, a few ms later on a loaded machine: a
 * window a little under a second keeps that jitter from counting the next second's call.
 */
function mostInOneSecond(starts: number[]): number {
  return Math.max(...starts.map((s) => starts.filter((t) => t >= s && t < s + 950).length));
}

describe('track batcher caps', () => {
  it('starts at most callsPerSecond calls in any second, and answers every poll', async () => {
    const courier = recordingCall(10);
    const batcher = batcherOf(1, courier.call, { callsPerSecond: 2 });
    const numbers = ['A1', 'A2', 'A3', 'A4', 'A5'];
    const results = await Promise.all(numbers.map((n) => batcher.track(n)));

    expect(results.map((r) => r.trackingNumber)).toEqual(numbers);
    expect(courier.starts).toHaveLength(5);
    expect(mostInOneSecond(courier.starts)).toBe(2);
    // Five calls at two a second: the fifth starts two seconds after the first (less that jitter).
    expect(courier.starts[4]! - courier.starts[0]!).toBeGreaterThanOrEqual(1_950);
    expect(batcher.waiting).toBe(0);
  });

  it('sends a full batch at once under the per-second cap, and waits for the cap, not the window, when it is reached', async () => {
    const courier = recordingCall(10);
    const batcher = batcherOf(2, courier.call, { windowMs: 60_000, callsPerSecond: 1 });
    const started = Date.now();
    const results = await Promise.all(['B1', 'B2', 'B3', 'B4'].map((n) => batcher.track(n)));

    expect(results).toHaveLength(4);
    // Two full batches of two: the first at once, the second a second later (never the 60 s window).
    expect(courier.starts).toHaveLength(2);
    expect(courier.starts[0]! - started).toBeLessThan(500);
    expect(courier.starts[1]! - courier.starts[0]!).toBeGreaterThanOrEqual(950);
    expect(courier.starts[1]! - started).toBeLessThan(5_000);
  });

  it('keeps at most `concurrency` calls in flight', async () => {
    const courier = recordingCall(200);
    const batcher = batcherOf(1, courier.call, { concurrency: 2 });
    await Promise.all(['C1', 'C2', 'C3', 'C4', 'C5', 'C6'].map((n) => batcher.track(n)));

    expect(courier.starts).toHaveLength(6);
    expect(courier.mostOut()).toBe(2);
  });
});
