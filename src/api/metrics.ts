/**
 * Prometheus metrics at `GET /metrics` on a listener of its own (WAYBILL_METRICS_HOST /
 * WAYBILL_METRICS_PORT), never on the public port: requests by method, route template and
 * status; the process's own metrics; and business gauges read from the read model when
 * scraped (cached briefly, so several scrapers or a fast scrape interval cost one set of
 * queries). They say how many shipments are failing and what the courier budget is: not
 * for the internet, and a scraper needs no credential on a network only it reaches.
 *
 * Each app has its own registry (never prom-client's global one): tests build several
 * apps in one process, and a metric registered twice in one registry is an error.
 */
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onResponseHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { COURIER_CODES } from '../couriers/types';
import { shipmentCountsByStatus, staleCount, syncFailingCount } from '../read-model/admin-queries';
import { SHIPMENT_STATUSES } from '../domain/status';
import { budgetDay } from '../domain/polling';
import { courierUsageOn } from '../read-model/courier-usage';
import type { ApiDeps } from './app';
import { errorBody } from './errors';
import { RequestMetrics, type RecordRequest } from './request-metrics';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry: plugins add their own metrics to it. */
    metrics: Registry;
    /** The app behind the metrics listener (`GET /metrics` only); the API's close closes it. */
    metricsServer: FastifyInstance;
  }
}

/** How long one reading of the read model serves scrapes (ms). */
export const BUSINESS_METRICS_CACHE_MS = 5_000;

/** Requests that matched no route share one label value, so junk URLs cannot add series. */
const UNMATCHED_ROUTE = 'unmatched';

interface BusinessReading {
  byStatus: Map<string, number>;
  stale: number;
  syncFailing: number;
  usage: Map<string, { calls: number; failures: number }>;
}

async function readBusiness(deps: ApiDeps): Promise<BusinessReading> {
  const { db } = deps;
  // Stale (or expired) as customers see it: the rule of src/domain/freshness.ts, in SQL.
  const [byStatus, stale, syncFailing, usage] = await Promise.all([
    shipmentCountsByStatus(db),
    staleCount(db, deps.config.api.freshness, new Date()),
    syncFailingCount(db),
    courierUsageOn(db, budgetDay(Date.now())),
  ]);
  return {
    byStatus: new Map(byStatus.map((r) => [r.status, Number(r.count)])),
    stale,
    syncFailing,
    usage: new Map(usage.map((r) => [r.courier, { calls: r.calls, failures: r.failures }])),
  };
}

/** The gauges computed from the read model, all from one cached reading. */
function registerBusinessGauges(app: FastifyInstance, registry: Registry, deps: ApiDeps): void {
  let cached: { at: number; reading: Promise<BusinessReading | null> } | null = null;
  // One reading per cache period whatever the number of gauges; a failed reading is not
  // cached, and answers "no data" (and waybill_read_model_up 0) instead of failing the scrape.
  const reading = (): Promise<BusinessReading | null> => {
    if (cached === null || Date.now() - cached.at > BUSINESS_METRICS_CACHE_MS) {
      const at = Date.now();
      const promise = readBusiness(deps).catch((err: unknown) => {
        app.log.warn({ err }, 'metrics: could not read the read model');
        if (cached?.at === at) cached = null;
        return null;
      });
      cached = { at, reading: promise };
    }
    return cached.reading;
  };
  const registers = [registry];

  new Gauge({
    name: 'waybill_read_model_up',
    help: '1 when the business gauges below could be read from Postgres at this scrape, else 0',
    registers,
    async collect() {
      this.set((await reading()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'waybill_shipments',
    help: 'Shipments in the read model by status (archived ones excluded)',
    labelNames: ['status'],
    registers,
    async collect() {
      const r = await reading();
      this.reset();
      if (!r) return;
      for (const status of SHIPMENT_STATUSES) this.set({ status }, r.byStatus.get(status) ?? 0);
    },
  });
  new Gauge({
    name: 'waybill_shipments_stale',
    help: 'Unfinished shipments whose planned poll is late past the freshness grace, or failing (what customers see as stale or expired)',
    registers,
    async collect() {
      const r = await reading();
      this.reset();
      if (r) this.set(r.stale);
    },
  });
  new Gauge({
    name: 'waybill_shipments_sync_failing',
    help: 'Unfinished shipments whose last courier sync failed (courier down, budget used up, number unknown)',
    registers,
    async collect() {
      const r = await reading();
      this.reset();
      if (r) this.set(r.syncFailing);
    },
  });
  const couriers = (r: BusinessReading) => new Set([...COURIER_CODES, ...r.usage.keys()]);
  new Gauge({
    name: 'waybill_courier_calls_today',
    help: 'Courier API calls made today (UTC day) per courier; compare with waybill_courier_daily_budget',
    labelNames: ['courier'],
    registers,
    async collect() {
      const r = await reading();
      this.reset();
      if (!r) return;
      for (const courier of couriers(r)) this.set({ courier }, r.usage.get(courier)?.calls ?? 0);
    },
  });
  new Gauge({
    name: 'waybill_courier_call_failures_today',
    help: 'Courier API calls that failed today (UTC day) per courier',
    labelNames: ['courier'],
    registers,
    async collect() {
      const r = await reading();
      this.reset();
      if (!r) return;
      for (const courier of couriers(r)) this.set({ courier }, r.usage.get(courier)?.failures ?? 0);
    },
  });
  // The same for every courier: set once.
  const settings: [name: string, help: string, value: number][] = [
    [
      'waybill_courier_daily_budget',
      'Courier API calls allowed per courier per UTC day (WAYBILL_COURIER_DAILY_BUDGET)',
      deps.config.courier.dailyBudget,
    ],
    [
      'waybill_courier_booking_reserve',
      'Of the daily budget, the calls polls leave to bookings: polls stop at budget - reserve (WAYBILL_COURIER_BOOKING_RESERVE)',
      deps.config.courier.bookingReserve,
    ],
    [
      'waybill_courier_requests_per_second',
      "Requests per courier started in any second of Postgres's clock, across every worker, spaced evenly (WAYBILL_COURIER_REQUESTS_PER_SECOND); waybill_courier_request_waits counts the requests that waited for their slot",
      deps.config.courier.requestsPerSecond,
    ],
  ];
  for (const [name, help, value] of settings) {
    const gauge = new Gauge({ name, help, labelNames: ['courier'], registers });
    for (const courier of COURIER_CODES) gauge.set({ courier }, value);
  }
}

/**
 * Registers the request metrics on every route (this plugin is not encapsulated: each route
 * added after it gets an onResponse hook of its own, with its template resolved once), the
 * gauges, and the metrics listener's app with `GET /metrics`. Register it before any route.
 */
export const metricsPlugin = fp<{ deps: ApiDeps }>(async (app, { deps }) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new RequestMetrics();

  const observe = (record: RecordRequest, request: FastifyRequest, reply: FastifyReply) => {
    // An event stream lasts as long as the client stays: not a latency.
    const type = reply.getHeader('content-type');
    const streamed = typeof type === 'string' && type.startsWith('text/event-stream');
    record(request.method, reply.statusCode, streamed ? null : reply.elapsedTime / 1000);
  };
  app.addHook('onRoute', (route) => {
    // The template (/v1/tracking/:trackingNumber), never the URL: one series per route.
    const record = requests.forRoute(route.url);
    // A callback hook: no promise per request.
    const hook: onResponseHookHandler = (request, reply, done) => {
      observe(record, request, reply);
      done();
    };
    // A new array: Fastify's HEAD twin of a GET route starts from the GET's options.
    route.onResponse = [...[route.onResponse ?? []].flat(), hook];
  });
  // Requests that matched no route (Fastify's not-found handler runs the app's hooks).
  const unmatched = requests.forRoute(UNMATCHED_ROUTE);
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) observe(unmatched, request, reply);
    done();
  });

  registerBusinessGauges(app, registry, deps);
  app.decorate('metrics', registry);

  // A separate app, so the public port never serves it and its scrapes stay out of the
  // request metrics, rate limits and OpenAPI document.
  const server = Fastify({
    loggerInstance: app.log,
    logController: new LogController({ disableRequestLogging: true }),
  });
  server.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(`${await registry.metrics()}\n${requests.exposition()}\n`),
  );
  server.setNotFoundHandler((_request, reply) =>
    reply.code(404).send(errorBody('NOT_FOUND', 'this listener serves GET /metrics only')),
  );
  app.decorate('metricsServer', server);
  app.addHook('onClose', async () => server.close());
});
