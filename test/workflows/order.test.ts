/**
 * The order saga end to end: real Temporal dev server, real worker and activities, real
 * Postgres, the courier simulator (native format) and the payment simulator over HTTP.
 * Every test checks the read model, the payments and the stock afterwards.
 */
import { WorkflowUpdateStage } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { sql } from 'kysely';
import {
  cancelOrderUpdate,
  courierEventsSignal,
  orderShipmentId,
  orderStateQuery,
  refreshSignal,
  shipmentWorkflowId,
  type OrderSnapshot,
} from '../../src/workflows/contract';
import { reserveStock as reserveStockRows } from '../../src/read-model/inventory';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { pushedEvent } from '../support/shipments';
import {
  ADDRESS,
  DECLINED_PAYMENT,
  SHOPPER_CANCEL,
  expectPickedUpRefusal,
  useSagaStack,
} from '../support/saga';
import { fastPolicy, uniqueId } from '../support/temporal';

jest.setTimeout(90_000);

describe('order saga', () => {
  const stack = useSagaStack();
  const {
    orderInStock,
    orderAt,
    parcelAt,
    courierCalls,
    expectSettled,
    collectAtCourier,
    orderRow,
    paymentRows,
    item,
    shipments,
    notifications,
  } = stack;

  const auditActions = (orderId: string) =>
    stack.database.db
      .selectFrom('audit_log')
      .select(['action', 'actor'])
      .where('subject_id', '=', orderId)
      .orderBy('id')
      .execute();

  /**
   * A CONFIRMED order whose parcel the courier has collected, which the order does not know
   * yet: its tracking polls slowly before pickup.
   */
  async function orderCollectedUnseen() {
    const slow = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000, PENDING: 600_000 },
    });
    const order = await orderInStock({ scenario: 'never_picked_up', policy: slow });
    await orderAt(order.orderId, 'CONFIRMED');
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    collectAtCourier(shipment.tracking_number);
    return { order, shipment };
  }

  /**
   * Its parcel polled now (the pickup seen), the order of {@link orderCollectedUnseen} captures
   * and delivers; its history is recorded under `history` for the replay tests.
   */
  async function deliversOncePolled(
    order: Awaited<ReturnType<typeof orderCollectedUnseen>>['order'],
    shipment: { id: string },
    history?: string,
  ) {
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .signal(refreshSignal, { requestedBy: 'test' });
    expect((await order.handle.result()).status).toBe('DELIVERED');
    if (history) await recordHistory(history, order.handle);
    await expectSettled(order, 'CAPTURED', 4);
  }

  /** The order's audit log holds the refusal of a cancellation requested in Temporal, and nothing else. */
  async function expectTemporalCancelRefused(orderId: string) {
    expect(
      await eventually(
        () => auditActions(orderId),
        (rows) => rows.length > 0,
      ),
    ).toEqual([{ action: 'order.cancel_refused', actor: 'ops:temporal' }]);
  }

  /** A CONFIRMED order whose parcel the courier then collects (a delivery, a day in), once it is captured. */
  async function orderCollectedAndCaptured() {
    const order = await orderInStock({ scenario: 'never_picked_up' });
    await orderAt(order.orderId, 'CONFIRMED');
    const [shipment] = await shipments(order.orderId);
    collectAtCourier(shipment!.tracking_number);
    await eventually(
      () => order.handle.query(orderStateQuery),
      (s) => s.captured && s.status !== 'CONFIRMED',
    );
    return order;
  }

  /**
   * An order whose booking fails for good under the courier fault the test set: the saga's
   * five attempts run, then the courier answers again and the compensation cancels the
   * booking those attempts made. Answers the order once it has FAILED with BOOKING_FAILED.
   */
  async function bookingFailsAfterFiveAttempts(opts: { onHand: number }) {
    const booked = courierCalls('book');
    const order = await orderInStock({ ...opts, scenario: 'never_picked_up' });
    await booked.atLeast(5, 60_000);
    stack.couriers.backend.faults.clear();
    const result = await order.handle.result();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'BOOKING_FAILED' });
    const [shipment] = await shipments(order.orderId);
    expect(shipment).toMatchObject({ status: 'CANCELLED', sub_status: 'BOOKING_CANCELLED' });
    expect(stack.couriers.backend.inspect(shipment!.tracking_number)?.parcel.cancelled).toBe(true);
    return order;
  }

  it('delivers an order, capturing the payment exactly once and consuming the stock', async () => {
    const { orderId, handle, total, sku } = await orderInStock({ onHand: 10, quantity: 2 });
    const result: OrderSnapshot = await handle.result();
    await recordHistory('order-delivered', handle);

    expect(result.status).toBe('DELIVERED');
    expect(await orderRow(orderId)).toMatchObject({ status: 'DELIVERED', failure_code: null });
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({
      status: 'CAPTURED',
      amount_authorised: total,
      amount_captured: total,
      amount_refunded: 0,
    });
    expect(stack.payments.state.payment(payment!.provider_ref!)).toMatchObject({ amountCaptured: total });
    expect(await item(sku)).toMatchObject({ on_hand: 8, reserved: 0 });
    const [shipment] = await shipments(orderId);
    expect(shipment).toMatchObject({ id: orderShipmentId(orderId, 1), status: 'DELIVERED' });
    expect(await notifications(orderId)).toEqual(['confirmed', 'shipped', 'delivered']);
  });

  it('fails a declined payment: stock released, nothing booked, FAILED with the reason', async () => {
    const { orderId, handle, sku } = await orderInStock({
      onHand: 10,
      payment: DECLINED_PAYMENT,
      prebook: false,
    });
    const result = await handle.result();

    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'PAYMENT_DECLINED' });
    expect(await orderRow(orderId)).toMatchObject({ status: 'FAILED', failure_code: 'PAYMENT_DECLINED' });
    expect((await orderRow(orderId)).failure_message).toMatch(/declined/);
    expect(await item(sku)).toMatchObject({ on_hand: 10, reserved: 0 });
    expect(await shipments(orderId)).toEqual([]);
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['DECLINED']);
    expect(await notifications(orderId)).toEqual(['failed']);
  });

  it('voids an authorisation whose answer was lost: every authorise timed out, yet nothing stays held on the card', async () => {
    // The provider authorises, but holds each answer back past our 2 s client timeout.
    stack.payments.state.faults.set({ kind: 'timeout', ms: 2_500, calls: 5, operation: 'authorise' });
    const { orderId, handle, sku } = await orderInStock({ onHand: 10, prebook: false });
    const result = await handle.result();
    await recordHistory('order-payment-outcome-lost', handle);

    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'PAYMENT_FAILED' });
    const atProvider = stack.payments.state.paymentsOf(orderId);
    expect(atProvider.length).toBeGreaterThan(0);
    expect(atProvider.map((p) => p.status)).toEqual(atProvider.map(() => 'VOIDED'));
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect(await item(sku)).toMatchObject({ on_hand: 10, reserved: 0 });
    expect(await shipments(orderId)).toEqual([]);
  });

  it('records a decline whose answer was lost: the re-ask finds the card declined, nothing is voided, the decline is on file', async () => {
    // The provider declines, but holds each answer back past our 2 s client timeout.
    stack.payments.state.faults.set({ kind: 'timeout', ms: 2_500, calls: 5, operation: 'authorise' });
    const { orderId, handle, sku } = await orderInStock({
      onHand: 10,
      payment: DECLINED_PAYMENT,
      prebook: false,
    });
    const result = await handle.result();

    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'PAYMENT_FAILED' });
    // A decline holds nothing on the card: the provider keeps no payment for it.
    expect(stack.payments.state.paymentsOf(orderId)).toEqual([]);
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['DECLINED']);
    expect(await item(sku)).toMatchObject({ on_hand: 10, reserved: 0 });
    expect(await shipments(orderId)).toEqual([]);
  });

  it('cancels a booking whose answer was lost: every booking attempt timed out, yet the courier holds nothing', async () => {
    // The courier books, but every answer arrives after our 2 s client timeout.
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 2_500, format: 'native' });
    const order = await bookingFailsAfterFiveAttempts({ onHand: 10 });
    await recordHistory('order-booking-outcome-lost', order.handle);
    await expectSettled(order, 'VOIDED', 10);
  });

  it('fails an order for stock it cannot have, reserving nothing and charging nothing', async () => {
    const { orderId, handle, sku } = await orderInStock({ onHand: 1, quantity: 3, prebook: false });
    expect(await handle.result()).toMatchObject({ status: 'FAILED', failureCode: 'OUT_OF_STOCK' });
    expect(await item(sku)).toMatchObject({ on_hand: 1, reserved: 0 });
    expect(await paymentRows(orderId)).toEqual([]);
  });

  it('sends no confirmation for an order cancelled while its CONFIRMED status was being written', async () => {
    // The booking answers after a second, time enough to lock the order's row before the
    // saga writes CONFIRMED: that write then waits, as it would on a slow or restarting Postgres.
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 1_000, format: 'native' });
    const { orderId, handle, sku } = await orderInStock({ scenario: 'never_picked_up' });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: (pid: number) => void;
    const lockTaken = new Promise<number>((resolve) => (locked = resolve));
    const holder = stack.database.db.transaction().execute(async (trx) => {
      // Key share: the saga's inserts that reference the order (key-share locks too) and the
      // order's tracking view (kept by a trigger that takes a no-key-update lock at the booking's
      // commit) pass; the status write's FOR UPDATE waits.
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid from orders
        where id = ${orderId} for key share`.execute(trx);
      locked(rows[0]!.pid);
      await released;
    });
    let cancel;
    try {
      const holderPid = await lockTaken;
      // The status write (its transaction locks the row first) waits on our lock, and only it:
      // nothing else the saga does before CONFIRMED takes a lock that conflicts with KEY SHARE.
      await eventually(
        async () =>
          (
            await sql<{ query: string }>`select query from pg_stat_activity
              where ${holderPid}::int = any(pg_blocking_pids(pid))`.execute(stack.database.db)
          ).rows,
        (rows) => rows.some((r) => /from "orders".*for update/is.test(r.query)),
        15_000,
      );
      stack.couriers.backend.faults.clear();
      // The write outlasts the workflow task's heartbeat (80 % of its 10 s timeout): the worker
      // completes that task, and the cancel is taken while the write still waits.
      cancel = await handle.startUpdate(cancelOrderUpdate, {
        args: [SHOPPER_CANCEL],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
    } finally {
      stack.couriers.backend.faults.clear();
      release();
      await holder;
    }
    expect((await cancel.result()).status).toBe('CANCELLED');
    await handle.result();
    await recordHistory('order-cancelled-while-confirming', handle);
    // The shopper, who cancelled, is told it is cancelled: not first that it is confirmed.
    expect(await notifications(orderId)).toEqual(['cancelled']);
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('cancels before pickup: booking cancelled, authorisation voided, stock released', async () => {
    const { orderId, handle, sku } = await orderInStock({ scenario: 'never_picked_up' });
    await orderAt(orderId, 'CONFIRMED');

    // Two cancels at once (a double click): both are answered, the compensation runs once.
    const [result, again] = await Promise.all([
      handle.executeUpdate(cancelOrderUpdate, { args: [SHOPPER_CANCEL] }),
      handle.executeUpdate(cancelOrderUpdate, { args: [SHOPPER_CANCEL] }),
    ]);
    expect(result.status).toBe('CANCELLED');
    expect(again.status).toBe('CANCELLED');
    await handle.result();
    await recordHistory('order-cancelled', handle);
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await notifications(orderId)).toEqual(['confirmed', 'cancelled']);
    expect(stack.payments.state.payment((await paymentRows(orderId))[0]!.provider_ref!)).toMatchObject({
      amountCaptured: 0,
    });
  });

  it('a cancellation requested in Temporal (UI, CLI) cancels the order like a cancel: booking cancelled, authorisation voided, stock released', async () => {
    const { orderId, handle, sku } = await orderInStock({ scenario: 'never_picked_up' });
    await orderAt(orderId, 'CONFIRMED');

    await handle.cancel();
    // The workflow carries the cancel out and completes; before, it ended Canceled at once
    // with the card authorised, the stock reserved and the booking live.
    expect(await handle.result()).toMatchObject({ status: 'CANCELLED' });
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    const [shipment] = await shipments(orderId);
    expect(shipment!.status).toBe('CANCELLED');
    expect(stack.couriers.backend.inspect(shipment!.tracking_number)?.parcel.cancelled).toBe(true);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await auditActions(orderId)).toEqual([{ action: 'order.cancel', actor: 'ops:temporal' }]);
  });

  it('a cancellation requested in Temporal after pickup is refused on record and the order goes on to deliver', async () => {
    const { orderId, handle, total } = await orderCollectedAndCaptured();

    await handle.cancel();
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED' });
    expect((await paymentRows(orderId))[0]).toMatchObject({
      status: 'CAPTURED',
      amount_captured: total,
      amount_refunded: 0,
    });
    expect(await auditActions(orderId)).toEqual([{ action: 'order.cancel_refused', actor: 'ops:temporal' }]);
  });

  it('a cancel meeting the retry of a first task whose stock reserve was lost: the stock comes back', async () => {
    // A worker reserved the stock (a local activity, committed) and died before its workflow
    // task completed, so the history does not hold the reserve; the shopper's cancel then
    // comes with the task's retry, before the reserve runs again.
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    const { orderId, handle } = await stack.placeOrder({
      sku,
      quantity: 2,
      prebook: false,
      beforeStart: async (input) => {
        await reserveStockRows(stack.database.db, {
          orderId: input.orderId,
          lines: input.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
        });
        expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 2 });
      },
      cancelAtStart: SHOPPER_CANCEL,
    });
    expect(await handle.result()).toMatchObject({ status: 'CANCELLED' });
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await paymentRows(orderId)).toEqual([]);
  });

  it('rides out a courier outage during booking instead of failing the order', async () => {
    // 20 s of 500s: longer than the five attempts (~15 s) that used to fail the order.
    stack.couriers.backend.faults.set({ kind: 'error', rate: 1, format: 'native' });
    const booked = courierCalls('book');
    const order = await orderInStock({ scenario: 'delivered', bookingRetryWindowMs: 60_000 });
    await new Promise((r) => setTimeout(r, 20_000));
    expect(booked()).toBeGreaterThanOrEqual(5);
    expect((await orderRow(order.orderId)).status).toBe('PENDING');
    stack.couriers.backend.faults.clear();

    const result = await order.handle.result();
    expect(result.status).toBe('DELIVERED');
    await expectSettled(order, 'CAPTURED', 4);
  });

  it('a cancellation requested in Temporal before the order knows of the pickup is refused after the fact, on record', async () => {
    const { order, shipment } = await orderCollectedUnseen();

    // Taken on as the order's cancel; the courier's answer (collected) then refuses it.
    await order.handle.cancel();
    await expectTemporalCancelRefused(order.orderId);

    await deliversOncePolled(order, shipment, 'order-temporal-cancel-refused-after-the-fact');
  });

  it('a cancellation requested in Temporal while a refused cancel is under way is refused with it, on record', async () => {
    const { order, shipment } = await orderCollectedUnseen();

    // The courier takes a second to answer the shopper's cancel (our client waits 2 s); ops
    // cancel in Temporal meanwhile, so theirs joins the shopper's, which the courier's answer
    // (collected) then refuses.
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 1_000, format: 'native' });
    try {
      const shopper = await order.handle.startUpdate(cancelOrderUpdate, {
        args: [SHOPPER_CANCEL],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      await order.handle.cancel();
      expectPickedUpRefusal(await shopper.result().catch((err: Error) => err));
    } finally {
      stack.couriers.backend.faults.clear();
    }
    // Before, the Temporal request left no trace: joined to a cancel that was then refused.
    await expectTemporalCancelRefused(order.orderId);
    // It joined the shopper's cancel: Temporal's request is in the history before the update's
    // answer (after it, the request would have been refused on its own, with the same row).
    const events = (await order.handle.fetchHistory()).events ?? [];
    const at = (has: (e: (typeof events)[number]) => unknown) => events.findIndex((e) => has(e));
    expect(at((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBeGreaterThan(-1);
    expect(at((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBeLessThan(
      at((e) => e.workflowExecutionUpdateCompletedEventAttributes),
    );

    await deliversOncePolled(order, shipment, 'order-temporal-cancel-joined-refused');
  });

  /**
   * Our own Postgres refuses every `payments` insert of an order for `sku` (what a restart
   * does to the authorise's record) until `end()`; other orders are not touched. `refused()`
   * counts the inserts turned down, on a sequence: the refusal rolls back anything else.
   */
  async function refusePaymentRecords(sku: string) {
    const { db } = stack.database;
    const name = `refuse_payments_${sku.toLowerCase()}`;
    const id = sql.id(name);
    await sql`create sequence ${id}`.execute(db);
    await sql`create function ${id}() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from order_items where order_id = new.order_id and sku = ${sql.lit(sku)}) then
          perform nextval(${sql.lit(name)});
          raise exception 'payments of orders for % are refused (test outage)', ${sql.lit(sku)};
        end if;
        return new;
      end $$`.execute(db);
    await sql`create trigger ${id} before insert on payments for each row execute function ${id}()`.execute(
      db,
    );
    const refused = sql<{
      n: number;
    }>`select (case when is_called then last_value else 0 end)::int as n from ${id}`;
    return {
      refused: async () => (await refused.execute(db)).rows[0]!.n,
      end: async () => {
        await sql`drop trigger ${id} on payments`.execute(db);
        await sql`drop function ${id}()`.execute(db);
      },
    };
  }

  it('rides out our own database refusing the payment record instead of failing an authorised order', async () => {
    // 20 s and at least five refused inserts: longer than the authorise's five attempts
    // (~15 s), which used to be spent on our database and fail the order PAYMENT_FAILED.
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    const outage = await refusePaymentRecords(sku);
    let order;
    try {
      // Booked by the saga itself, no pre-booking: an order failed before booking leaves nothing at the courier.
      const delivered = { recipientName: `${ADDRESS.name} [scenario:delivered]`, prebook: false };
      order = { ...(await stack.placeOrder({ sku, quantity: 1, ...delivered })), sku };
      await new Promise((r) => setTimeout(r, 20_000));
      await eventually(outage.refused, (n) => n >= 5);
      expect((await orderRow(order.orderId)).status).toBe('PENDING');
    } finally {
      await outage.end();
    }

    const result = await order.handle.result();
    expect(result.status).toBe('DELIVERED');
    const atProvider = stack.payments.state.paymentsOf(order.orderId);
    expect(atProvider).toEqual([expect.objectContaining({ amountCaptured: order.total })]);
    const key = `order:${order.orderId}:authorise`;
    expect(await paymentRows(order.orderId)).toEqual([
      expect.objectContaining({
        id: key,
        idempotency_key: key,
        provider_ref: atProvider[0]!.id,
        status: 'CAPTURED',
        currency: 'MYR',
        amount_authorised: order.total,
        amount_captured: order.total,
        amount_refunded: 0,
        decline_code: null,
      }),
    ]);
    await expectSettled(order, 'CAPTURED', 4);
  });

  it('fails an order whose booking fails for good: authorisation voided, stock released, any booking cancelled', async () => {
    // The courier answers 500 to every call until the booking's five attempts have run out.
    // A 500 does not say whether the booking was made (this courier did hold one: the test
    // pre-booked it): the compensation asks again once the courier answers, and cancels it.
    stack.couriers.backend.faults.set({ kind: 'error', rate: 1, format: 'native' });
    const order = await bookingFailsAfterFiveAttempts({ onHand: 5 });
    await recordHistory('order-booking-failed-courier-500', order.handle);
    expect((await orderRow(order.orderId)).failure_message).toMatch(/^the courier booking failed: /);
    await expectSettled(order, 'VOIDED', 5);
  });

  it('ends consistent when a compensation fails twice before it succeeds', async () => {
    const { orderId, handle, sku } = await orderInStock({ quantity: 2, scenario: 'never_picked_up' });
    await orderAt(orderId, 'CONFIRMED');
    stack.payments.state.faults.set({ kind: 'error', calls: 2, operation: 'void' });
    const result = await handle.executeUpdate(cancelOrderUpdate, {
      args: [{ requestedBy: 'admin:ops', reason: 'fraud check' }],
    });
    expect(result.status).toBe('CANCELLED');
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ status: 'VOIDED', amount_captured: 0 });
    expect(stack.payments.state.payment(payment!.provider_ref!)).toMatchObject({
      voided: true,
      amountCaptured: 0,
    });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    // Who cancelled, when and why.
    const audit = await stack.database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('subject_id', '=', orderId)
      .execute();
    expect(audit).toEqual([
      expect.objectContaining({
        actor: 'admin:ops',
        action: 'order.cancel',
        reason: 'fraud check',
        subject_type: 'order',
      }),
    ]);
    expect(audit[0]!.created_at).toBeInstanceOf(Date);
    // The two failed attempts are in the history, not swallowed.
    const history = await handle.fetchHistory();
    const voidFailures = (history.events ?? []).filter(
      (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 0) >= 3,
    );
    expect(voidFailures.length).toBeGreaterThanOrEqual(1);
  });

  it('restocks and refunds a parcel that comes back to the shipper', async () => {
    const { orderId, handle, total, sku } = await orderInStock({ quantity: 2, scenario: 'return_to_origin' });
    const result = await handle.result();
    expect(result.status).toBe('RETURNED');
    expect(await orderRow(orderId)).toMatchObject({ status: 'RETURNED' });
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ amount_captured: total, amount_refunded: total });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await notifications(orderId)).toEqual(
      expect.arrayContaining(['confirmed', 'shipped', `returned:${orderShipmentId(orderId, 1)}`]),
    );
  });

  it('refuses an accepted cancel when the courier already has the parcel, and goes on to deliver', async () => {
    const { order, shipment } = await orderCollectedUnseen();

    const refusal = await order.handle
      .executeUpdate(cancelOrderUpdate, { args: [SHOPPER_CANCEL] })
      .catch((err: Error & { cause?: Error }) => err);
    expectPickedUpRefusal(refusal);
    expect((await paymentRows(order.orderId)).map((p) => p.status)).toEqual(['AUTHORISED']);

    // The parcel's next poll reports the pickup; the order captures and delivers as usual.
    await deliversOncePolled(order, shipment);
  });

  it('cancels, not fails, an order whose cancel is accepted while a booking attempt is out: the attempt timing out is not the order failing', async () => {
    // The courier books, but answers after our 2 s client timeout: the attempt out when the
    // cancel comes fails on its own, after the cancel was accepted.
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 5_000, format: 'native' });
    const order = await orderInStock({ scenario: 'never_picked_up' });
    await eventually(
      async () => (await order.handle.describe()).raw.pendingActivities ?? [],
      (pending) => pending.some((a) => a.activityType?.name === 'bookShipment' && Number(a.state) === 2),
    );
    await order.handle.startUpdate(cancelOrderUpdate, {
      args: [SHOPPER_CANCEL],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // The courier answers again once that attempt has failed: the booking it made is found and cancelled.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    stack.couriers.backend.faults.clear();

    const result = await order.handle.result();
    await recordHistory('order-cancelled-during-booking-attempt', order.handle);
    // The cancel met the attempt out (not the backoff between two): that attempt failed on its
    // own once the cancel was asked, and the server retried it no more.
    const failedAfterCancel = (await order.handle.fetchHistory()).events!.filter(
      (e) =>
        e.activityTaskFailedEventAttributes?.retryState ===
        temporal.api.enums.v1.RetryState.RETRY_STATE_CANCEL_REQUESTED,
    );
    expect(failedAfterCancel).toHaveLength(1);
    // Ended as any cancel ends, with who asked and why, not BOOKING_FAILED.
    expect(result).toMatchObject({ status: 'CANCELLED', failureCode: 'CANCELLED' });
    expect(await orderRow(order.orderId)).toMatchObject({
      status: 'CANCELLED',
      failure_code: 'CANCELLED',
      failure_message: 'cancelled by customer:cus_1: changed my mind',
    });
    const [shipment] = await shipments(order.orderId);
    expect(shipment).toMatchObject({ status: 'CANCELLED' });
    expect(stack.couriers.backend.inspect(shipment!.tracking_number)?.parcel.cancelled).toBe(true);
    await expectSettled(order, 'VOIDED', 5);
  });

  it('goes on to track and deliver when a cancel accepted during booking is refused because the courier already has the parcel', async () => {
    // Every courier call takes 1.2 s (within our 2 s timeout): the cancel lands mid-booking.
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 1_200, format: 'native' });
    const booked = courierCalls('book');
    const order = await orderInStock({ scenario: 'never_picked_up' });
    await booked.atLeast(1);
    const cancel = await order.handle.startUpdate(cancelOrderUpdate, {
      args: [SHOPPER_CANCEL],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // Meanwhile the courier collects the parcel, so cancelling the booking is refused.
    const parcel = stack.couriers.backend
      .list()
      .find((p) => p.reference === orderShipmentId(order.orderId, 1))!;
    collectAtCourier(parcel.trackingNumber);
    const refusal = await cancel.result().catch((err: Error & { cause?: Error }) => err);
    expectPickedUpRefusal(refusal);
    stack.couriers.backend.faults.clear();

    // Tracking starts after all: the parcel's workflow reports the pickup and the delivery.
    const result = await order.handle.result();
    await recordHistory('order-cancel-refused-during-booking', order.handle);
    expect(result.status).toBe('DELIVERED');
    const [shipment] = await shipments(order.orderId);
    expect(shipment).toMatchObject({ status: 'DELIVERED' });
    await expectSettled(order, 'CAPTURED', 4);
  });

  it('delivers when the parcel is reported delivered while a cancel is still retrying at the courier', async () => {
    const order = await orderInStock({ scenario: 'never_picked_up' });
    const { orderId, handle } = order;
    const shipment = await parcelAt(orderId, 'INFO_RECEIVED');
    // The courier fails every call: the cancel's booking cancellation keeps retrying.
    stack.couriers.backend.faults.set({ kind: 'error', rate: 1, format: 'native' });
    const cancelled = courierCalls('cancel');
    const cancel = await handle.startUpdate(cancelOrderUpdate, {
      args: [SHOPPER_CANCEL],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await cancelled.atLeast(1);
    // Meanwhile the courier pushes the delivery: the parcel's workflow records it, tells the
    // order and finishes. Then the courier answers again, refusing the cancel.
    const deliveredAt = new Date().toISOString();
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(shipment.id))
      .signal(courierEventsSignal, {
        events: [pushedEvent(`push-${shipment.id}`, 'DELIVERED', deliveredAt, { rawText: 'Delivered' })],
      });
    await parcelAt(orderId, 'DELIVERED');
    collectAtCourier(shipment.tracking_number);
    stack.couriers.backend.faults.clear();

    const refusal = await cancel.result().catch((err: Error & { cause?: Error }) => err);
    expectPickedUpRefusal(refusal);
    const result = await handle.result();
    await recordHistory('order-delivered-while-cancel-retried', handle);
    expect(result.status).toBe('DELIVERED');
    await expectSettled(order, 'CAPTURED', 4);
  });

  it('fails an order whose only parcel is lost before pickup, giving everything back', async () => {
    const order = await orderInStock({
      quantity: 2,
      scenario: 'lost',
      policy: fastPolicy({ expireAfterNoScanMs: 1_500 }),
    });
    const { orderId, handle } = order;
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST' });
    await expectSettled(order, 'VOIDED', 5);
    expect(await notifications(orderId)).toEqual(['confirmed', 'failed']);
    // The read model says how the parcel ended, not what the compensation did.
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['EXPIRED']);
  });

  it('fails an order whose parcel is lost after pickup: captured, then refunded in full; the stock stays shipped', async () => {
    // Picked up, damaged at the hub (EXCEPTION), then no scan ever again: the parcel expires.
    const { orderId, handle, total, sku } = await orderInStock({
      quantity: 2,
      scenario: 'exception',
      policy: fastPolicy({ expireAfterNoScanMs: 1_500 }),
    });
    const result = await handle.result();
    await recordHistory('order-lost-after-pickup', handle);

    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST', captured: true });
    expect(await orderRow(orderId)).toMatchObject({ status: 'FAILED', failure_code: 'SHIPMENT_LOST' });
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ status: 'REFUNDED', amount_captured: total, amount_refunded: total });
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['EXPIRED']);
    expect(await item(sku)).toMatchObject({ on_hand: 3, reserved: 0 });
    expect(await notifications(orderId)).toEqual(['confirmed', 'shipped', 'failed']);
  });

  it('ships two places as two parcels; one returns: restocked and refunded, the order stays DELIVERED', async () => {
    const { orderId, handle, total, sku, secondSku } = await orderInStock({
      scenario: 'delivered',
      second: { quantity: 2, scenario: 'return_to_origin' },
    });
    const result = await handle.result();
    expect(result.status).toBe('DELIVERED');
    expect(result.shipments.map((s) => s.status).sort()).toEqual(['DELIVERED', 'RETURNED']);
    const rows = await shipments(orderId);
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r) => r.tracking_number)).size).toBe(2);
    const [payment] = await paymentRows(orderId);
    // Captured once for the whole order; the returned parcel's lines (2 x 15.00) refunded.
    expect(payment).toMatchObject({ amount_captured: total, amount_refunded: 3_000 });
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('two parcels come back, the second while the first is being refunded: both restocked and refunded', async () => {
    const { orderId, handle, total, sku, secondSku } = await orderInStock({
      scenario: 'never_picked_up',
      second: { quantity: 2, scenario: 'never_picked_up' },
    });
    const [first, second] = await eventually(
      () => shipments(orderId),
      (rows) => rows.length === 2 && rows.every((r) => r.status === 'INFO_RECEIVED'),
    );
    // Courier time stands (nearly) still from here: each parcel moves only when the test says.
    stack.couriers.backend.clock.setTimeScale(1);
    for (const parcel of [first!, second!]) collectAtCourier(parcel.tracking_number);
    await orderAt(orderId, 'SHIPPED'); // captured, both parcels' stock shipped
    const comesBack = (trackingNumber: string) =>
      stack.couriers.backend.register({
        trackingNumber,
        scenario: 'return_to_origin',
        format: 'native',
        ageMs: 6 * 86_400_000, // past its last step: RETURNED
      });

    // The provider holds the first refund's answer; the second parcel comes back meanwhile.
    stack.payments.state.faults.set({ kind: 'timeout', operation: 'refund', ms: 5_000, calls: 1 });
    comesBack(first!.tracking_number);
    await eventually(
      () => item(sku),
      (row) => row.on_hand === 5, // restocked: its refund comes next
    );
    comesBack(second!.tracking_number);

    const result = await handle.result();
    await recordHistory('order-second-return-during-refund', handle);
    expect(result.status).toBe('RETURNED');
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ status: 'REFUNDED', amount_captured: total, amount_refunded: total });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await notifications(orderId)).toEqual(
      expect.arrayContaining([`returned:${first!.id}`, `returned:${second!.id}`]),
    );
  });

  it('a cancel that takes one parcel away before it finds the other collected says so in its refusal', async () => {
    // Tracking would learn of the pickup only in 10 minutes: the cancel reaches the courier first.
    const slow = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000, PENDING: 600_000 },
    });
    const { orderId, handle } = await orderInStock({
      scenario: 'never_picked_up',
      second: { quantity: 2, scenario: 'never_picked_up' },
      policy: slow,
    });
    const [first, second] = await eventually(
      () => shipments(orderId),
      (rows) => rows.length === 2 && rows.every((r) => r.status === 'INFO_RECEIVED'),
    );
    collectAtCourier(second!.tracking_number);

    const refusal = await handle
      .executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: 'customer:cus_1', reason: 'too late' }] })
      .catch((err: Error & { cause?: Error }) => err);
    expectPickedUpRefusal(refusal);
    // The first parcel's booking was cancelled before the courier answered for the second.
    expect((refusal as Error & { cause?: Error }).cause?.message).toContain(
      `; the bookings of ${first!.id} (not collected) were cancelled`,
    );
    expect(stack.couriers.backend.inspect(first!.tracking_number)?.parcel.cancelled).toBe(true);
    expect((await shipments(orderId)).find((r) => r.id === first!.id)?.status).toBe('CANCELLED');
  });

  it('refuses a cancel after pickup and changes nothing', async () => {
    const { orderId, handle, total } = await orderCollectedAndCaptured();

    const refusal = await handle
      .executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: 'customer:cus_1', reason: 'too late' }] })
      .catch((err: Error & { cause?: Error }) => err);
    expectPickedUpRefusal(refusal);
    const state = await handle.query(orderStateQuery);
    expect(['SHIPPED', 'DELIVERED']).toContain(state.status);
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: total, amount_refunded: 0 });
    await handle.result();
  });
});
