/**
 * A Temporal `MetricMeter` that keeps what is recorded, for tests of code that takes a meter
 * (the worker passes its runtime's, served on its Prometheus endpoint). Read a series like a
 * scrape: `value(name, labels)` is a counter's sum, a gauge's last value; `observations` the
 * values a histogram received.
 */
import type { MetricMeter, MetricTags } from '@temporalio/common';

export interface RecordingMeter extends MetricMeter {
  value(name: string, tags?: MetricTags): number | undefined;
  observations(name: string, tags?: MetricTags): number[];
}

const seriesKey = (name: string, tags: MetricTags) =>
  `${name}${JSON.stringify(Object.entries(tags).sort(([a], [b]) => a.localeCompare(b)))}`;

export function recordingMeter(): RecordingMeter {
  const values = new Map<string, number>();
  const histograms = new Map<string, number[]>();
  const meter = (base: MetricTags): MetricMeter => ({
    createCounter: (name, unit, description) => ({
      name,
      unit,
      description,
      kind: 'counter',
      valueType: 'int',
      add(value, tags = {}) {
        const key = seriesKey(name, { ...base, ...tags });
        values.set(key, (values.get(key) ?? 0) + value);
      },
      withTags: () => {
        throw new Error('not needed by the code under test');
      },
    }),
    createGauge: (name, valueType = 'int', unit, description) => ({
      name,
      unit,
      description,
      kind: 'gauge',
      valueType,
      set(value, tags = {}) {
        values.set(seriesKey(name, { ...base, ...tags }), value);
      },
      withTags: () => {
        throw new Error('not needed by the code under test');
      },
    }),
    createHistogram: (name, valueType = 'int', unit, description) => ({
      name,
      unit,
      description,
      kind: 'histogram',
      valueType,
      record(value, tags = {}) {
        const key = seriesKey(name, { ...base, ...tags });
        histograms.set(key, [...(histograms.get(key) ?? []), value]);
      },
      withTags: () => {
        throw new Error('not needed by the code under test');
      },
    }),
    withTags: (tags) => meter({ ...base, ...tags }),
  });
  return {
    ...meter({}),
    value: (name, tags = {}) => values.get(seriesKey(name, tags)),
    observations: (name, tags = {}) => histograms.get(seriesKey(name, tags)) ?? [],
  };
}
