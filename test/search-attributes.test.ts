/**
 * Waybill on a Temporal that nobody has set up for it: a second dev server from the same CLI,
 * started with none of Waybill's search attributes (one namespace per case). The worker adds
 * them at start and changes nothing on the next; an attribute of another type, or a worker
 * without operator rights (self-hosted or Temporal Cloud), stops it at start with one line
 * that names the attributes and the command that fixes them; meanwhile the API answers 503
 * TEMPORAL_NOT_READY, never 500.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startTemporalDevServer, type RunningDevServer } from '../devstack/temporal-server';
import { StartupError } from '../src/main-helpers';
import { ensureSearchAttributes } from '../src/search-attributes';
import { orderWorkflowId } from '../src/workflows/contract';
import { SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';
import { startTestApi, type TestApi } from './support/api';
import { freshDatabase, type TestDatabase } from './support/db';
import { testLog, testTemporalCliPath } from './support/env';
import { startGrpcProxy, type RunningGrpcProxy } from './support/grpc-proxy';

jest.setTimeout(120_000);

const ROOT = path.join(__dirname, '..');
const execFileAsync = promisify(execFile);
const { IndexedValueType } = temporal.api.enums.v1;
const KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const INT = IndexedValueType.INDEXED_VALUE_TYPE_INT;
const PERMISSION_DENIED = 7;
const OPERATOR = '/temporal.api.operatorservice.v1.OperatorService/';

/** Every Waybill attribute with its type, as the server lists them. */
const EXPECTED = Object.fromEntries(
  SEARCH_ATTRIBUTES.map((key) => [key.name, IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`]]),
);

describe('search attributes on a Temporal server set up by nobody', () => {
  let cliPath: string;
  let server: RunningDevServer;
  let connection: Connection;
  const proxies: RunningGrpcProxy[] = [];

  beforeAll(async () => {
    cliPath = await testTemporalCliPath();
    server = await startTemporalDevServer({
      executable: { type: 'existing-path', path: cliPath },
      namespace: 'fresh',
      searchAttributes: false,
      extraNamespaces: ['wrongtype', 'denied', 'waybill.a1b2c', 'api', 'api-wrongtype'],
    });
    connection = await Connection.connect({ address: server.address });
  });

  afterAll(async () => {
    await connection?.close();
    for (const proxy of proxies) await proxy.close();
    await server?.stop();
  });

  const custom = async (namespace: string) =>
    (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes;
  const add = (namespace: string, searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType>) =>
    connection.operatorService.addSearchAttributes({ namespace, searchAttributes });

  async function proxy(refuse: Parameters<typeof startGrpcProxy>[0]['refuse']) {
    const running = await startGrpcProxy({ target: server.address, refuse });
    proxies.push(running);
    return running;
  }

  it('the worker adds every search attribute with its type, and a second start changes nothing', async () => {
    const target = { address: server.address, namespace: 'fresh' };
    expect(await custom('fresh')).toEqual({});

    const first = await ensureSearchAttributes(connection, target, testLog);
    expect(first).toEqual(
      SEARCH_ATTRIBUTES.map((key) => ({ name: key.name, type: 'Keyword', outcome: 'created' })),
    );
    expect(await custom('fresh')).toEqual(EXPECTED);

    const second = await ensureSearchAttributes(connection, target, testLog);
    expect(second.map((a) => a.outcome)).toEqual(SEARCH_ATTRIBUTES.map(() => 'unchanged'));
    expect(await custom('fresh')).toEqual(EXPECTED);
  });

  it('a search attribute of another type stops the worker at start with one line naming it, and nothing is added', async () => {
    await add('wrongtype', { OrderStatus: INT });
    const database = await freshDatabase();
    try {
      // The worker as production runs it; it fails before it would touch the database.
      const run = execFileAsync(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_NAMESPACE: 'wrongtype',
          DATABASE_URL: database.url,
          WAYBILL_WORKER_METRICS_PORT: '0',
          LOG_LEVEL: 'warn',
        },
      });
      const failure = await run.then(
        () => null,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr).toBe(
        `waybill: the search attribute OrderStatus in the Temporal namespace wrongtype is Int, but Waybill needs Keyword: remove it (temporal operator search-attribute remove --address ${server.address} --namespace wrongtype --name OrderStatus) and start the worker again, or set TEMPORAL_NAMESPACE to another namespace\n`,
      );
    } finally {
      await database.drop();
    }
    expect(await custom('wrongtype')).toEqual({ OrderStatus: INT });
  });

  it('a worker that may not add them stops naming the missing ones and the command that adds them; once an operator runs it, the next start passes', async () => {
    await add('denied', { OrderId: KEYWORD, Courier: KEYWORD });
    // The server's authorizer lets only the operator's credentials use the operator API.
    const guarded = await proxy((method, headers) =>
      method.startsWith(OPERATOR) &&
      method !== `${OPERATOR}ListSearchAttributes` &&
      headers.authorization !== 'operator'
        ? { code: PERMISSION_DENIED, message: 'Request unauthorized.' }
        : null,
    );
    const worker = await Connection.connect({ address: guarded.address });
    try {
      const target = { address: guarded.address, namespace: 'denied' };
      const failure = await ensureSearchAttributes(worker, target, testLog).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(StartupError);
      const command = `temporal operator search-attribute create --address ${guarded.address} --namespace denied --name ShipmentStatus --type Keyword --name TrackingNumber --type Keyword --name OrderStatus --type Keyword --name CustomerId --type Keyword`;
      expect((failure as Error).message).toBe(
        `the Temporal namespace denied lacks the search attributes ShipmentStatus, TrackingNumber, OrderStatus, CustomerId, and this worker may not add them (PERMISSION_DENIED); add them with: ${command}`,
      );
      expect(guarded.refused).toEqual([`${OPERATOR}AddSearchAttributes`]);

      // The operator runs that command with their own credentials.
      const [, ...args] = command.split(' ');
      await execFileAsync(cliPath, [...args, '--grpc-meta', 'authorization=operator']);
      expect(await custom('denied')).toEqual(EXPECTED);
      const next = await ensureSearchAttributes(worker, target, testLog);
      expect(next.map((a) => a.outcome)).toEqual(SEARCH_ATTRIBUTES.map(() => 'unchanged'));
    } finally {
      await worker.close();
    }
  });

  it('on Temporal Cloud the worker stops naming the missing ones and the tcld command that adds them', async () => {
    await add('waybill.a1b2c', { OrderId: KEYWORD });
    // The address is a Cloud one; the connection reaches the local server through a proxy
    // that refuses the operator API to the worker, as Cloud does.
    const cloud = await proxy((method) =>
      method.startsWith(OPERATOR) ? { code: PERMISSION_DENIED, message: 'Request unauthorized.' } : null,
    );
    const worker = await Connection.connect({ address: cloud.address });
    try {
      const target = { address: 'waybill.a1b2c.tmprl.cloud:7233', namespace: 'waybill.a1b2c' };
      const failure = await ensureSearchAttributes(worker, target, testLog).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(StartupError);
      expect((failure as Error).message).toBe(
        'the Temporal Cloud namespace waybill.a1b2c lacks the search attributes ShipmentStatus, Courier, TrackingNumber, OrderStatus, CustomerId, and a worker cannot add them on Temporal Cloud; add them in the Cloud UI or with: tcld namespace search-attributes add --namespace waybill.a1b2c --search-attribute ShipmentStatus=Keyword --search-attribute Courier=Keyword --search-attribute TrackingNumber=Keyword --search-attribute OrderStatus=Keyword --search-attribute CustomerId=Keyword',
      );
      // It never tried to add them there.
      expect(cloud.refused).toEqual([`${OPERATOR}ListSearchAttributes`]);
    } finally {
      await worker.close();
    }
    expect(await custom('waybill.a1b2c')).toEqual({ OrderId: KEYWORD });
  });

  describe('the API before the worker has set the namespace up', () => {
    let database: TestDatabase;

    beforeAll(async () => {
      database = await freshDatabase();
      await database.db
        .insertInto('inventory_items')
        .values({
          sku: 'KETTLE-1L',
          name: 'Kettle',
          on_hand: 10,
          unit_amount: 4_990,
          location: 'main',
          currency: 'MYR',
        })
        .execute();
    });

    afterAll(async () => {
      await database?.drop();
    });

    const order = {
      email: 'aisyah@example.com',
      shippingAddress: {
        name: 'Aisyah Rahman',
        line1: '12 Jalan Bukit',
        city: 'Shah Alam',
        postcode: '40000',
        country: 'MY',
      },
      lines: [{ sku: 'KETTLE-1L', quantity: 1 }],
      payment: { token: 'tok_visa' },
    };
    const apiOn = (namespace: string) =>
      startTestApi({ database, env: { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: namespace } });
    const placeOrder = (api: TestApi, headers: Record<string, string>) =>
      api.app.inject({ method: 'POST', url: '/v1/orders', payload: order, headers });

    it('POST /v1/orders answers 503 TEMPORAL_NOT_READY naming the missing attribute; the same request passes once the worker has added them', async () => {
      const api = await apiOn('api');
      try {
        const headers = { ...api.customer('cus_sa'), 'idempotency-key': randomUUID() };
        const refused = await placeOrder(api, headers);
        expect(refused.statusCode).toBe(503);
        expect(refused.headers['retry-after']).toBe('5');
        expect(refused.json().error).toEqual({
          code: 'TEMPORAL_NOT_READY',
          message: expect.stringMatching(
            /^the Temporal namespace api has no search attribute (OrderId|OrderStatus|CustomerId) yet; the Waybill worker registers its search attributes when it starts \(where it may not, its start-up line says what to run\): start it, then retry$/,
          ),
        });

        await ensureSearchAttributes(connection, { address: server.address, namespace: 'api' }, testLog);
        const retried = await placeOrder(api, headers);
        expect(retried.statusCode).toBe(202);
        await api.temporal.client.workflow
          .getHandle(orderWorkflowId(retried.json().orderId))
          .terminate('test over')
          .catch(() => undefined);
      } finally {
        await api.close();
      }
    });

    it('POST /v1/orders answers 503 TEMPORAL_NOT_READY when an attribute has another type', async () => {
      await add('api-wrongtype', { ...EXPECTED, OrderStatus: INT });
      const api = await apiOn('api-wrongtype');
      try {
        const headers = { ...api.customer('cus_sa'), 'idempotency-key': randomUUID() };
        const refused = await placeOrder(api, headers);
        expect(refused.statusCode).toBe(503);
        expect(refused.json().error).toEqual({
          code: 'TEMPORAL_NOT_READY',
          message:
            'the search attribute OrderStatus in the Temporal namespace api-wrongtype has another type than Waybill needs; the Waybill worker names it and the fix when it starts: fix it, then retry',
        });
      } finally {
        await api.close();
      }
    });
  });
});
