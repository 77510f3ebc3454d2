/**
 * The request metrics (`waybill_http_requests_total`, `waybill_http_request_duration_seconds`),
 * counted per series: each route resolves its series (method, status) once, and a request
 * adds to plain numbers. prom-client's counters and histograms hash and check their label
 * values on every call, about 0.7 µs a request; this is one map lookup. The series are
 * written in Prometheus' text format at scrape time, as prom-client writes its own.
 */

/** Upper bounds (seconds) of the latency histogram's buckets. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const REQUESTS = {
  name: 'waybill_http_requests_total',
  help: 'HTTP requests answered, by method, route template and status code',
};
const DURATION = {
  name: 'waybill_http_request_duration_seconds',
  help: 'Time to answer an HTTP request, by method, route template and status code (event streams excluded)',
};

interface Series {
  /** `method="GET",route="/v1/…",status_code="200"`, as the samples carry them. */
  labels: string;
  /** Requests answered. */
  count: number;
  /** Requests whose time was observed (event streams are not). */
  timed: number;
  /** Seconds, over the timed requests. */
  sum: number;
  /** Timed requests per bucket of {@link DURATION_BUCKETS} (not cumulative; above the last: none). */
  buckets: number[];
}

const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Records one answered request: its method, status and time in seconds (null: not timed). */
export type RecordRequest = (method: string, statusCode: number, seconds: number | null) => void;

export class RequestMetrics {
  /** Every series, in the order they first appeared. */
  private readonly all: Series[] = [];
  private readonly routes = new Map<string, RecordRequest>();

  /** The recorder of one route (its template, or any fixed label such as "unmatched"); one per route. */
  forRoute(route: string): RecordRequest {
    let record = this.routes.get(route);
    if (record === undefined) {
      record = this.newRecorder(route);
      this.routes.set(route, record);
    }
    return record;
  }

  private newRecorder(route: string): RecordRequest {
    const byMethodAndStatus = new Map<string, Series>();
    return (method, statusCode, seconds) => {
      const key = method + statusCode;
      let series = byMethodAndStatus.get(key);
      if (series === undefined) {
        series = {
          labels: `method="${escapeLabel(method)}",route="${escapeLabel(route)}",status_code="${statusCode}"`,
          count: 0,
          timed: 0,
          sum: 0,
          buckets: DURATION_BUCKETS.map(() => 0),
        };
        byMethodAndStatus.set(key, series);
        this.all.push(series);
      }
      series.count++;
      if (seconds === null) return;
      series.timed++;
      series.sum += seconds;
      const bucket = DURATION_BUCKETS.findIndex((bound) => seconds <= bound);
      if (bucket !== -1) series.buckets[bucket]!++;
    };
  }

  /** Both metrics in Prometheus' text format (0.0.4), without a final newline. */
  exposition(): string {
    const lines = [`# HELP ${REQUESTS.name} ${REQUESTS.help}`, `# TYPE ${REQUESTS.name} counter`];
    for (const s of this.all) lines.push(`${REQUESTS.name}{${s.labels}} ${s.count}`);
    lines.push('', `# HELP ${DURATION.name} ${DURATION.help}`, `# TYPE ${DURATION.name} histogram`);
    for (const s of this.all) {
      if (s.timed === 0) continue;
      let cumulative = 0;
      DURATION_BUCKETS.forEach((bound, i) => {
        cumulative += s.buckets[i]!;
        lines.push(`${DURATION.name}_bucket{le="${bound}",${s.labels}} ${cumulative}`);
      });
      lines.push(
        `${DURATION.name}_bucket{le="+Inf",${s.labels}} ${s.timed}`,
        `${DURATION.name}_sum{${s.labels}} ${s.sum}`,
        `${DURATION.name}_count{${s.labels}} ${s.timed}`,
      );
    }
    return lines.join('\n');
  }
}
