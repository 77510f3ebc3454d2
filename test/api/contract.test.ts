/**
 * The HTTP contract: the OpenAPI document is a valid OpenAPI 3.1 document and lists exactly
 * the routes the server answers; and a table of bad inputs, each answered with the 4xx that
 * names the problem (never a 5xx), in the one error shape.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { useStack } from '../support/stack';

describe('HTTP contract', () => {
  const stack = useStack({ worker: false, payments: false, api: {} });

  it('serves a valid OpenAPI 3.1 document listing every route with its responses', async () => {
    const res = await stack.api.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);

    const documented = new Set<string>();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const served = new Set(stack.api.app.waybillRoutes);
    expect([...documented].sort()).toEqual([...served].sort());
    // Every documented operation declares its error responses in the one shape.
    for (const [path, operations] of Object.entries(
      doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>,
    )) {
      for (const [method, op] of Object.entries(operations)) {
        const codes = Object.keys(op.responses);
        expect({ route: `${method} ${path}`, has2xx: codes.some((c) => c.startsWith('2')) }).toEqual({
          route: `${method} ${path}`,
          has2xx: true,
        });
      }
    }
  });

  it('names every operation and says on every one who may call it, with schemes the document defines', async () => {
    const doc = (await stack.api.app.inject({ url: '/openapi.json' })).json();
    const schemes = Object.keys(doc.components.securitySchemes).sort();
    expect(schemes).toEqual(['adminApiKey', 'courierSignature', 'customerBearer', 'staffBearer']);
    const operations = Object.entries(
      doc.paths as Record<
        string,
        Record<string, { operationId?: string; security?: Record<string, string[]>[] }>
      >,
    ).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })),
    );
    const ids = operations.map(({ op }) => op.operationId);
    expect(ids.filter((id) => typeof id !== 'string' || !/^[a-z][A-Za-z]+$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);

    // Who may call what, as the document says it: [] = anonymous allowed.
    const who = Object.fromEntries(
      operations.map(({ route, op }) => [
        route,
        (op.security ?? []).map((requirement) => Object.keys(requirement).join('+') || 'anyone').join(' | '),
      ]),
    );
    const staff = 'staffBearer | adminApiKey';
    expect(who).toEqual({
      'GET /health/live': 'anyone',
      'GET /health/ready': 'anyone',
      'GET /v1/tracking/{trackingNumber}': 'anyone',
      'POST /v1/tracking/lookup': 'anyone',
      'POST /v1/orders': `anyone | customerBearer | ${staff}`,
      'GET /v1/orders/{orderId}': `customerBearer | ${staff}`,
      'GET /v1/orders/{orderId}/tracking': `customerBearer | ${staff}`,
      'GET /v1/orders/{orderId}/tracking/stream': `customerBearer | ${staff}`,
      'POST /v1/orders/{orderId}/cancel': `customerBearer | ${staff}`,
      'GET /v1/admin/shipments': staff,
      'GET /v1/admin/stats': staff,
      'POST /v1/admin/shipments/{shipmentId}/refresh': staff,
      'POST /v1/admin/shipments/refresh': staff,
      'POST /v1/admin/shipments/{shipmentId}/mark-delivered': staff,
      'POST /v1/admin/orders/{orderId}/cancel': staff,
      'GET /v1/admin/attention': staff,
      'GET /v1/admin/imports/{importId}': staff,
      'POST /v1/admin/orders/{orderId}/attention/{itemId}': staff,
      'GET /v1/admin/failed-work': staff,
      'POST /v1/admin/failed-work/orders/{orderId}/retry-step': staff,
      'POST /v1/admin/failed-work/shipments/{shipmentId}/restart-tracking': staff,
      'POST /v1/admin/failed-work/orders/{orderId}/reset': staff,
      'POST /v1/admin/imports': staff,
      'POST /v1/admin/orders/search': staff,
      'POST /v1/admin/catalogue/skus': staff,
      'PATCH /v1/admin/catalogue/skus/{sku}': staff,
      'GET /v1/admin/stock': staff,
      'POST /v1/admin/stock/{sku}/receive': staff,
      'POST /v1/admin/stock/{sku}/adjust': staff,
      'GET /v1/admin/stock/alerts': staff,
      'POST /v1/admin/stock/alerts/{alertId}/acknowledge': staff,
      'POST /v1/admin/event-endpoints': staff,
      'GET /v1/admin/event-endpoints': staff,
      'GET /v1/admin/event-endpoints/{endpointId}': staff,
      'PATCH /v1/admin/event-endpoints/{endpointId}': staff,
      'DELETE /v1/admin/event-endpoints/{endpointId}': staff,
      'POST /v1/admin/event-endpoints/{endpointId}/disable': staff,
      'POST /v1/admin/event-endpoints/{endpointId}/enable': staff,
      'POST /v1/admin/event-endpoints/{endpointId}/rotate-secret': staff,
      'GET /v1/admin/event-endpoints/{endpointId}/deliveries': staff,
      'GET /v1/admin/event-endpoints/{endpointId}/attempts': staff,
      'POST /v1/admin/event-endpoints/{endpointId}/events/{eventId}/resend': staff,
      'GET /v1/admin/exports/deliveries': staff,
      'GET /v1/admin/exports/exceptions': staff,
      'GET /v1/admin/exports/courier-usage': staff,
      'GET /v1/admin/exports/orders': staff,
      'POST /v1/webhooks/couriers/{courier}': 'courierSignature',
    });
    // Staff operations say which roles, and document the 403 the others get.
    const stats = doc.paths['/v1/admin/stats'].get;
    expect(stats.description).toContain('Staff with `stats:read`: ops, admin');
    expect(Object.keys(stats.responses)).toContain('403');
    expect(doc.paths['/v1/admin/orders/{orderId}/cancel'].post.description).toContain('ops, admin');
    // An export answers CSV, and says which roles may ask for it.
    const exportOrders = doc.paths['/v1/admin/exports/orders'].get;
    expect(Object.keys(exportOrders.responses['200'].content)).toEqual(['text/csv']);
    expect(exportOrders.description).toContain('Staff with `exports:read`: ops, admin');
  });

  const customer = () => stack.api.customer('cus_bad');
  const key = () => ({ 'idempotency-key': randomUUID() });
  const goodOrder = {
    email: 'a@example.com',
    shippingAddress: { name: 'A', line1: 'B', city: 'C', postcode: '40000', country: 'MY' },
    lines: [{ sku: 'SKU-1', quantity: 1 }],
    payment: { token: 'tok_visa' },
  };
  const huge = 'x'.repeat(70 * 1024);

  const cases: [string, () => InjectOptions, number, string | RegExp][] = [
    ['unknown route', () => ({ url: '/v1/nope' }), 404, 'NOT_FOUND'],
    [
      'order id with SQL in it',
      () => ({ url: "/v1/orders/1'%20or%20'1'='1", headers: customer() }),
      400,
      /orderId/,
    ],
    [
      'order id too long',
      () => ({ url: `/v1/orders/${'a'.repeat(65)}`, headers: customer() }),
      400,
      /orderId/,
    ],
    [
      'tracking number with a slash-like payload',
      () => ({ url: '/v1/tracking/..%2F..%2Fetc' }),
      400,
      /trackingNumber/,
    ],
    ['tracking number too short', () => ({ url: '/v1/tracking/AB' }), 400, /trackingNumber/],
    [
      'refresh that is not a boolean',
      () => ({ url: '/v1/orders/ord_x/tracking?refresh=maybe', headers: customer() }),
      400,
      /refresh/,
    ],
    [
      'unknown query parameter',
      () => ({ url: '/v1/orders/ord_x/tracking?drop=table', headers: customer() }),
      400,
      /drop|additional/i,
    ],
    [
      'malformed bearer header',
      () => ({ url: '/v1/orders/ord_x', headers: { authorization: 'Bearer not-a-jwt' } }),
      401,
      'INVALID_TOKEN',
    ],
    [
      'basic auth instead of bearer',
      () => ({ url: '/v1/orders/ord_x', headers: { authorization: 'Basic YTpi' } }),
      401,
      'INVALID_TOKEN',
    ],
    [
      'API key and bearer together',
      () => ({ url: '/v1/orders/ord_x', headers: { ...customer(), 'x-api-key': 'k' } }),
      400,
      'AMBIGUOUS_CREDENTIALS',
    ],
    [
      'order without Idempotency-Key',
      () => ({ method: 'POST', url: '/v1/orders', payload: goodOrder }),
      400,
      /idempotency-key/,
    ],
    [
      'Idempotency-Key too short',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: goodOrder,
        headers: { 'idempotency-key': 'abc' },
      }),
      400,
      /idempotency-key/,
    ],
    [
      'order body that is not JSON',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: '{"email":',
        headers: { ...key(), 'content-type': 'application/json' },
      }),
      400,
      'INVALID_JSON',
    ],
    [
      'order body as form data',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: 'email=a',
        headers: { ...key(), 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'order body over 64 KiB',
      () => ({ method: 'POST', url: '/v1/orders', payload: { ...goodOrder, email: huge }, headers: key() }),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'order with an unknown field',
      () => ({ method: 'POST', url: '/v1/orders', payload: { ...goodOrder, price: 0 }, headers: key() }),
      400,
      /additional|price/i,
    ],
    [
      'order with no lines',
      () => ({ method: 'POST', url: '/v1/orders', payload: { ...goodOrder, lines: [] }, headers: key() }),
      400,
      /lines/,
    ],
    [
      'order with a negative quantity',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, lines: [{ sku: 'SKU-1', quantity: -1 }] },
        headers: key(),
      }),
      400,
      /quantity/,
    ],
    [
      'order with a fractional quantity',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, lines: [{ sku: 'SKU-1', quantity: 1.5 }] },
        headers: key(),
      }),
      400,
      /quantity/,
    ],
    [
      'order with a SQL-looking sku',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, lines: [{ sku: "x'; drop table orders;--", quantity: 1 }] },
        headers: key(),
      }),
      400,
      /sku/,
    ],
    [
      'order with the same sku twice',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: {
          ...goodOrder,
          lines: [
            { sku: 'SKU-1', quantity: 1 },
            { sku: 'SKU-1', quantity: 2 },
          ],
        },
        headers: key(),
      }),
      400,
      'DUPLICATE_SKU',
    ],
    [
      'order with a card number instead of a token',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, payment: { number: '4242424242424242' } },
        headers: key(),
      }),
      400,
      /payment/,
    ],
    [
      'order with a bad email',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, email: 'not-an-email' },
        headers: key(),
      }),
      400,
      /email/,
    ],
    [
      'order with a three-letter country',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, shippingAddress: { ...goodOrder.shippingAddress, country: 'MYS' } },
        headers: key(),
      }),
      400,
      /country/,
    ],
    [
      'order with an unknown courier',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, courier: 'pigeon' },
        headers: key(),
      }),
      400,
      /courier/,
    ],
    [
      'guest lookup without proof',
      () => ({ method: 'POST', url: '/v1/tracking/lookup', payload: { orderNumber: 'WB-100001' } }),
      400,
      'PROOF_REQUIRED',
    ],
    [
      'guest lookup with both proofs',
      () => ({
        method: 'POST',
        url: '/v1/tracking/lookup',
        payload: { orderNumber: 'WB-100001', email: 'a@b.c', postcode: '40000' },
      }),
      400,
      'PROOF_REQUIRED',
    ],
    [
      'cancel with an unknown field',
      () => ({
        method: 'POST',
        url: '/v1/orders/ord_x/cancel',
        payload: { reason: 'x', refund: true },
        headers: customer(),
      }),
      400,
      /additional|refund/i,
    ],
    [
      'cancel with a list as its reason (bodies are not coerced)',
      () => ({
        method: 'POST',
        url: '/v1/orders/ord_x/cancel',
        payload: { reason: ['a'] },
        headers: customer(),
      }),
      400,
      /reason/,
    ],
    [
      'order with a quantity sent as text (bodies are not coerced)',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: { ...goodOrder, lines: [{ sku: 'SKU-1', quantity: '2' }] },
        headers: key(),
      }),
      400,
      /quantity/,
    ],
    [
      'an admin route without credentials and with a bad body (credentials are checked first)',
      () => ({ method: 'POST', url: '/v1/admin/orders/ord_x/cancel', payload: { nonsense: 1 } }),
      401,
      'AUTH_REQUIRED',
    ],
    [
      'cancel with an empty reason',
      () => ({
        method: 'POST',
        url: '/v1/orders/ord_x/cancel',
        payload: { reason: '' },
        headers: customer(),
      }),
      400,
      /reason/,
    ],
    [
      'a path parameter longer than the router takes (router error)',
      () => ({ url: `/v1/orders/${'a'.repeat(101)}`, headers: customer() }),
      414,
      'URI_TOO_LONG',
    ],
    [
      'a very long tracking number (router error, no credentials needed)',
      () => ({ url: `/v1/tracking/${'A'.repeat(5000)}` }),
      414,
      'URI_TOO_LONG',
    ],
    [
      'a path parameter whose percent-encoding does not decode (router error)',
      () => ({ url: '/v1/tracking/%E0%A4%A' }),
      400,
      'BAD_URL',
    ],
    [
      'a webhook courier name with odd bytes',
      () => ({ method: 'POST', url: '/v1/webhooks/couriers/%00%FF', payload: {} }),
      400,
      /BAD_URL|courier/,
    ],
    [
      'an empty JSON body',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: '',
        headers: { ...key(), 'content-type': 'application/json' },
      }),
      400,
      'EMPTY_BODY',
    ],
    [
      'a JSON body with a __proto__ key',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: '{"__proto__":{"admin":true}}',
        headers: { ...key(), 'content-type': 'application/json' },
      }),
      400,
      /proto|INVALID_JSON|BAD_REQUEST/i,
    ],
    [
      'a body shorter than its Content-Length',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: '{}',
        headers: { ...key(), 'content-type': 'application/json', 'content-length': '10' },
      }),
      400,
      'INVALID_CONTENT_LENGTH',
    ],
    [
      'a body with a Content-Type that does not parse',
      () => ({
        method: 'POST',
        url: '/v1/orders',
        payload: '{}',
        headers: { ...key(), 'content-type': ';;;' },
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a body as text/plain',
      () => ({
        method: 'POST',
        url: '/v1/tracking/lookup',
        payload: 'WB-100001',
        headers: { 'content-type': 'text/plain' },
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a tracking number with a null byte',
      () => ({ url: '/v1/tracking/EP10%0000001' }),
      400,
      'VALIDATION_FAILED',
    ],
    [
      'a tracking number with a percent-encoded slash',
      () => ({ url: '/v1/tracking/EP10%2F..%2F00001' }),
      400,
      'VALIDATION_FAILED',
    ],
    [
      'a tracking number in unicode',
      () => ({ url: `/v1/tracking/${encodeURIComponent('ÉP١٢٣٤😀')}` }),
      400,
      'VALIDATION_FAILED',
    ],
    [
      'an order id of 101 multi-byte characters',
      () => ({ url: `/v1/orders/${encodeURIComponent('é'.repeat(101))}`, headers: customer() }),
      414,
      'URI_TOO_LONG',
    ],
    [
      'a query string that does not decode',
      () => ({ url: '/v1/admin/shipments?status=%E0%A4%A', headers: stack.api.admin() }),
      400,
      'VALIDATION_FAILED',
    ],
    [
      'method not allowed on a route',
      () => ({ method: 'DELETE', url: '/v1/orders/ord_x', headers: customer() }),
      404,
      'NOT_FOUND',
    ],
  ];

  it.each(cases.map(([name, request, status, expected]) => [name, status, expected, request] as const))(
    '%s → %i naming the problem',
    async (_name, status, expected, request) => {
      const res = await stack.api.app.inject(request());
      expect(res.statusCode).toBe(status);
      const body = res.json();
      expect(Object.keys(body)).toEqual(['error']);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
      if (typeof expected === 'string') expect(body.error.code).toBe(expected);
      else expect(`${body.error.code} ${body.error.message}`).toMatch(expected);
      // Our words, not the framework's: no FST_ codes, no Fastify sentences.
      expect(`${body.error.code} ${body.error.message}`).not.toMatch(
        /FST_|content-type is set to|Request body|Unsupported Media Type/,
      );
    },
  );

  describe('requests the HTTP parser refuses (before any route or hook)', () => {
    /** Sends raw bytes to the listening API and reads the answer until it closes the connection. */
    async function raw(bytes: string): Promise<{ status: number; body: unknown }> {
      const address = stack.api.app.server.address() as AddressInfo;
      const text = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(address.port, '127.0.0.1', () => socket.write(bytes));
        let received = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (received += chunk));
        socket.on('close', () => resolve(received));
        socket.on('error', (err) => (received ? resolve(received) : reject(err)));
      });
      const [head, body] = text.split('\r\n\r\n');
      return {
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]),
        body: JSON.parse(body ?? 'null'),
      };
    }

    beforeAll(async () => {
      await stack.api.app.listen({ host: '127.0.0.1', port: 0 });
    });

    it.each([
      [
        'a malformed header line',
        400,
        'BAD_REQUEST',
        'GET /health/live HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n',
      ],
      [
        'headers over the size limit',
        431,
        'HEADERS_TOO_LARGE',
        `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      ],
      ['a request line that is not HTTP', 400, 'BAD_REQUEST', 'HELLO\r\n\r\n'],
    ] as const)('%s → %i in the one error shape', async (_name, status, code, bytes) => {
      const answer = await raw(bytes);
      expect(answer).toEqual({ status, body: { error: { code, message: expect.any(String) } } });
    });
  });

  it('writes nothing for rejected requests', async () => {
    for (const [, request] of cases) await stack.api.app.inject(request());
    const orders = await stack.database.db.selectFrom('orders').select('id').execute();
    const keys = await stack.database.db.selectFrom('api_idempotency_keys').select('key').execute();
    expect({ orders, keys }).toEqual({ orders: [], keys: [] });
  });
});
