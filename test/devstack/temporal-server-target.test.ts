/**
 * Smoke test of the second Temporal target: the real Temporal server (built from its Go module,
 * devstack/temporal-server-target.ts) on the tests' embedded Postgres with databases of its own,
 * a Waybill worker that adds its search attributes to it at start, and one order placed through
 * the API that runs to DELIVERED. The binaries come from the cache (`.ci/run` builds them first
 * with `npm run temporal:server`); without them this test builds them, which takes minutes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { ensureSearchAttributes } from '../../src/search-attributes';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';
import { loadConfig } from '../../src/config';
import {
  resolveTemporalServer,
  startTemporalServer,
  temporalPostgresFromUrl,
  TEMPORAL_SERVER_VERSION,
  type RunningTemporalServer,
} from '../../devstack/temporal-server-target';
import { testLog } from '../support/env';
import { eventually } from '../support/eventually';
import { ADDRESS } from '../support/shopper';
import { useStack } from '../support/stack';
import { fastPolicy } from '../support/temporal';

/** A `go install` of the server on a fresh machine takes minutes (about 11 on a busy 2-core one). */
const BUILD_TIMEOUT_MS = 30 * 60_000;
jest.setTimeout(120_000);

describe(`the real Temporal server ${TEMPORAL_SERVER_VERSION} as a target`, () => {
  const suffix = randomBytes(4).toString('hex');
  const databases = { persistence: `temporal_${suffix}`, visibility: `temporal_${suffix}_visibility` };
  const namespace = loadConfig({}).temporal.namespace;
  const sharedAddress = process.env.WAYBILL_TEST_TEMPORAL_ADDRESS;
  let dir: string;
  let server: RunningTemporalServer;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-temporal-server-'));
    const binaries = await resolveTemporalServer({
      cacheDir: loadConfig({}).paths.cacheDir,
      log: (line) => process.stderr.write(`[temporal server] ${line}\n`),
    });
    server = await startTemporalServer({
      binaries,
      postgres: temporalPostgresFromUrl(process.env.WAYBILL_TEST_PG_URL!),
      databases,
      dir,
      namespace,
      metrics: true,
    });
    // This file's stack (worker and API, started next) talks to the real server, not the shared dev server.
    process.env.WAYBILL_TEST_TEMPORAL_ADDRESS = server.address;
  }, BUILD_TIMEOUT_MS);

  const stack = useStack({ worker: { pollPolicy: fastPolicy() }, api: {} });

  // Declared after useStack(): runs once its worker and API have stopped.
  afterAll(async () => {
    await server?.stop();
    process.env.WAYBILL_TEST_TEMPORAL_ADDRESS = sharedAddress;
    const admin = new pg.Client({ connectionString: process.env.WAYBILL_TEST_PG_URL });
    await admin.connect();
    try {
      for (const name of Object.values(databases))
        await admin.query(`drop database if exists ${name} with (force)`);
    } finally {
      await admin.end();
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('keeps its history and visibility in databases of its own on Postgres, schema set up by its SQL tool', async () => {
    const tables = async (database: string) => {
      const client = new pg.Client({
        ...temporalPostgresFromUrl(process.env.WAYBILL_TEST_PG_URL!),
        database,
      });
      await client.connect();
      try {
        const { rows } = await client.query<{ table_name: string }>(
          "select table_name from information_schema.tables where table_schema = 'public'",
        );
        return rows.map((r) => r.table_name);
      } finally {
        await client.end();
      }
    };
    expect(await tables(databases.persistence)).toEqual(
      expect.arrayContaining(['executions', 'history_node', 'shards', 'schema_version']),
    );
    expect(await tables(databases.visibility)).toEqual(
      expect.arrayContaining(['executions_visibility', 'schema_version']),
    );
  });

  it('takes Waybill’s search attributes from the worker at start, once', async () => {
    const connection = await Connection.connect({ address: server.address });
    try {
      const target = { address: server.address, namespace };
      const first = await ensureSearchAttributes(connection, target, testLog);
      expect(first.map((a) => [a.name, a.outcome])).toEqual(
        SEARCH_ATTRIBUTES.map((key) => [key.name, 'created']),
      );
      const again = await ensureSearchAttributes(connection, target, testLog);
      expect(again.map((a) => a.outcome)).toEqual(SEARCH_ATTRIBUTES.map(() => 'unchanged'));
    } finally {
      await connection.close();
    }
  });

  it('runs an order placed through the API to DELIVERED, findable by its OrderId attribute', async () => {
    const { api, database, worker } = stack;
    expect(api.config.temporal.address).toBe(server.address);
    const sku = `SKU_${suffix}`;
    await database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, unit_amount: 4_990, location: 'main', currency: 'MYR' })
      .execute();

    const created = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...api.customer('cus_server'), 'idempotency-key': randomUUID() },
      payload: {
        email: 'aisyah@example.com',
        shippingAddress: { ...ADDRESS, name: `${ADDRESS.name} [scenario:delivered]` },
        lines: [{ sku, quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
    });
    expect(created.statusCode).toBe(202);
    const { orderId } = created.json() as { orderId: string };

    const read = () => api.app.inject({ url: `/v1/orders/${orderId}`, headers: api.customer('cus_server') });
    const order = await eventually(
      async () => (await read()).json() as { status: string },
      (o) => o.status === 'DELIVERED',
      60_000,
    );
    expect(order).toMatchObject({
      status: 'DELIVERED',
      payment: { status: 'CAPTURED', amountCaptured: 4_990, amountRefunded: 0 },
      shipments: [{ status: 'DELIVERED', courier: 'simulator' }],
    });
    // Postgres visibility indexes the custom attributes the worker added.
    const found = await eventually(
      async () => {
        const ids: string[] = [];
        for await (const w of worker.client.workflow.list({ query: `OrderId = '${orderId}'` }))
          ids.push(w.type);
        return ids;
      },
      (types) => types.includes('orderWorkflow'),
      30_000,
    );
    expect(found).toContain('orderWorkflow');
  });

  it('serves its own metrics when asked: the benchmarks read its shard waits and persistence calls there', async () => {
    // Runs after the order above: the server has written its workflows by now.
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(server.metricsUrl!)).text();
    const total = (name: string, label: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && line.includes(label))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    expect(total('persistence_latency_count', 'operation="UpdateWorkflowExecution"')).toBeGreaterThan(0);
    expect(total('semaphore_latency_count', 'operation="ShardInfo"')).toBeGreaterThan(0);
  });
});
