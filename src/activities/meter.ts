import { asyncLocalStorage } from '@temporalio/activity';
import { noopMetricMeter, type MetricMeter } from '@temporalio/common';

/**
 * The running activity's metric meter (its metrics carry the activity's namespace, task
 * queue and type); a no-op when an activity function is called directly, as tests do.
 */
export function activityMeter(): MetricMeter {
  return asyncLocalStorage.getStore()?.metricMeter ?? noopMetricMeter;
}
