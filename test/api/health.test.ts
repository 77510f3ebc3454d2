import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createDb } from '../../db/client';
import { buildApi } from '../../src/api/app';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import { freePort } from '../support/ports';
import { testConfig, testLog } from '../support/env';
import { startChildPostgres, type ChildPostgres } from '../support/postgres-child';

describe('health endpoints', () => {
  // A Postgres of this file's own, so the test can stop it under the API.
  let postgres: ChildPostgres;
  let dir: string;
  let app: FastifyInstance;
  let temporal: TemporalClient;
  let db: ReturnType<typeof createDb>;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-health-'));
    postgres = await startChildPostgres(path.join(dir, 'pg'), await freePort());
    const config = testConfig({ DATABASE_URL: postgres.url });
    db = createDb({ url: postgres.url, poolMax: 2, connectTimeoutMs: 1_000 });
    temporal = createTemporalClient(config);
    app = await buildApi({ config, db, temporal, log: testLog });
  });

  afterAll(async () => {
    await app.close();
    await temporal.connection.close();
    await db.destroy();
    await postgres.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('live answers 200 while the process runs', async () => {
    const res = await app.inject({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('ready answers 200 when Postgres and Temporal both answer', async () => {
    const res = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
    expect(res.statusCode).toBe(200);
  });

  it('ready answers 503 naming Postgres once it is stopped, and 200 again after it is back', async () => {
    await postgres.stop();
    try {
      const started = Date.now();
      const res = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'not_ready', checks: { postgres: 'down', temporal: 'ok' } });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await postgres.start();
    }
    const again = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(again.statusCode).toBe(200);
  });

  it('ready answers 503 naming Temporal when it cannot be reached', async () => {
    const config = testConfig({
      DATABASE_URL: postgres.url,
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    });
    const deadTemporal = createTemporalClient(config);
    const other = await buildApi({ config, db, temporal: deadTemporal, log: testLog });
    try {
      const res = await other.inject({ method: 'GET', url: '/health/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'not_ready', checks: { postgres: 'ok', temporal: 'down' } });
    } finally {
      await other.close();
      await deadTemporal.connection.close().catch(() => undefined);
    }
  });

  it('echoes a sane x-request-id and makes one up otherwise', async () => {
    const given = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': 'bad id\u0000' },
    });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers unknown routes with the one error shape', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /nope' } });
  });

  it('serves an OpenAPI document that lists the health routes, and the docs page', async () => {
    const doc = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    expect(doc.json().openapi).toBe('3.1.0');
    expect(Object.keys(doc.json().paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready']));
    const docs = await app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });
});
