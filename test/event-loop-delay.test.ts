/**
 * The worker's main-thread delay gauge: a thread kept busy shows up in the window it was busy
 * in, and a quiet window reads near zero (the sampler's own resolution is not counted).
 */
import { publishEventLoopDelay } from '../src/event-loop-delay';
import { recordingMeter } from './support/meter';

const NAME = 'waybill_worker_event_loop_delay';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // holding the thread, as a long synchronous job in the worker would
  }
}

test('a window in which the main thread was held for 300 ms reads a max of about that; a quiet one reads near 0', async () => {
  const meter = recordingMeter();
  const stop = publishEventLoopDelay(meter, 1_000);
  try {
    await sleep(100);
    busy(300);
    await sleep(1_100);
    const max = meter.value(NAME, { stat: 'max' })!;
    expect(max).toBeGreaterThanOrEqual(250);
    expect(max).toBeLessThan(1_000);
    // One long stall among ~70 samples of the window: the p99 lies between the rest and it.
    expect(meter.value(NAME, { stat: 'p99' })).toBeLessThanOrEqual(max);
    expect(meter.value(NAME, { stat: 'mean' })).toBeGreaterThan(0);

    await sleep(1_000);
    // The next window had nothing holding the thread.
    expect(meter.value(NAME, { stat: 'max' })).toBeLessThan(200);
    // Node counts its own 10 ms sampling period in each sample; a quiet window without it
    // taken off would read 10 ms or more.
    expect(meter.value(NAME, { stat: 'mean' })).toBeLessThan(8);
  } finally {
    stop();
  }
});
