/**
 * The order saga with EasyParcel's real adapter against the courier simulator, whose EasyParcel
 * format is switched to the booking behaviours its docs do not rule out: a booking answered
 * without an AWB (given later by `shipment/details`), a repeated reference booked again, and
 * a booking whose answer is lost. The order ends with one booking or none, never two, and the
 * money ledger holds (checked after each test by useSagaStack). Real Temporal and Postgres.
 */
import { shipmentNumberOf } from '../../simulators/courier/formats/easyparcel';
import { CourierCode } from '../../src/couriers/types';
import {
  orderShipmentId,
  orderStateQuery,
  resolveAttentionUpdate,
  type OrderSnapshot,
} from '../../src/workflows/contract';
import { eventually } from '../support/eventually';
import { ADDRESS, useSagaStack } from '../support/saga';
import { uniqueId } from '../support/temporal';

jest.setTimeout(90_000);

describe('order saga: EasyParcel books a parcel at most once', () => {
  const stack = useSagaStack({ worker: { everyCourier: true } });
  const quirks = (set: Partial<typeof stack.couriers.backend.easyParcelBooking>) =>
    Object.assign(stack.couriers.backend.easyParcelBooking, {
      awbAfterLookups: 0,
      repeatBooksAgain: false,
      unreadableAnswers: 0,
      ...set,
    });
  const bookingsOf = (reference: string) =>
    stack.couriers.backend.list().filter((p) => p.format === 'easyparcel' && p.reference === reference);

  async function easyParcelOrder(scenario: string) {
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    const order = await stack.placeOrder({
      sku,
      quantity: 1,
      courier: CourierCode.EASYPARCEL,
      prebook: false,
      recipientName: `${ADDRESS.name} [scenario:${scenario}]`,
    });
    return { ...order, sku, reference: orderShipmentId(order.orderId, 1) };
  }

  it('a booking answered without an AWB, on a courier that books a repeated reference again, is one booking: delivered and paid once', async () => {
    quirks({ awbAfterLookups: 1, repeatBooksAgain: true });
    const { orderId, handle, reference } = await easyParcelOrder('delivered');

    const result = await handle.result();
    expect(result).toMatchObject({ status: 'DELIVERED' });
    const [booking] = bookingsOf(reference);
    expect(bookingsOf(reference)).toHaveLength(1);
    expect(await stack.shipments(orderId)).toEqual([
      expect.objectContaining({ courier: 'easyparcel', tracking_number: booking!.trackingNumber }),
    ]);
    expect((await stack.paymentRows(orderId)).map((p) => p.status)).toEqual(['CAPTURED']);
  });

  it('a booking whose AWB never comes is parked naming its shipment number and reference, and what to do', async () => {
    quirks({ awbAfterLookups: 1_000 });
    const sku = uniqueId('KETTLE');
    await stack.stock(sku, 5);
    const { handle, orderId } = await stack.placeOrder({
      sku,
      quantity: 1,
      courier: CourierCode.EASYPARCEL,
      prebook: false,
      recipientName: `${ADDRESS.name} [scenario:never_picked_up]`,
      bookingRetryWindowMs: 4_000,
      settleRetryWindowMs: 4_000,
    });
    const reference = orderShipmentId(orderId, 1);

    const parked = await eventually(
      () => handle.query(orderStateQuery),
      (s: OrderSnapshot) => s.attention.length > 0,
      60_000,
    );
    const [held] = bookingsOf(reference);
    expect(bookingsOf(reference)).toHaveLength(1);
    const shipmentNumber = shipmentNumberOf(held!.trackingNumber);
    expect(parked.attention).toEqual([
      expect.objectContaining({ id: `cancel_booking:${reference}`, step: 'cancel_booking' }),
    ]);
    const { reason } = parked.attention[0]!;
    expect(reason).toContain(
      `cancel shipment ${shipmentNumber} (reference ${reference}) in EasyParcel's dashboard`,
    );

    // The admin does as the reason says.
    expect(stack.couriers.backend.cancel('easyparcel', held!.trackingNumber)).toBe('cancelled');
    await handle.executeUpdate(resolveAttentionUpdate, {
      args: [
        {
          itemId: parked.attention[0]!.id,
          action: 'resolve',
          reason: `cancelled ${shipmentNumber} in the EasyParcel dashboard`,
          requestedBy: 'admin:ops',
        },
      ],
    });
    await handle.result();
    expect(await stack.orderRow(orderId)).toMatchObject({ status: 'FAILED' });
    expect((await stack.paymentRows(orderId)).map((p) => p.status)).toEqual(['VOIDED']);
  });

  it('a booking whose answer is lost is never submitted again: parked for an admin, who cancels it at EasyParcel', async () => {
    quirks({ unreadableAnswers: 1, repeatBooksAgain: true });
    const { handle, orderId, sku, reference } = await easyParcelOrder('never_picked_up');

    const parked = await eventually(
      () => handle.query(orderStateQuery),
      (s: OrderSnapshot) => s.attention.length > 0,
      30_000,
    );
    expect(parked.status).toBe('NEEDS_ATTENTION');
    expect(parked.attention).toEqual([
      expect.objectContaining({ id: `cancel_booking:${reference}`, step: 'cancel_booking' }),
    ]);
    expect(parked.attention[0]!.reason).toMatch(new RegExp(`may hold a booking of ${reference}`));
    // One booking at the courier, made by the first submit: the retry and the compensation sent none.
    const held = bookingsOf(reference);
    expect(held).toHaveLength(1);
    // The rest of the compensation runs on past the parked step: payment voided, stock released.
    await eventually(
      async () => [(await stack.paymentRows(orderId)).map((p) => p.status), (await stack.item(sku)).reserved],
      ([payments, reserved]) => JSON.stringify(payments) === '["VOIDED"]' && reserved === 0,
    );

    // The admin finds the reference in EasyParcel's shipment list, cancels it there, and says so.
    expect(stack.couriers.backend.cancel('easyparcel', held[0]!.trackingNumber)).toBe('cancelled');
    const resolved = await handle.executeUpdate(resolveAttentionUpdate, {
      args: [
        {
          itemId: parked.attention[0]!.id,
          action: 'resolve',
          reason: 'cancelled in the EasyParcel dashboard',
          requestedBy: 'admin:ops',
        },
      ],
    });
    expect(resolved).toMatchObject({ outcome: 'resolved' });
    await handle.result();
    expect(await stack.orderRow(orderId)).toMatchObject({ status: 'FAILED' });
    expect(bookingsOf(reference)).toHaveLength(1);
  });
});
