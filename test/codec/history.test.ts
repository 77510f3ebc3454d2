/**
 * What Temporal stores: an order placed through the API runs to DELIVERED on the real stack
 * (API, worker, Temporal dev server, Postgres, courier and payment simulators), then its
 * histories are read straight from the server by a client that has no codec — as anyone with
 * access to Temporal (its database, its UI without the codec server) would read them.
 * And key rotation on a running workflow: a worker holding the new key carries on a history
 * the old key wrote.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  createPayloadCodec,
  decodeHistory,
  isSealed,
  keyIdOf,
  PayloadKeyError,
  payloadFromJson,
  payloadToJson,
  type JsonPayload,
} from '../../src/codec';
import { resolveTemporalCli } from '../../devstack/temporal-cli';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import {
  orderShipmentId,
  orderWorkflowId,
  refreshNowUpdate,
  shipmentWorkflowId,
} from '../../src/workflows/contract';
import { startTestApi, type TestApi } from '../support/api';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testConfig } from '../support/env';
import { expectBooksBalance } from '../support/books';
import { eventually } from '../support/eventually';
import { ADDRESS } from '../support/shopper';
import {
  fastPolicy,
  startShipmentWorkflow,
  startTestWorker,
  stillPolicy,
  uniqueId,
  type TestWorker,
} from '../support/temporal';

jest.setTimeout(120_000);

const execFileAsync = promisify(execFile);

type History = temporal.api.history.v1.IHistory;

const EMAIL = 'Aisyah.Rahman@Example.com';
/** Everything personal the order carries, as the shopper typed it and in the forms systems rewrite it to. */
const PERSONAL = [
  EMAIL,
  'aisyah.rahman@example.com',
  ADDRESS.name,
  'Aisyah',
  'Rahman',
  ADDRESS.phone,
  ADDRESS.phone.replace('+', ''),
  ADDRESS.line1,
  'Jalan Bukit',
];

/** Every Payload in a message: anything with `metadata` and `data` bytes. */
function payloadsIn(
  value: unknown,
  found: { path: string; payload: Payload }[] = [],
  path = '',
): typeof found {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return found;
  const fields = value as Record<string, unknown>;
  if ('metadata' in fields && 'data' in fields && fields.data instanceof Uint8Array) {
    found.push({ path, payload: fields as Payload });
    return found;
  }
  for (const [key, field] of Object.entries(fields)) payloadsIn(field, found, `${path}.${key}`);
  return found;
}

/** The history of every run of a workflow, read with the gRPC service itself: no data converter, no codec. */
async function rawHistories(
  connection: Connection,
  namespace: string,
  workflowId: string,
): Promise<History[]> {
  const histories: History[] = [];
  let runId: string | undefined;
  // Newest run first; follow continue-as-new back through each run's first event.
  for (;;) {
    const events: temporal.api.history.v1.IHistoryEvent[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await connection.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId, ...(runId ? { runId } : {}) },
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      events.push(...(page.history?.events ?? []));
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    histories.push({ events });
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    if (!runId) return histories;
  }
}

/** The bytes Temporal stores for a history, as text: plain JSON payloads would show verbatim. */
const storedText = (history: History) =>
  Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('latin1').toLowerCase();

describe('personal data in Temporal', () => {
  let database: TestDatabase;
  let couriers: RunningSimulator;
  let payments: RunningPaymentSimulator;
  let worker: TestWorker;
  let api: TestApi;
  let raw: Connection;
  let cliPath: string;
  let codecEndpoint: string;

  /**
   * `temporal workflow show` as ops run it (docs/operations.md), through the API's codec server:
   * the order's input as the CLI prints it, or the CLI's complaint.
   */
  async function showWithCodec(workflowId: string, authorization: string): Promise<string> {
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync(cliPath, [
        'workflow',
        'show',
        '--address',
        process.env.WAYBILL_TEST_TEMPORAL_ADDRESS!,
        '--workflow-id',
        workflowId,
        '--codec-endpoint',
        codecEndpoint,
        '--codec-auth',
        authorization,
        '--output',
        'json',
        // A refused decode makes the CLI retry until its deadline.
        '--command-timeout',
        '8s',
      ]));
    } catch (err) {
      return `failed: ${(err as { stderr?: string }).stderr ?? String(err)}`;
    }
    const shown = JSON.parse(stdout) as {
      events: { workflowExecutionStartedEventAttributes?: { input: { payloads: JsonPayload[] } } }[];
    };
    const input = payloadFromJson(
      shown.events[0]!.workflowExecutionStartedEventAttributes!.input.payloads[0]!,
    );
    return `${Buffer.from(input.metadata!.encoding!).toString()} ${Buffer.from(input.data!).toString('utf8')}`;
  }

  beforeAll(async () => {
    database = await freshDatabase();
    couriers = await startSimulator({ port: 0, timeScale: 50_000 });
    payments = await startPaymentSimulator({ port: 0 });
    worker = await startTestWorker({
      db: database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: couriers.url, timeoutMs: 2_000 }),
      },
      payments: createHttpPaymentProvider({ baseUrl: payments.url, timeoutMs: 2_000 }),
      pollPolicy: fastPolicy(),
    });
    api = await startTestApi({
      database,
      env: { WAYBILL_TASK_QUEUE: worker.taskQueue, WAYBILL_COURIER_TASK_QUEUE: worker.courierTaskQueue },
    });
    raw = await Connection.connect({ address: process.env.WAYBILL_TEST_TEMPORAL_ADDRESS! });
    const cli = await resolveTemporalCli({
      cliPath: api.config.temporal.cliPath,
      cacheDir: api.config.paths.cacheDir,
      log: () => undefined,
    });
    if (cli.executable.type !== 'existing-path') throw new Error('this test runs the Temporal CLI itself');
    cliPath = cli.executable.path;
    codecEndpoint = `${await api.app.listen({ host: '127.0.0.1', port: 0 })}/codec`;
  });

  afterAll(async () => {
    await raw?.close();
    await api?.close();
    await worker?.stop();
    await couriers?.stop();
    await payments?.stop();
    await database?.drop();
  });

  it('an order placed through the API leaves no e-mail, name, phone or street address in any stored history', async () => {
    const sku = uniqueId('SKU');
    await database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, unit_amount: 4_990, location: 'main', currency: 'MYR' })
      .execute();
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...api.customer('cus_pii'), 'idempotency-key': randomUUID() },
      payload: {
        email: EMAIL,
        // The courier simulator plays the scenario named at the end of the recipient's name.
        shippingAddress: { ...ADDRESS, name: `${ADDRESS.name} [scenario:delivered]` },
        lines: [{ sku, quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
    });
    expect(res.statusCode).toBe(202);
    const { orderId, orderNumber } = res.json() as { orderId: string; orderNumber: string };
    await eventually(
      async () =>
        (await database.db.selectFrom('orders').select('status').where('id', '=', orderId).executeTakeFirst())
          ?.status,
      (status) => status === 'DELIVERED',
      90_000,
    );
    await expectBooksBalance({ database, payments, couriers }, [orderId]);

    const namespace = api.config.temporal.namespace;
    const histories = [
      ...(await rawHistories(raw, namespace, orderWorkflowId(orderId))),
      ...(await rawHistories(raw, namespace, shipmentWorkflowId(orderShipmentId(orderId, 1)))),
    ];
    const stored = histories.map(storedText).join('\n');
    for (const personal of PERSONAL) expect(stored).not.toContain(personal.toLowerCase());

    // Every other payload is sealed with the configured key.
    const payloads = histories.flatMap((h) => payloadsIn(h));
    // Search attributes (ids and statuses ops filter on, which Temporal must read) and the SDK's
    // own local-activity marker data (activity id, type, attempt, times; the result beside it is
    // sealed) are the only payloads left in the clear.
    const clearByDesign = (path: string) =>
      path.includes('.searchAttributes.') || /\.markerRecordedEventAttributes\.details\.data\./.test(path);
    const open = payloads.filter((p) => !isSealed(p.payload) && !clearByDesign(p.path));
    expect(open.map((p) => p.path)).toEqual([]);
    expect(payloads.length).toBeGreaterThan(20);
    expect(new Set(payloads.filter((p) => isSealed(p.payload)).map((p) => keyIdOf(p.payload)))).toEqual(
      new Set([api.config.payloads.activeKeyId]),
    );

    // The codec server opens the stored input for ops, as the UI asks it to, and not for support.
    expect(stored).not.toContain(orderNumber.toLowerCase());
    const orderInput = histories[0]!.events!.find((e) => e.workflowExecutionStartedEventAttributes)!
      .workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const asJson = payloadToJson(orderInput);
    const decodeAs = (headers: Record<string, string>) =>
      api.app.inject({
        method: 'POST',
        url: '/codec/decode',
        headers: { 'content-type': 'application/json', ...headers },
        payload: { payloads: [asJson] },
      });
    const forOps = await decodeAs(api.staff('ops'));
    expect(forOps.statusCode).toBe(200);
    const decodedInput = JSON.parse(Buffer.from(forOps.json().payloads[0].data, 'base64').toString('utf8'));
    expect(decodedInput).toMatchObject({ orderId, orderNumber, customerId: 'cus_pii' });
    expect((await decodeAs(api.staff('support'))).statusCode).toBe(403);

    // How ops read it (docs/operations.md): the Temporal CLI with the codec endpoint and a staff token.
    const shown = (role: 'ops' | 'support') =>
      showWithCodec(orderWorkflowId(orderId), api.staff(role).authorization);
    expect(await shown('ops')).toMatch(new RegExp(`^json/plain \\{.*"orderNumber":"${orderNumber}"`));
    const refused = await shown('support');
    expect(refused).not.toContain(orderNumber);
    expect(refused).toMatch(/^failed: /);

    // The same histories through the codec hold what the workflows carried: the order number,
    // in the clear nowhere in what Temporal stores, is in the opened input and summaries.
    const codec = createPayloadCodec(api.config.payloads);
    const opened = await Promise.all(histories.map((h) => decodeHistory(h, codec)));
    expect(opened.map(storedText).join('\n')).toContain(orderNumber.toLowerCase());
  });

  it('after rotation a worker holding the new key carries on a history the old key wrote', async () => {
    const keyA = `a-${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`;
    const keyB = `b-${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`;
    const [idA, idB] = [keyA.split(':')[0]!, keyB.split(':')[0]!];
    const deps = {
      db: database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: couriers.url, timeoutMs: 2_000 }),
      },
    };
    const before = await startTestWorker({ ...deps, env: { WAYBILL_PAYLOAD_KEYS: keyA } });
    const queues = { taskQueue: before.taskQueue, courierTaskQueue: before.courierTaskQueue };
    const shipmentId = uniqueId('shp');
    const { trackingNumber } = couriers.backend.register({ scenario: 'never_picked_up', format: 'native' });
    await database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: CourierCode.SIMULATOR, tracking_number: trackingNumber })
      .execute();
    const started = await startShipmentWorkflow(before, {
      shipmentId,
      trackingNumber,
      policy: stillPolicy(),
    });
    await eventually(
      () =>
        database.db.selectFrom('shipments').select('last_synced_at').where('id', '=', shipmentId).execute(),
      (rows) => rows[0]?.last_synced_at !== null,
    );
    await before.stop();

    // Key b is listed and active; a stays listed so what it sealed still opens.
    const after = await startTestWorker({
      ...deps,
      taskQueues: queues,
      env: { WAYBILL_PAYLOAD_KEYS: `${keyA},${keyB}`, WAYBILL_PAYLOAD_KEY_ACTIVE: idB },
    });
    try {
      const handle = after.client.workflow.getHandle(started.workflowId);
      // A new worker has nothing cached: it replays the history key a sealed, then polls.
      const fresh = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] });
      expect(fresh.source).toBe('live');
      await handle.terminate('test over');

      const [history] = await rawHistories(raw, api.config.temporal.namespace, started.workflowId);
      const sealedBy = new Set(
        payloadsIn(history)
          .filter((p) => isSealed(p.payload))
          .map((p) => keyIdOf(p.payload)),
      );
      expect(sealedBy).toEqual(new Set([idA, idB]));
      const rotated = testConfig({
        WAYBILL_PAYLOAD_KEYS: `${keyA},${keyB}`,
        WAYBILL_PAYLOAD_KEY_ACTIVE: idB,
      });
      const opened = await decodeHistory(history!, createPayloadCodec(rotated.payloads));
      expect(payloadsIn(opened).filter((p) => isSealed(p.payload))).toEqual([]);
      // Dropping key a too early: what it sealed no longer opens, and the error names it.
      const onlyB = testConfig({ WAYBILL_PAYLOAD_KEYS: keyB });
      // (decodeHistory opened the copy above in place: read the stored one again.)
      const [again] = await rawHistories(raw, api.config.temporal.namespace, started.workflowId);
      await expect(decodeHistory(again!, createPayloadCodec(onlyB.payloads))).rejects.toThrow(
        PayloadKeyError,
      );
      await expect(decodeHistory(again!, createPayloadCodec(onlyB.payloads))).rejects.toThrow(
        `payload sealed with key id "${idA}"`,
      );
    } finally {
      await after.stop();
    }
  });
});
