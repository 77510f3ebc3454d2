/**
 * The worker's main thread, as ops see it: how late it ran what was due. Every workflow
 * activation, local activity and payload passes through this thread on its way between the
 * SDK core and the workflow thread(s), so a busy loop delays every workflow task by as much.
 * The workflow threads, which run the workflow code itself, are not measured here.
 * Published through the runtime's meter (served with Temporal's metrics), one window at a time.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MetricMeter } from '@temporalio/common';
import { Metrics } from './metrics';

/**
 * Samples the loop's delay and sets mean / p99 / max of each `windowMs` (ms, with fractions);
 * returns a stop. The window is as long as a usual scrape interval: a scrape sees the last
 * window only, so a shorter one would lose the stalls of the windows between two scrapes.
 */
export function publishEventLoopDelay(meter: MetricMeter, windowMs = 15_000): () => void {
  const { name, unit, description } = Metrics.workerEventLoopDelay;
  const delay = meter.createGauge(name, 'float', unit, description);
  const resolutionMs = 10;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  // Node records the whole time between two of its ticks, the resolution included.
  const nsToMs = (ns: number) => Math.max(0, ns / 1e6 - resolutionMs);
  const timer = setInterval(() => {
    // An empty window (no sample yet) reads NaN for the mean: nothing to publish.
    if (histogram.count > 0) {
      delay.set(nsToMs(histogram.mean), { stat: 'mean' });
      delay.set(nsToMs(histogram.percentile(99)), { stat: 'p99' });
      delay.set(nsToMs(histogram.max), { stat: 'max' });
    }
    histogram.reset();
  }, windowMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
