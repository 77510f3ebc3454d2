/**
 * The catalogue and stock routes on real Postgres through the real API: skus created and
 * changed, stock received and adjusted (audited, never below what orders hold, a reference
 * applied once, an Idempotency-Key retry answered from the first), stock levels in pages, low-stock alerts listed and acknowledged, and the
 * 4xx answers for what a caller gets wrong.
 */
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { reserveStock } from '../../src/read-model/inventory';
import { newOrder, uniqueId } from '../inventory/fixtures';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };

describe('catalogue and stock through the API', () => {
  const stack = useStack({ payments: false, worker: false, api: { env: QUIET } });
  const db = () => stack.database.db;
  const as = (role: 'ops' | 'support' | 'admin') => stack.api.staff(role, `${role}-sam`);
  // A fresh Idempotency-Key per call (stock changes require one) unless the test gives its own.
  const call = (opts: InjectOptions, role: 'ops' | 'support' | 'admin' = 'ops') =>
    stack.api.app.inject({
      ...opts,
      headers: { 'idempotency-key': randomUUID(), ...opts.headers, ...as(role) },
    });
  const post = (url: string, payload: object, role?: 'ops' | 'support' | 'admin') =>
    call({ method: 'POST', url, payload }, role);
  const get = (url: string, role?: 'ops' | 'support' | 'admin') => call({ method: 'GET', url }, role);

  async function newSku(opts: { warehouse?: string; threshold?: number; onHand?: number } = {}) {
    const sku = uniqueId('CAT').toUpperCase();
    const res = await post('/v1/admin/catalogue/skus', {
      sku,
      name: `Teapot ${sku}`,
      warehouse: opts.warehouse ?? 'main',
      unitAmount: 2_990,
      currency: 'MYR',
      lowStockThreshold: opts.threshold ?? 0,
    });
    expect(res.statusCode).toBe(201);
    if (opts.onHand) {
      const received = await post(`/v1/admin/stock/${sku}/receive`, {
        quantity: opts.onHand,
        reason: 'first delivery',
      });
      expect(received.statusCode).toBe(200);
    }
    return sku;
  }
  const auditOf = (sku: string) =>
    db()
      .selectFrom('audit_log')
      .select(['actor', 'action', 'reason', 'details'])
      .where('subject_type', '=', 'sku')
      .where('subject_id', '=', sku)
      .orderBy('id')
      .execute();

  it('creates a sku with nothing on hand, refuses it twice, and changes its price with a reason, audited before and after', async () => {
    const sku = await newSku();
    const again = await post('/v1/admin/catalogue/skus', {
      sku,
      name: 'Other',
      warehouse: 'main',
      unitAmount: 1,
      currency: 'MYR',
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('SKU_EXISTS');

    const changed = await call({
      method: 'PATCH',
      url: `/v1/admin/catalogue/skus/${sku}`,
      payload: { unitAmount: 3_490, lowStockThreshold: 5, reason: 'new price list' },
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({
      sku,
      unitAmount: 3_490,
      currency: 'MYR',
      lowStockThreshold: 5,
      onHand: 0,
      reserved: 0,
      available: 0,
      low: true,
    });
    expect(await auditOf(sku)).toEqual([
      {
        actor: 'ops:ops-sam',
        action: 'sku.create',
        reason: null,
        details: {
          after: {
            name: `Teapot ${sku}`,
            warehouse: 'main',
            unitAmount: 2_990,
            currency: 'MYR',
            lowStockThreshold: 0,
          },
        },
      },
      {
        actor: 'ops:ops-sam',
        action: 'sku.update',
        reason: 'new price list',
        details: {
          before: { unitAmount: 2_990, lowStockThreshold: 0 },
          after: { unitAmount: 3_490, lowStockThreshold: 5 },
        },
      },
    ]);
    // The price is the one new orders are priced from.
    const row = await db()
      .selectFrom('inventory_items')
      .selectAll()
      .where('sku', '=', sku)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ unit_amount: 3_490, low_stock_threshold: 5, location: 'main' });
  });

  it('receives stock once per reference and audits who, why, before and after', async () => {
    const sku = await newSku();
    const first = await post(`/v1/admin/stock/${sku}/receive`, {
      quantity: 12,
      reason: 'delivery from the supplier',
      reference: 'GRN-2026-0042',
    });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      outcome: 'changed',
      change: {
        kind: 'receive',
        delta: 12,
        before: { onHand: 0, reserved: 0, available: 0 },
        after: { onHand: 12, reserved: 0, available: 12 },
      },
      level: { onHand: 12, available: 12 },
    });
    const retry = await post(`/v1/admin/stock/${sku}/receive`, {
      quantity: 12,
      reason: 'delivery from the supplier',
      reference: 'GRN-2026-0042',
    });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toMatchObject({
      outcome: 'duplicate',
      change: { kind: 'receive', delta: 12, after: { onHand: 12 } },
      level: { onHand: 12 },
    });
    const entries = (await auditOf(sku)).filter((e) => e.action === 'stock.receive');
    expect(entries).toEqual([
      {
        actor: 'ops:ops-sam',
        action: 'stock.receive',
        reason: 'delivery from the supplier',
        details: {
          kind: 'receive',
          delta: 12,
          reference: 'GRN-2026-0042',
          before: { onHand: 0, reserved: 0, available: 0 },
          after: { onHand: 12, reserved: 0, available: 12 },
        },
      },
    ]);
  });

  it('applies a stock change once per Idempotency-Key: a retry replays the first answer, another body 422, no key 400', async () => {
    const sku = await newSku();
    const headers = { 'idempotency-key': randomUUID() };
    const receive = (quantity: number) =>
      call({
        method: 'POST',
        url: `/v1/admin/stock/${sku}/receive`,
        headers,
        payload: { quantity, reason: 'pallet' },
      });
    const first = await receive(5);
    const retry = await receive(5);
    expect(first.statusCode).toBe(200);
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(first.json()).toMatchObject({ outcome: 'changed', level: { onHand: 5 } });
    const reused = await receive(6);
    expect(reused.statusCode).toBe(422);
    expect(reused.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const adjustSameKey = await call({
      method: 'POST',
      url: `/v1/admin/stock/${sku}/adjust`,
      headers,
      payload: { delta: 5, reason: 'pallet' },
    });
    expect(adjustSameKey.statusCode).toBe(422);
    for (const [path, payload] of [
      ['receive', { quantity: 1, reason: 'pallet' }],
      ['adjust', { delta: 1, reason: 'count' }],
    ] as const) {
      const missing = await stack.api.app.inject({
        method: 'POST',
        url: `/v1/admin/stock/${sku}/${path}`,
        headers: as('ops'),
        payload,
      });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error.message).toMatch(/idempotency-key/);
    }
    const row = await db()
      .selectFrom('inventory_items')
      .select('on_hand')
      .where('sku', '=', sku)
      .executeTakeFirstOrThrow();
    expect(row.on_hand).toBe(5);
    expect((await auditOf(sku)).filter((e) => e.action.startsWith('stock.'))).toHaveLength(1);
  });

  it('never adjusts below what orders have reserved: 409 naming the sku, available and reserved, nothing changed', async () => {
    const sku = await newSku({ onHand: 10 });
    const orderId = await newOrder(db());
    expect(await reserveStock(db(), { orderId, lines: [{ sku, quantity: 7 }] })).toEqual({ ok: true });

    const refused = await post(`/v1/admin/stock/${sku}/adjust`, {
      delta: -4,
      reason: 'two broken in transit',
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('STOCK_BELOW_RESERVED');
    expect(refused.json().error.message).toContain(`sku ${sku}`);
    expect(refused.json().error.message).toContain('7 reserved');
    expect(refused.json().error.message).toContain('available 3');

    const allowed = await post(`/v1/admin/stock/${sku}/adjust`, {
      delta: -3,
      reason: 'three broken in transit',
    });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json().change).toEqual({
      kind: 'adjust',
      delta: -3,
      before: { onHand: 10, reserved: 7, available: 3 },
      after: { onHand: 7, reserved: 7, available: 0 },
    });
    const row = await db()
      .selectFrom('inventory_items')
      .selectAll()
      .where('sku', '=', sku)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ on_hand: 7, reserved: 7 });
    expect((await auditOf(sku)).filter((e) => e.action === 'stock.adjust')).toHaveLength(1);
  });

  it('answers 4xx naming what is wrong: negative or zero quantities, unknown skus, bad cursors, missing reasons', async () => {
    const sku = await newSku({ onHand: 2 });
    const cases: [InjectOptions, number, string, RegExp][] = [
      [
        { method: 'POST', url: `/v1/admin/stock/${sku}/receive`, payload: { quantity: -5, reason: 'oops' } },
        400,
        'VALIDATION_FAILED',
        /quantity/,
      ],
      [
        { method: 'POST', url: `/v1/admin/stock/${sku}/receive`, payload: { quantity: 0, reason: 'oops' } },
        400,
        'VALIDATION_FAILED',
        /quantity/,
      ],
      [
        { method: 'POST', url: `/v1/admin/stock/${sku}/adjust`, payload: { delta: 0, reason: 'oops' } },
        400,
        'VALIDATION_FAILED',
        /delta/,
      ],
      [
        { method: 'POST', url: `/v1/admin/stock/${sku}/adjust`, payload: { delta: -1 } },
        400,
        'VALIDATION_FAILED',
        /reason/,
      ],
      [
        {
          method: 'POST',
          url: '/v1/admin/stock/NO-SUCH-SKU/receive',
          payload: { quantity: 1, reason: 'delivery' },
        },
        404,
        'UNKNOWN_SKU',
        /NO-SUCH-SKU/,
      ],
      [
        {
          method: 'POST',
          url: '/v1/admin/stock/NO-SUCH-SKU/adjust',
          payload: { delta: -1, reason: 'count' },
        },
        404,
        'UNKNOWN_SKU',
        /NO-SUCH-SKU/,
      ],
      [
        {
          method: 'PATCH',
          url: '/v1/admin/catalogue/skus/NO-SUCH-SKU',
          payload: { unitAmount: 1, reason: 'price' },
        },
        404,
        'UNKNOWN_SKU',
        /NO-SUCH-SKU/,
      ],
      [
        { method: 'PATCH', url: `/v1/admin/catalogue/skus/${sku}`, payload: { reason: 'nothing to change' } },
        400,
        'VALIDATION_FAILED',
        /body/,
      ],
      [
        {
          method: 'POST',
          url: '/v1/admin/catalogue/skus',
          payload: { sku: 'X-1', name: 'X', warehouse: 'main', unitAmount: -1, currency: 'MYR' },
        },
        400,
        'VALIDATION_FAILED',
        /unitAmount/,
      ],
      [
        {
          method: 'POST',
          url: '/v1/admin/catalogue/skus',
          payload: { sku: 'X-1', name: 'X', warehouse: 'main', unitAmount: 1, currency: 'myr' },
        },
        400,
        'VALIDATION_FAILED',
        /currency/,
      ],
      [{ method: 'GET', url: '/v1/admin/stock?cursor=bm90LWEtY3Vyc29y' }, 400, 'INVALID_CURSOR', /cursor/],
      [
        {
          method: 'GET',
          url: `/v1/admin/stock/alerts?cursor=${Buffer.from('["sku","A"]').toString('base64url')}`,
        },
        400,
        'INVALID_CURSOR',
        /cursor/,
      ],
      [
        { method: 'POST', url: '/v1/admin/stock/alerts/NO-SUCH-SKU:2026-01-01/acknowledge', payload: {} },
        404,
        'NOT_FOUND',
        /NO-SUCH-SKU:2026-01-01/,
      ],
      [
        { method: 'POST', url: '/v1/admin/stock/alerts/12/acknowledge', payload: {} },
        400,
        'VALIDATION_FAILED',
        /alertId/,
      ],
    ];
    for (const [request, status, code, message] of cases) {
      const res = await call(request);
      expect({ url: request.url, status: res.statusCode, code: res.json().error?.code }).toEqual({
        url: request.url,
        status,
        code,
      });
      expect(res.json().error.message).toMatch(message);
    }
    const row = await db()
      .selectFrom('inventory_items')
      .selectAll()
      .where('sku', '=', sku)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ on_hand: 2, reserved: 0 });
  });

  it('lists stock levels in sku order across pages, by warehouse and low stock, for support too', async () => {
    const warehouse = uniqueId('wh');
    const skus = [
      await newSku({ warehouse, onHand: 9, threshold: 3 }),
      await newSku({ warehouse, onHand: 2, threshold: 3 }),
      await newSku({ warehouse, onHand: 5, threshold: 3 }),
      await newSku({ warehouse, onHand: 1, threshold: 3 }),
      await newSku({ warehouse: `${warehouse}-other`, onHand: 0, threshold: 3 }),
    ];
    const orderId = await newOrder(db());
    await reserveStock(db(), { orderId, lines: [{ sku: skus[2]!, quantity: 3 }] });

    const seen: { sku: string; available: number; reserved: number; low: boolean }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(
        `/v1/admin/stock?warehouse=${warehouse}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        'support',
      );
      expect(res.statusCode).toBe(200);
      const body = res.json() as { items: (typeof seen)[number][]; nextCursor: string | null };
      seen.push(
        ...body.items.map(({ sku, available, reserved, low }) => ({ sku, available, reserved, low })),
      );
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor !== null);
    const inWarehouse = skus.slice(0, 4).sort();
    expect(pages).toBe(2);
    expect(seen.map((s) => s.sku)).toEqual(inWarehouse);
    expect(seen.find((s) => s.sku === skus[2])).toEqual({
      sku: skus[2],
      available: 2,
      reserved: 3,
      low: true,
    });

    const low = await get(`/v1/admin/stock?warehouse=${warehouse}&low=true`, 'support');
    expect(low.json().items.map((i: { sku: string }) => i.sku)).toEqual([skus[1], skus[2], skus[3]].sort());
  });

  it('raises a low-stock alert when an adjustment leaves a sku low, lists it and acknowledges it once', async () => {
    const warehouse = uniqueId('wh');
    const sku = await newSku({ warehouse, onHand: 10, threshold: 4 });
    const alerts = async (state: string) =>
      (await get(`/v1/admin/stock/alerts?warehouse=${warehouse}&state=${state}`, 'support')).json().items as {
        alertId: string;
        sku: string;
        available: number;
        threshold: number;
        acknowledgedBy: string | null;
      }[];
    expect(await alerts('open')).toEqual([]);

    await post(`/v1/admin/stock/${sku}/adjust`, { delta: -7, reason: 'water damage' });
    await post(`/v1/admin/stock/${sku}/adjust`, { delta: -1, reason: 'one more found damaged' });
    const open = await alerts('open');
    // One per sku per day, however many changes leave it low.
    expect(open).toMatchObject([{ sku, available: 3, threshold: 4, acknowledgedBy: null }]);

    const ack = () =>
      post(`/v1/admin/stock/alerts/${open[0]!.alertId}/acknowledge`, {
        note: 'reordered 50 from the supplier',
      });
    const first = await ack();
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      alreadyAcknowledged: false,
      alert: { sku, availableNow: 2, acknowledgedBy: 'ops:ops-sam', note: 'reordered 50 from the supplier' },
    });
    const second = await ack();
    expect(second.json()).toMatchObject({ alreadyAcknowledged: true, alert: first.json().alert });
    expect(await alerts('open')).toEqual([]);
    expect((await alerts('acknowledged')).map((a) => a.alertId)).toEqual([open[0]!.alertId]);
    const acks = await db()
      .selectFrom('audit_log')
      .select(['actor', 'reason'])
      .where('action', '=', 'stock_alert.acknowledge')
      .where('subject_id', '=', open[0]!.alertId)
      .execute();
    expect(acks).toEqual([{ actor: 'ops:ops-sam', reason: 'reordered 50 from the supplier' }]);
  });
});
