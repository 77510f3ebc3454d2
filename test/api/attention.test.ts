/**
 * The admin routes for orders parked as NEEDS_ATTENTION, over the real stack: the list, a
 * retry that still fails, a resolve, and the refusals (customer token, unknown item, bad body).
 */
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
