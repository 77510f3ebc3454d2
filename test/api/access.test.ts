/**
 * The access matrix: every route the API serves, called by every kind of caller, against
 * the least-privilege table in docs/api.md. "in" means the route's own logic answered (any
 * status but 401/403); a guest left out gets 401 AUTH_REQUIRED, anyone else left out 403
 * FORBIDDEN. A route added without a row here fails the test.
 */
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { insertOrder } from '../../src/read-model/orders';
import { ADDRESS } from '../support/shopper';
import { useStack } from '../support/stack';

const CALLERS = ['guest', 'customer', 'support', 'ops', 'admin', 'admin key'] as const;
type Caller = (typeof CALLERS)[number];
type Outcome = 'in' | '401' | '403';

const ORDER = 'ord_access_1';
const NO_ORDER = 'ord_none';
const NO_SHIPMENT = 'shp_none';
const NO_ENDPOINT = 'wep_none';
const REASON = { reason: 'checking the access matrix' };

const anyone = CALLERS;
const signedIn: readonly Caller[] = ['customer', 'support', 'ops', 'admin', 'admin key'];
const support: readonly Caller[] = ['support', 'ops', 'admin', 'admin key'];
const ops: readonly Caller[] = ['ops', 'admin', 'admin key'];
const admin: readonly Caller[] = ['admin', 'admin key'];

/** Route (as the OpenAPI document names it) → the request sent, and who gets in. */
const MATRIX: Record<string, { request: () => InjectOptions; in: readonly Caller[] }> = {
  'GET /health/live': { request: () => ({ url: '/health/live' }), in: anyone },
  'GET /health/ready': { request: () => ({ url: '/health/ready' }), in: anyone },
  'GET /v1/tracking/{trackingNumber}': { request: () => ({ url: '/v1/tracking/SIM-NONE-1' }), in: anyone },
  'POST /v1/tracking/lookup': {
    request: () => ({
      method: 'POST',
      url: '/v1/tracking/lookup',
      payload: { orderNumber: 'WB-0', email: 'a@example.com' },
    }),
    in: anyone,
  },
  'POST /v1/orders': {
    request: () => ({
      method: 'POST',
      url: '/v1/orders',
      headers: { 'idempotency-key': randomUUID() },
      payload: {
        email: 'a@example.com',
        shippingAddress: { name: 'A', line1: 'B', city: 'C', postcode: '40000', country: 'MY' },
        lines: [{ sku: 'NO-SUCH-SKU', quantity: 1 }],
        payment: { token: 'tok_visa' },
      },
    }),
    in: anyone,
  },
  'GET /v1/orders/{orderId}': { request: () => ({ url: `/v1/orders/${ORDER}` }), in: signedIn },
  'GET /v1/orders/{orderId}/tracking': {
    request: () => ({ url: `/v1/orders/${ORDER}/tracking` }),
    in: signedIn,
  },
  'GET /v1/orders/{orderId}/tracking/stream': {
    request: () => ({ url: `/v1/orders/${NO_ORDER}/tracking/stream` }),
    in: signedIn,
  },
  'POST /v1/orders/{orderId}/cancel': {
    request: () => ({ method: 'POST', url: `/v1/orders/${ORDER}/cancel`, payload: {} }),
    in: ['customer'],
  },
  'GET /v1/admin/shipments': { request: () => ({ url: '/v1/admin/shipments' }), in: support },
  'POST /v1/admin/shipments/{shipmentId}/refresh': {
    request: () => ({ method: 'POST', url: `/v1/admin/shipments/${NO_SHIPMENT}/refresh` }),
    in: support,
  },
  'POST /v1/admin/shipments/refresh': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/shipments/refresh',
      payload: { shipmentIds: [NO_SHIPMENT] },
    }),
    in: ops,
  },
  'POST /v1/admin/orders/{orderId}/cancel': {
    request: () => ({ method: 'POST', url: `/v1/admin/orders/${ORDER}/cancel`, payload: REASON }),
    in: ops,
  },
  'POST /v1/admin/shipments/{shipmentId}/mark-delivered': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/shipments/${NO_SHIPMENT}/mark-delivered`,
      payload: REASON,
    }),
    in: ops,
  },
  'GET /v1/admin/attention': { request: () => ({ url: '/v1/admin/attention' }), in: ops },
  'POST /v1/admin/orders/{orderId}/attention/{itemId}': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/orders/${NO_ORDER}/attention/item_1`,
      payload: { action: 'resolve', ...REASON },
    }),
    in: ops,
  },
  'GET /v1/admin/stats': { request: () => ({ url: '/v1/admin/stats' }), in: ops },
  'GET /v1/admin/failed-work': { request: () => ({ url: '/v1/admin/failed-work?kind=sync_error' }), in: ops },
  'POST /v1/admin/failed-work/orders/{orderId}/retry-step': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/failed-work/orders/${NO_ORDER}/retry-step`,
      headers: { 'idempotency-key': randomUUID() },
      payload: { itemId: 'capture', ...REASON },
    }),
    in: ops,
  },
  'POST /v1/admin/failed-work/shipments/{shipmentId}/restart-tracking': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/failed-work/shipments/${NO_SHIPMENT}/restart-tracking`,
      headers: { 'idempotency-key': randomUUID() },
      payload: REASON,
    }),
    in: ops,
  },
  'POST /v1/admin/failed-work/orders/{orderId}/reset': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/failed-work/orders/${NO_ORDER}/reset`,
      headers: { 'idempotency-key': randomUUID() },
      payload: REASON,
    }),
    in: admin,
  },
  'POST /v1/admin/imports': {
    // An empty list: refused with 400 by the route, so nothing is started.
    request: () => ({ method: 'POST', url: '/v1/admin/imports', payload: { parcels: [] } }),
    in: admin,
  },
  'GET /v1/admin/imports/{importId}': { request: () => ({ url: '/v1/admin/imports/imp_none' }), in: admin },
  'POST /v1/admin/event-endpoints': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/event-endpoints',
      payload: { url: 'http://127.0.0.1:9/hooks', eventTypes: ['order.created'] },
    }),
    in: admin,
  },
  'GET /v1/admin/event-endpoints': { request: () => ({ url: '/v1/admin/event-endpoints' }), in: admin },
  'GET /v1/admin/event-endpoints/{endpointId}': {
    request: () => ({ url: `/v1/admin/event-endpoints/${NO_ENDPOINT}` }),
    in: admin,
  },
  'PATCH /v1/admin/event-endpoints/{endpointId}': {
    request: () => ({
      method: 'PATCH',
      url: `/v1/admin/event-endpoints/${NO_ENDPOINT}`,
      payload: { description: 'checking the access matrix' },
    }),
    in: admin,
  },
  'DELETE /v1/admin/event-endpoints/{endpointId}': {
    request: () => ({ method: 'DELETE', url: `/v1/admin/event-endpoints/${NO_ENDPOINT}` }),
    in: admin,
  },
  ...Object.fromEntries(
    ['disable', 'enable', 'rotate-secret'].map((action) => [
      `POST /v1/admin/event-endpoints/{endpointId}/${action}`,
      {
        request: (): InjectOptions => ({
          method: 'POST',
          url: `/v1/admin/event-endpoints/${NO_ENDPOINT}/${action}`,
          payload: REASON,
        }),
        in: admin,
      },
    ]),
  ),
  'GET /v1/admin/event-endpoints/{endpointId}/deliveries': {
    request: () => ({ url: `/v1/admin/event-endpoints/${NO_ENDPOINT}/deliveries` }),
    in: admin,
  },
  'GET /v1/admin/event-endpoints/{endpointId}/attempts': {
    request: () => ({ url: `/v1/admin/event-endpoints/${NO_ENDPOINT}/attempts` }),
    in: admin,
  },
  'POST /v1/admin/event-endpoints/{endpointId}/events/{eventId}/resend': {
    request: () => ({
      method: 'POST',
      url: `/v1/admin/event-endpoints/${NO_ENDPOINT}/events/order:none:PENDING:1/resend`,
      payload: REASON,
    }),
    in: admin,
  },
  'POST /v1/admin/orders/search': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/orders/search',
      payload: { orderNumber: 'WB-ACCESS-1' },
    }),
    in: support,
  },
  'POST /v1/admin/catalogue/skus': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/catalogue/skus',
      payload: { sku: 'SKU-1', name: 'Thing', warehouse: 'main', unitAmount: 100, currency: 'MYR' },
    }),
    in: ops,
  },
  'PATCH /v1/admin/catalogue/skus/{sku}': {
    request: () => ({
      method: 'PATCH',
      url: '/v1/admin/catalogue/skus/NO-SUCH-SKU',
      payload: { unitAmount: 100, ...REASON },
    }),
    in: ops,
  },
  'GET /v1/admin/stock': { request: () => ({ url: '/v1/admin/stock' }), in: support },
  'POST /v1/admin/stock/{sku}/receive': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/stock/NO-SUCH-SKU/receive',
      headers: { 'idempotency-key': randomUUID() },
      payload: { quantity: 1, ...REASON },
    }),
    in: ops,
  },
  'POST /v1/admin/stock/{sku}/adjust': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/stock/NO-SUCH-SKU/adjust',
      headers: { 'idempotency-key': randomUUID() },
      payload: { delta: -1, ...REASON },
    }),
    in: ops,
  },
  'GET /v1/admin/stock/alerts': { request: () => ({ url: '/v1/admin/stock/alerts' }), in: support },
  'POST /v1/admin/stock/alerts/{alertId}/acknowledge': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/stock/alerts/NO-SUCH-SKU:2026-01-01/acknowledge',
      payload: {},
    }),
    in: ops,
  },
  ...Object.fromEntries(
    ['deliveries', 'exceptions', 'courier-usage', 'orders'].map((kind) => [
      `GET /v1/admin/exports/${kind}`,
      { request: () => ({ url: `/v1/admin/exports/${kind}?from=2026-11-01&to=2026-11-30` }), in: ops },
    ]),
  ),
  // The own fleet: ops dispatch, only an admin issues and revokes drivers' tokens. Bodies
  // that are refused (400) or ids that do not exist (404): nothing is created.
  'POST /v1/admin/fleet/vehicles': {
    request: () => ({ method: 'POST', url: '/v1/admin/fleet/vehicles', payload: {} }),
    in: ops,
  },
  'GET /v1/admin/fleet/vehicles': { request: () => ({ url: '/v1/admin/fleet/vehicles' }), in: ops },
  'POST /v1/admin/fleet/drivers': {
    request: () => ({ method: 'POST', url: '/v1/admin/fleet/drivers', payload: {} }),
    in: ops,
  },
  'GET /v1/admin/fleet/drivers': { request: () => ({ url: '/v1/admin/fleet/drivers' }), in: ops },
  'POST /v1/admin/fleet/drivers/{driverId}/token': {
    request: () => ({ method: 'POST', url: '/v1/admin/fleet/drivers/drv_none/token' }),
    in: admin,
  },
  'DELETE /v1/admin/fleet/drivers/{driverId}/token': {
    request: () => ({ method: 'DELETE', url: '/v1/admin/fleet/drivers/drv_none/token' }),
    in: admin,
  },
  'POST /v1/admin/fleet/runs': {
    request: () => ({ method: 'POST', url: '/v1/admin/fleet/runs', payload: {} }),
    in: ops,
  },
  'GET /v1/admin/fleet/runs': { request: () => ({ url: '/v1/admin/fleet/runs' }), in: ops },
  'GET /v1/admin/fleet/runs/{runId}': { request: () => ({ url: '/v1/admin/fleet/runs/run_none' }), in: ops },
  'POST /v1/admin/fleet/runs/{runId}/parcels': {
    request: () => ({
      method: 'POST',
      url: '/v1/admin/fleet/runs/run_none/parcels',
      payload: { trackingNumbers: [] },
    }),
    in: ops,
  },
  'POST /v1/admin/fleet/runs/{runId}/close': {
    request: () => ({ method: 'POST', url: '/v1/admin/fleet/runs/run_none/close' }),
    in: ops,
  },
  'GET /v1/admin/fleet/queue': { request: () => ({ url: '/v1/admin/fleet/queue' }), in: ops },
};

/** The driver API takes a driver's own token: every other caller is refused without one. */
const DRIVER_ROUTES: Record<string, InjectOptions> = {
  'GET /v1/driver/run': { url: '/v1/driver/run' },
  'POST /v1/driver/reports': {
    method: 'POST',
    url: '/v1/driver/reports',
    payload: { reportId: 'r1', trackingNumber: 'FL000000000001', kind: 'PICKED_UP' },
  },
};

/** Signed by the courier's webhook secret, not by anyone's credentials: every caller is refused unsigned. */
const COURIER_SIGNED = 'POST /v1/webhooks/couriers/{courier}';
/** EasyParcel's own webhooks: the URL's token is the credential; without it, a 404 like an unknown route. */
const EASYPARCEL_NATIVE = 'POST /v1/webhooks/easyparcel/native';

describe('access matrix', () => {
  const stack = useStack({ worker: false, payments: false, api: {} });

  beforeAll(async () => {
    // A finished order of the customer: reads answer 200 and cancels answer without Temporal.
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku: 'SKU-1', name: 'Thing', on_hand: 5 })
      .execute();
    await insertOrder(stack.database.db, {
      id: ORDER,
      number: 'WB-ACCESS-1',
      customerId: 'cus_1',
      email: 'a@example.com',
      currency: 'MYR',
      courier: 'simulator',
      shippingAddress: ADDRESS,
      lines: [{ lineNo: 1, sku: 'SKU-1', name: 'Thing', quantity: 1, unitAmount: 100 }],
    });
    await stack.database.db
      .updateTable('orders')
      .set({ status: 'CANCELLED' })
      .where('id', '=', ORDER)
      .execute();
  });

  const credentials = (caller: Caller): Record<string, string> => {
    switch (caller) {
      case 'guest':
        return {};
      case 'customer':
        return stack.api.customer('cus_1');
      case 'admin key':
        return stack.api.adminKey();
      default:
        return stack.api.staff(caller, `${caller}-1`);
    }
  };

  it('lets each caller into exactly the routes of its role, on every route', async () => {
    expect(
      Object.keys(MATRIX).concat(COURIER_SIGNED, EASYPARCEL_NATIVE, Object.keys(DRIVER_ROUTES)).sort(),
    ).toEqual([...stack.api.app.waybillRoutes].sort());

    const expected: Record<string, Record<Caller, Outcome | string>> = {};
    const observed: Record<string, Record<Caller, Outcome | string>> = {};
    for (const [route, row] of Object.entries(MATRIX)) {
      expected[route] = {} as Record<Caller, Outcome>;
      observed[route] = {} as Record<Caller, Outcome | string>;
      for (const caller of CALLERS) {
        expected[route][caller] = row.in.includes(caller) ? 'in' : caller === 'guest' ? '401' : '403';
        const request = row.request();
        const res = await stack.api.app.inject({
          ...request,
          headers: { ...request.headers, ...credentials(caller) },
        });
        const code = res.statusCode === 401 || res.statusCode === 403 ? res.json().error.code : null;
        observed[route][caller] =
          res.statusCode === 401 && code === 'AUTH_REQUIRED'
            ? '401'
            : res.statusCode === 403 && code === 'FORBIDDEN'
              ? '403'
              : res.statusCode === 401 || res.statusCode === 403 || res.statusCode >= 500
                ? `${res.statusCode} ${res.body.slice(0, 120)}`
                : 'in';
      }
    }
    expect(observed).toEqual(expected);

    for (const caller of CALLERS) {
      const res = await stack.api.app.inject({
        method: 'POST',
        url: '/v1/webhooks/couriers/simulator',
        headers: credentials(caller),
        payload: { eventId: 'e1', trackingNumber: 'SIM-NONE-1', events: [] },
      });
      expect({ caller, status: res.statusCode, code: res.json().error.code }).toEqual({
        caller,
        status: 401,
        code: 'SIGNATURE_REQUIRED',
      });
      // No staff or customer credential opens EasyParcel's webhook route: only its URL token does.
      const native = await stack.api.app.inject({
        method: 'POST',
        url: '/v1/webhooks/easyparcel/native',
        headers: credentials(caller),
        payload: {},
      });
      expect({ caller, status: native.statusCode, code: native.json().error.code }).toEqual({
        caller,
        status: 404,
        code: 'NOT_FOUND',
      });
      for (const [route, request] of Object.entries(DRIVER_ROUTES)) {
        const res = await stack.api.app.inject({ ...request, headers: credentials(caller) });
        expect({ route, caller, status: res.statusCode, code: res.json().error.code }).toEqual({
          route,
          caller,
          status: 401,
          code: 'DRIVER_TOKEN_REQUIRED',
        });
      }
    }
  });
});
