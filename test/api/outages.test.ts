/**
 * Postgres unreachable under the API: every route that needs it answers 503
 * DATABASE_UNAVAILABLE within the pool's connect timeout instead of hanging or 500ing, and
 * readiness says which dependency is down. (Temporal down is covered with the routes that
 * need it, in orders.test.ts and admin.test.ts.)
 */
import type { FastifyInstance } from 'fastify';
import { createDb } from '../../db/client';
import { buildApi } from '../../src/api/app';
import { signToken } from '../../src/api/tokens';
import { DEV_ADMIN_API_KEY } from '../../src/config';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import { testConfig, testLog } from '../support/env';
import { freePort } from '../support/ports';

describe('Postgres unreachable', () => {
  let app: FastifyInstance;
  let temporal: TemporalClient;
  let destroy: () => Promise<void>;

  beforeAll(async () => {
    const url = `postgres://waybill:waybill@127.0.0.1:${await freePort()}/waybill`;
    const config = testConfig({ DATABASE_URL: url });
    const db = createDb({ url, connectTimeoutMs: 1_000 });
    destroy = () => db.destroy();
    temporal = createTemporalClient(config);
    app = await buildApi({ config, db, temporal, log: testLog });
  });

  afterAll(async () => {
    await app.close();
    await temporal.connection.close();
    await destroy();
  });

  const customer = { authorization: `Bearer ${signToken(testConfig().api.jwtSecret, { sub: 'cus_1' })}` };
  const requests = [
    { method: 'GET' as const, url: '/v1/tracking/SIM0000000001' },
    { method: 'GET' as const, url: '/v1/orders/ord_1', headers: customer },
    { method: 'GET' as const, url: '/v1/orders/ord_1/tracking', headers: customer },
    {
      method: 'POST' as const,
      url: '/v1/tracking/lookup',
      payload: { orderNumber: 'WB-100001', email: 'a@example.com' },
    },
    {
      method: 'POST' as const,
      url: '/v1/orders',
      headers: { ...customer, 'idempotency-key': 'outage-key-1' },
      payload: {
        email: 'a@example.com',
        shippingAddress: { name: 'A', line1: 'B', city: 'C', postcode: '40000', country: 'MY' },
        lines: [{ sku: 'KETTLE-1L', quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
    },
    { method: 'GET' as const, url: '/v1/admin/shipments', headers: { 'x-api-key': DEV_ADMIN_API_KEY } },
    { method: 'GET' as const, url: '/v1/admin/stats', headers: { 'x-api-key': DEV_ADMIN_API_KEY } },
  ];

  it.each(requests.map((r) => [`${r.method} ${r.url}`, r] as const))(
    '%s answers 503 DATABASE_UNAVAILABLE promptly',
    async (_name, request) => {
      const started = Date.now();
      const res = await app.inject(request);
      // The pool's 3 s connect timeout answers, not the OS's TCP timeout (minutes); the bound
      // leaves room for a loaded machine.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('DATABASE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('5');
    },
  );

  it('readiness reports Postgres down and Temporal up', async () => {
    const res = await app.inject({ url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not_ready', checks: { postgres: 'down', temporal: 'ok' } });
  });
});
