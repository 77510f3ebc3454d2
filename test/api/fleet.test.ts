/**
 * The shop's own fleet through the HTTP API on the real stack (Postgres, Temporal, a real
 * worker and the payment simulator): orders from the warehouse the fleet serves are booked
 * into the dispatch queue, ops put them on a driver's run, the driver reports through the
 * driver API and the order saga follows as with any courier. A driver's day ends DELIVERED
 * and captured once; a cancel before pickup ends CANCELLED with nothing captured; the driver
 * API's refusals; the silent-run alarm. Every test ends with the money ledger checked.
 */
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { checkLedger } from '../../devstack/ledger';
import { WorkflowNotFoundError } from '@temporalio/client';
import { CourierCode } from '../../src/couriers/types';
import { bookFleetParcel, closeRun, recordReport } from '../../src/read-model/fleet';
import { stockReconciliation } from '../../src/read-model/stock-checks';
import { orderWorkflowId, shipmentStateQuery, shipmentWorkflowId } from '../../src/workflows/contract';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { ADDRESS } from '../support/shopper';
import { useStack } from '../support/stack';
import { fastPolicy, refreshNowWithStart, uniqueId } from '../support/temporal';

jest.setTimeout(120_000);

/** The silent-run alarm's threshold here: short, so the alarm test waits seconds. */
const SILENT_AFTER_MS = 3_000;

describe('own fleet', () => {
  const placed: string[] = [];
  const stack = useStack({
    worker: {},
    api: {
      env: {
        // The shop delivers what ships from its own depot itself.
        WAYBILL_COURIER_BY_WAREHOUSE: 'depot:fleet',
        WAYBILL_FLEET_SILENT_RUN_AFTER: `${SILENT_AFTER_MS}ms`,
      },
    },
    async afterEachTest() {
      expect(await stockReconciliation(stack.database.db)).toEqual([]);
      const ledger = await checkLedger({
        db: stack.database.db,
        payments: stack.payments,
        orderIds: placed.splice(0),
      });
      expect(ledger.violations).toEqual([]);
      expect(ledger.unsettled).toEqual([]);
    },
  });
  const db = () => stack.database.db;

  const ops = () => stack.api.staff('ops', 'olga');
  const call = (request: InjectOptions, headers: Record<string, string> = ops()) =>
    stack.api.app.inject({ ...request, headers: { ...headers, ...request.headers } });
  const post = (url: string, payload: object, headers?: Record<string, string>) =>
    call({ method: 'POST', url, payload }, headers);

  /** A vehicle, a driver with a token, and the driver's open run. */
  async function driverOnRun(name = 'Ravi') {
    const vehicle = await post('/v1/admin/fleet/vehicles', {
      registration: `W${randomUUID().slice(0, 6).toUpperCase()}`,
      label: 'Van',
    });
    expect(vehicle.statusCode).toBe(201);
    const driver = await post('/v1/admin/fleet/drivers', { name, phone: '+60 12 345 6789' });
    expect(driver.statusCode).toBe(201);
    const { driverId } = driver.json();
    const issued = await post(`/v1/admin/fleet/drivers/${driverId}/token`, {}, stack.api.admin());
    expect(issued.statusCode).toBe(201);
    const run = await post('/v1/admin/fleet/runs', { driverId, vehicleId: vehicle.json().vehicleId });
    expect(run.statusCode).toBe(201);
    const { runId } = run.json();
    stack.started(stack.worker.client.workflow.getHandle(`fleet-run-${runId}`));
    return { driverId, runId, token: issued.json().token as string, vehicleId: vehicle.json().vehicleId };
  }

  /** An order shipped from the depot, through the API; answers once its parcel is booked with the fleet. */
  async function fleetOrder(customerId = 'cus_fleet') {
    const sku = uniqueId('KETTLE');
    await db()
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, unit_amount: 4_990, location: 'depot', currency: 'MYR' })
      .execute();
    const res = await post(
      '/v1/orders',
      {
        email: 'aisyah@example.com',
        shippingAddress: ADDRESS,
        lines: [{ sku, quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
      { ...stack.api.customer(customerId), 'idempotency-key': randomUUID() },
    );
    expect(res.statusCode).toBe(202);
    const orderId = res.json().orderId as string;
    placed.push(orderId);
    stack.started(stack.worker.client.workflow.getHandle(orderWorkflowId(orderId)));
    const [shipment] = await eventually(
      () => db().selectFrom('shipments').selectAll().where('order_id', '=', orderId).execute(),
      (rows) => rows.length === 1 && rows[0]!.tracking_number !== null,
    );
    expect(shipment!.courier).toBe('fleet');
    expect(shipment!.tracking_number).toMatch(/^FL\d{12}$/);
    await orderStatus(orderId, (s) => s === 'CONFIRMED');
    return { orderId, sku, shipmentId: shipment!.id, trackingNumber: shipment!.tracking_number };
  }

  const orderStatus = (orderId: string, accept: (status: string) => boolean) =>
    eventually(
      async () =>
        (await db().selectFrom('orders').select('status').where('id', '=', orderId).executeTakeFirst())
          ?.status ?? 'none',
      accept,
      60_000,
    );
  const shipmentRow = (id: string) =>
    db().selectFrom('shipments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const payments = (orderId: string) =>
    db().selectFrom('payments').selectAll().where('order_id', '=', orderId).execute();
  const fleetParcel = (trackingNumber: string) =>
    db()
      .selectFrom('fleet_parcels')
      .selectAll()
      .where('tracking_number', '=', trackingNumber)
      .executeTakeFirstOrThrow();

  const driverHeaders = (token: string) => ({ 'x-driver-token': token });
  const report = (token: string, body: Record<string, unknown>) =>
    post('/v1/driver/reports', { reportId: uniqueId('rep'), ...body }, driverHeaders(token));
  const assign = (runId: string, trackingNumbers: string[]) =>
    post(`/v1/admin/fleet/runs/${runId}/parcels`, { trackingNumbers });

  it("a driver's day: queued, put on the run, picked up (captured), a failed attempt, delivered; one capture", async () => {
    const { runId, token } = await driverOnRun();
    const order = await fleetOrder();

    // Booked = in the dispatch queue: no run was needed for the booking.
    const queue = await call({ url: '/v1/admin/fleet/queue' });
    expect(queue.json().parcels.map((p: { trackingNumber: string }) => p.trackingNumber)).toContain(
      order.trackingNumber,
    );
    const assigned = await assign(runId, [order.trackingNumber]);
    expect(assigned.json().results).toEqual([{ trackingNumber: order.trackingNumber, result: 'assigned' }]);

    const myRun = await call({ url: '/v1/driver/run' }, driverHeaders(token));
    expect(myRun.statusCode).toBe(200);
    expect(myRun.json().run.runId).toBe(runId);
    expect(myRun.json().parcelList).toEqual([
      expect.objectContaining({
        trackingNumber: order.trackingNumber,
        status: 'INFO_RECEIVED',
        recipient: expect.objectContaining({ name: ADDRESS.name, line1: ADDRESS.line1 }),
      }),
    ]);

    // Picked up: the order captures, as at any courier's pickup.
    const pickup = { reportId: uniqueId('rep'), trackingNumber: order.trackingNumber, kind: 'PICKED_UP' };
    const picked = await post('/v1/driver/reports', pickup, driverHeaders(token));
    expect(picked.json()).toEqual({
      result: 'accepted',
      reportId: pickup.reportId,
      trackingNumber: order.trackingNumber,
      status: 'IN_TRANSIT',
    });
    await orderStatus(order.orderId, (s) => s === 'SHIPPED');
    await eventually(
      () => payments(order.orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    // A retried report changes nothing.
    const retried = await post('/v1/driver/reports', pickup, driverHeaders(token));
    expect(retried.json()).toEqual({ ...picked.json(), result: 'duplicate' });

    // The parcel's workflow never asks a courier: it waits for the driver. The report reaches
    // it as a signal, so its state is read once it has taken it.
    const workflowId = shipmentWorkflowId(order.shipmentId);
    const snapshot = await eventually(
      () => stack.worker.client.workflow.getHandle(workflowId).query(shipmentStateQuery),
      (state) => state.status !== 'PENDING',
    );
    expect({ polls: snapshot.polls, nextPollAt: snapshot.nextPollAt, status: snapshot.status }).toEqual({
      polls: 0,
      nextPollAt: null,
      status: 'IN_TRANSIT',
    });

    expect(
      (await report(token, { trackingNumber: order.trackingNumber, kind: 'OUT_FOR_DELIVERY' })).statusCode,
    ).toBe(200);
    const failed = await report(token, {
      trackingNumber: order.trackingNumber,
      kind: 'FAILED_ATTEMPT',
      reason: 'RECIPIENT_ABSENT',
      note: 'left a card',
    });
    expect(failed.json().status).toBe('ATTEMPT_FAIL');
    await eventually(
      () => shipmentRow(order.shipmentId),
      (row) => row.status === 'ATTEMPT_FAIL' && row.sub_status === 'RECIPIENT_ABSENT',
    );
    await report(token, { trackingNumber: order.trackingNumber, kind: 'OUT_FOR_DELIVERY' });
    const delivered = await report(token, {
      trackingNumber: order.trackingNumber,
      kind: 'DELIVERED',
      proofRef: 'photo/pod-123',
    });
    expect(delivered.json().status).toBe('DELIVERED');

    expect(await orderStatus(order.orderId, (s) => s === 'DELIVERED')).toBe('DELIVERED');
    const [payment] = await payments(order.orderId);
    expect({ status: payment!.status, captured: payment!.amount_captured }).toEqual({
      status: 'CAPTURED',
      captured: 4_990,
    });
    const events = await db()
      .selectFrom('tracking_events')
      .select(['status', 'sub_status', 'source'])
      .where('shipment_id', '=', order.shipmentId)
      .orderBy('occurred_at')
      .execute();
    expect(events.map((e) => [e.status, e.sub_status])).toEqual([
      ['IN_TRANSIT', 'PICKED_UP'],
      ['OUT_FOR_DELIVERY', null],
      ['ATTEMPT_FAIL', 'RECIPIENT_ABSENT'],
      ['OUT_FOR_DELIVERY', null],
      ['DELIVERED', null],
    ]);
    expect(new Set(events.map((e) => e.source))).toEqual(new Set(['push']));
    expect(await fleetParcel(order.trackingNumber)).toMatchObject({
      status: 'DELIVERED',
      proof_ref: 'photo/pod-123',
    });

    // The day is over: the run closes (nothing left in the van).
    const closed = await post(`/v1/admin/fleet/runs/${runId}/close`, {});
    expect(closed.json()).toMatchObject({ status: 'CLOSED', parcels: 1, inHand: 0 });
    const shipmentHandle = stack.worker.client.workflow.getHandle(shipmentWorkflowId(order.shipmentId));
    expect((await shipmentHandle.result()).status).toBe('DELIVERED');
    await recordHistory('shipment-fleet-delivered', shipmentHandle);
  });

  it('a cancel before the driver picks up: CANCELLED, nothing captured, the parcel off the run', async () => {
    const { runId, token } = await driverOnRun('Mei');
    const order = await fleetOrder('cus_changed_mind');
    await assign(runId, [order.trackingNumber]);

    const cancel = await post(
      `/v1/orders/${order.orderId}/cancel`,
      { reason: 'changed my mind' },
      stack.api.customer('cus_changed_mind'),
    );
    expect([200, 202]).toContain(cancel.statusCode);
    expect(await orderStatus(order.orderId, (s) => s === 'CANCELLED')).toBe('CANCELLED');

    const [payment] = await payments(order.orderId);
    expect({ status: payment!.status, captured: payment!.amount_captured }).toEqual({
      status: 'VOIDED',
      captured: 0,
    });
    const item = await db()
      .selectFrom('inventory_items')
      .selectAll()
      .where('sku', '=', order.sku)
      .executeTakeFirstOrThrow();
    expect({ onHand: item.on_hand, reserved: item.reserved }).toEqual({ onHand: 5, reserved: 0 });
    // The booking is not live: cancelled, off the run, gone from the driver's list.
    expect(await fleetParcel(order.trackingNumber)).toMatchObject({ status: 'CANCELLED', run_id: null });
    expect((await shipmentRow(order.shipmentId)).status).toBe('CANCELLED');
    const myRun = await call({ url: '/v1/driver/run' }, driverHeaders(token));
    expect(myRun.json().parcelList).toEqual([]);
    const late = await report(token, { trackingNumber: order.trackingNumber, kind: 'PICKED_UP' });
    expect({ status: late.statusCode, code: late.json().error.code }).toEqual({
      status: 403,
      code: 'NOT_ON_YOUR_RUN',
    });
    // Put back on a run, it is refused: it was cancelled.
    expect((await assign(runId, [order.trackingNumber])).json().results[0].result).toBe('cancelled');
  });

  it('the driver API refuses what it must, each with a clear 4xx', async () => {
    const ravi = await driverOnRun('Ravi');
    const mei = await driverOnRun('Mei');
    const order = await fleetOrder('cus_refusals');
    await assign(ravi.runId, [order.trackingNumber]);
    const parcel = order.trackingNumber;
    const refused = async (res: Awaited<ReturnType<typeof post>>) => ({
      status: res.statusCode,
      code: res.json().error.code as string,
    });

    // Credentials.
    expect(
      await refused(
        await post('/v1/driver/reports', { reportId: 'r1', trackingNumber: parcel, kind: 'PICKED_UP' }, {}),
      ),
    ).toEqual({
      status: 401,
      code: 'DRIVER_TOKEN_REQUIRED',
    });
    expect(
      await refused(await report('wbd_not-a-token', { trackingNumber: parcel, kind: 'PICKED_UP' })),
    ).toEqual({
      status: 401,
      code: 'INVALID_DRIVER_TOKEN',
    });
    // A staff token is no driver credential.
    expect(
      await refused(
        await post(
          '/v1/driver/reports',
          { reportId: 'r1', trackingNumber: parcel, kind: 'PICKED_UP' },
          ops(),
        ),
      ),
    ).toEqual({ status: 401, code: 'DRIVER_TOKEN_REQUIRED' });

    // Another driver's parcel, an unknown one, a status that does not follow.
    expect(await refused(await report(mei.token, { trackingNumber: parcel, kind: 'PICKED_UP' }))).toEqual({
      status: 403,
      code: 'NOT_ON_YOUR_RUN',
    });
    expect(
      await refused(await report(ravi.token, { trackingNumber: 'FL000000000000', kind: 'PICKED_UP' })),
    ).toEqual({
      status: 404,
      code: 'PARCEL_NOT_FOUND',
    });
    expect(
      await refused(await report(ravi.token, { trackingNumber: parcel, kind: 'OUT_FOR_DELIVERY' })),
    ).toEqual({
      status: 409,
      code: 'REPORT_NOT_ALLOWED',
    });
    // What a report must carry.
    expect(await refused(await report(ravi.token, { trackingNumber: parcel, kind: 'DELIVERED' }))).toEqual({
      status: 400,
      code: 'PROOF_REQUIRED',
    });
    expect(
      await refused(await report(ravi.token, { trackingNumber: parcel, kind: 'FAILED_ATTEMPT' })),
    ).toEqual({
      status: 400,
      code: 'REASON_REQUIRED',
    });
    expect(await refused(await report(ravi.token, { trackingNumber: parcel, kind: 'LOST' }))).toEqual({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(
      await refused(
        await report(ravi.token, { trackingNumber: parcel, kind: 'PICKED_UP', occurredAt: future }),
      ),
    ).toEqual({
      status: 400,
      code: 'INVALID_REPORT',
    });
    // RFC 3339 times that are no instant a JS Date or Postgres holds: a leap second, year 0.
    const noInstants = ['2026-06-30T23:59:60Z', '0000-01-01T00:00:00Z'];
    const answers = [];
    for (const occurredAt of noInstants) {
      const res = await report(ravi.token, { trackingNumber: parcel, kind: 'PICKED_UP', occurredAt });
      answers.push({ occurredAt, status: res.statusCode, error: res.json().error });
    }
    expect(answers).toEqual(
      noInstants.map((occurredAt) => ({
        occurredAt,
        status: 400,
        error: { code: 'VALIDATION_FAILED', message: 'body.occurredAt must match format "date-time"' },
      })),
    );
    // A report id is one report.
    const first = await report(ravi.token, { reportId: 'ravi-1', trackingNumber: parcel, kind: 'PICKED_UP' });
    expect(first.statusCode).toBe(200);
    expect(
      await refused(
        await report(ravi.token, { reportId: 'ravi-1', trackingNumber: parcel, kind: 'OUT_FOR_DELIVERY' }),
      ),
    ).toEqual({ status: 409, code: 'REPORT_ID_REUSED' });

    // Dispatch's refusals: a driver has one open run; a picked-up parcel stays on its run; a
    // run with a parcel in the van does not close; only an admin issues tokens.
    expect(
      await refused(
        await post('/v1/admin/fleet/runs', { driverId: ravi.driverId, vehicleId: ravi.vehicleId }),
      ),
    ).toEqual({
      status: 409,
      code: 'DRIVER_HAS_OPEN_RUN',
    });
    expect((await assign(mei.runId, [parcel])).json().results[0].result).toBe('picked_up');
    expect(await refused(await post(`/v1/admin/fleet/runs/${ravi.runId}/close`, {}))).toEqual({
      status: 409,
      code: 'PARCELS_IN_HAND',
    });
    expect(await refused(await post(`/v1/admin/fleet/drivers/${ravi.driverId}/token`, {}))).toEqual({
      status: 403,
      code: 'FORBIDDEN',
    });
    expect(await refused(await call({ url: '/v1/admin/fleet/runs' }, stack.api.staff('support')))).toEqual({
      status: 403,
      code: 'FORBIDDEN',
    });

    // Revoked: the token stops working at once.
    const revoked = await call(
      { method: 'DELETE', url: `/v1/admin/fleet/drivers/${ravi.driverId}/token` },
      stack.api.admin(),
    );
    expect(revoked.json()).toEqual({ driverId: ravi.driverId, revoked: true });
    expect(
      await refused(
        await report(ravi.token, { trackingNumber: parcel, kind: 'DELIVERED', proofRef: 'pod-1' }),
      ),
    ).toEqual({ status: 401, code: 'INVALID_DRIVER_TOKEN' });

    // A new token, and the day ends as it should: delivered, so the ledger settles.
    const again = await post(`/v1/admin/fleet/drivers/${ravi.driverId}/token`, {}, stack.api.adminKey());
    expect(
      (await report(again.json().token, { trackingNumber: parcel, kind: 'DELIVERED', proofRef: 'pod-1' }))
        .statusCode,
    ).toBe(200);
    await orderStatus(order.orderId, (s) => s === 'DELIVERED');
    const audit = await db()
      .selectFrom('audit_log')
      .select(['action', 'actor'])
      .where('subject_id', '=', ravi.driverId)
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'fleet.driver_token_issued',
      'fleet.driver_token_revoked',
      'fleet.driver_token_issued',
    ]);
  });

  /**
   * A report committed in Postgres whose hand-over to the tracking was lost (the API answered
   * 503, or died between the commit and the signal): recorded here as the route records it,
   * without any signal.
   */
  const recordedOnly = (
    who: { driverId: string; runId: string },
    order: { shipmentId: string },
    reportId: string,
    kind: 'PICKED_UP' | 'OUT_FOR_DELIVERY',
  ) =>
    db()
      .transaction()
      .execute((trx) =>
        recordReport(trx, {
          driverId: who.driverId,
          reportId,
          runId: who.runId,
          shipmentId: order.shipmentId,
          kind,
          occurredAt: new Date().toISOString(),
          proofRef: null,
          reason: null,
          note: null,
          status: kind === 'PICKED_UP' ? 'IN_TRANSIT' : 'OUT_FOR_DELIVERY',
        }),
      );

  it('a report for a parcel whose tracking has finished is refused: delivered, or settled as lost by its order', async () => {
    const { runId, token } = await driverOnRun('Nur');
    const lost = await fleetOrder('cus_lost_in_van');
    const done = await fleetOrder('cus_done');
    await assign(runId, [lost.trackingNumber, done.trackingNumber]);
    for (const parcel of [lost, done]) {
      expect(
        (await report(token, { trackingNumber: parcel.trackingNumber, kind: 'PICKED_UP' })).statusCode,
      ).toBe(200);
      await orderStatus(parcel.orderId, (s) => s === 'SHIPPED');
    }
    const delivered = { trackingNumber: done.trackingNumber, kind: 'DELIVERED', proofRef: 'photo/pod-9' };
    expect(
      (await report(token, { trackingNumber: done.trackingNumber, kind: 'OUT_FOR_DELIVERY' })).statusCode,
    ).toBe(200);
    expect((await report(token, delivered)).statusCode).toBe(200);
    await orderStatus(done.orderId, (s) => s === 'DELIVERED');

    // The lost parcel's tracking dies and nobody restarts it: once its restart window is over
    // (8 h), its order refunds it and settles its row, as this activity does.
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(lost.shipmentId))
      .terminate('stuck: terminated by ops with the CLI');
    await stack.worker.activities.settleLostParcel({
      orderId: lost.orderId,
      shipmentId: lost.shipmentId,
      reason: 'Workflow execution terminated',
    });

    for (const [parcel, status] of [
      [done, 'DELIVERED'],
      [lost, 'EXPIRED'],
    ] as const) {
      const late = await report(token, {
        trackingNumber: parcel.trackingNumber,
        kind: 'DELIVERED',
        proofRef: 'photo/pod-10',
      });
      expect({ status: late.statusCode, code: late.json().error.code }).toEqual({
        status: 409,
        code: 'TRACKING_FINISHED',
      });
      expect(late.json().error.message).toContain(`(${status}): tell dispatch`);
    }
    // Nothing recorded for the refused reports: the lost parcel's log ends at its pickup.
    const reports = await db()
      .selectFrom('fleet_reports')
      .select('kind')
      .where('shipment_id', '=', lost.shipmentId)
      .execute();
    expect(reports.map((r) => r.kind)).toEqual(['PICKED_UP']);
    // Its order is still inside the window here: the ledger is checked for the delivered one.
    placed.splice(placed.indexOf(lost.orderId), 1);
  });

  it('a report recorded but never handed to the tracking gets there: by its retry, or with the next report; back-dated reports are refused', async () => {
    const ravi = await driverOnRun('Ravi');
    const order = await fleetOrder('cus_lost_signal');
    await assign(ravi.runId, [order.trackingNumber]);
    const handle = stack.worker.client.workflow.getHandle(shipmentWorkflowId(order.shipmentId));
    const tracking = () => handle.query(shipmentStateQuery);
    // Once the run has read the driver's log it starts from and waits (a timer: its expiry):
    // a report recorded before that read would reach it through the read.
    // (The order starts the run just after CONFIRMED: until then there is no history to read.)
    await eventually(
      async () => (await handle.fetchHistory().catch(() => ({ events: [] }))).events ?? [],
      (events) => events.some((e) => e.timerStartedEventAttributes),
    );
    const before = (await tracking()).status;

    // The pickup is in Postgres only: the tracking has not heard of it, nothing is captured.
    expect(await recordedOnly(ravi, order, 'lost-pickup', 'PICKED_UP')).toBe(true);
    expect((await tracking()).status).toBe(before);
    expect((await payments(order.orderId))[0]!.status).toBe('AUTHORISED');
    // The driver app retries it: answered duplicate, and this time it reaches the tracking.
    const retried = await report(ravi.token, {
      reportId: 'lost-pickup',
      trackingNumber: order.trackingNumber,
      kind: 'PICKED_UP',
    });
    expect(retried.json()).toMatchObject({ result: 'duplicate', status: 'IN_TRANSIT' });
    await orderStatus(order.orderId, (s) => s === 'SHIPPED');
    await eventually(
      () => payments(order.orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );

    // Out for delivery, lost the same way and never retried: the next report carries it.
    await recordedOnly(ravi, order, 'lost-ofd', 'OUT_FOR_DELIVERY');
    const latest = await db()
      .selectFrom('fleet_reports')
      .select((eb) => eb.fn.max('occurred_at').as('at'))
      .where('shipment_id', '=', order.shipmentId)
      .executeTakeFirstOrThrow();
    // Dated before what the parcel already has: refused, nothing changes.
    const backDated = await report(ravi.token, {
      trackingNumber: order.trackingNumber,
      kind: 'DELIVERED',
      proofRef: 'pod-early',
      occurredAt: new Date(new Date(latest.at!).getTime() - 60_000).toISOString(),
    });
    expect({ status: backDated.statusCode, code: backDated.json().error.code }).toEqual({
      status: 409,
      code: 'REPORT_OUT_OF_ORDER',
    });
    expect((await fleetParcel(order.trackingNumber)).status).toBe('OUT_FOR_DELIVERY');
    const delivered = await report(ravi.token, {
      trackingNumber: order.trackingNumber,
      kind: 'DELIVERED',
      proofRef: 'pod-77',
    });
    expect(delivered.json()).toMatchObject({ result: 'accepted', status: 'DELIVERED' });
    await orderStatus(order.orderId, (s) => s === 'DELIVERED');
    // Every report once in the tracking, the lost one included, however often it was handed over.
    const events = await db()
      .selectFrom('tracking_events')
      .select(['status'])
      .where('shipment_id', '=', order.shipmentId)
      .orderBy('occurred_at')
      .execute();
    expect(events.map((e) => e.status)).toEqual(['IN_TRANSIT', 'OUT_FOR_DELIVERY', 'DELIVERED']);
    const [payment] = await payments(order.orderId);
    expect({ status: payment!.status, captured: payment!.amount_captured }).toEqual({
      status: 'CAPTURED',
      captured: 4_990,
    });
    expect((await post(`/v1/admin/fleet/runs/${ravi.runId}/close`, {})).json().status).toBe('CLOSED');
  });

  it("a pickup dated before the parcel's tracking started still moves it (no scan was known)", async () => {
    const { runId, token } = await driverOnRun();
    const order = await fleetOrder('cus_slow_clock');
    await assign(runId, [order.trackingNumber]);
    const tracking = () =>
      stack.worker.client.workflow.getHandle(shipmentWorkflowId(order.shipmentId)).query(shipmentStateQuery);
    await eventually(
      () => tracking().catch(() => null),
      (state) => state !== null,
    );
    // The phone's clock runs a minute behind (within the allowed skew): its pickup is dated
    // before the tracking began, yet no scan came before it, so it is news, not a late scan.
    const picked = await report(token, {
      trackingNumber: order.trackingNumber,
      kind: 'PICKED_UP',
      occurredAt: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(picked.json()).toMatchObject({ result: 'accepted', status: 'IN_TRANSIT' });
    await orderStatus(order.orderId, (s) => s === 'SHIPPED');
    expect((await eventually(tracking, (state) => state.status !== 'PENDING')).status).toBe('IN_TRANSIT');
    await eventually(
      () => shipmentRow(order.shipmentId),
      (row) => row.status === 'IN_TRANSIT',
    );
    const delivered = await report(token, {
      trackingNumber: order.trackingNumber,
      kind: 'DELIVERED',
      proofRef: 'pod-slow-clock',
    });
    expect(delivered.json()).toMatchObject({ result: 'accepted', status: 'DELIVERED' });
    await orderStatus(order.orderId, (s) => s === 'DELIVERED');
    const [payment] = await payments(order.orderId);
    expect({ status: payment!.status, captured: payment!.amount_captured }).toEqual({
      status: 'CAPTURED',
      captured: 4_990,
    });
    expect((await post(`/v1/admin/fleet/runs/${runId}/close`, {})).json().status).toBe('CLOSED');
  });

  it("a report made before the parcel's tracking started reaches it when it starts", async () => {
    const { runId, token } = await driverOnRun();
    // A booked fleet parcel whose tracking has not started (the order starts it just after
    // booking; a worker backlog or outage can make that minutes).
    const shipmentId = uniqueId('shp');
    const trackingNumber = await bookFleetParcel(db(), {
      shipmentId,
      trackingNumber: `FL${String(Date.now()).slice(-12)}`,
      recipient: {
        name: ADDRESS.name,
        line1: ADDRESS.line1,
        city: ADDRESS.city,
        postcode: ADDRESS.postcode,
        phone: null,
      },
      description: 'Kettle',
    });
    await db()
      .insertInto('shipments')
      .values({ id: shipmentId, order_id: null, courier: 'fleet', tracking_number: trackingNumber })
      .execute();
    await assign(runId, [trackingNumber]);
    // Recorded, and handed to no workflow: there is none yet.
    const picked = await report(token, { trackingNumber, kind: 'PICKED_UP' });
    expect(picked.json()).toMatchObject({ result: 'accepted', status: 'IN_TRANSIT' });
    await expect(
      stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)).describe(),
    ).rejects.toThrow(WorkflowNotFoundError);

    // Started and asked for its state in one call: the answer comes once the run has taken the
    // driver's log it starts from, and has it in Postgres.
    const started = await refreshNowWithStart(
      stack.worker,
      { shipmentId, trackingNumber, courier: CourierCode.FLEET, policy: fastPolicy() },
      'ops:olga',
    );
    const { answer } = started;
    const handle = stack.started(started.handle);
    expect({ source: answer.source, status: answer.snapshot.status }).toEqual({
      source: 'live',
      status: 'IN_TRANSIT',
    });
    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'IN_TRANSIT',
    );
    expect(row.picked_up_at).toBeInstanceOf(Date);
    const events = await db()
      .selectFrom('tracking_events')
      .select(['status', 'sub_status', 'source'])
      .where('shipment_id', '=', shipmentId)
      .execute();
    expect(events).toEqual([{ status: 'IN_TRANSIT', sub_status: 'PICKED_UP', source: 'push' }]);
    // From then on reports reach it as they are made.
    const delivered = await report(token, { trackingNumber, kind: 'DELIVERED', proofRef: 'pod-early-bird' });
    expect(delivered.json()).toMatchObject({ result: 'accepted', status: 'DELIVERED' });
    expect((await handle.result()).status).toBe('DELIVERED');
    expect((await shipmentRow(shipmentId)).status).toBe('DELIVERED');
    await recordHistory('shipment-fleet-report-before-start', handle);
  });

  it('the run watch finds in Postgres what its lost signals did not say: a report ends a silence, a close ends the watch', async () => {
    const siti = await driverOnRun('Siti');
    const order = await fleetOrder('cus_quiet_signals');
    await assign(siti.runId, [order.trackingNumber]);
    const run = async () => (await call({ url: `/v1/admin/fleet/runs/${siti.runId}` })).json().run;
    await eventually(run, (r) => r.silentAlarms === 1, 30_000);

    // The pickup reaches Postgres and, by its retry, the tracking; the watch is never told.
    await recordedOnly(siti, order, 'quiet-pickup', 'PICKED_UP');
    expect((await run()).silentSince).toBeNull();
    await report(siti.token, {
      reportId: 'quiet-pickup',
      trackingNumber: order.trackingNumber,
      kind: 'PICKED_UP',
    });
    // The watch looks again on its own, sees the report, and raises the next silence.
    const again = await eventually(run, (r) => r.silentAlarms === 2, 30_000);
    expect(again.silentSince).not.toBeNull();
    await report(siti.token, { trackingNumber: order.trackingNumber, kind: 'DELIVERED', proofRef: 'pod-3' });
    await orderStatus(order.orderId, (s) => s === 'DELIVERED');

    // A second parcel, never picked up: the run goes silent, then is closed without the
    // watch being told (as if the close signal were lost). The watch ends by itself.
    const second = await fleetOrder('cus_quiet_signals');
    await assign(siti.runId, [second.trackingNumber]);
    await eventually(run, (r) => r.silentAlarms === 3, 30_000);
    expect(await closeRun(db(), siti.runId)).toBe('closed');
    const watch = stack.worker.client.workflow.getHandle(`fleet-run-${siti.runId}`);
    expect(await watch.result()).toEqual({ alarms: 3 });
    // The parcel went back to the queue; the shop cancels that order, nothing is captured.
    const cancel = await post(
      `/v1/orders/${second.orderId}/cancel`,
      { reason: 'no driver today' },
      stack.api.customer('cus_quiet_signals'),
    );
    expect([200, 202]).toContain(cancel.statusCode);
    await orderStatus(second.orderId, (s) => s === 'CANCELLED');
    expect((await payments(second.orderId))[0]).toMatchObject({ status: 'VOIDED', amount_captured: 0 });
  });

  it('a run that goes silent raises the alarm once (run, audit, event); a report clears it and the timer starts again', async () => {
    const { runId, token, driverId } = await driverOnRun('Siti');
    const order = await fleetOrder('cus_silent');
    await assign(runId, [order.trackingNumber]);
    const run = async () => (await call({ url: `/v1/admin/fleet/runs/${runId}` })).json().run;
    const silentRuns = async () =>
      (await call({ url: '/v1/admin/fleet/runs?silent=true' }))
        .json()
        .runs.map((r: { runId: string }) => r.runId);

    const silent = await eventually(run, (r) => r.silentSince !== null, 30_000);
    expect(silent.silentAlarms).toBe(1);
    expect(await silentRuns()).toContain(runId);
    const alarms = () =>
      db()
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'fleet.run_silent')
        .where('subject_id', '=', runId)
        .execute();
    const events = () =>
      db()
        .selectFrom('event_outbox')
        .selectAll()
        .where('type', '=', 'fleet.run_silent')
        .where('stream', '=', `fleet_run:${runId}`)
        .execute();
    expect((await alarms()).length).toBe(1);
    const [event] = await events();
    expect(event!.data).toMatchObject({ runId, driverId, parcelsInHand: 1, alarm: 1 });

    // Still silent after twice the threshold: no second alarm for the same silence.
    await new Promise((resolve) => setTimeout(resolve, 2 * SILENT_AFTER_MS));
    expect((await run()).silentAlarms).toBe(1);

    // The driver reports: the alarm is over, and the watch starts timing again.
    expect(
      (await report(token, { trackingNumber: order.trackingNumber, kind: 'PICKED_UP' })).statusCode,
    ).toBe(200);
    const heard = await run();
    expect({ silentSince: heard.silentSince, lastReport: heard.lastReportAt !== null }).toEqual({
      silentSince: null,
      lastReport: true,
    });
    expect(await silentRuns()).not.toContain(runId);
    const second = await eventually(run, (r) => r.silentAlarms === 2, 30_000);
    expect(second.silentSince).not.toBeNull();
    expect((await events()).length).toBe(2);

    // Delivered: nothing left to deliver, so the run is never silent again.
    await report(token, { trackingNumber: order.trackingNumber, kind: 'DELIVERED', proofRef: 'pod-9' });
    await orderStatus(order.orderId, (s) => s === 'DELIVERED');
    await new Promise((resolve) => setTimeout(resolve, 2 * SILENT_AFTER_MS));
    expect(await run()).toMatchObject({ silentSince: null, silentAlarms: 2, inHand: 0 });
    // Closed, the watch ends, having raised two alarms.
    expect((await post(`/v1/admin/fleet/runs/${runId}/close`, {})).json().status).toBe('CLOSED');
    const watch = stack.worker.client.workflow.getHandle(`fleet-run-${runId}`);
    expect(await watch.result()).toEqual({ alarms: 2 });
    await recordHistory('fleet-run-silent-twice', watch);
  });
});
