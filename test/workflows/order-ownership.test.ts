/**
 * The order saga owns what it starts and never waits on what cannot settle it: a shipment
 * workflow that ends without a final status, a parcel that expires uncollected beside a
 * delivered one, a booking retrying through an outage when the shopper cancels, and a
 * shop endpoint that refuses notifications. Real Temporal, Postgres and both simulators.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowUpdateStage } from '@temporalio/client';
import { createWebhookTransport } from '../../src/notifications/transport';
import {
  cancelOrderUpdate,
  cancelShipmentSignal,
  orderShipmentId,
  shipmentWorkflowId,
  trackingEndedSignal,
} from '../../src/workflows/contract';
import { recordHistory } from '../support/histories';
import { SHOPPER_CANCEL, useSagaStack } from '../support/saga';
import { eventually } from '../support/eventually';
import { fastPolicy } from '../support/temporal';

jest.setTimeout(90_000);

/** The shop's notification endpoint: answers every message with `status`. */
let shopEndpoint: http.Server;
let shopStatus = 200;
const received: string[] = [];

beforeAll(async () => {
  shopEndpoint = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push((JSON.parse(body) as { kind: string }).kind);
      res.writeHead(shopStatus).end();
    });
  });
  await new Promise<void>((resolve) => shopEndpoint.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => shopEndpoint.close(resolve));
});

describe('order saga: what it starts, it owns', () => {
  const stack = useSagaStack({
    notifications: () =>
      createWebhookTransport({
        url: `http://127.0.0.1:${(shopEndpoint.address() as AddressInfo).port}/hooks`,
        secret: 'shop-secret-for-tests-only',
      }),
  });
  const { orderInStock, parcelAt, courierCalls, expectSettled, orderRow, paymentRows, item, shipments } =
    stack;

  afterEach(() => {
    shopStatus = 200;
  });

  it('settles an order whose shipment workflow is terminated: booking cancelled, authorisation voided, stock released', async () => {
    const order = await orderInStock({ scenario: 'never_picked_up' });
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id));
    // The order starts its parcel's workflow with room for a poll's task on a busy worker.
    const { executionConfig } = (await tracking.describe()).raw;
    expect(Number(executionConfig?.defaultWorkflowTaskTimeout?.seconds)).toBe(30);
    await tracking.terminate('stuck: terminated by ops with the CLI');

    const result = await order.handle.result();
    await recordHistory('order-shipment-terminated', order.handle);
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST', captured: false });
    expect(result.failureMessage).toMatch(/terminated/i);
    await expectSettled(order, 'VOIDED', 5);
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
  });

  it('a collected parcel whose shipment workflow is terminated is refunded as lost, and its row says so', async () => {
    const order = await orderInStock({ scenario: 'delivered' });
    const shipment = await parcelAt(order.orderId, 'IN_TRANSIT');
    // Courier time stands (nearly) still: the parcel stays in the van while the test acts.
    stack.couriers.backend.clock.setTimeScale(1);
    await eventually(
      () => paymentRows(order.orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .terminate('stuck: terminated by ops with the CLI');

    // No restart window: the order settles the parcel as lost at once and gives the money back.
    const result = await order.handle.result();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST', captured: true });
    expect((await paymentRows(order.orderId))[0]).toMatchObject({
      status: 'REFUNDED',
      amount_captured: order.total,
      amount_refunded: order.total,
    });
    // Nothing tracks the parcel any more: the customer's tracking (and a driver's late report)
    // must not go on showing it in transit beside the refund.
    expect((await shipments(order.orderId))[0]).toMatchObject({
      status: 'EXPIRED',
      sub_status: 'TRACKING_LOST',
    });
    const audit = await stack.database.db
      .selectFrom('audit_log')
      .select(['action', 'actor'])
      .where('subject_id', '=', shipment.id)
      .execute();
    expect(audit).toEqual([{ action: 'shipment.settle_lost', actor: 'system:order-saga' }]);
    // Its goods left with the courier: not back on sale.
    expect(await item(order.sku)).toMatchObject({ on_hand: 4, reserved: 0 });
  });

  /**
   * An order whose parcel is in transit and whose payment is captured, its tracking restart
   * window `restartWindowMs`; courier time then stands (nearly) still: only the test moves the
   * parcel from here.
   */
  async function capturedInTransit(restartWindowMs: number) {
    const order = await orderInStock({ scenario: 'delivered', trackingRestartWindowMs: restartWindowMs });
    const shipment = await parcelAt(order.orderId, 'IN_TRANSIT');
    stack.couriers.backend.clock.setTimeScale(1);
    await eventually(
      () => paymentRows(order.orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    return { order, shipment };
  }

  it("a parcel delivered while its shipment workflow was dead is settled by the courier's last word: DELIVERED, nothing refunded", async () => {
    // Nobody restarts the tracking within its 3 s window.
    const { order, shipment } = await capturedInTransit(3_000);
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id));
    await tracking.terminate('stuck: terminated by ops with the CLI');
    // ...and the parcel is delivered meanwhile, with nothing tracking it to see it.
    stack.couriers.backend.register({
      trackingNumber: shipment.tracking_number,
      scenario: 'delivered',
      format: 'native',
      ageMs: 5 * 86_400_000,
    });

    const result = await order.handle.result();
    await recordHistory('order-delivered-while-untracked', order.handle);
    expect(result).toMatchObject({ status: 'DELIVERED', captured: true });
    expect((await paymentRows(order.orderId))[0]).toMatchObject({
      status: 'CAPTURED',
      amount_captured: order.total,
      amount_refunded: 0,
    });
    expect((await shipments(order.orderId))[0]).toMatchObject({ status: 'DELIVERED' });
    expect(await item(order.sku)).toMatchObject({ on_hand: 4, reserved: 0 });
  });

  it("a collected parcel whose tracking ops stop (the shipment's cancel signal) is not refunded: the courier's last word settles it, DELIVERED", async () => {
    const { order, shipment } = await capturedInTransit(3_000);
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .signal(cancelShipmentSignal, { reason: 'ops: stop polling this one' });
    // Its run fails (failed work lists it for a restart); the parcel is still on its way, and
    // is delivered with nothing tracking it.
    await eventually(
      async () =>
        (await stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id)).describe()).status
          .name,
      (status) => status === 'FAILED',
    );
    stack.couriers.backend.register({
      trackingNumber: shipment.tracking_number,
      scenario: 'delivered',
      format: 'native',
      ageMs: 5 * 86_400_000,
    });

    // Before, the stop was taken as the parcel's fate: FAILED SHIPMENT_LOST, refunded in full.
    expect(await order.handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect((await paymentRows(order.orderId))[0]).toMatchObject({
      status: 'CAPTURED',
      amount_captured: order.total,
      amount_refunded: 0,
    });
    expect((await shipments(order.orderId))[0]).toMatchObject({ status: 'DELIVERED' });
  });

  it('an uncollected parcel whose tracking ops stop has its booking cancelled when the order settles it', async () => {
    const order = await orderInStock({ scenario: 'never_picked_up', trackingRestartWindowMs: 1_000 });
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .signal(cancelShipmentSignal, { reason: 'ops: stop polling this one' });

    const result = await order.handle.result();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST', captured: false });
    expect(result.failureMessage).toMatch(
      /tracking stopped from outside its order: ops: stop polling this one/,
    );
    await expectSettled(order, 'VOIDED', 5);
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
  });

  it('a cancellation requested in Temporal while a parcel heard of late waits for its restart: the order still cancels whole', async () => {
    const order = await orderInStock({ scenario: 'never_picked_up', trackingRestartWindowMs: 60_000 });
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    const tracking = stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipment.id));
    // The API's notice after a reset: the parcel's tracking ended while the order was stopped.
    // The order then waits for a restart on a timer the notice's handler started.
    await order.handle.signal(trackingEndedSignal, {
      shipmentId: shipment.id,
      trackingRunId: (await tracking.describe()).runId,
      final: null,
      how: 'TERMINATED while the order was stopped',
    });
    await order.handle.cancel();

    // Before, that timer was cut short by the cancellation and its rejection went unhandled:
    // every workflow task of the order failed from then on.
    expect(await order.handle.result()).toMatchObject({ status: 'CANCELLED' });
    await expectSettled(order, 'VOIDED', 5);
  });

  it('a parcel whose workflow recorded its delivery and died before telling the order is settled DELIVERED from the read model, whatever the courier says', async () => {
    const { order, shipment } = await capturedInTransit(1_000);
    // Its last record wrote the delivery (the admin's mark, or a scan the courier's API no
    // longer shows), then the workflow died before its milestone reached the order.
    await stack.database.db
      .updateTable('shipments')
      .set({ status: 'DELIVERED' })
      .where('id', '=', shipment.id)
      .execute();
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .terminate('died right after recording the delivery');

    // The courier's last word is "in transit" (its clock stands still): before, the order took
    // that as no final word and refunded the parcel as lost.
    expect(await order.handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect((await paymentRows(order.orderId))[0]).toMatchObject({
      status: 'CAPTURED',
      amount_captured: order.total,
      amount_refunded: 0,
    });
  });

  it("an admin's mark the order never heard of (its workflow died right after recording it) still releases the booking the courier never collected", async () => {
    const order = await orderInStock({ scenario: 'never_picked_up', trackingRestartWindowMs: 1_000 });
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    // What the mark-delivered record wrote, before the workflow died without telling the order.
    await stack.database.db
      .updateTable('shipments')
      .set({
        status: 'DELIVERED',
        sub_status: 'MARKED_BY_ADMIN',
        picked_up_at: new Date(),
        delivered_at: new Date(),
      })
      .where('id', '=', shipment.id)
      .execute();
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .terminate('died right after recording the mark');

    expect(await order.handle.result()).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
  });

  it("a dead tracking's last poll refused because the courier's daily budget is used up waits for the next window: nothing is settled as lost meanwhile", async () => {
    const { order, shipment } = await capturedInTransit(2_000);
    // Today's budget is used up (far past any limit); it is put back after the test.
    const day = new Date().toISOString().slice(0, 10);
    const usage = () =>
      stack.database.db.selectFrom('courier_api_usage').selectAll().where('day', '=', day).execute();
    const before = await usage();
    await stack.database.db
      .updateTable('courier_api_usage')
      .set({ calls: 1_000_000_000 })
      .where('day', '=', day)
      .execute();
    try {
      await stack.worker.client.workflow
        .getHandle(shipmentWorkflowId(shipment.id))
        .terminate('stuck: terminated by ops with the CLI');
      // The last poll is refused for the budget; the order waits on a timer for the next window.
      await eventually(
        async () => (await order.handle.fetchHistory()).events ?? [],
        (events) =>
          events.some(
            (e) =>
              e.activityTaskFailedEventAttributes?.failure?.cause?.applicationFailureInfo?.type ===
                'BudgetExhausted' ||
              e.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type ===
                'BudgetExhausted',
          ) &&
          events.some(
            (e) =>
              e.timerStartedEventAttributes &&
              Number(e.timerStartedEventAttributes.startToFireTimeout?.seconds ?? 0) >= 60,
          ),
        30_000,
      );
      await recordHistory('order-last-poll-waits-for-budget', order.handle);
      // Not settled as lost: no refund, the row still in transit, the order still shipping.
      expect((await paymentRows(order.orderId))[0]).toMatchObject({ status: 'CAPTURED', amount_refunded: 0 });
      expect((await shipments(order.orderId))[0]).toMatchObject({ status: 'IN_TRANSIT' });
      expect(await orderRow(order.orderId)).toMatchObject({ status: 'SHIPPED' });
    } finally {
      for (const row of before) {
        await stack.database.db
          .updateTable('courier_api_usage')
          .set({ calls: row.calls })
          .where('courier', '=', row.courier)
          .where('day', '=', day)
          .execute();
      }
    }
  });

  it('cancels the booking of a parcel that expired uncollected, beside one that was delivered', async () => {
    const { orderId, handle, total, sku, secondSku } = await orderInStock({
      scenario: 'delivered',
      second: { quantity: 2, scenario: 'never_picked_up' },
      policy: fastPolicy({ expireAfterNoScanMs: 3_000 }),
    });
    const result = await handle.result();
    expect(result.status).toBe('DELIVERED');
    const rows = await shipments(orderId);
    expect(rows.map((r) => r.status)).toEqual(['DELIVERED', 'EXPIRED']);
    // The courier would still come for the mug: its booking must be gone.
    const expired = rows.find((r) => r.id === orderShipmentId(orderId, 2))!;
    expect(stack.couriers.backend.inspect(expired.tracking_number)?.parcel.cancelled).toBe(true);
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ amount_captured: total, amount_refunded: 3_000 });
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('a cancel pre-empts a booking that is retrying through a courier outage', async () => {
    stack.couriers.backend.faults.set({ kind: 'error', rate: 1, format: 'native' });
    const booked = courierCalls('book');
    // Without pre-emption the booking would retry for ten minutes before the cancel ran.
    const order = await orderInStock({ scenario: 'never_picked_up', bookingRetryWindowMs: 10 * 60_000 });
    await booked.atLeast(2);
    const cancel = await order.handle.startUpdate(cancelOrderUpdate, {
      args: [SHOPPER_CANCEL],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // The courier comes back; the compensation finds the booking the lost answers made and cancels it.
    await new Promise((r) => setTimeout(r, 2_000));
    stack.couriers.backend.faults.clear();
    expect((await cancel.result()).status).toBe('CANCELLED');
    await order.handle.result();
    await recordHistory('order-cancel-preempts-booking', order.handle);
    expect(await orderRow(order.orderId)).toMatchObject({ status: 'CANCELLED' });
    await expectSettled(order, 'VOIDED', 5);
    const parcel = stack.couriers.backend
      .list()
      .find((p) => p.reference === orderShipmentId(order.orderId, 1));
    expect(parcel?.cancelled ?? true).toBe(true);
  });

  it('a shop endpoint that refuses notifications (4xx) does not hold up the order, and the refusal is recorded', async () => {
    shopStatus = 410;
    const order = await orderInStock({ scenario: 'delivered' });
    const result = await order.handle.result();
    expect(result.status).toBe('DELIVERED');
    const [payment] = await paymentRows(order.orderId);
    expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: order.total });
    const rows = await stack.database.db
      .selectFrom('notifications')
      .select(['kind', 'status', 'attempts', 'last_error'])
      .where('order_id', '=', order.orderId)
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { kind: 'confirmed', status: 'FAILED', attempts: 1, last_error: 'notification webhook answered 410' },
      { kind: 'shipped', status: 'FAILED', attempts: 1, last_error: 'notification webhook answered 410' },
      { kind: 'delivered', status: 'FAILED', attempts: 1, last_error: 'notification webhook answered 410' },
    ]);
  });
});
