/**
 * The customer order routes end to end: the real API (inject), the real Temporal dev
 * server and worker, Postgres, and both simulators over HTTP. Parcels are steered with the
 * courier simulator's name rule (`[scenario:...]` at the end of the recipient name).
 */
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import { stockReconciliation } from '../../src/read-model/stock-checks';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { PaymentRejection } from '../../src/payments/types';
import { requestHash } from '../../src/api/idempotency';
import { CANCEL_ANSWER_WITHIN_MS } from '../../src/api/order-actions';
import { signToken } from '../../src/api/tokens';
import { housekeepingInput } from '../../src/schedules';
import { WorkflowUpdateStage } from '@temporalio/client';
import { cancelOrderUpdate, orderWorkflowId } from '../../src/workflows/contract';
import { type TestApi } from '../support/api';
import { ADDRESS } from '../support/shopper';
import { eventually } from '../support/eventually';
import { fastPolicy, startTestWorker, uniqueId, type TestWorker } from '../support/temporal';
import { insertOrderRow, stockItem } from '../support/db';
import { useStack } from '../support/stack';

jest.setTimeout(90_000);

/** fastPolicy's refresh cooldown (none; 1 ms is the least the setting takes), on the API too. */
const NO_COOLDOWN = { WAYBILL_REFRESH_COOLDOWN: '1ms' };

describe('order routes', () => {
  const stack = useStack({
    worker: { pollPolicy: fastPolicy() },
    api: { env: { WAYBILL_REFRESH_DEADLINE: '1500ms', ...NO_COOLDOWN } },
    afterEachTest: async () => {
      expect(await stockReconciliation(stack.database.db)).toEqual([]);
    },
    afterAllTests: async () => {
      const open = await stack.database.db.selectFrom('orders').select('id').execute();
      for (const { id } of open)
        await stack.worker.client.workflow
          .getHandle(orderWorkflowId(id))
          .terminate('test over')
          .catch(() => undefined);
    },
  });

  const stock = (opts: Parameters<typeof stockItem>[2] = {}) =>
    stockItem(stack.database.db, uniqueId('SKU'), opts);

  function orderBody(sku: string, scenario = 'delivered', quantity = 2) {
    return {
      email: 'Aisyah@Example.com',
      shippingAddress: { ...ADDRESS, name: `${ADDRESS.name} [scenario:${scenario}]` },
      lines: [{ sku, quantity }],
      payment: { token: 'tok_visa' },
    };
  }

  function post(body: unknown, headers: Record<string, string>, target: TestApi = stack.api) {
    return target.app.inject({ method: 'POST', url: '/v1/orders', payload: body as object, headers });
  }

  const reservedOf = async (sku: string) =>
    (
      await stack.database.db
        .selectFrom('inventory_items')
        .select('reserved')
        .where('sku', '=', sku)
        .executeTakeFirstOrThrow()
    ).reserved;
  const orderRow = (id: string) =>
    stack.database.db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
  const countOrders = async () =>
    Number(
      (
        await stack.database.db
          .selectFrom('orders')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  async function placeOrder(customerId: string, scenario: string) {
    const sku = await stock();
    const res = await post(orderBody(sku, scenario, 1), {
      ...stack.api.customer(customerId),
      'idempotency-key': randomUUID(),
    });
    expect(res.statusCode).toBe(202);
    return { orderId: res.json().orderId as string, orderNumber: res.json().orderNumber as string, sku };
  }

  const waitForStatus = (orderId: string, accept: (status: string) => boolean) =>
    eventually(async () => (await orderRow(orderId))?.status ?? 'none', accept, 60_000);

  /** The customer's cancel of their order ("changed my mind"), through `target`'s API. */
  const cancelAs = (orderId: string, customerId: string, target: TestApi = stack.api) =>
    target.app.inject({
      method: 'POST',
      url: `/v1/orders/${orderId}/cancel`,
      payload: { reason: 'changed my mind' },
      headers: target.customer(customerId),
    });

  /** The parcel's workflow has polled the courier at least once. */
  const trackingStarted = (orderId: string) =>
    eventually(
      () =>
        stack.database.db
          .selectFrom('shipments')
          .select('last_synced_at')
          .where('order_id', '=', orderId)
          .execute(),
      (rows) => rows.length === 1 && rows[0]!.last_synced_at !== null,
    );

  it('creates an order priced from the catalogue and its saga runs to DELIVERED, payment captured once', async () => {
    const sku = await stock({ price: 4_990 });
    const res = await post(orderBody(sku), {
      ...stack.api.customer('cus_create'),
      'idempotency-key': randomUUID(),
    });

    expect(res.statusCode).toBe(202);
    const created = res.json();
    expect(created).toMatchObject({ status: 'PENDING', orderNumber: expect.stringMatching(/^WB-\d+$/) });
    expect(created.orderId).toMatch(/^ord_[0-9a-f]{24}$/);
    expect(res.headers.location).toBe(`/v1/orders/${created.orderId}`);
    expect(await orderRow(created.orderId)).toMatchObject({
      customer_id: 'cus_create',
      email: 'aisyah@example.com',
      total_amount: 9_980,
      currency: 'MYR',
      courier: 'simulator',
    });

    await waitForStatus(created.orderId, (s) => s === 'DELIVERED');
    const order = await stack.api.app.inject({
      url: `/v1/orders/${created.orderId}`,
      headers: stack.api.customer('cus_create'),
    });
    expect(order.statusCode).toBe(200);
    expect(order.json()).toMatchObject({
      status: 'DELIVERED',
      totalAmount: 9_980,
      lines: [{ sku, quantity: 2, unitAmount: 4_990 }],
      payment: { status: 'CAPTURED', amountCaptured: 9_980, amountRefunded: 0 },
      shipments: [{ status: 'DELIVERED', courier: 'simulator' }],
    });
    const tracking = await stack.api.app.inject({
      url: `/v1/orders/${created.orderId}/tracking`,
      headers: stack.api.customer('cus_create'),
    });
    expect(tracking.statusCode).toBe(200);
    const [shipment] = tracking.json().shipments;
    expect(shipment).toMatchObject({ status: 'DELIVERED', freshness: 'fresh' });
    expect(shipment.events.map((e: { status: string }) => e.status)).toContain('IN_TRANSIT');
  });

  describe('Idempotency-Key', () => {
    it('answers the first response again for the same key and body, creating one order', async () => {
      const sku = await stock();
      const headers = { ...stack.api.customer('cus_idem'), 'idempotency-key': randomUUID() };
      const first = await post(orderBody(sku, 'never_picked_up'), headers);
      const before = await countOrders();
      const again = await post(orderBody(sku, 'never_picked_up'), headers);

      expect(first.statusCode).toBe(202);
      expect(again.statusCode).toBe(202);
      expect(again.json()).toEqual(first.json());
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await countOrders()).toBe(before);
    });

    it('refuses the same key with another body (422) and a key still in use (409)', async () => {
      const sku = await stock();
      const key = randomUUID();
      const headers = { ...stack.api.customer('cus_idem2'), 'idempotency-key': key };
      expect((await post(orderBody(sku, 'never_picked_up', 1), headers)).statusCode).toBe(202);

      const changed = await post(orderBody(sku, 'never_picked_up', 3), headers);
      expect(changed.statusCode).toBe(422);
      expect(changed.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');

      // Another request holds this key right now (its lock has not expired).
      const busyKey = randomUUID();
      const body = orderBody(sku, 'never_picked_up', 1);
      await stack.database.db
        .insertInto('api_idempotency_keys')
        .values({
          scope: 'orders:customer:cus_idem2',
          key: busyKey,
          request_hash: requestHash(body),
          state: 'IN_PROGRESS',
          response_status: null,
          response_body: null,
          resource_id: 'ord_held',
          locked_until: new Date(Date.now() + 60_000),
        })
        .execute();
      const busy = await post(body, { ...stack.api.customer('cus_idem2'), 'idempotency-key': busyKey });
      expect(busy.statusCode).toBe(409);
      expect(busy.json().error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
      expect(await orderRow('ord_held')).toBeUndefined();
    });

    it('keys belong to their caller: the same key from another customer is a new order', async () => {
      const sku = await stock();
      const key = randomUUID();
      const a = await post(orderBody(sku, 'never_picked_up', 1), {
        ...stack.api.customer('cus_a'),
        'idempotency-key': key,
      });
      const b = await post(orderBody(sku, 'never_picked_up', 1), {
        ...stack.api.customer('cus_b'),
        'idempotency-key': key,
      });
      expect(a.statusCode).toBe(202);
      expect(b.statusCode).toBe(202);
      expect(b.json().orderId).not.toBe(a.json().orderId);
    });

    it('a retry after Temporal was down takes over the same order instead of creating a second, at the price it was placed at', async () => {
      const down = await stack.anotherApi({ env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
      try {
        const sku = await stock({ price: 4_990 });
        const headers = { ...stack.api.customer('cus_retry'), 'idempotency-key': randomUUID() };
        const failed = await post(orderBody(sku, 'never_picked_up', 1), headers, down);
        expect(failed.statusCode).toBe(503);
        expect(failed.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
        const reserved = await stack.database.db
          .selectFrom('orders')
          .select('id')
          .where('customer_id', '=', 'cus_retry')
          .execute();
        expect(reserved).toHaveLength(1);
        // The shop raises the price before the shopper's app retries.
        await stack.database.db
          .updateTable('inventory_items')
          .set({ unit_amount: 6_990 })
          .where('sku', '=', sku)
          .execute();

        const retried = await post(orderBody(sku, 'never_picked_up', 1), headers);
        expect(retried.statusCode).toBe(202);
        expect(retried.json().orderId).toBe(reserved[0]!.id);
        expect(
          await stack.database.db
            .selectFrom('orders')
            .select('id')
            .where('customer_id', '=', 'cus_retry')
            .execute(),
        ).toHaveLength(1);
        await waitForStatus(retried.json().orderId, (s) => s === 'CONFIRMED');
        // Authorised at the price the order row holds, as the shopper was shown.
        expect(await orderRow(retried.json().orderId)).toMatchObject({ total_amount: 4_990 });
        const [payment] = await stack.database.db
          .selectFrom('payments')
          .select(['status', 'amount_authorised'])
          .where('order_id', '=', retried.json().orderId)
          .execute();
        expect(payment).toEqual({ status: 'AUTHORISED', amount_authorised: 4_990 });
      } finally {
        await down.close();
      }
    });

    it('a key housekeeping has pruned is a new request: the same key and body place a second order', async () => {
      const sku = await stock();
      const headers = { ...stack.api.customer('cus_pruned'), 'idempotency-key': randomUUID() };
      const body = orderBody(sku, 'never_picked_up', 1);
      const first = await post(body, headers);
      expect(first.statusCode).toBe(202);
      await waitForStatus(first.json().orderId, (s) => s === 'CONFIRMED');
      // Within WAYBILL_PRUNE_IDEMPOTENCY_KEYS_AFTER: a replay.
      const replay = await post(body, headers);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json().orderId).toBe(first.json().orderId);

      // Past it, housekeeping deletes the record.
      await stack.database.db
        .updateTable('api_idempotency_keys')
        .set({
          created_at: new Date(
            Date.now() - stack.api.config.housekeeping.pruneIdempotencyKeysAfterMs - 60_000,
          ),
        })
        .where('scope', '=', 'orders:customer:cus_pruned')
        .execute();
      const housekeeping = await stack.worker.client.workflow.execute('housekeepingWorkflow', {
        workflowId: uniqueId('housekeeping'),
        taskQueue: stack.worker.taskQueue,
        args: [housekeepingInput(stack.api.config)],
      });
      expect(housekeeping.prunedIdempotencyKeys).toBeGreaterThanOrEqual(1);

      const late = await post(body, headers);
      expect(late.statusCode).toBe(202);
      expect(late.headers['idempotent-replayed']).toBeUndefined();
      expect(late.json().orderId).not.toBe(first.json().orderId);
      const orders = await stack.database.db
        .selectFrom('orders')
        .select('id')
        .where('customer_id', '=', 'cus_pruned')
        .execute();
      expect(orders).toHaveLength(2);
      await waitForStatus(late.json().orderId, (s) => s === 'CONFIRMED');
    });

    it('requires the header', async () => {
      const sku = await stock();
      const res = await post(orderBody(sku), stack.api.customer('cus_nokey'));
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/idempotency-key/);
    });
  });

  it('refuses skus that are not in the catalogue (422, naming them) and writes no order', async () => {
    const before = await countOrders();
    const headers = { ...stack.api.customer('cus_sku'), 'idempotency-key': randomUUID() };
    const body = orderBody('NO-SUCH-SKU');
    const res = await post(body, headers);
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toEqual({
      code: 'UNKNOWN_SKU',
      message: expect.stringContaining('NO-SUCH-SKU'),
    });
    expect((await post(body, headers)).statusCode).toBe(422);
    expect(await countOrders()).toBe(before);
  });

  it('a guest can order and then track it with the order number and email or postcode', async () => {
    const sku = await stock();
    const res = await post(orderBody(sku, 'never_picked_up', 1), { 'idempotency-key': randomUUID() });
    expect(res.statusCode).toBe(202);
    const { orderId, orderNumber } = res.json();
    expect((await orderRow(orderId))!.customer_id).toBeNull();
    await waitForStatus(orderId, (s) => s === 'CONFIRMED');

    const lookup = (proof: object) =>
      stack.api.app.inject({
        method: 'POST',
        url: '/v1/tracking/lookup',
        payload: { orderNumber, ...proof },
      });
    const byEmail = await lookup({ email: ' AISYAH@example.com' });
    expect(byEmail.statusCode).toBe(200);
    expect(byEmail.json()).toMatchObject({
      orderNumber,
      status: 'CONFIRMED',
      shipments: [{ courier: 'simulator' }],
    });
    const text = byEmail.body;
    for (const personal of ['Aisyah', 'Jalan', '60123456789', orderId, sku])
      expect(text).not.toContain(personal);
    expect((await lookup({ postcode: '40000' })).statusCode).toBe(200);

    const wrong = await lookup({ email: 'someone@example.com' });
    expect(wrong.statusCode).toBe(404);
    expect((await lookup({})).statusCode).toBe(400);
    // A guest with the order id still cannot read the order itself.
    expect((await stack.api.app.inject({ url: `/v1/orders/${orderId}` })).statusCode).toBe(401);
  });

  it('wrong guest proofs are rate limited hard per IP', async () => {
    const strict = await stack.anotherApi({ env: { WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await strict.app.inject({
          method: 'POST',
          url: '/v1/tracking/lookup',
          payload: { orderNumber: 'WB-100001', email: `guess${i}@example.com` },
        });
        codes.push(res.statusCode);
      }
      expect(codes).toEqual([404, 404, 404, 429, 429]);
    } finally {
      await strict.close();
    }
  });

  it('an order is visible to its customer and admins only; others get 404, no credential 401', async () => {
    const { orderId } = await placeOrder('cus_owner', 'never_picked_up');
    const get = (headers: Record<string, string>) =>
      stack.api.app.inject({ url: `/v1/orders/${orderId}`, headers });
    const expired = signToken(stack.api.config.api.jwtSecret, { sub: 'cus_owner' }, -60_000);
    const forged = signToken('another-secret-that-is-long-enough-1234', { sub: 'cus_owner' });

    expect((await get(stack.api.customer('cus_owner'))).statusCode).toBe(200);
    expect((await get(stack.api.customer('cus_other'))).statusCode).toBe(404);
    expect((await get(stack.api.admin())).statusCode).toBe(200);
    expect((await get(stack.api.adminKey())).statusCode).toBe(200);
    expect((await get({})).statusCode).toBe(401);
    expect((await get({ authorization: `Bearer ${expired}` })).json().error).toMatchObject({
      code: 'INVALID_TOKEN',
      message: expect.stringContaining('expired'),
    });
    expect((await get({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
    expect((await get({ 'x-stack.api-key': 'not-the-key' })).statusCode).toBe(401);
    // Unknown ids answer exactly like someone else's.
    const unknown = await stack.api.app.inject({
      url: '/v1/orders/ord_000000000000000000000000',
      headers: stack.api.customer('cus_other'),
    });
    const other = await get(stack.api.customer('cus_other'));
    expect(unknown.json().error.code).toBe(other.json().error.code);
    for (const path of ['tracking', 'cancel']) {
      const res = await stack.api.app.inject({
        method: path === 'cancel' ? 'POST' : 'GET',
        url: `/v1/orders/${orderId}/${path}`,
        headers: stack.api.customer('cus_other'),
      });
      expect(res.statusCode).toBe(404);
    }
  });

  it('?refresh=true polls live when the courier answers and falls back to the cache with a message when it is down', async () => {
    const { orderId } = await placeOrder('cus_refresh', 'never_picked_up');
    await trackingStarted(orderId);
    const read = () =>
      stack.api.app.inject({
        url: `/v1/orders/${orderId}/tracking?refresh=true`,
        headers: stack.api.customer('cus_refresh'),
      });

    const live = await read();
    expect(live.statusCode).toBe(200);
    expect(live.json().message).toBeNull();
    expect(live.json().shipments[0].dataSource).toEqual({
      isLive: true,
      isCached: false,
      unavailable: false,
      refresh: 'live',
      nextLiveRefreshAt: null,
    });

    stack.couriers.backend.faults.set({ kind: 'outage', durationMs: 20_000, format: 'native' });
    const started = Date.now();
    const cached = await read();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(cached.statusCode).toBe(200);
    expect(cached.json().message).toMatch(/^Showing the last stored tracking/);
    expect(cached.json().shipments[0].dataSource).toMatchObject({ isLive: false, isCached: true });
    // Which one depends on the machine's speed: the poll's retries gave up within the 1.5 s
    // deadline (courier_unavailable), or the deadline came first (timeout). Never live.
    expect(['courier_unavailable', 'timeout']).toContain(cached.json().shipments[0].dataSource.refresh);
  });

  it('the customer cancels before pickup: CANCELLED, payment voided, stock released; again is harmless', async () => {
    const { orderId, sku } = await placeOrder('cus_cancel', 'never_picked_up');
    await waitForStatus(orderId, (s) => s === 'CONFIRMED');
    const cancel = () => cancelAs(orderId, 'cus_cancel');

    const res = await cancel();
    expect([200, 202]).toContain(res.statusCode);
    await waitForStatus(orderId, (s) => s === 'CANCELLED');
    const payment = await stack.database.db
      .selectFrom('payments')
      .select('status')
      .where('order_id', '=', orderId)
      .executeTakeFirstOrThrow();
    expect(payment.status).toBe('VOIDED');
    expect(await reservedOf(sku)).toBe(0);

    const again = await cancel();
    expect(again.statusCode).toBe(200);
    expect(again.json().status).toBe('CANCELLED');
  });

  it('a cancel of an order whose workflow never started says so (nothing is held); one whose workflow stopped half-way is for ops', async () => {
    // Written by the API, then the start failed (Temporal unreachable): PENDING, no workflow.
    const orderId = await insertOrderRow(stack.database.db, { customerId: 'cus_unstarted' });
    const res = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/orders/${orderId}/cancel`,
      headers: stack.api.customer('cus_unstarted'),
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('ORDER_NOT_STARTED');
    expect(res.json().error.message).toMatch(/nothing is reserved or charged/);

    // One whose workflow did run, and was terminated half-way, may hold stock and money: ops'.
    const stopped = await insertOrderRow(stack.database.db, { customerId: 'cus_unstarted' });
    const run = await stack.worker.client.workflow.start('orderWorkflow', {
      workflowId: orderWorkflowId(stopped),
      taskQueue: `nobody-polls-${stopped}`,
      args: [{ orderId: stopped }],
    });
    await run.terminate('a bad deploy');
    const res2 = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/orders/${stopped}/cancel`,
      headers: stack.api.customer('cus_unstarted'),
    });
    expect({ status: res2.statusCode, code: res2.json().error.code }).toEqual({
      status: 409,
      code: 'ORDER_STOPPED',
    });
  });

  it('a cancel after pickup is refused with 409 and changes nothing', async () => {
    const { orderId } = await placeOrder('cus_late', 'delivered');
    await waitForStatus(orderId, (s) => ['SHIPPED', 'DELIVERED'].includes(s));
    const res = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/orders/${orderId}/cancel`,
      headers: stack.api.customer('cus_late'),
    });
    expect(res.statusCode).toBe(409);
    expect(['ALREADY_PICKED_UP', 'ORDER_FINISHED']).toContain(res.json().error.code);
    const after = await waitForStatus(orderId, (s) => s === 'DELIVERED');
    expect(after).toBe('DELIVERED');
  });

  it('a cancel while the order’s stack.worker is down answers 503 within seconds; the retry joins the same cancel', async () => {
    // Its own worker and API, so stopping the worker leaves the other tests alone.
    const deps = {
      db: stack.database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: stack.couriers.url, timeoutMs: 2_000 }),
      },
      payments: createHttpPaymentProvider({ baseUrl: stack.payments.url, timeoutMs: 2_000 }),
      pollPolicy: fastPolicy(),
    };
    let own: TestWorker | null = await startTestWorker(deps);
    const queues = { taskQueue: own.taskQueue, courierTaskQueue: own.courierTaskQueue };
    const ownApi = await stack.anotherApi({
      env: {
        WAYBILL_TASK_QUEUE: queues.taskQueue,
        WAYBILL_COURIER_TASK_QUEUE: queues.courierTaskQueue,
        ...NO_COOLDOWN,
      },
    });
    try {
      const sku = await stock();
      const created = await post(
        orderBody(sku, 'never_picked_up', 1),
        {
          ...ownApi.customer('cus_restart'),
          'idempotency-key': randomUUID(),
        },
        ownApi,
      );
      expect(created.statusCode).toBe(202);
      const orderId = created.json().orderId as string;
      await waitForStatus(orderId, (s) => s === 'CONFIRMED');
      await own.stop();
      own = null;

      const cancel = () => cancelAs(orderId, 'cus_restart', ownApi);
      const t0 = Date.now();
      const refused = await cancel();
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error.code).toBe('ORDER_NOT_RESPONDING');
      expect(refused.headers['retry-after']).toBe('5');

      own = await startTestWorker({ ...deps, taskQueues: queues });
      const retried = await cancel();
      expect([200, 202]).toContain(retried.statusCode);
      await waitForStatus(orderId, (s) => s === 'CANCELLED');
      // The workflow took one cancel, not one per request.
      const history = await own.client.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
      const accepted = history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
      expect(accepted).toHaveLength(1);
    } finally {
      await ownApi.close();
      await own?.stop();
    }
  });

  it('a cancel whose compensations outlast the time budget answers 202 CANCELLING within it; the order then ends CANCELLED', async () => {
    const { orderId } = await placeOrder('cus_slow_cancel', 'never_picked_up');
    await waitForStatus(orderId, (s) => s === 'CONFIRMED');
    // Every void fails until the rule is cleared: the compensations cannot finish meanwhile.
    stack.payments.state.faults.set({ kind: 'error', rate: 1, operation: 'void' });
    try {
      const t0 = Date.now();
      const res = await cancelAs(orderId, 'cus_slow_cancel');
      const took = Date.now() - t0;
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        orderId,
        status: 'CANCELLING',
        message: expect.stringMatching(/still being released: the order’s status follows/),
      });
      // One budget for taking the update and waiting for its result, not one after the other
      // (5 s + 10 s before: a client's 15 s timeout could pass first). The margin is the
      // order's read before the cancel and the injector's own time.
      expect(took).toBeLessThan(CANCEL_ANSWER_WITHIN_MS + 1_500);
    } finally {
      stack.payments.state.faults.clear();
    }
    await waitForStatus(orderId, (s) => s === 'CANCELLED');
  });

  it("answers 429 WORKFLOW_BUSY when the order's workflow has as many updates in flight as it takes; other orders are not held up", async () => {
    const { orderId } = await placeOrder('cus_busy_cancel', 'never_picked_up');
    await waitForStatus(orderId, (s) => s === 'CONFIRMED');
    // Every void fails until the rule is cleared: a cancel taken now stays in flight.
    stack.payments.state.faults.set({ kind: 'error', rate: 1, operation: 'void' });
    try {
      const handle = stack.worker.client.workflow.getHandle(orderWorkflowId(orderId));
      // Ten cancels from elsewhere (ops' own ids), taken by the workflow and waiting on the void.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          handle.startUpdate(cancelOrderUpdate, {
            updateId: `ops-cancel-${i}`,
            args: [{ requestedBy: 'ops', reason: 'duplicate order' }],
            waitForStage: WorkflowUpdateStage.ACCEPTED,
          }),
        ),
      );
      const t0 = Date.now();
      const res = await cancelAs(orderId, 'cus_busy_cancel');
      // Before: a 503 TEMPORAL_BUSY ("load or a limit") after ~5 s of the client's retries.
      expect(res.statusCode).toBe(429);
      expect(res.json().error.code).toBe('WORKFLOW_BUSY');
      expect(res.json().error.message).toMatch(
        /^this order or parcel has as many requests in progress as the workflow service takes at once \(RESOURCE_EXHAUSTED, CONCURRENT_LIMIT\); other orders are not affected/,
      );
      expect(res.headers['retry-after']).toBe('5');
      expect(Date.now() - t0).toBeLessThan(3_000);
      // Another order's reads and writes go on.
      const other = await placeOrder('cus_not_busy', 'never_picked_up');
      expect(
        (
          await stack.api.app.inject({
            url: `/v1/orders/${other.orderId}`,
            headers: stack.api.customer('cus_not_busy'),
          })
        ).statusCode,
      ).toBe(200);
    } finally {
      stack.payments.state.faults.clear();
    }
    // The cancel that was taken is carried out once the provider answers again.
    await waitForStatus(orderId, (s) => s === 'CANCELLED');
  });

  it('a cancel overtaken by the order failing (its void then parked) is answered 409 ORDER_FINISHED, not CANCELLING', async () => {
    // The saga's five authorisation attempts fail (the order fails PAYMENT_FAILED), and the
    // void of whatever the provider may hold is refused for good: parked.
    stack.payments.state.faults.set({ kind: 'error', calls: 5, operation: 'authorise' });
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'void',
      code: PaymentRejection.UNAUTHORISED,
    });
    const before = stack.payments.state.stats().calls.authorise;
    const { orderId } = await placeOrder('cus_overtaken', 'never_picked_up');
    await eventually(
      async () => stack.payments.state.stats().calls.authorise,
      (calls) => calls > before,
    );
    const cancel = () => cancelAs(orderId, 'cus_overtaken');
    // Taken while the authorisation retries; the answer outlasts the time budget.
    expect((await cancel()).statusCode).toBe(202);
    await waitForStatus(orderId, (s) => s === 'NEEDS_ATTENTION');
    const row = await orderRow(orderId);
    expect(row).toMatchObject({ status: 'NEEDS_ATTENTION' });

    // The cancel was never carried out: asking again says so, and what the order did instead.
    const again = await cancel();
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('ORDER_FINISHED');
    expect(again.json().error.message).toMatch(
      /^the order failed before the cancel could be carried out \(PAYMENT_FAILED\); /,
    );
    expect(
      await stack.database.db
        .selectFrom('audit_log')
        .select('action')
        .where('subject_id', '=', orderId)
        .where('action', '=', 'order.cancel')
        .execute(),
    ).toEqual([]);
  });

  it('an order whose start failed and was never retried is closed by housekeeping; a late retry with its key is told so and starts nothing', async () => {
    const sku = await stock();
    const key = randomUUID();
    const body = orderBody(sku, 'delivered', 1);
    const down = await stack.anotherApi({ env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
    try {
      const refused = await post(body, { ...down.customer('cus_orphan'), 'idempotency-key': key }, down);
      expect(refused.statusCode).toBe(503);
    } finally {
      await down.close();
    }
    // The row was written before the start failed; the shopper never came back.
    const orphan = await stack.database.db
      .selectFrom('orders')
      .selectAll()
      .where('customer_id', '=', 'cus_orphan')
      .executeTakeFirstOrThrow();
    expect(orphan.status).toBe('PENDING');
    await stack.database.db
      .updateTable('orders')
      .set({ created_at: new Date(Date.now() - 20 * 60_000) })
      .where('id', '=', orphan.id)
      .execute();

    const housekeeping = await stack.worker.client.workflow.execute('housekeepingWorkflow', {
      workflowId: uniqueId('housekeeping'),
      taskQueue: stack.worker.taskQueue,
      args: [housekeepingInput(stack.api.config)],
    });
    expect(housekeeping).toMatchObject({ ordersNotStarted: 1 });
    const view = await stack.api.app.inject({
      url: `/v1/orders/${orphan.id}`,
      headers: stack.api.customer('cus_orphan'),
    });
    expect(view.json()).toMatchObject({
      status: 'FAILED',
      failure: { code: 'NOT_STARTED', message: expect.stringMatching(/nothing was reserved or charged/) },
      payment: null,
    });

    // The shopper's app retries at last, with the same key: a clear answer, every time.
    for (const attempt of [1, 2]) {
      const retry = await post(body, { ...stack.api.customer('cus_orphan'), 'idempotency-key': key });
      expect([attempt, retry.statusCode, retry.json().error.code]).toEqual([
        attempt,
        409,
        'ORDER_NOT_STARTED',
      ]);
      expect(retry.json().error.message).toContain(orphan.id);
      expect(retry.json().error.message).toMatch(/new Idempotency-Key/);
      if (attempt === 2) expect(retry.headers['idempotent-replayed']).toBe('true');
    }
    await expect(
      stack.worker.client.workflow.getHandle(orderWorkflowId(orphan.id)).describe(),
    ).rejects.toThrow(/not found/i);
    expect(await reservedOf(sku)).toBe(0);
    expect((await orderRow(orphan.id))?.status).toBe('FAILED');
  });

  it('while Temporal is down reads still answer and writes answer 503 TEMPORAL_UNAVAILABLE', async () => {
    const { orderId } = await placeOrder('cus_down', 'never_picked_up');
    await trackingStarted(orderId);
    const down = await stack.anotherApi({
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1', ...NO_COOLDOWN },
    });
    try {
      const headers = down.customer('cus_down');
      expect((await down.app.inject({ url: `/v1/orders/${orderId}`, headers })).statusCode).toBe(200);
      expect((await down.app.inject({ url: `/v1/orders/${orderId}/tracking`, headers })).statusCode).toBe(
        200,
      );
      const refresh = await down.app.inject({ url: `/v1/orders/${orderId}/tracking?refresh=true`, headers });
      expect(refresh.statusCode).toBe(200);
      expect(refresh.json().message).toMatch(/unreachable|did not answer/);
      const cancel = await down.app.inject({ method: 'POST', url: `/v1/orders/${orderId}/cancel`, headers });
      expect(cancel.statusCode).toBe(503);
      expect(cancel.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
      expect(cancel.headers['retry-after']).toBe('5');
    } finally {
      await down.close();
    }
  });

  describe('card data', () => {
    const CARD_NUMBERS = [
      '4242424242424242',
      '4242 4242 4242 4242',
      '4242-4242-4242-4242',
      '4222222222222', // 13 digits
      '6759 6498 2643 8453 3', // 17
      '6011-0009-9013-9424-009', // 19
    ];

    it('refuses a card number as payment.token (400 naming the field) and never logs, stores or echoes it', async () => {
      const lines: string[] = [];
      const log = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
      const listening = await stack.anotherApi({
        log,
        env: {
          WAYBILL_TASK_QUEUE: stack.worker.taskQueue,
          WAYBILL_COURIER_TASK_QUEUE: stack.worker.courierTaskQueue,
        },
      });
      const before = await countOrders();
      try {
        const sku = await stock();
        for (const number of CARD_NUMBERS) {
          for (const headers of [{}, stack.api.customer('cus_card')]) {
            const res = await post(
              { ...orderBody(sku), payment: { token: number } },
              { ...headers, 'idempotency-key': randomUUID() },
              listening,
            );
            expect({ number, status: res.statusCode, error: res.json().error }).toEqual({
              number,
              status: 400,
              error: {
                code: 'CARD_DATA_REFUSED',
                message: expect.stringMatching(/^body\.payment\.token is a card number/),
              },
            });
            const digits = number.replace(/\D/g, '');
            expect(res.body.replace(/\D/g, '')).not.toContain(digits);
          }
        }
        const keys = await stack.database.db.selectFrom('api_idempotency_keys').selectAll().execute();
        expect(await countOrders()).toBe(before);
        expect(JSON.stringify(keys)).not.toMatch(/4242424242|422222222|675964982|601100099/);
        expect(lines.length).toBeGreaterThan(0);
        const logged = lines.join('').replace(/\D/g, '');
        for (const number of CARD_NUMBERS) expect(logged).not.toContain(number.replace(/\D/g, ''));
      } finally {
        await listening.close();
      }
    });

    it('takes a digits-only token that is not a card number (fails Luhn) like any token', async () => {
      const res = await post(
        { ...orderBody('NO-SUCH-SKU'), payment: { token: '4242424242424241' } },
        { 'idempotency-key': randomUUID() },
      );
      expect(res.json().error.code).toBe('UNKNOWN_SKU');
    });

    it('shows the customer a code and our own message when the provider declines; staff also see its text', async () => {
      const sku = await stock();
      const res = await post(
        { ...orderBody(sku), payment: { token: 'tok_chargeDeclined' } },
        { ...stack.api.customer('cus_declined'), 'idempotency-key': randomUUID() },
      );
      const { orderId } = res.json();
      await waitForStatus(orderId, (s) => s === 'FAILED');
      const stored = (await orderRow(orderId))!.failure_message!;
      expect(stored).toMatch(/declined/i);

      const asCustomer = await stack.api.app.inject({
        url: `/v1/orders/${orderId}`,
        headers: stack.api.customer('cus_declined'),
      });
      expect(asCustomer.json().failure).toEqual({
        code: 'PAYMENT_DECLINED',
        message:
          'The payment was declined, so the order was not placed. Nothing was charged; try another payment method.',
      });
      expect(asCustomer.body).not.toContain(stored);
      const asSupport = await stack.api.app.inject({
        url: `/v1/orders/${orderId}`,
        headers: stack.api.staff('support'),
      });
      expect(asSupport.json().failure).toMatchObject({ code: 'PAYMENT_DECLINED', detail: stored });
    });
  });
});
