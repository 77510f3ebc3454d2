/**
 * Booking and cancelling at the courier run on the courier task queue, under its caps, and
 * every courier HTTP request they make is counted in the day's courier budget
 * (`courier_api_usage`) like the polls' (src/activities/courier-budget.ts). With the day's
 * budget used up, a cancel still goes through (counted past the budget: polls never starve
 * it), while a booking is refused and the order fails, giving everything back. Polls stop a
 * tenth short of the budget, so a booking still goes out when they have used their share.
 */
import { cancelOrderUpdate, orderShipmentId, shipmentWorkflowId } from '../../src/workflows/contract';
import { budgetDay, defaultBookingReserve } from '../../src/domain/polling';
import { eventually } from '../support/eventually';
import { useSagaStack } from '../support/saga';
import { stillPolicy, uniqueId } from '../support/temporal';

jest.setTimeout(90_000);

const BUDGET = 1000; // the test worker's WAYBILL_COURIER_DAILY_BUDGET
const BOOKING_RESERVE = defaultBookingReserve(BUDGET); // its WAYBILL_COURIER_BOOKING_RESERVE: 100

describe('courier calls of the order saga', () => {
  const stack = useSagaStack();
  const { stock, placeOrder, orderRow, paymentRows, item, shipments } = stack;

  /** Requests counted today for the simulator courier. */
  async function usage(): Promise<number> {
    const row = await stack.database.db
      .selectFrom('courier_api_usage')
      .select('calls')
      .where('courier', '=', 'simulator')
      .where('day', '=', budgetDay(Date.now()))
      .executeTakeFirst();
    return row?.calls ?? 0;
  }

  /** Requests the courier simulator received (its native format: the simulator courier). */
  const received = () => stack.couriers.backend.stats.snapshot().formats.native;

  /** Sets today's counter for the simulator courier. */
  async function setUsage(calls: number): Promise<void> {
    await stack.database.db
      .insertInto('courier_api_usage')
      .values({ courier: 'simulator', day: budgetDay(Date.now()), calls })
      .onConflict((oc) => oc.columns(['courier', 'day']).doUpdateSet({ calls }))
      .execute();
  }

  /** A placed order, CONFIRMED (booked, tracked), whose parcel the courier never collects. */
  async function confirmedOrder() {
    const sku = uniqueId('KETTLE');
    await stock(sku, 5);
    const order = await placeOrder({ sku, quantity: 1, scenario: 'never_picked_up', policy: stillPolicy() });
    await eventually(
      () => orderRow(order.orderId),
      (o) => o.status === 'CONFIRMED',
    );
    return { ...order, sku };
  }

  async function cancel(order: Awaited<ReturnType<typeof confirmedOrder>>) {
    const result = await order.handle.executeUpdate(cancelOrderUpdate, {
      args: [{ requestedBy: 'customer:cus_1', reason: 'changed my mind' }],
    });
    await order.handle.result();
    // The parcel's workflow stops too: no poll is left to make after this.
    await stack.worker.client.workflow
      .getHandle(shipmentWorkflowId(orderShipmentId(order.orderId, 1)))
      .result()
      .catch(() => undefined);
    return result;
  }

  it('books and cancels on the courier task queue, every request counted in the courier usage', async () => {
    await setUsage(0);
    stack.couriers.backend.stats.reset();
    const order = await confirmedOrder();
    expect((await cancel(order)).status).toBe('CANCELLED');

    const history = await order.handle.fetchHistory();
    const queues = (history.events ?? []).flatMap((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a ? [[a.activityType?.name, a.taskQueue?.name]] : [];
    });
    const courierQueue = stack.worker.courierTaskQueue;
    expect(queues).toContainEqual(['bookShipment', courierQueue]);
    expect(queues).toContainEqual(['cancelBooking', courierQueue]);
    expect(queues.filter(([type]) => type === 'bookShipment' || type === 'cancelBooking')).toEqual(
      queues.filter(([, queue]) => queue === courierQueue),
    );

    const calls = received();
    expect(calls.byKind.book).toBeGreaterThanOrEqual(1);
    expect(calls.byKind.cancel).toBeGreaterThanOrEqual(1);
    // Book, cancel and polls: the budget counted every request the courier received.
    expect(await usage()).toBe(calls.calls);
    expect((await shipments(order.orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    // The cancelled booking's domain event, once: the shipment workflow's poll answered before
    // the cancel reached the courier does not take the parcel back to INFO_RECEIVED, and its
    // ending finds it CANCELLED already.
    const events = await stack.database.db
      .selectFrom('event_outbox')
      .select('type')
      .where('order_id', '=', order.orderId)
      .where('type', '=', 'shipment.cancelled')
      .execute();
    expect(events).toHaveLength(1);
  });

  it('cancels an order when the day’s budget is used up, counting the cancel past the budget', async () => {
    const order = await confirmedOrder();
    // The parcel's first poll is answered before the budget runs out: one still in flight
    // when the counter is set would reach the courier after it (a race of the test, not a leak).
    await eventually(
      () => shipments(order.orderId),
      (rows) => rows.length === 1 && rows[0]!.last_synced_at !== null,
    );
    await setUsage(BUDGET);
    stack.couriers.backend.stats.reset();

    expect((await cancel(order)).status).toBe('CANCELLED');

    const calls = received();
    expect(calls.byKind.cancel).toBeGreaterThanOrEqual(1);
    // Polls were refused (none reached the courier); the cancel went through and was counted.
    expect(calls.byKind.track).toBe(0);
    expect(await usage()).toBe(BUDGET + calls.calls);
    expect((await shipments(order.orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    expect((await paymentRows(order.orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect(await item(order.sku)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('books an order when polls have used their share of the day: the last tenth is kept for bookings', async () => {
    // Polls (and shoppers' refreshes) stop at the budget less the booking reserve.
    await setUsage(BUDGET - BOOKING_RESERVE);
    stack.couriers.backend.stats.reset();
    const order = await confirmedOrder();
    // The parcel's first poll was refused, not sent: its workflow waits for the next window.
    await eventually(
      () => shipments(order.orderId),
      (rows) => (rows[0]?.sync_error ?? '').includes('budget used up'),
    );

    const calls = received();
    expect(calls.byKind.book).toBeGreaterThanOrEqual(1);
    expect(calls.byKind.track).toBe(0);
    expect(await usage()).toBe(BUDGET - BOOKING_RESERVE + calls.calls);
    expect((await cancel(order)).status).toBe('CANCELLED');
  });

  it('refuses a booking when the day’s budget is used up: the order fails and gives everything back', async () => {
    await setUsage(BUDGET);
    stack.couriers.backend.stats.reset();
    const sku = uniqueId('KETTLE');
    await stock(sku, 5);
    const { orderId, handle } = await placeOrder({
      sku,
      quantity: 1,
      prebook: false,
      bookingRetryWindowMs: 5_000,
    });
    const result = await handle.result();

    expect(result.status).toBe('FAILED');
    expect(await orderRow(orderId)).toMatchObject({
      status: 'FAILED',
      failure_code: 'BOOKING_FAILED',
      failure_message: expect.stringMatching(/daily budget of 1000 simulator calls used up/),
    });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    // No booking went out within the budget; the compensation looked for one (a release,
    // counted past the budget) and cancelled what it found, so the courier holds nothing.
    const calls = received();
    expect(await usage()).toBe(BUDGET + calls.calls);
    expect((await shipments(orderId)).every((s) => s.status === 'CANCELLED')).toBe(true);
  });
});
