/**
 * The worker owns the poll policy: a shipment workflow started for an order placed through
 * the API runs on the `WAYBILL_POLL_*` settings of the worker, whatever the API's are.
 */
import { randomUUID } from 'node:crypto';
import {
  orderShipmentId,
  orderWorkflowId,
  RefreshSource,
  shipmentStateQuery,
  shipmentWorkflowId,
} from '../../src/workflows/contract';
import { eventually } from '../support/eventually';
import { parcelRow } from '../support/shipments';
import { ADDRESS } from '../support/shopper';
import { expectBooksBalance } from '../support/saga';
import { useStack } from '../support/stack';
import { refreshNowWithStart, uniqueId } from '../support/temporal';

jest.setTimeout(90_000);

const MINUTE = 60_000;
const POLLED = ['PENDING', 'INFO_RECEIVED', 'IN_TRANSIT', 'OUT_FOR_DELIVERY', 'AVAILABLE_FOR_PICKUP'];
/** Every status's poll interval set to `interval` (the statuses a parcel never collected can be in). */
const pollEvery = (interval: string) =>
  Object.fromEntries([...POLLED, 'ATTEMPT_FAIL', 'EXCEPTION'].map((s) => [`WAYBILL_POLL_${s}`, interval]));

describe('the poll policy of a shipment', () => {
  const orders: string[] = [];
  const stack = useStack({
    worker: { env: pollEvery('20m') },
    api: { env: pollEvery('6h') },
    afterEachTest: () => expectBooksBalance(stack, orders.splice(0)),
  });

  it("is the worker's: WAYBILL_POLL_* of the worker apply, not those of the API that took the order", async () => {
    const sku = uniqueId('SKU');
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, unit_amount: 4_990, location: 'main', currency: 'MYR' })
      .execute();
    const res = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { ...stack.api.customer('cus_policy'), 'idempotency-key': randomUUID() },
      payload: {
        email: 'aisyah@example.com',
        // Never collected: the parcel stays with a poll interval, polled once here.
        shippingAddress: { ...ADDRESS, name: `${ADDRESS.name} [scenario:never_picked_up]` },
        lines: [{ sku, quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
    });
    expect(res.statusCode).toBe(202);
    const orderId = res.json().orderId as string;
    orders.push(orderId);
    stack.started(stack.worker.client.workflow.getHandle(orderWorkflowId(orderId)));
    const shipment = stack.started(
      stack.worker.client.workflow.getHandle(shipmentWorkflowId(orderShipmentId(orderId, 1))),
    );

    const polled = await eventually(
      () => shipment.query(shipmentStateQuery).catch(() => null),
      (s) => s !== null && s.polls >= 1 && s.lastPolledAt !== null && s.nextPollAt !== null,
      60_000,
    );
    expect(POLLED).toContain(polled!.status);
    // The next poll is one worker interval (20 min) after the last, not the API's 6 h.
    const gap = Date.parse(polled!.nextPollAt!) - Date.parse(polled!.lastPolledAt!);
    expect(gap).toBeGreaterThanOrEqual(20 * MINUTE);
    expect(gap).toBeLessThan(25 * MINUTE);
    // And the read model the API serves says the same.
    await eventually(
      () =>
        stack.database.db
          .selectFrom('shipments')
          .select('next_poll_at')
          .where('id', '=', orderShipmentId(orderId, 1))
          .executeTakeFirst(),
      (row) => row?.next_poll_at?.toISOString() === polled!.nextPollAt,
    );
  });

  it('answers a refreshNow that reaches a run in its first workflow task, before the worker has said its policy', async () => {
    const { shipmentId, trackingNumber } = await parcelRow(stack, { scenario: 'never_picked_up' });
    // Started and asked in one call: the update reaches the run with its start, in its first
    // task, while the run still waits for the worker's poll policy (no policy pinned here).
    const { answer, handle } = await refreshNowWithStart(
      stack.worker,
      { shipmentId, trackingNumber },
      'customer',
    );
    stack.started(handle);
    expect(answer.source).toBe(RefreshSource.LIVE);
    expect(answer.snapshot).toMatchObject({ status: 'INFO_RECEIVED', polls: 1, finished: false });
  });
});
