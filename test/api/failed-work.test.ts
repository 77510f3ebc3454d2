/**
 * Failed work through the HTTP API on the real stack: a killed shipment workflow listed and
 * brought back under tracking (the parcel then delivered, the order settled by its saga),
 * a parked step retried, a terminated order reset to its last sound point, the refusals
 * (a running workflow, a money step in flight, bad filters) and the idempotent repeat.
 * Every test ends with the money ledger checked (useSagaStack).
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { InjectOptions } from 'fastify';
import { encodeCursor } from '../../src/api/failed-work';
import * as orderReset from '../../src/api/order-reset';
import { actionRequestKey } from '../../src/api/routes/failed-work';
import type { FailedWorkKind } from '../../src/api/schemas/failed-work';
import type { PollPolicy } from '../../src/domain/polling';
import { orderWorkflowId, shipmentWorkflowId } from '../../src/workflows/contract';
import { importWorkflowId } from '../../src/workflows/import';
import { testLog } from '../support/env';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { useSagaStack } from '../support/saga';
import { STACK_TIME_SCALE } from '../support/stack';
import { fastPolicy, startShipmentWorkflow, uniqueId, workflowStory } from '../support/temporal';

jest.setTimeout(150_000);

/** Long enough for the test to restart a parcel's tracking before the order writes it off. */
const RESTART_WINDOW_MS = 120_000;

describe('failed work', () => {
  const stack = useSagaStack({
    api: { env: { WAYBILL_LOG_LEVEL: 'error', WAYBILL_ADMIN_ACTION_WAIT: '1s' } },
    // Imported parcels run on the worker's policy; a large budget spreads their first polls only ms apart.
    worker: { pollPolicy: fastPolicy(), dailyBudget: 1_000_000 },
  });

  const ops = () => stack.api.staff('ops', 'sam');
  const post = (url: string, payload: object, key = randomUUID(), headers = ops()) =>
    stack.api.app.inject({ method: 'POST', url, payload, headers: { ...headers, 'idempotency-key': key } });
  const list = (query: string, headers: InjectOptions['headers'] = ops()) =>
    stack.api.app.inject({ url: `/v1/admin/failed-work?${query}`, headers });
  const auditRows = (action: string, subjectId: string) =>
    stack.database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', action)
      .where('subject_id', '=', subjectId)
      .execute();
  /** Courier time stands (nearly) still, so a parcel stays where it is while the test acts. */
  const holdCourierTime = () => stack.couriers.backend.clock.setTimeScale(1);
  const releaseCourierTime = () => stack.couriers.backend.clock.setTimeScale(STACK_TIME_SCALE);
  afterEach(releaseCourierTime);

  async function inTransit(sku: string, policy?: PollPolicy) {
    await stack.stock(sku, 5);
    const order = await stack.placeOrder({
      sku,
      quantity: 1,
      scenario: 'delivered',
      trackingRestartWindowMs: RESTART_WINDOW_MS,
      ...(policy ? { policy } : {}),
    });
    const [shipment] = await eventually(
      () => stack.shipments(order.orderId),
      (rows) => rows[0]?.status === 'IN_TRANSIT',
    );
    holdCourierTime();
    // The order has heard of the pickup and captured: the money is in play.
    await eventually(
      () => stack.paymentRows(order.orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    return { ...order, shipment: shipment! };
  }

  /**
   * Terminates the order once its workflow has taken the capture's answer (a completed task
   * after it): stopped before, the capture would be a money step in flight and a reset refused.
   */
  async function terminateAfterCapture(handle: WorkflowHandle) {
    await eventually(
      async () => (await handle.fetchHistory()).events ?? [],
      (events) => {
        const capture = events.find(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'capturePayment',
        );
        const done = events.find(
          (e) =>
            e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() ===
            capture?.eventId?.toString(),
        );
        return (
          done !== undefined &&
          events.some(
            (e) => e.workflowTaskCompletedEventAttributes && Number(e.eventId) > Number(done.eventId),
          )
        );
      },
    );
    await handle.terminate('worker deployed a bad build; terminated by ops');
  }

  /**
   * An order terminated after its capture whose parcel's tracking, abandoned by the order, then
   * follows it to the door and completes: its end went to the stopped order run.
   */
  async function deliveredWhileStopped() {
    const order = await inTransit(uniqueId('KETTLE'));
    await terminateAfterCapture(order.handle);
    releaseCourierTime();
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(order.shipment.id));
    expect(await tracking.result()).toMatchObject({ status: 'DELIVERED' });
    return order;
  }

  /** An admin resets the order (a new Idempotency-Key each time). */
  const resetOrder = (orderId: string) =>
    post(
      `/v1/admin/failed-work/orders/${orderId}/reset`,
      { reason: 'bad build rolled back' },
      randomUUID(),
      stack.api.admin('alice'),
    );

  /** The reset run follows its parcel to the door: DELIVERED, the capture kept, nothing refunded. */
  async function endsDelivered(orderId: string, resetRunId: string, total: number) {
    const resetRun = stack.worker.client.workflow.getHandle(orderWorkflowId(orderId), resetRunId);
    expect(await resetRun.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect(await stack.paymentRows(orderId)).toEqual([
      expect.objectContaining({ amount_captured: total, amount_refunded: 0 }),
    ]);
  }

  it('lists a killed shipment workflow and brings its parcel back under tracking; a repeat answers the same and acts once', async () => {
    const { orderId, handle, total, shipment } = await inTransit(uniqueId('KETTLE'));
    const workflowId = shipmentWorkflowId(shipment.id);
    const running = await post(`/v1/admin/failed-work/shipments/${shipment.id}/restart-tracking`, {
      reason: 'is it stuck?',
    });
    expect(running.statusCode).toBe(409);
    expect(running.json().error.code).toBe('TRACKING_NOT_DEAD');

    const dead = await stack.worker.client.workflow.getHandle(workflowId).describe();
    await stack.worker.client.workflow.getHandle(workflowId).terminate('stuck worker: killed by ops');

    const listed = await eventually(
      async () => (await list('kind=shipment_workflow&reason=terminated&courier=simulator&limit=100')).json(),
      (page: { items: { workflowId: string }[] }) => page.items.some((i) => i.workflowId === workflowId),
    );
    expect(listed.items.find((i: { workflowId: string }) => i.workflowId === workflowId)).toMatchObject({
      kind: 'shipment_workflow',
      orderId,
      shipmentId: shipment.id,
      runId: dead.runId,
      courier: 'simulator',
      reason: 'terminated',
      currentRun: { runId: dead.runId, status: 'Terminated' },
      actions: ['restart_tracking'],
    });

    const key = randomUUID();
    const url = `/v1/admin/failed-work/shipments/${shipment.id}/restart-tracking`;
    const restarted = await post(url, { reason: 'worker crash left it untracked' }, key);
    expect(restarted.statusCode).toBe(200);
    const body = restarted.json();
    expect(body).toMatchObject({
      action: 'restart_tracking',
      subjectId: shipment.id,
      outcome: 'restarted',
      workflowId,
      by: 'ops:sam',
    });
    expect(body.runId).not.toBe(dead.runId);

    const again = await post(url, { reason: 'worker crash left it untracked' }, key);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(body);
    const reused = await post(url, { reason: 'another reason' }, key);
    expect(reused.statusCode).toBe(422);

    const current = await stack.worker.client.workflow.getHandle(workflowId).describe();
    expect(current).toMatchObject({ runId: body.runId, status: { name: 'RUNNING' } });
    // Refused and acted, each on record once: who, why, what came of it.
    const audit = await auditRows('failed_work.restart_tracking', shipment.id);
    expect(audit.map((r) => [r.actor, r.reason, r.details.result])).toEqual([
      ['ops:sam', 'is it stuck?', 'refused'],
      ['ops:sam', 'worker crash left it untracked', 'restarted'],
    ]);
    expect(audit[1]!.details).toMatchObject({ runId: body.runId, idempotencyKey: key });

    // The courier moves on; the new run follows it to the door and the order settles.
    releaseCourierTime();
    const [delivered] = await eventually(
      () => stack.shipments(orderId),
      (rows) => rows[0]?.status === 'DELIVERED',
    );
    expect(delivered!.sync_error).toBeNull();
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    await recordHistory('order-tracking-restarted', handle);
    expect(await stack.paymentRows(orderId)).toEqual([
      expect.objectContaining({ amount_captured: total, amount_refunded: 0 }),
    ]);
  });

  it('restarts the tracking of an imported parcel (no order) once, whoever asks at the same time, and it is followed to delivery', async () => {
    const trackingNumber = stack.couriers.backend.register({
      scenario: 'delivered',
      format: 'native',
    }).trackingNumber;
    const imported = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/imports',
      headers: stack.api.admin(),
      payload: { parcels: [{ courier: 'simulator', trackingNumber }] },
    });
    expect(imported.statusCode).toBe(202);
    const { importId } = imported.json<{ importId: string }>();
    stack.started(stack.worker.client.workflow.getHandle(importWorkflowId(importId)));
    const shipmentId = `simulator-${trackingNumber}`;
    const workflowId = shipmentWorkflowId(shipmentId);
    stack.started(stack.worker.client.workflow.getHandle(workflowId));
    const shipmentRow = () =>
      stack.database.db.selectFrom('shipments').selectAll().where('id', '=', shipmentId).executeTakeFirst();
    // Seen once in a full run: the parcel never polled in 30 s (PENDING, never synced, no
    // failure logged). Should it happen again, the histories say where it stood.
    await eventually(
      shipmentRow,
      (row) => row?.status === 'IN_TRANSIT',
      30_000,
      async () =>
        [
          await workflowStory(stack.worker.client, importWorkflowId(importId)),
          await workflowStory(stack.worker.client, workflowId),
        ].join('\n'),
    );
    holdCourierTime();

    const dead = await stack.worker.client.workflow.getHandle(workflowId).describe();
    await stack.worker.client.workflow.getHandle(workflowId).terminate('stuck worker: killed by ops');
    const listed = await eventually(
      async () => (await list('kind=shipment_workflow&reason=terminated&limit=100')).json(),
      (page: { items: { workflowId: string }[] }) => page.items.some((i) => i.workflowId === workflowId),
    );
    expect(listed.items.find((i: { workflowId: string }) => i.workflowId === workflowId)).toMatchObject({
      kind: 'shipment_workflow',
      orderId: null,
      shipmentId,
      runId: dead.runId,
      reason: 'terminated',
      actions: ['restart_tracking'],
    });

    // Two admins restart it at once (each with a key of their own): one run starts, the other
    // admin is told it is running.
    const answers = await Promise.all(
      ['imported parcel lost its tracking', 'restarting the dead import'].map((reason) =>
        post(`/v1/admin/failed-work/shipments/${shipmentId}/restart-tracking`, { reason }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 409]);
    const restarted = answers.find((a) => a.statusCode === 200)!;
    expect(answers.find((a) => a.statusCode === 409)!.json().error.code).toBe('TRACKING_NOT_DEAD');
    expect(restarted.json()).toMatchObject({ outcome: 'restarted', workflowId, by: 'ops:sam' });
    expect(restarted.json().runId).not.toBe(dead.runId);

    releaseCourierTime();
    const delivered = await eventually(shipmentRow, (row) => row?.status === 'DELIVERED');
    expect(delivered!.order_id).toBeNull();
    expect(delivered!.sync_error).toBeNull();
    // The run that was restarted finished the parcel's journey: it completed, or continued as
    // new (its history grew under load) into the run that did.
    const latest = await eventually(
      () => stack.worker.client.workflow.getHandle(workflowId).describe(),
      (d) => d.status.name !== 'RUNNING',
    );
    expect(latest.status.name).toBe('COMPLETED');
    const restartedRun = await stack.worker.client.workflow
      .getHandle(workflowId, restarted.json().runId)
      .describe();
    expect(restartedRun.status.name).toBe(
      latest.runId === restartedRun.runId ? 'COMPLETED' : 'CONTINUED_AS_NEW',
    );
  });

  it('retries a parked step from the failed-work list, once per Idempotency-Key', async () => {
    const { orderId, handle, shipment, itemId } = await stack.parkedCancel();

    const page = (await list('kind=needs_attention&reason=400&limit=100')).json();
    expect(page.items.filter((i: { orderId: string }) => i.orderId === orderId)).toEqual([
      expect.objectContaining({ kind: 'needs_attention', itemId, actions: ['retry_step'] }),
    ]);

    const url = `/v1/admin/failed-work/orders/${orderId}/retry-step`;
    const unknown = await post(url, { itemId: 'capture', reason: 'try it' });
    expect(unknown.statusCode).toBe(409);
    expect(unknown.json().error.message).toContain(itemId);
    expect(await auditRows('failed_work.retry_step', orderId)).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ result: 'refused', code: 'NOT_OPEN' }) }),
    ]);

    // The courier takes cancels again, after a 3 s outage: the saga's own step, run once more,
    // rides it out and outlasts the API's wait (1 s here), which says so instead of 503.
    stack.couriers.backend.answers.clear();
    stack.couriers.backend.faults.set({ kind: 'outage', durationMs: 3_000, format: 'native' });
    const key = randomUUID();
    const running = await post(url, { itemId, reason: 'courier fixed its API' }, key);
    expect(running.statusCode).toBe(202);
    expect(running.json().error).toMatchObject({ code: 'STILL_RUNNING' });
    // The same request with the same key joins that retry, and answers its outcome once done.
    const retried = await eventually(
      () => post(url, { itemId, reason: 'courier fixed its API' }, key),
      (res) => res.statusCode !== 202,
      30_000,
    );
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ outcome: 'retried', openItems: [], by: 'ops:sam' });
    const again = await post(url, { itemId, reason: 'courier fixed its API' }, key);
    expect(again.json()).toEqual(retried.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await handle.result()).toMatchObject({ status: 'CANCELLED' });
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
    expect((await auditRows('failed_work.retry_step', orderId)).map((r) => r.details.result)).toEqual([
      'refused',
      'retried',
    ]);
  });

  it('resets a terminated order to its last sound point; it then follows its parcel to the end', async () => {
    const { orderId, handle, total } = await inTransit(uniqueId('KETTLE'));
    const url = `/v1/admin/failed-work/orders/${orderId}/reset`;
    const admin = stack.api.admin('alice');

    const running = await post(url, { reason: 'looks stuck' }, randomUUID(), admin);
    expect(running.statusCode).toBe(409);
    expect(running.json().error).toMatchObject({ code: 'RESET_NOT_SAFE' });
    expect(running.json().error.message).toMatch(/RUNNING/);
    expect((await post(url, { reason: 'ops may not' })).statusCode).toBe(403);

    await terminateAfterCapture(handle);
    const reset = await post(url, { reason: 'bad build rolled back' }, randomUUID(), admin);
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({
      outcome: 'reset',
      workflowId: orderWorkflowId(orderId),
      by: 'admin:alice',
    });
    expect(reset.json().resetEventId).toBeGreaterThan(3);

    releaseCourierTime();
    await endsDelivered(orderId, reset.json().runId, total);
    expect((await auditRows('failed_work.reset', orderId)).map((r) => [r.actor, r.details.result])).toEqual([
      ['admin:alice', 'refused'],
      ['admin:alice', 'reset'],
    ]);
  });

  it("resets a terminated order whose parcel's tracking has continued as new since it started", async () => {
    // A run polls twice, then continues as new (a day's polls in production).
    const { orderId, handle, shipment } = await inTransit(
      uniqueId('KETTLE'),
      fastPolicy({ maxCyclesPerRun: 2 }),
    );
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id));
    const continued = await eventually(
      () => tracking.describe(),
      (d) => d.runId !== d.raw.workflowExecutionInfo?.firstRunId,
    );
    expect(continued.status.name).toBe('RUNNING');
    await terminateAfterCapture(handle);

    const reset = await resetOrder(orderId);
    expect(reset.statusCode).toBe(200);
    releaseCourierTime();
    const resetRun = stack.worker.client.workflow.getHandle(orderWorkflowId(orderId), reset.json().runId);
    expect(await resetRun.result()).toMatchObject({ status: 'DELIVERED', captured: true });
  });

  it('refuses to reset an order whose capture was in flight when it stopped', async () => {
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    stack.payments.state.faults.set({ kind: 'error', rate: 1, operation: 'capture' });
    const { orderId, handle } = await stack.placeOrder({ sku, quantity: 1, scenario: 'delivered' });
    await eventually(
      async () => (await handle.fetchHistory()).events ?? [],
      (events) =>
        events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'capturePayment'),
    );
    await handle.terminate('terminated mid-capture');
    const refused = await post(
      `/v1/admin/failed-work/orders/${orderId}/reset`,
      { reason: 'try' },
      randomUUID(),
      stack.api.admin(),
    );
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('RESET_NOT_SAFE');
    expect(refused.json().error.message).toMatch(/capturePayment/);
    expect((await handle.describe()).status.name).toBe('TERMINATED');
  });

  it("a parcel's dead tracking under a terminated order is refused as ORDER_STOPPED; a reset then tells the order, and the restart is taken", async () => {
    const { orderId, handle, shipment, total } = await inTransit(uniqueId('KETTLE'));
    await terminateAfterCapture(handle);
    // The parcel's tracking (abandoned by the order, so still running) dies afterwards.
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id));
    await tracking.terminate('stuck worker: killed by ops');
    const refused = await post(`/v1/admin/failed-work/shipments/${shipment.id}/restart-tracking`, {
      reason: 'its tracking died',
    });
    expect(refused.statusCode).toBe(409);
    // The order settled nothing: it stopped, which is what ops must know.
    expect(refused.json().error).toMatchObject({
      code: 'ORDER_STOPPED',
      message: expect.stringContaining(`order ${orderId}'s workflow is TERMINATED`),
    });

    // A reset brings the order back and tells it the parcel's tracking died while it was
    // stopped; the order then waits for a restart as usual, and the restart is taken.
    const reset = await resetOrder(orderId);
    expect(reset.statusCode).toBe(200);
    expect(reset.json().trackingEnded).toEqual([{ shipmentId: shipment.id, ended: 'TERMINATED' }]);
    const restarted = await post(`/v1/admin/failed-work/shipments/${shipment.id}/restart-tracking`, {
      reason: 'its tracking died while the order was stopped',
    });
    expect(restarted.statusCode).toBe(200);
    expect(restarted.json()).toMatchObject({ outcome: 'restarted' });

    releaseCourierTime();
    await endsDelivered(orderId, reset.json().runId, total);
  });

  it('resets a terminated order whose parcel was delivered while it was stopped; the order settles it as delivered', async () => {
    const { orderId, total, shipment } = await deliveredWhileStopped();

    const reset = await resetOrder(orderId);
    expect(reset.statusCode).toBe(200);
    expect(reset.json().trackingEnded).toEqual([{ shipmentId: shipment.id, ended: 'DELIVERED' }]);
    await endsDelivered(orderId, reset.json().runId, total);
  });

  it('resets a terminated order whose parcel, never collected, an admin marked delivered while it was stopped; the booking is released', async () => {
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    const { orderId, handle, total } = await stack.placeOrder({
      sku,
      quantity: 1,
      scenario: 'never_picked_up',
      trackingRestartWindowMs: RESTART_WINDOW_MS,
    });
    // Stopped once it tracks the parcel (a task completed after the child started).
    await eventually(
      async () => (await handle.fetchHistory()).events ?? [],
      (events) => {
        const started = events.find((e) => e.childWorkflowExecutionStartedEventAttributes);
        return events.some(
          (e) =>
            e.workflowTaskCompletedEventAttributes &&
            Number(e.eventId) > Number(started?.eventId ?? Infinity),
        );
      },
    );
    await handle.terminate('worker deployed a bad build; terminated by ops');
    const [shipment] = await stack.shipments(orderId);
    // The shop took it over itself: the courier never collected it, and the order did not hear.
    const marked = await post(
      `/v1/admin/shipments/${shipment!.id}/mark-delivered`,
      { reason: 'the shop drove it over' },
      randomUUID(),
      stack.api.admin('alice'),
    );
    expect(marked.statusCode).toBe(202);
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment!.id));
    expect(await tracking.result()).toMatchObject({ status: 'DELIVERED', subStatus: 'MARKED_BY_ADMIN' });

    const reset = await resetOrder(orderId);
    expect(reset.statusCode).toBe(200);
    expect(reset.json().trackingEnded).toEqual([{ shipmentId: shipment!.id, ended: 'DELIVERED' }]);
    const resetRun = stack.worker.client.workflow.getHandle(orderWorkflowId(orderId), reset.json().runId);
    expect(await resetRun.result()).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    // Told of the mark, the order released the booking the courier never used.
    expect(stack.couriers.backend.inspect(shipment!.tracking_number!)?.parcel.cancelled).toBe(true);
    expect(await stack.paymentRows(orderId)).toEqual([
      expect.objectContaining({ amount_captured: total, amount_refunded: 0 }),
    ]);
  });

  it('finishes a reset that stopped before it answered: its retry tells the run it made of the parcel delivered meanwhile, and does not reset again', async () => {
    const { orderId, total, shipment } = await deliveredWhileStopped();

    // The first request resets the order, then its API process dies before it tells the new run
    // of the delivery (or before it answers): the run it made waits for an end it will not hear.
    const key = randomUUID();
    const deps = {
      config: stack.api.config,
      db: stack.database.db,
      temporal: stack.api.temporal,
      log: testLog,
    };
    const requestKey = actionRequestKey('reset', 'admin:alice', key);
    const plan = await orderReset.planOrderReset(deps, orderId, requestKey);
    expect(plan.resetRunId).toBeNull();
    const madeRunId = await orderReset.resetOrder(deps, plan, {
      reason: 'admin:alice: bad build rolled back',
      requestKey,
    });

    // The admin retries with the same key: the reset is found, not made again, and the run told.
    const retried = await post(
      `/v1/admin/failed-work/orders/${orderId}/reset`,
      { reason: 'bad build rolled back' },
      key,
      stack.api.admin('alice'),
    );
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({
      outcome: 'reset',
      runId: madeRunId,
      resetEventId: plan.eventId,
      trackingEnded: [{ shipmentId: shipment.id, ended: 'DELIVERED' }],
    });
    expect((await stack.worker.client.workflow.getHandle(orderWorkflowId(orderId)).describe()).runId).toBe(
      madeRunId,
    );
    await endsDelivered(orderId, madeRunId, total);
  });

  it('lists a parcel whose courier sync fails, by courier', async () => {
    const shipmentId = uniqueId('shp');
    const { trackingNumber } = stack.couriers.backend.register({ scenario: 'delivered', format: 'native' });
    await stack.database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: 'simulator', tracking_number: trackingNumber })
      .execute();
    const first = await startShipmentWorkflow(stack.worker, {
      shipmentId,
      trackingNumber,
      policy: fastPolicy(),
    });
    const row = () =>
      stack.database.db
        .selectFrom('shipments')
        .selectAll()
        .where('id', '=', shipmentId)
        .executeTakeFirstOrThrow();
    await eventually(row, (r) => r.status === 'IN_TRANSIT');
    holdCourierTime();
    stack.couriers.backend.faults.set({ kind: 'error', rate: 1, format: 'native' });
    await eventually(row, (r) => r.sync_error !== null);
    const failing = (await list('kind=sync_error&courier=simulator&limit=100')).json();
    expect(failing.items.filter((i: { shipmentId: string }) => i.shipmentId === shipmentId)).toEqual([
      expect.objectContaining({ kind: 'sync_error', orderId: null, courier: 'simulator' }),
    ]);
    expect((await list('kind=sync_error&courier=easyparcel&limit=100')).json().items).not.toContainEqual(
      expect.objectContaining({ shipmentId }),
    );

    // The courier answers again: the same run recovers by itself, the parcel reaches the door.
    stack.couriers.backend.faults.clear();
    releaseCourierTime();
    expect(await first.result()).toMatchObject({ status: 'DELIVERED' });
    expect(await row()).toMatchObject({ status: 'DELIVERED', sync_error: null });
  });

  it('pages visibility with its own cursor and refuses filters that do not apply', async () => {
    const killed: string[] = [];
    for (const n of [1, 2]) {
      const sku = uniqueId(`MUG${n}`);
      await stack.stock(sku, 5);
      const { orderId, handle } = await stack.placeOrder({ sku, quantity: 1, scenario: 'never_picked_up' });
      const [shipment] = await eventually(
        () => stack.shipments(orderId),
        (rows) => rows[0]?.status === 'INFO_RECEIVED',
      );
      const workflowId = shipmentWorkflowId(shipment!.id);
      await stack.worker.client.workflow.getHandle(workflowId).terminate('killed for the list');
      await handle.result(); // no restart window: the order settles the parcel as lost
      killed.push(workflowId);
    }
    const seen = await eventually(
      async () => {
        const ids: string[] = [];
        let cursor: string | null = null;
        do {
          const res = await list(`kind=shipment_workflow&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
          expect(res.statusCode).toBe(200);
          const page = res.json() as {
            items: { workflowId: string; runId: string }[];
            nextCursor: string | null;
          };
          expect(page.items.length).toBeLessThanOrEqual(1);
          // One item per run: a workflow restarted and stopped again (an earlier test's) has two.
          ids.push(...page.items.map((i) => `${i.workflowId}/${i.runId}`));
          cursor = page.nextCursor;
        } while (cursor !== null);
        return ids;
      },
      (ids) => killed.every((id) => ids.some((run) => run.startsWith(`${id}/`))),
    );
    expect(new Set(seen).size).toBe(seen.length);

    const first = (await list('kind=shipment_workflow&limit=1')).json();
    expect(first.nextCursor).not.toBeNull();
    const wrongKind = await list(`kind=order_workflow&limit=1&cursor=${first.nextCursor}`);
    expect(wrongKind.statusCode).toBe(400);
    expect(wrongKind.json().error.code).toBe('INVALID_CURSOR');
    const courier = await list('kind=needs_attention&courier=simulator');
    expect(courier.statusCode).toBe(400);
    expect(courier.json().error).toMatchObject({ code: 'INVALID_FILTER' });
    expect(courier.json().error.message).toMatch(/courier/);
    const reason = await list('kind=order_workflow&reason=exploded');
    expect(reason.statusCode).toBe(400);
    expect(reason.json().error.message).toMatch(/failed, terminated, timed_out/);
    expect((await list('kind=everything')).statusCode).toBe(400);
    expect((await list('kind=sync_error', stack.api.staff('support'))).statusCode).toBe(403);
  });

  it('answers a valid cursor that meets a passing Temporal error as that error, not 400 INVALID_CURSOR: a rate limit 503 TEMPORAL_BUSY, a reset stream the next page', async () => {
    // Two stopped shipment workflows of this test's own, so there is a second page.
    for (const n of [1, 2]) {
      const handle = await startShipmentWorkflow(stack.worker, {
        shipmentId: uniqueId(`shp_busy${n}`),
        trackingNumber: uniqueId('BUSY').toUpperCase(),
        policy: fastPolicy(),
      });
      await handle.terminate('a stopped workflow to page through');
    }
    const first = await eventually(
      async () => (await list('kind=shipment_workflow&reason=terminated&limit=1')).json(),
      (page: { items: unknown[]; nextCursor: string | null }) => page.nextCursor !== null,
    );
    const secondPage = () =>
      list(`kind=shipment_workflow&reason=terminated&limit=1&cursor=${first.nextCursor}`);
    /** Temporal answers the list asked with the token with this error, `times` times; the rest go through. */
    const tokenCallsFail = (error: { code: number; message: string }, times: number) => {
      const service = stack.api.temporal.client.workflowService;
      const realList = service.listWorkflowExecutions.bind(service);
      let failures = 0;
      return jest.spyOn(service, 'listWorkflowExecutions').mockImplementation(async (request) => {
        if (request.nextPageToken && request.nextPageToken.length > 0 && failures < times) {
          failures += 1;
          throw Object.assign(new Error(`${error.code} ${error.message}`), error);
        }
        return realList(request);
      });
    };

    // A namespace over its rate limit, every time the token is sent.
    const busy = tokenCallsFail(
      { code: 8, message: 'RESOURCE_EXHAUSTED: namespace rate limit exceeded' },
      99,
    );
    try {
      const res = await secondPage();
      expect({
        status: res.statusCode,
        code: res.json().error.code,
        retryAfter: res.headers['retry-after'],
      }).toEqual({ status: 503, code: 'TEMPORAL_BUSY', retryAfter: '5' });
    } finally {
      busy.mockRestore();
    }

    // A stream reset once (gRPC says INTERNAL, as a SQL store says of a token it cannot read).
    const reset = tokenCallsFail({ code: 13, message: 'INTERNAL: Received RST_STREAM with code 2' }, 1);
    let next;
    try {
      next = await secondPage();
    } finally {
      reset.mockRestore();
    }
    expect(next.statusCode).toBe(200);
    const [firstItem] = first.items as { workflowId: string; runId: string }[];
    const nextItems = next.json().items as { workflowId: string; runId: string }[];
    expect(nextItems).toHaveLength(1);
    expect(`${nextItems[0]!.workflowId}/${nextItems[0]!.runId}`).not.toBe(
      `${firstItem!.workflowId}/${firstItem!.runId}`,
    );
    // Each item's current run, asked of Temporal, meets the rate limit: the page is refused as
    // busy, where before it said the run was gone from retention.
    const service = stack.api.temporal.client.workflowService;
    const describeBusy = jest.spyOn(service, 'describeWorkflowExecution').mockImplementation(async () => {
      throw Object.assign(new Error('8 RESOURCE_EXHAUSTED: namespace rate limit exceeded'), { code: 8 });
    });
    try {
      const res = await list('kind=shipment_workflow&reason=terminated&limit=1');
      expect({ status: res.statusCode, code: res.json().error?.code }).toEqual({
        status: 503,
        code: 'TEMPORAL_BUSY',
      });
    } finally {
      describeBusy.mockRestore();
    }
  });

  it('refuses a forged cursor with 400 INVALID_CURSOR: a time that is no instant, a NUL in an id, a page token Temporal never gave', async () => {
    // Cursors in the API's own format, as anyone may make them, with positions it never handed out.
    const forged = (kind: FailedWorkKind, position: string[]) => encodeCursor({ kind }, position);
    const notAToken = Buffer.from('not a page token').toString('base64url');
    const cases: [string, FailedWorkKind, string[]][] = [
      ['30 February', 'needs_attention', ['2026-02-30T00:00:00.000000Z', 'ord_1', 'item_1']],
      ['year 0', 'needs_attention', ['0000-01-01T00:00:00.000000Z', 'ord_1', 'item_1']],
      ['a NUL in the order id', 'needs_attention', ['2026-02-01T00:00:00.000000Z', 'ord\u0000', 'item_1']],
      ['a NUL in the item id', 'needs_attention', ['2026-02-01T00:00:00.000000Z', 'ord_1', 'item\u0000']],
      ['30 February', 'sync_error', ['2026-02-30T00:00:00.000000Z', 'shp_1']],
      ['a NUL in the shipment id', 'sync_error', ['2026-02-01T00:00:00.000000Z', 'shp\u0000']],
      ['a page token Temporal never gave', 'order_workflow', [notAToken]],
      ['a page token Temporal never gave', 'shipment_workflow', [notAToken]],
    ];
    const answers = [];
    for (const [forgery, kind, position] of cases) {
      const res = await list(`kind=${kind}&cursor=${forged(kind, position)}`);
      answers.push({ kind, forgery, status: res.statusCode, error: res.json().error });
    }
    expect(answers).toEqual(
      cases.map(([forgery, kind]) => ({
        kind,
        forgery,
        status: 400,
        error: {
          code: 'INVALID_CURSOR',
          message:
            'querystring: cursor is not one this API handed out for this kind and these filters; pass nextCursor from the previous page with the same query',
        },
      })),
    );
  });
});
