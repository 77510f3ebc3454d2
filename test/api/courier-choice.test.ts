/**
 * The server chooses each parcel's courier from the warehouse it ships from
 * (WAYBILL_COURIER_BY_WAREHOUSE, else WAYBILL_DEFAULT_COURIER); a customer cannot. Real
 * API, worker and Temporal, Postgres, both simulators over HTTP; the simulator speaks the
 * EasyParcel and Blue Dart formats to those couriers' real adapters.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkLedger } from '../../devstack/ledger';
import { sha256Hex } from '../../src/config';
import { orderWorkflowId } from '../../src/workflows/contract';
import { eventually } from '../support/eventually';
import { ADDRESS } from '../support/shopper';
import { useStack } from '../support/stack';
import { fastPolicy, uniqueId } from '../support/temporal';

jest.setTimeout(120_000);

describe('who chooses the courier', () => {
  /** A payload key of our own (production refuses the development one), held by the API and the worker. */
  const PAYLOAD_KEYS = `prod-1:${randomBytes(32).toString('base64')}`;
  const stack = useStack({
    worker: { everyCourier: true, env: { WAYBILL_PAYLOAD_KEYS: PAYLOAD_KEYS }, pollPolicy: fastPolicy() },
    // Production settings, as a shop runs it.
    api: {
      env: {
        WAYBILL_ENV: 'production',
        WAYBILL_JWT_SECRET: 'a-production-secret-of-our-own-0123456789',
        WAYBILL_ADMIN_API_KEY_SHA256: sha256Hex('an-admin-key-of-our-own'),
        WAYBILL_COURIER_BY_WAREHOUSE: 'wh-kl:easyparcel, wh-del:bluedart',
        WAYBILL_DEFAULT_COURIER: 'simulator',
        WAYBILL_PAYLOAD_KEYS: PAYLOAD_KEYS,
      },
    },
  });

  async function stock(location: string): Promise<string> {
    const sku = uniqueId('SKU');
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku, name: `Kettle ${sku}`, on_hand: 10, unit_amount: 2_500, location, currency: 'MYR' })
      .execute();
    return sku;
  }

  const order = (skus: string[], extra: Record<string, unknown> = {}) => ({
    email: 'aisyah@example.com',
    shippingAddress: { ...ADDRESS, name: `${ADDRESS.name} [scenario:delivered]` },
    lines: skus.map((sku) => ({ sku, quantity: 1 })),
    payment: { token: 'tok_visa' },
    ...extra,
  });

  it.each([
    ['a signed-in customer', () => stack.api.customer('cus_chooser')],
    ['a guest', () => ({})],
  ])('%s cannot choose the courier: 400 naming body.courier, nothing stored', async (_who, credentials) => {
    const sku = await stock('wh-kl');
    for (const courier of ['simulator', 'bluedart']) {
      const res = await stack.api.app.inject({
        method: 'POST',
        url: '/v1/orders',
        payload: order([sku], { courier }),
        headers: { ...credentials(), 'idempotency-key': randomUUID() },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toEqual({
        code: 'COURIER_NOT_CHOOSABLE',
        message: expect.stringContaining('body.courier'),
      });
    }
    const stored = await stack.database.db.selectFrom('orders').select('id').execute();
    const keys = await stack.database.db.selectFrom('api_idempotency_keys').select('key').execute();
    expect({ stored, keys }).toEqual({ stored: [], keys: [] });
  });

  it("books each parcel with its warehouse's courier, and the saga runs to DELIVERED with the money right", async () => {
    const [kl, del, main] = [await stock('wh-kl'), await stock('wh-del'), await stock('main')];
    const res = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      payload: order([del, kl, main]),
      headers: { ...stack.api.customer('cus_mapped'), 'idempotency-key': randomUUID() },
    });
    expect(res.statusCode).toBe(202);
    const { orderId } = res.json();
    stack.started(stack.worker.client.workflow.getHandle(orderWorkflowId(orderId)));

    const status = await eventually(
      async () =>
        (
          await stack.database.db
            .selectFrom('orders')
            .select('status')
            .where('id', '=', orderId)
            .executeTakeFirst()
        )?.status,
      (s) => s === 'DELIVERED',
      90_000,
    );
    expect(status).toBe('DELIVERED');

    const parcels = await stack.database.db
      .selectFrom('shipments as s')
      .innerJoin('order_items as i', 'i.shipment_id', 's.id')
      .select(['i.sku', 's.courier', 's.status', 's.tracking_number'])
      .where('s.order_id', '=', orderId)
      .orderBy('i.line_no')
      .execute();
    expect(parcels).toEqual([
      { sku: del, courier: 'bluedart', status: 'DELIVERED', tracking_number: expect.any(String) },
      { sku: kl, courier: 'easyparcel', status: 'DELIVERED', tracking_number: expect.any(String) },
      { sku: main, courier: 'simulator', status: 'DELIVERED', tracking_number: expect.any(String) },
    ]);
    // The order records the courier of its first parcel; each shipment names its own.
    const view = await stack.api.app.inject({
      url: `/v1/orders/${orderId}`,
      headers: stack.api.customer('cus_mapped'),
    });
    expect(view.json()).toMatchObject({
      courier: 'bluedart',
      shipments: expect.arrayContaining([
        expect.objectContaining({ courier: 'easyparcel' }),
        expect.objectContaining({ courier: 'bluedart' }),
        expect.objectContaining({ courier: 'simulator' }),
      ]),
    });

    const ledger = await checkLedger({
      db: stack.database.db,
      payments: stack.payments,
      courier: stack.couriers,
      orderIds: [orderId],
    });
    expect(ledger.violations).toEqual([]);
  });
});
