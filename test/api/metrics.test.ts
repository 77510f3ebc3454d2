/**
 * GET /metrics on the API's metrics listener (never the public port), on a fresh read model:
 * request counters and latencies labelled by route template, process metrics, and business
 * gauges that match the rows seeded here.
 */
import { createDb } from '../../db/client';
import { buildApi } from '../../src/api/app';
import { createTemporalClient } from '../../src/temporal';
import { testConfig, testLog } from '../support/env';
import { freePort } from '../support/ports';
import { useStack } from '../support/stack';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
      );
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);

describe('GET /metrics', () => {
  const stack = useStack({
    worker: false,
    payments: false,
    api: { env: { WAYBILL_COURIER_DAILY_BUDGET: '250', WAYBILL_COURIER_REQUESTS_PER_SECOND: '7' } },
  });

  beforeAll(async () => {
    const shipment = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
      id,
      courier: 'bluedart',
      tracking_number: `BD${id.replace(/\D/g, '').padStart(8, '0')}`,
      status,
      ...extra,
    });
    await stack.database.db
      .insertInto('shipments')
      .values([
        // Synced just now, next poll in 2 h: fresh.
        shipment('s1', 'IN_TRANSIT', { last_synced_at: new Date(), next_poll_at: hoursAgo(-2) }),
        // Its next poll was due an hour ago: stale.
        shipment('s2', 'IN_TRANSIT', { last_synced_at: hoursAgo(3), next_poll_at: hoursAgo(1) }),
        // Never synced, created an hour ago (its first poll due then): stale; and the courier is failing.
        shipment('s3', 'OUT_FOR_DELIVERY', {
          created_at: hoursAgo(1),
          sync_error: 'courier unavailable',
          sync_failing_since: hoursAgo(1),
        }),
        // Finished shipments are never stale.
        shipment('s4', 'DELIVERED', { last_synced_at: hoursAgo(100) }),
        // Just created, not synced yet: not stale yet.
        shipment('s5', 'PENDING'),
        // Archived: not counted at all.
        shipment('s6', 'IN_TRANSIT', { last_synced_at: hoursAgo(100), archived_at: new Date() }),
      ])
      .execute();
    await stack.database.db
      .insertInto('courier_api_usage')
      .values([
        { courier: 'easyparcel', day: today, calls: 42, failures: 3 },
        { courier: 'easyparcel', day: yesterday, calls: 999, failures: 0 },
        { courier: 'bluedart', day: today, calls: 7, failures: 0 },
      ])
      .execute();
  });

  const scrape = async (app = stack.api.app) => {
    const res = await app.metricsServer.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return { res, samples: parse(res.body) };
  };

  it('counts requests by method, route template and status, never by raw URL', async () => {
    await stack.api.app.inject({ method: 'GET', url: '/health/live' });
    await stack.api.app.inject({ method: 'GET', url: '/health/live' });
    await stack.api.app.inject({ method: 'GET', url: '/v1/tracking/BD00000001' });
    await stack.api.app.inject({ method: 'GET', url: '/v1/tracking/NOPE0000' });
    await stack.api.app.inject({ method: 'GET', url: '/no/such/route/12345' });

    const { res, samples } = await scrape();
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const requests = (route: string, status: string) =>
      value(samples, 'waybill_http_requests_total', { method: 'GET', route, status_code: status });
    expect(requests('/health/live', '200')).toBe(2);
    expect(requests('/v1/tracking/:trackingNumber', '200')).toBe(1);
    expect(requests('/v1/tracking/:trackingNumber', '404')).toBe(1);
    expect(requests('unmatched', '404')).toBe(1);
    expect(
      value(samples, 'waybill_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/health/live',
        status_code: '200',
      }),
    ).toBe(2);
    expect(res.body).not.toContain('NOPE0000');
    expect(res.body).not.toContain('12345');
  });

  it('includes the process metrics', async () => {
    const { samples } = await scrape();
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('reports shipments by status, stale and failing shipments, and courier calls today against the budget', async () => {
    const { samples } = await scrape();
    const shipments = (status: string) => value(samples, 'waybill_shipments', { status });
    expect(shipments('IN_TRANSIT')).toBe(2);
    expect(shipments('OUT_FOR_DELIVERY')).toBe(1);
    expect(shipments('DELIVERED')).toBe(1);
    expect(shipments('PENDING')).toBe(1);
    expect(shipments('EXCEPTION')).toBe(0);
    expect(value(samples, 'waybill_shipments_stale')).toBe(2);
    expect(value(samples, 'waybill_shipments_sync_failing')).toBe(1);
    expect(value(samples, 'waybill_courier_calls_today', { courier: 'easyparcel' })).toBe(42);
    expect(value(samples, 'waybill_courier_call_failures_today', { courier: 'easyparcel' })).toBe(3);
    expect(value(samples, 'waybill_courier_calls_today', { courier: 'bluedart' })).toBe(7);
    expect(value(samples, 'waybill_courier_calls_today', { courier: 'simulator' })).toBe(0);
    expect(value(samples, 'waybill_courier_daily_budget', { courier: 'easyparcel' })).toBe(250);
    expect(value(samples, 'waybill_courier_booking_reserve', { courier: 'easyparcel' })).toBe(25);
    expect(value(samples, 'waybill_courier_requests_per_second', { courier: 'easyparcel' })).toBe(7);
    expect(value(samples, 'waybill_read_model_up')).toBe(1);
  });

  it('is not on the public port, nor in the OpenAPI document; its own listener is never rate limited', async () => {
    const limited = await stack.anotherApi({ env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '2' } });
    const onPublicPort = await limited.app.inject({ method: 'GET', url: '/metrics' });
    expect({ status: onPublicPort.statusCode, code: onPublicPort.json().error.code }).toEqual({
      status: 404,
      code: 'NOT_FOUND',
    });
    for (let i = 0; i < 5; i++) await scrape(limited.app);
    const documents = [];
    for (let i = 0; i < 3; i++)
      documents.push(await limited.app.inject({ method: 'GET', url: '/openapi.json' }));
    expect(documents.map((d) => d.statusCode)).toEqual([200, 200, 429]);
    expect(documents[0]!.json().paths['/metrics']).toBeUndefined();
  });

  it('keeps one registry per app: another app in the process counts only its own requests', async () => {
    const other = await stack.anotherApi();
    const { samples } = await scrape(other.app);
    expect(value(samples, 'waybill_http_requests_total', { route: '/health/live' })).toBeUndefined();
  });

  it('still answers with request and process metrics while Postgres is down, saying the read model is not up', async () => {
    const config = testConfig({ DATABASE_URL: `postgres://x:y@127.0.0.1:${await freePort()}/none` });
    const db = createDb({ url: config.database.url, poolMax: 1, connectTimeoutMs: 500 });
    const temporal = createTemporalClient(config);
    const app = await buildApi({ config, db, temporal, log: testLog });
    try {
      await app.inject({ method: 'GET', url: '/health/live' });
      const { samples } = await scrape(app);
      expect(value(samples, 'waybill_read_model_up')).toBe(0);
      expect(value(samples, 'waybill_shipments', { status: 'IN_TRANSIT' })).toBeUndefined();
      expect(value(samples, 'waybill_http_requests_total', { route: '/health/live' })).toBe(1);
    } finally {
      await app.close();
      await temporal.connection.close();
      await db.destroy();
    }
  });
});
