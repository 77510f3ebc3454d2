/**
 * The admin routes for orders parked as NEEDS_ATTENTION, over the real stack: the list, a
 * retry that still fails, a resolve, and the refusals (customer token, unknown item, bad body).
 */
import { PaymentRejection } from '../../src/payments/types';
import { insertOrderRow } from '../support/db';
import { useSagaStack } from '../support/saga';

jest.setTimeout(90_000);

describe('admin attention routes', () => {
  const stack = useSagaStack({ api: { env: { WAYBILL_LOG_LEVEL: 'error' } } });

  it('lists a parked cancel, keeps it open on a failed retry, resolves it with a reason, and refuses what is not open', async () => {
    const { orderId, handle, shipment, itemId } = await stack.parkedCancel();

    const customer = await stack.api.app.inject({
      url: '/v1/admin/attention',
      headers: stack.api.customer('cus_1'),
    });
    expect(customer.statusCode).toBe(403);

    const list = await stack.api.app.inject({
      url: '/v1/admin/attention?limit=200',
      headers: stack.api.admin(),
    });
    expect(list.statusCode).toBe(200);
    const mine = list.json().items.filter((i: { orderId: string }) => i.orderId === orderId);
    expect(mine).toEqual([
      expect.objectContaining({
        orderId,
        itemId,
        step: 'cancel_booking',
        status: 'OPEN',
        orderStatus: 'NEEDS_ATTENTION',
        closedAt: null,
      }),
    ]);
    expect(mine[0].reason).toMatch(/400/);

    const action = (body: object, id = itemId) =>
      stack.api.app.inject({
        method: 'POST',
        url: `/v1/admin/orders/${orderId}/attention/${encodeURIComponent(id)}`,
        headers: stack.api.admin('bob'),
        payload: body,
      });

    const badBody = await action({ action: 'shrug', reason: 'because' });
    expect(badBody.statusCode).toBe(400);
    expect(badBody.json().error.message).toMatch(/action/);

    const settled = await action({ action: 'resolve', reason: 'by phone', settlement: 'not_charged' });
    expect(settled.statusCode).toBe(400);
    expect(settled.json().error.code).toBe('SETTLEMENT_INVALID');
    expect(settled.json().error.message).toMatch(/applies only to a parked capture .* is a cancel_booking/);

    const retried = await action({ action: 'retry', reason: 'try once more' });
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({
      outcome: 'still_failing',
      orderStatus: 'NEEDS_ATTENTION',
      openItems: [itemId],
    });

    const unknown = await action({ action: 'resolve', reason: 'done by phone' }, 'capture');
    expect(unknown.statusCode).toBe(409);
    expect(unknown.json().error).toMatchObject({ code: 'NOT_OPEN' });
    expect(unknown.json().error.message).toContain(itemId);

    // The admin cancels the booking by phone (here: at the simulator), then says so.
    expect(stack.couriers.backend.cancel('native', shipment.tracking_number)).toBe('cancelled');
    const resolved = await action({ action: 'resolve', reason: 'cancelled by phone with the courier' });
    expect(resolved.statusCode).toBe(200);
    expect(resolved.json()).toMatchObject({ outcome: 'resolved', orderStatus: 'CANCELLED', openItems: [] });
    await handle.result();

    const closed = await stack.api.app.inject({
      url: '/v1/admin/attention?status=RESOLVED&limit=200',
      headers: stack.api.admin(),
    });
    expect(closed.json().items.filter((i: { orderId: string }) => i.orderId === orderId)).toEqual([
      expect.objectContaining({
        itemId,
        status: 'RESOLVED',
        closedBy: 'admin:bob',
        resolution: 'cancelled by phone with the courier',
      }),
    ]);
    const again = await action({ action: 'resolve', reason: 'twice' });
    expect(again.statusCode).toBe(409);
    expect((await stack.orderRow(orderId)).status).toBe('CANCELLED');
  });

  it('a parked capture: a resolve must say how it was settled, is refused when the provider contradicts it, and a waived charge is listed as such', async () => {
    stack.payments.state.faults.set({
      kind: 'reject',
      operation: 'capture',
      code: PaymentRejection.AUTHORISATION_EXPIRED,
    });
    const { orderId, handle } = await stack.orderInStock({ scenario: 'delivered' });
    await stack.orderAt(orderId, 'NEEDS_ATTENTION');
    stack.payments.state.faults.clear();
    const action = (body: object) =>
      stack.api.app.inject({
        method: 'POST',
        url: `/v1/admin/orders/${orderId}/attention/capture`,
        headers: stack.api.admin('bob'),
        payload: body,
      });

    const unsaid = await action({ action: 'resolve', reason: 'sorted' });
    expect(unsaid.statusCode).toBe(400);
    expect(unsaid.json().error).toMatchObject({
      code: 'SETTLEMENT_REQUIRED',
      message: expect.stringMatching(/^body\/settlement: .*captured_by_hand or not_charged/),
    });
    const onRetry = await action({ action: 'retry', reason: 'again', settlement: 'not_charged' });
    expect(onRetry.statusCode).toBe(400);
    expect(onRetry.json().error.code).toBe('SETTLEMENT_INVALID');
    const unknown = await action({ action: 'resolve', reason: 'paid in cash', settlement: 'paid_in_cash' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.message).toMatch(/settlement/);

    // Nothing was captured in the dashboard: the provider's books say so.
    const contradicted = await action({
      action: 'resolve',
      reason: 'captured it',
      settlement: 'captured_by_hand',
    });
    expect(contradicted.statusCode).toBe(409);
    expect(contradicted.json().error).toMatchObject({
      code: 'SETTLEMENT_REFUSED',
      message: expect.stringMatching(/no capture of payment .* \(it is AUTHORISED\)/),
    });
    // The refusal is on the item for the next admin to read.
    const open = await stack.api.app.inject({
      url: '/v1/admin/attention?limit=200',
      headers: stack.api.admin(),
    });
    expect(open.json().items.filter((i: { orderId: string }) => i.orderId === orderId)).toEqual([
      expect.objectContaining({
        itemId: 'capture',
        status: 'OPEN',
        reason: expect.stringMatching(/^resolve as captured_by_hand refused: the provider holds no capture/),
      }),
    ]);

    const waived = await action({ action: 'resolve', reason: 'goodwill', settlement: 'not_charged' });
    expect(waived.statusCode).toBe(200);
    expect(waived.json()).toMatchObject({ outcome: 'resolved', openItems: [] });
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', captured: false });
    const closed = await stack.api.app.inject({
      url: '/v1/admin/attention?status=RESOLVED&limit=200',
      headers: stack.api.admin(),
    });
    expect(closed.json().items.filter((i: { orderId: string }) => i.orderId === orderId)).toEqual([
      expect.objectContaining({ itemId: 'capture', settlement: 'not_charged', resolution: 'goodwill' }),
    ]);
    expect((await stack.paymentRows(orderId))[0]).toMatchObject({ status: 'VOIDED', amount_captured: 0 });
  });

  it('an order with no workflow left that never settled is for a person, not "finished"', async () => {
    // Its workflow is gone (past Temporal's retention, or it never ran) while the order is not final.
    const orderId = await insertOrderRow(stack.database.db, {
      customerId: 'cus_gone',
      row: { status: 'NEEDS_ATTENTION' },
    });
    const res = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/admin/orders/${orderId}/attention/capture`,
      headers: stack.api.admin('bob'),
      payload: { action: 'resolve', reason: 'settled by phone' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({
      code: 'ORDER_STOPPED',
      message: expect.stringContaining('is NEEDS_ATTENTION with no workflow left'),
    });
  });
});
