/**
 * Every answer a courier or the card provider gives ends in a correct, audited order: the
 * courier's cancel answered 404 / 401 / 400 / an unconfirmed "collected", a booking refused,
 * and the provider refusing a capture, a void or a refund. A step refused for good is parked
 * (NEEDS_ATTENTION) while the rest of the compensation still runs, and an admin retries or
 * resolves it. Real Temporal, Postgres, the courier simulator and the payment simulator.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { PaymentRejection } from '../../src/payments/types';
import {
  cancelOrderUpdate,
  orderShipmentId,
  orderStateQuery,
  resolveAttentionUpdate,
  type CaptureSettlement,
  type OrderSnapshot,
} from '../../src/workflows/contract';
import type { AnswerStatus } from '../../simulators/courier/answers';
import type { orderWorkflow } from '../../src/workflows/order';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import {
  ADDRESS,
  SHOPPER_CANCEL,
  expectPickedUpRefusal,
  useSagaStack,
  type OrderInStockOptions,
} from '../support/saga';
import { fastPolicy, stillPolicy } from '../support/temporal';

jest.setTimeout(90_000);

/** Refusals that are not final are retried this long (ms) before the step is parked. */
const SHORT_WINDOW = 4_000;

describe('order saga: courier and provider answers', () => {
  const stack = useSagaStack();
  const { orderInStock, orderAt, parcelAt, expectSettled, orderRow, paymentRows, item, shipments } = stack;

  /** An order whose parcel is booked and tracked, never collected. */
  async function confirmedOrder(opts: OrderInStockOptions = {}) {
    const placed = await orderInStock({ scenario: 'never_picked_up', ...opts });
    return { ...placed, shipment: await parcelAt(placed.orderId, 'INFO_RECEIVED') };
  }

  /** A confirmed order whose cancel the courier answers `status` (`calls` times, default every time). */
  async function cancelAnswered(status: AnswerStatus, opts: OrderInStockOptions & { calls?: number } = {}) {
    const { calls, ...order } = opts;
    const placed = await confirmedOrder(order);
    stack.couriers.backend.answers.set({
      operation: 'cancel',
      status,
      trackingNumber: placed.shipment.tracking_number,
      ...(calls === undefined ? {} : { calls }),
    });
    return placed;
  }

  const cancel = (handle: WorkflowHandle<typeof orderWorkflow>) =>
    handle.executeUpdate(cancelOrderUpdate, { args: [SHOPPER_CANCEL] });

  const waitForAttention = (handle: WorkflowHandle<typeof orderWorkflow>) =>
    eventually(
      () => handle.query(orderStateQuery),
      (s: OrderSnapshot) => s.attention.length > 0,
      30_000,
    );

  const resolve = (
    handle: WorkflowHandle<typeof orderWorkflow>,
    itemId: string,
    action: 'retry' | 'resolve',
    reason: string,
  ) =>
    handle.executeUpdate(resolveAttentionUpdate, {
      args: [{ itemId, action, reason, requestedBy: 'admin:ops' }],
    });

  /**
   * A two-parcel order whose first parcel is booked (before the order starts) and collected
   * by the courier, and whose second parcel's booking the courier answers `status`.
   */
  const firstCollectedSecondBooked = (status: 400 | 503) =>
    orderInStock({
      second: { quantity: 2, scenario: 'never_picked_up' },
      prebook: false,
      beforeStart: async (input) => {
        stack.couriers.backend.answers.set({
          operation: 'book',
          status,
          format: 'native',
          reference: orderShipmentId(input.orderId, 2),
        });
        const first = stack.couriers.backend.bookParcel('native', {
          reference: orderShipmentId(input.orderId, 1),
          recipient: { ...ADDRESS },
          weightGrams: 500,
        });
        stack.collectAtCourier(first.trackingNumber);
      },
    });

  /** Someone captures the order's total in the provider's dashboard: Waybill does not hear of it. */
  async function captureInDashboard(orderId: string, total: number) {
    const [row] = await paymentRows(orderId);
    const provider = createHttpPaymentProvider({ baseUrl: stack.payments.url, timeoutMs: 2_000 });
    await provider.capture({
      idempotencyKey: `dashboard-${orderId}`,
      providerRef: row!.provider_ref!,
      amount: total,
    });
    return row!.provider_ref!;
  }

  /**
   * An order whose capture at pickup the provider refuses (authorisation expired): parked.
   * With `second`, a second parcel the courier has not collected (see {@link collectSecond}).
   */
  async function captureParkedAtPickup(scenario: 'delivered' | 'return_to_origin', second = false) {
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'capture',
      code: PaymentRejection.AUTHORISATION_EXPIRED,
    });
    const placed = await orderInStock({
      scenario,
      ...(second ? { second: { quantity: 2, scenario: 'never_picked_up' as const } } : {}),
    });
    return { ...placed, parked: await waitForAttention(placed.handle) };
  }

  /** The courier collects the order's second parcel now; it is delivered soon after. */
  async function collectSecond(orderId: string) {
    const rows = await shipments(orderId);
    stack.collectAtCourier(rows[1]!.tracking_number);
  }

  /**
   * A two-parcel order whose capture was parked at the first pickup; that parcel came back,
   * and an admin captured the total and refunded the returned parcel in the provider's
   * dashboard. The second parcel is still at the warehouse.
   */
  async function returnedAndRefundedByHand() {
    const placed = await captureParkedAtPickup('return_to_origin', true);
    const { orderId, total } = placed;
    await firstParcelReturned(orderId);
    stack.payments.state.faults.clear();
    const ref = await captureInDashboard(orderId, total);
    const returned = await firstParcelValue(orderId);
    await createHttpPaymentProvider({ baseUrl: stack.payments.url, timeoutMs: 2_000 }).refund({
      idempotencyKey: `dashboard-refund-${orderId}`,
      providerRef: ref,
      amount: returned,
    });
    return { ...placed, ref, returned };
  }

  /**
   * Waits until the order's first parcel is back and the saga has settled its return: restocked,
   * and its refund paid or, while nothing is captured, owed. The read model says RETURNED a
   * moment before the saga hears of it; an admin's resolve taken in between would find no refund
   * owed yet, and the refund would follow it instead of being part of it.
   */
  async function firstParcelReturned(orderId: string) {
    await parcelAt(orderId, 'RETURNED');
    const settled = `returned:${orderShipmentId(orderId, 1)}`;
    await eventually(
      () => stack.notifications(orderId),
      (kinds) => kinds.includes(settled),
    );
  }

  /** What the lines of the order's first parcel are worth (minor units). */
  async function firstParcelValue(orderId: string) {
    const lines = await stack.database.db
      .selectFrom('order_items')
      .select(['quantity', 'unit_amount'])
      .where('shipment_id', '=', orderShipmentId(orderId, 1))
      .execute();
    return lines.reduce((sum, l) => sum + l.quantity * l.unit_amount, 0);
  }

  /** Why the workflow refused an update (its failure's cause); null if it was not refused. */
  const refusalOf = async (updating: Promise<unknown>) =>
    (
      (await updating.then(
        () => null,
        (e: unknown) => e,
      )) as (Error & { cause?: Error & { type?: string } }) | null
    )?.cause ?? null;

  /** The payment provider's books contradict the admin's resolve: the update failed with this message. */
  async function expectSettlementRefused(resolving: Promise<unknown>, message: RegExp) {
    const refusal = await refusalOf(resolving);
    expect(refusal).toMatchObject({ type: 'SETTLEMENT_REFUSED' });
    expect(refusal!.message).toMatch(message);
  }

  const resolveCapture = (
    handle: WorkflowHandle<typeof orderWorkflow>,
    settlement: CaptureSettlement,
    reason: string,
  ) =>
    handle.executeUpdate(resolveAttentionUpdate, {
      args: [{ itemId: 'capture', action: 'resolve', reason, settlement, requestedBy: 'admin:ops' }],
    });

  /** The provider takes captures again and the admin retries the parked one; the order's end, its history kept as `history`. */
  async function retryParkedCapture(handle: WorkflowHandle<typeof orderWorkflow>, history: string) {
    stack.payments.state.faults.clear();
    expect(await resolve(handle, 'capture', 'retry', 'authorisation renewed by the shopper')).toMatchObject({
      outcome: 'retried',
    });
    const result = await handle.result();
    await recordHistory(history, handle);
    return result;
  }

  const auditActions = async (orderId: string) =>
    (
      await stack.database.db
        .selectFrom('audit_log')
        .select('action')
        .where('subject_id', '=', orderId)
        .orderBy('id')
        .execute()
    ).map((a) => a.action);

  it('a cancel the courier answers 404 (it does not know the booking) ends CANCELLED with nothing captured', async () => {
    const { orderId, handle, sku, shipment } = await confirmedOrder();
    // The courier has lost the booking: it answers the cancel 404, as for any number it does not know.
    expect(stack.couriers.backend.forget(shipment.tracking_number)).toBe(true);

    const result = await cancel(handle);
    expect(result.status).toBe('CANCELLED');
    expect(result.captured).toBe(false);
    await handle.result();
    await recordHistory('order-cancel-unknown-booking', handle);
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect((await paymentRows(orderId)).map((p) => [p.status, p.amount_captured])).toEqual([['VOIDED', 0]]);
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('a cancel the courier answers 401 (our credentials) is retried, never taken for a pickup, and ends CANCELLED', async () => {
    const { orderId, handle, shipment } = await cancelAnswered(401, { calls: 2 });

    const result = await cancel(handle);
    expect(result).toMatchObject({ status: 'CANCELLED', captured: false, pickedUp: false });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
    expect(stack.couriers.backend.stats.snapshot().formats.native.scripted.cancel).toBeGreaterThanOrEqual(2);
  });

  it('a cancel that goes through after a 401 closes the credentials incident: the cancelled parcel shows no sync error', async () => {
    // No tracking poll of its own after the first: only the cancel's own answers touch the row.
    const { orderId, handle } = await cancelAnswered(401, { calls: 2, policy: stillPolicy() });

    expect(await cancel(handle)).toMatchObject({ status: 'CANCELLED' });
    await handle.result();
    // Tracking reads `unavailable` and the admin queue's exceptions come from these two columns.
    expect(await shipments(orderId)).toEqual([
      expect.objectContaining({ status: 'CANCELLED', sync_error: null, sync_failing_since: null }),
    ]);
  });

  it('credentials refused for longer than the retry window: the cancel is parked, the void and the stock still run; an admin retry finishes it', async () => {
    const order = await cancelAnswered(401, { settleRetryWindowMs: SHORT_WINDOW });
    const { orderId, handle, shipment } = order;

    const parked = await cancel(handle);
    expect(parked.status).toBe('NEEDS_ATTENTION');
    const itemId = `cancel_booking:${orderShipmentId(orderId, 1)}`;
    expect(parked.attention).toEqual([expect.objectContaining({ id: itemId, step: 'cancel_booking' })]);
    expect(parked.attention[0]!.reason).toMatch(/401/);
    // The other compensations ran: nothing held on the card, the stock back on the shelf.
    await expectSettled(order, 'VOIDED', 5);
    expect(await orderRow(orderId)).toMatchObject({
      status: 'NEEDS_ATTENTION',
      failure_code: 'NEEDS_ATTENTION',
    });
    const rows = await stack.database.db
      .selectFrom('order_attention')
      .selectAll()
      .where('order_id', '=', orderId)
      .execute();
    expect(rows).toEqual([expect.objectContaining({ item_id: itemId, status: 'OPEN' })]);

    // Still refused: the retry says so and the item stays open.
    expect(await resolve(handle, itemId, 'retry', 'tried again')).toMatchObject({ outcome: 'still_failing' });
    // The courier's credentials are renewed: the retry cancels the booking and the order settles.
    stack.couriers.backend.answers.clear();
    expect(await resolve(handle, itemId, 'retry', 'credentials renewed')).toMatchObject({
      outcome: 'retried',
      order: expect.objectContaining({ status: 'CANCELLED', attention: [] }),
    });
    await handle.result();
    await recordHistory('order-cancel-parked-then-retried', handle);
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect(stack.couriers.backend.inspect(shipment.tracking_number)?.parcel.cancelled).toBe(true);
    const [closed] = await stack.database.db
      .selectFrom('order_attention')
      .selectAll()
      .where('order_id', '=', orderId)
      .execute();
    expect(closed).toMatchObject({
      status: 'RETRIED',
      closed_by: 'admin:ops',
      resolution: 'credentials renewed',
    });
    expect(await auditActions(orderId)).toEqual(
      expect.arrayContaining(['order.cancel', 'order.needs_attention', 'order.attention_retried']),
    );
  });

  it('a cancel the courier refuses for good (400) is parked at once; an admin resolves it with a reason', async () => {
    const { orderId, handle, shipment } = await cancelAnswered(400);

    const parked = await cancel(handle);
    expect(parked.status).toBe('NEEDS_ATTENTION');
    const itemId = parked.attention[0]!.id;
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);

    // The admin cancels the booking by phone (here: at the simulator), then says so.
    expect(stack.couriers.backend.cancel('native', shipment.tracking_number)).toBe('cancelled');
    const resolved = await resolve(handle, itemId, 'resolve', 'cancelled by phone with the courier');
    expect(resolved).toMatchObject({
      outcome: 'resolved',
      order: expect.objectContaining({ status: 'CANCELLED' }),
    });
    await handle.result();
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect(await auditActions(orderId)).toEqual(
      expect.arrayContaining(['order.cancel', 'order.needs_attention', 'order.attention_resolved']),
    );
  });

  it('a parked cancel retried after the courier collected the parcel: the stock the clean-up released counts as shipped again', async () => {
    const { orderId, handle, shipment, sku } = await cancelAnswered(400);
    const parked = await cancel(handle);
    expect(parked.status).toBe('NEEDS_ATTENTION');
    const itemId = parked.attention[0]!.id;
    // The clean-up went on past the parked cancel: the stock is back on sale.
    await eventually(
      () => item(sku),
      (row) => row.reserved === 0,
    );
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });

    // Meanwhile the courier came for the parcel; the admin's retry hears "collected".
    stack.couriers.backend.answers.clear();
    stack.collectAtCourier(shipment.tracking_number);
    const retried = await resolve(handle, itemId, 'retry', 'the courier answers again');
    expect(retried).toMatchObject({ outcome: 'still_failing', reason: expect.stringMatching(/recall it/) });
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    expect((await shipments(orderId))[0]!.picked_up_at).toBeInstanceOf(Date);

    await resolve(handle, itemId, 'resolve', 'parcel recalled from the courier');
    expect(await handle.result()).toMatchObject({ status: 'CANCELLED' });
  });

  it('a "collected" the courier claims but its tracking does not show is not believed: nothing is captured', async () => {
    const { orderId, handle, sku } = await cancelAnswered(409, { settleRetryWindowMs: SHORT_WINDOW });

    const parked = await cancel(handle);
    expect(parked).toMatchObject({ status: 'NEEDS_ATTENTION', captured: false, pickedUp: false });
    expect(parked.attention[0]!.reason).toMatch(/not a pickup/);
    const [payment] = await paymentRows(orderId);
    expect(payment).toMatchObject({ status: 'VOIDED', amount_captured: 0 });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('the courier really has the parcel (409, and tracking agrees): the cancel is refused and the order goes on', async () => {
    const slow = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000, PENDING: 600_000 },
    });
    const { orderId, handle, shipment } = await confirmedOrder({ policy: slow });
    stack.collectAtCourier(shipment.tracking_number);
    const refusal = await cancel(handle).catch((err: Error) => err);
    expectPickedUpRefusal(refusal);
    // The order goes on from that pickup: the money is captured, never voided or refunded.
    const [payment] = await eventually(
      () => paymentRows(orderId),
      (rows) => rows[0]?.status !== 'AUTHORISED',
    );
    expect(payment).toMatchObject({ status: 'CAPTURED', amount_refunded: 0 });
  });

  it('a failed order whose other parcel the courier has collected: its stock counts as shipped, not released; recall parked', async () => {
    // The second parcel's booking is refused for good; the first parcel, booked, is in the
    // courier's van by the time its booking is cancelled.
    const { orderId, handle, sku, secondSku } = await firstCollectedSecondBooked(400);
    const parked = await waitForAttention(handle);
    stack.couriers.backend.answers.clear();
    const itemId = `cancel_booking:${orderShipmentId(orderId, 1)}`;
    expect(parked.attention).toEqual([expect.objectContaining({ id: itemId })]);
    expect(parked.attention[0]!.reason).toMatch(/recall it/);
    await orderAt(orderId, 'NEEDS_ATTENTION');
    // The compensation goes on past the parked item: the mugs, which never left, are released.
    await eventually(
      () => item(secondSku!),
      (row) => row.reserved === 0,
    );
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });
    // The kettle left with the courier: shipped, not back on sale.
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    // And the read model knows the courier has it (the parcel's tracking never started).
    expect(
      (await shipments(orderId)).find((s) => s.id === orderShipmentId(orderId, 1))?.picked_up_at,
    ).toBeInstanceOf(Date);
    await eventually(
      async () => (await paymentRows(orderId)).map((p) => p.status),
      (statuses) => statuses[0] === 'VOIDED',
    );

    expect(await resolve(handle, itemId, 'resolve', 'parcel recalled from the courier')).toMatchObject({
      outcome: 'resolved',
    });
    expect(await handle.result()).toMatchObject({ status: 'FAILED', failureCode: 'BOOKING_FAILED' });
  });

  it('a cancel refused because the courier has one parcel, then the other parcel cannot be booked: the collected one is recalled, its stock shipped, nothing charged', async () => {
    // The second parcel's booking meets an outage (retried); the first, booked, is in the
    // courier's van by the time the shopper cancels.
    const { orderId, handle, sku, secondSku } = await firstCollectedSecondBooked(503);
    const first = orderShipmentId(orderId, 1);
    await eventually(
      () => shipments(orderId),
      (rows) => rows.some((r) => r.id === first),
    );
    expectPickedUpRefusal(await cancel(handle).catch((err: Error) => err));
    // The order goes on from the pickup, and the second parcel's booking is refused for good.
    stack.couriers.backend.answers.clear();
    stack.couriers.backend.answers.set({
      operation: 'book',
      status: 400,
      format: 'native',
      reference: orderShipmentId(orderId, 2),
    });

    const parked = await waitForAttention(handle);
    const itemId = `cancel_booking:${first}`;
    expect(parked.attention).toEqual([expect.objectContaining({ id: itemId })]);
    expect(parked.attention[0]!.reason).toMatch(/recall it/);
    await eventually(
      async () => (await paymentRows(orderId)).map((p) => p.status),
      (statuses) => statuses[0] === 'VOIDED',
    );
    // The kettle left with the courier: shipped, not back on sale; the mugs never left.
    await eventually(
      () => item(secondSku!),
      (row) => row.reserved === 0,
    );
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });

    expect(await resolve(handle, itemId, 'resolve', 'parcel recalled from the courier')).toMatchObject({
      outcome: 'resolved',
    });
    expect(await handle.result()).toMatchObject({ status: 'FAILED', failureCode: 'BOOKING_FAILED' });
    await recordHistory('order-cancel-refused-then-booking-refused', handle);
  });

  it('a booking the courier refuses (400) fails the order with nothing held anywhere', async () => {
    stack.couriers.backend.answers.set({ operation: 'book', status: 400, format: 'native' });
    const order = await orderInStock({ prebook: false });
    const result = await order.handle.result();
    stack.couriers.backend.answers.clear();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'BOOKING_FAILED' });
    expect(await shipments(order.orderId)).toEqual([]);
    await expectSettled(order, 'VOIDED', 5);
  });

  it('two parcels booked at once, one refused for good (400): the order fails and the other booking is cancelled, nothing held', async () => {
    // Whichever parcel reaches the courier first is refused; the other is booked.
    stack.couriers.backend.answers.set({ operation: 'book', status: 400, format: 'native', calls: 1 });
    const { orderId, handle, sku, secondSku } = await orderInStock({
      second: { quantity: 2, scenario: 'never_picked_up' },
      prebook: false,
    });
    const result = await handle.result();
    stack.couriers.backend.answers.clear();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'BOOKING_FAILED' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
    const rows = await shipments(orderId);
    expect(rows.map((r) => r.status)).toEqual(['CANCELLED']);
    expect(stack.couriers.backend.inspect(rows[0]!.tracking_number)?.parcel.cancelled).toBe(true);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('a capture the provider refuses at pickup (authorisation expired) is parked while the parcel is delivered; a retry captures once', async () => {
    const { orderId, handle, total, sku, parked } = await captureParkedAtPickup('delivered');
    expect(parked.attention).toEqual([expect.objectContaining({ id: 'capture', step: 'capture' })]);
    expect(parked.attention[0]!.reason).toMatch(/authorization_expired|expired/);
    // The parcel goes on to its delivery meanwhile; the order waits for the admin.
    await parcelAt(orderId, 'DELIVERED');
    expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_ATTENTION' });
    expect((await paymentRows(orderId))[0]).toMatchObject({ status: 'AUTHORISED', amount_captured: 0 });

    const result = await retryParkedCapture(handle, 'order-capture-parked-then-retried');
    expect(result).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    expect((await paymentRows(orderId))[0]).toMatchObject({ status: 'CAPTURED', amount_captured: total });
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
  });

  it('a capture parked at pickup, then the parcel comes back: the retried capture is followed by its refund', async () => {
    const { orderId, handle, total, sku } = await captureParkedAtPickup('return_to_origin');
    // The parcel comes back while the capture waits: restocked, and nothing captured to refund yet.
    await parcelAt(orderId, 'RETURNED');
    await eventually(
      () => item(sku),
      (row) => row.on_hand === 5,
    );
    expect((await paymentRows(orderId))[0]).toMatchObject({ status: 'AUTHORISED', amount_captured: 0 });

    // The admin's retry captures the whole order (all a capture can take): the returned parcel's
    // refund, skipped while nothing was captured, follows it.
    const result = await retryParkedCapture(handle, 'order-capture-parked-then-returned');
    expect(result).toMatchObject({ status: 'RETURNED', captured: true, attention: [] });
    expect((await paymentRows(orderId))[0]).toMatchObject({ amount_captured: total, amount_refunded: total });
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
  });

  it('a capture parked at pickup and made in the provider dashboard meanwhile: the parcel comes back, the retry finds it captured and refunds it', async () => {
    const { orderId, handle, total } = await captureParkedAtPickup('return_to_origin');
    stack.payments.state.faults.clear();
    // Someone captures the order in the provider's dashboard; Waybill has not heard of it.
    const ref = await captureInDashboard(orderId, total);
    await parcelAt(orderId, 'RETURNED');

    expect(await resolve(handle, 'capture', 'retry', 'checking with the provider')).toMatchObject({
      outcome: 'retried',
    });
    expect(await handle.result()).toMatchObject({ status: 'RETURNED', captured: true, attention: [] });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: total,
    });
  });

  it('a parked capture an admin captured and partly refunded by hand, then resolved as captured_by_hand: the refund made by hand is not paid again', async () => {
    const { orderId, handle, total, ref, returned } = await returnedAndRefundedByHand();

    const resolved = await resolveCapture(handle, 'captured_by_hand', 'captured and refunded p1 by hand');
    expect(resolved).toMatchObject({ outcome: 'resolved', order: { captured: true, attention: [] } });
    // The second parcel is collected and delivered: nothing is captured or refunded again.
    await collectSecond(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: returned,
    });
    expect((await paymentRows(orderId))[0]).toMatchObject({
      amount_captured: total,
      amount_refunded: returned,
    });
    const [closed] = await stack.database.db
      .selectFrom('order_attention')
      .selectAll()
      .where('order_id', '=', orderId)
      .execute();
    expect(closed).toMatchObject({ item_id: 'capture', status: 'RESOLVED', settlement: 'captured_by_hand' });
  });

  it('a parked capture resolved as captured_by_hand with only a capture made by hand: the owed refund is paid by Waybill', async () => {
    const { orderId, handle, total } = await captureParkedAtPickup('return_to_origin', true);
    await firstParcelReturned(orderId);
    stack.payments.state.faults.clear();
    const ref = await captureInDashboard(orderId, total);

    await resolveCapture(handle, 'captured_by_hand', 'captured by hand after the card was renewed');
    // Paid at the resolve, not left for the next pickup.
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountRefunded: await firstParcelValue(orderId),
    });
    await collectSecond(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: await firstParcelValue(orderId),
    });
  });

  it('a refund whose answer never came, parked, then retried after the provider forgot its key: the books show it was paid, and it is not paid twice', async () => {
    const { orderId, handle, total } = await orderInStock({
      scenario: 'return_to_origin',
      second: { quantity: 2, scenario: 'never_picked_up' },
      settleRetryWindowMs: 5_000,
    });
    const [captured] = await eventually(
      () => paymentRows(orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    const ref = captured!.provider_ref!;
    // From here every answer of the provider comes too late: the returned parcel's refund is
    // made, its answer lost, and the books cannot be read either, until the step is parked.
    stack.payments.state.faults.set({ kind: 'timeout', ms: 2_500, calls: 1_000 });
    const refundItem = `refund_parcel:${orderShipmentId(orderId, 1)}`;
    await eventually(
      () => handle.query(orderStateQuery),
      (s: OrderSnapshot) => s.attention.some((item) => item.id === refundItem),
      60_000,
    );
    const returned = await firstParcelValue(orderId);
    expect(stack.payments.state.payment(ref)).toMatchObject({ amountRefunded: returned });

    // By the admin's retry the provider has forgotten the key (Stripe prunes keys after 24 h):
    // sent again, the refund would be made again.
    stack.payments.state.faults.clear();
    stack.payments.state.forgetIdempotencyKeys();
    expect(await resolve(handle, refundItem, 'retry', 'the provider is back')).toMatchObject({
      outcome: 'retried',
      order: { attention: [] },
    });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: returned,
    });
    await collectSecond(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: returned,
    });
  });

  it('a refund worked out less what was given back by hand, parked, then retried: the retry sends the same amount, not the whole parcel', async () => {
    const { orderId, handle, total } = await captureParkedAtPickup('return_to_origin', true);
    await firstParcelReturned(orderId);
    stack.payments.state.faults.clear();
    // Captured by hand for 500 less (a goodwill discount): 500 of the returned parcel is given back already.
    const ref = await captureInDashboard(orderId, total - 500);
    const returned = await firstParcelValue(orderId);
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'refund',
      code: PaymentRejection.AMOUNT_TOO_LARGE,
    });
    const resolved = await resolveCapture(handle, 'captured_by_hand', 'captured by hand, less 500 goodwill');
    const refundItem = `refund_parcel:${orderShipmentId(orderId, 1)}`;
    expect(resolved).toMatchObject({ outcome: 'resolved', order: { attention: [{ id: refundItem }] } });

    // The retry must not set the 500 against the refund a second time, nor forget it was set.
    stack.payments.state.faults.clear();
    expect(await resolve(handle, refundItem, 'retry', 'provider limit raised')).toMatchObject({
      outcome: 'retried',
      order: { attention: [] },
    });
    await collectSecond(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true, attention: [] });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total - 500,
      amountRefunded: returned - 500,
    });
  });

  it('a parked capture captured and partly refunded by hand, then retried: the retry reads the books and pays no refund twice', async () => {
    const { orderId, handle, total, ref, returned } = await returnedAndRefundedByHand();
    // The retry's capture is answered "already captured": the provider's books then say what it keeps.
    expect(await resolve(handle, 'capture', 'retry', 'the card was renewed')).toMatchObject({
      outcome: 'retried',
    });
    await collectSecond(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: returned,
    });
  });

  it('a capture made by hand for less than the total, then every parcel lost: the failed order refunds what the provider kept', async () => {
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'capture',
      code: PaymentRejection.AUTHORISATION_EXPIRED,
    });
    // Picked up, then no scan again: lost once the no-scan window ends, and the order fails.
    const { orderId, handle, total } = await orderInStock({
      scenario: 'exception',
      policy: fastPolicy({ expireAfterNoScanMs: 8_000 }),
    });
    await waitForAttention(handle);
    stack.payments.state.faults.clear();
    const ref = await captureInDashboard(orderId, total - 500);
    await resolveCapture(handle, 'captured_by_hand', 'captured by hand, less a goodwill discount');
    expect(await handle.result()).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST' });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total - 500,
      amountRefunded: total - 500,
    });
  });

  it('a capture partly refunded in the dashboard, then every parcel lost: the failed order gives back what the provider still keeps', async () => {
    const { orderId, handle, total } = await orderInStock({
      scenario: 'exception',
      policy: fastPolicy({ expireAfterNoScanMs: 8_000 }),
    });
    const [captured] = await eventually(
      () => paymentRows(orderId),
      (rows) => rows[0]?.status === 'CAPTURED',
    );
    // Goodwill refunded by hand while the parcel was in trouble; Waybill does not hear of it.
    await createHttpPaymentProvider({ baseUrl: stack.payments.url, timeoutMs: 2_000 }).refund({
      idempotencyKey: `dashboard-goodwill-${orderId}`,
      providerRef: captured!.provider_ref!,
      amount: 500,
    });
    expect(await handle.result()).toMatchObject({
      status: 'FAILED',
      failureCode: 'SHIPMENT_LOST',
      attention: [],
    });
    expect(stack.payments.state.payment(captured!.provider_ref!)).toMatchObject({
      amountCaptured: total,
      amountRefunded: total,
    });
  });

  it('a resolve as captured_by_hand the provider contradicts (nothing captured there) is refused and the capture stays parked', async () => {
    const { orderId, handle, total } = await captureParkedAtPickup('delivered');
    await expectSettlementRefused(
      resolveCapture(handle, 'captured_by_hand', 'I think I captured it'),
      /no capture of payment .* \(it is AUTHORISED\)/,
    );
    expect(await handle.query(orderStateQuery)).toMatchObject({
      status: 'NEEDS_ATTENTION',
      captured: false,
      attention: [expect.objectContaining({ id: 'capture' })],
    });
    // The item stays open, with the refusal as its reason: on its row and on the order's.
    expect(await orderRow(orderId)).toMatchObject({
      status: 'NEEDS_ATTENTION',
      failure_message: expect.stringMatching(
        /^capture: resolve as captured_by_hand refused: .*no capture of payment/,
      ),
    });
    expect(await retryParkedCapture(handle, 'order-capture-settlement-refused-then-retried')).toMatchObject({
      status: 'DELIVERED',
      captured: true,
    });
    expect((await paymentRows(orderId))[0]).toMatchObject({ status: 'CAPTURED', amount_captured: total });
  });

  it('a parked capture resolved as not_charged: the authorisation is voided and a later pickup captures nothing', async () => {
    const { orderId, handle, sku, secondSku } = await captureParkedAtPickup('delivered', true);
    await parcelAt(orderId, 'DELIVERED');
    // The provider would take a capture again: nothing may ask it to.
    stack.payments.state.faults.clear();
    const captures = stack.payments.state.stats().calls.capture;
    const resolved = await resolveCapture(handle, 'not_charged', 'goodwill: the shopper is not charged');
    expect(resolved).toMatchObject({ outcome: 'resolved', order: { captured: false, attention: [] } });
    await collectSecond(orderId);
    const result = await handle.result();
    await recordHistory('order-capture-resolved-not-charged', handle);
    expect(result).toMatchObject({ status: 'DELIVERED', captured: false, attention: [] });
    expect((await paymentRows(orderId))[0]).toMatchObject({ status: 'VOIDED', amount_captured: 0 });
    expect(stack.payments.state.stats().calls.capture).toBe(captures);
    // Both parcels left: their stock is shipped.
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
    expect(await item(secondSku!)).toMatchObject({ on_hand: 3, reserved: 0 });
    expect(await auditActions(orderId)).toContain('order.attention_resolved');
  });

  it('a resolve as not_charged of a payment captured in the dashboard is refused: it names captured_by_hand', async () => {
    const { orderId, handle, total } = await captureParkedAtPickup('delivered');
    stack.payments.state.faults.clear();
    const ref = await captureInDashboard(orderId, total);
    await expectSettlementRefused(
      resolveCapture(handle, 'not_charged', 'waive it'),
      /was captured: resolve it as captured_by_hand/,
    );
    expect(
      await resolveCapture(handle, 'captured_by_hand', 'it was captured by hand after all'),
    ).toMatchObject({
      outcome: 'resolved',
    });
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
    expect(stack.payments.state.payment(ref)).toMatchObject({ amountCaptured: total, amountRefunded: 0 });
  });

  it('a resolve of a parked capture must say how it was settled, and only a capture takes a settlement', async () => {
    const { handle } = await captureParkedAtPickup('delivered');
    expect((await refusalOf(resolve(handle, 'capture', 'resolve', 'settled')))?.message).toMatch(
      /needs a settlement: captured_by_hand .* or not_charged/,
    );
    const retryWithSettlement = await refusalOf(
      handle.executeUpdate(resolveAttentionUpdate, {
        args: [
          {
            itemId: 'capture',
            action: 'retry',
            reason: 'again',
            settlement: 'not_charged',
            requestedBy: 'admin:ops',
          },
        ],
      }),
    );
    expect(retryWithSettlement?.message).toMatch(/settlement applies only to a resolve of a parked capture/);
    stack.payments.state.faults.clear();
    expect(await resolve(handle, 'capture', 'retry', 'card renewed')).toMatchObject({ outcome: 'retried' });
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: true });
  });

  it('a void the provider refuses for good is parked while the stock is still released; an admin retry voids it', async () => {
    const { orderId, handle, sku } = await confirmedOrder();
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'void',
      code: PaymentRejection.UNAUTHORISED,
    });

    const parked = await cancel(handle);
    expect(parked.status).toBe('NEEDS_ATTENTION');
    expect(parked.attention).toEqual([
      expect.objectContaining({ id: 'void_or_refund', step: 'void_or_refund' }),
    ]);
    expect(await item(sku)).toMatchObject({ on_hand: 5, reserved: 0 });
    expect((await shipments(orderId)).map((s) => s.status)).toEqual(['CANCELLED']);
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['AUTHORISED']);

    stack.payments.state.faults.clear();
    expect(await resolve(handle, 'void_or_refund', 'retry', 'API key rotated')).toMatchObject({
      outcome: 'retried',
    });
    await handle.result();
    expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
  });

  it('a void answered "already captured" (captured outside Waybill) becomes a full refund', async () => {
    const { orderId, handle, total } = await confirmedOrder();
    // Someone captured the payment in the provider's dashboard before the shopper cancelled.
    const ref = await captureInDashboard(orderId, total);

    const result = await cancel(handle);
    expect(result).toMatchObject({ status: 'CANCELLED', attention: [] });
    expect(stack.payments.state.payment(ref)).toMatchObject({
      amountCaptured: total,
      amountRefunded: total,
    });
  });

  it('a refund larger than the capture is refused: parked, the rest settles, and a retry refunds in full', async () => {
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'refund',
      code: PaymentRejection.AMOUNT_TOO_LARGE,
    });
    // Picked up, then lost (no scan again): the order fails and refunds in full.
    const { orderId, handle, total, sku } = await orderInStock({
      scenario: 'exception',
      policy: fastPolicy({ expireAfterNoScanMs: 1_500 }),
    });
    const parked = await waitForAttention(handle);
    expect(parked.attention).toEqual([expect.objectContaining({ id: 'void_or_refund' })]);
    await orderAt(orderId, 'NEEDS_ATTENTION');
    expect((await paymentRows(orderId))[0]).toMatchObject({ amount_captured: total, amount_refunded: 0 });

    stack.payments.state.faults.clear();
    expect(await resolve(handle, 'void_or_refund', 'retry', 'provider limit raised')).toMatchObject({
      outcome: 'retried',
    });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'FAILED', failureCode: 'SHIPMENT_LOST' });
    expect((await paymentRows(orderId))[0]).toMatchObject({ amount_captured: total, amount_refunded: total });
    // Lost after pickup: its stock stays shipped.
    expect(await item(sku)).toMatchObject({ on_hand: 4, reserved: 0 });
  });
});
