/**
 * Finding an order (POST /v1/admin/orders/search) on a seeded read model on real Postgres:
 * each filter, stable keyset pages over orders that share a creation time, what an answer
 * shows, the 4xx answers, and the plans: every filter is served by an index.
 */
import type { InjectOptions } from 'fastify';
import { sql } from 'kysely';
import { orderSearchQuery, type OrderSearch } from '../../src/read-model/order-search';
import { insertOrderRow } from '../support/db';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };
const T0 = Date.parse('2026-11-01T10:00:00.000Z');
const HOUR = 3_600_000;

interface Match {
  orderId: string;
  orderNumber: string;
  status: string;
  email: string;
  trackingNumbers: string[];
  createdAt: string;
}

describe('order search for staff', () => {
  const stack = useStack({ payments: false, worker: false, api: { env: QUIET } });
  const db = () => stack.database.db;
  /** Every seeded order, newest first (created_at, then id, descending): the search's order. */
  const seeded: { id: string; createdAt: number }[] = [];

  async function seed(
    id: string,
    fields: { email?: string; status?: string; createdAt: number; tracking?: string[] },
  ) {
    await insertOrderRow(db(), {
      customerId: 'cus_1',
      createdAt: new Date(fields.createdAt),
      row: {
        id,
        number: `WB-${id.slice(4).toUpperCase()}`,
        email: fields.email ?? `${id}@example.com`,
        status: fields.status ?? 'CONFIRMED',
      },
    });
    for (const [i, tracking] of (fields.tracking ?? []).entries()) {
      await db()
        .insertInto('shipments')
        .values({ id: `${id}-p${i + 1}`, order_id: id, courier: 'simulator', tracking_number: tracking })
        .execute();
    }
    seeded.push({ id, createdAt: fields.createdAt });
  }

  beforeAll(async () => {
    await seed('ord_ana1', {
      email: 'ana.lim@example.com',
      createdAt: T0,
      tracking: ['SIM-ANA-1', 'SIM-ANA-2'],
    });
    await seed('ord_ana2', { email: 'ANA.LIM@Example.com', status: 'DELIVERED', createdAt: T0 + 5 * HOUR });
    await seed('ord_ana3', { email: 'xana.lim@example.com', createdAt: T0 + HOUR });
    await seed('ord_bob1', { email: 'bob@example.com', status: 'FAILED', createdAt: T0 + 2 * HOUR });
    // A number stored in lower case, as a courier might issue one: found as typed.
    await seed('ord_bob2', {
      email: 'bob@example.com',
      status: 'FAILED',
      createdAt: T0 + 3 * HOUR,
      tracking: ['sim-bob-2'],
    });
    // Seven orders created in the same microsecond: pages must still neither repeat nor skip.
    for (const n of [1, 2, 3, 4, 5, 6, 7]) await seed(`ord_tie${n}`, { createdAt: T0 + 4 * HOUR });
    seeded.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  });

  const search = (
    payload: object,
    role: 'support' | 'admin' = 'support',
    extra: Partial<InjectOptions> = {},
  ) =>
    stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/orders/search',
      headers: stack.api.staff(role, `${role}-sam`),
      payload,
      ...extra,
    });
  const ids = async (payload: object) => {
    const res = await search(payload);
    expect(res.statusCode).toBe(200);
    return (res.json().items as Match[]).map((m) => m.orderId);
  };

  it('finds an order by its number, or by a tracking number of its parcels', async () => {
    expect(await ids({ orderNumber: 'WB-BOB1' })).toEqual(['ord_bob1']);
    expect(await ids({ trackingNumber: 'SIM-ANA-2' })).toEqual(['ord_ana1']);
    expect(await ids({ trackingNumber: 'SIM-NONE-1' })).toEqual([]);
  });

  it('finds an order number or a tracking number typed in lower or mixed case', async () => {
    expect(await ids({ orderNumber: 'wb-bob1' })).toEqual(['ord_bob1']);
    expect(await ids({ orderNumber: 'Wb-Bob1' })).toEqual(['ord_bob1']);
    expect(await ids({ trackingNumber: 'sim-ana-2' })).toEqual(['ord_ana1']);
    expect(await ids({ trackingNumber: 'Sim-Ana-2' })).toEqual(['ord_ana1']);
    expect(await ids({ trackingNumber: 'sim-bob-2' })).toEqual(['ord_bob2']);
  });

  it('matches the whole e-mail in any case, never a part of it, and shows what support sees on the order less the address', async () => {
    expect(await ids({ email: 'Ana.Lim@EXAMPLE.com' })).toEqual(['ord_ana2', 'ord_ana1']);
    expect(await ids({ email: 'ana.lim@example.co' })).toEqual([]);
    expect(await ids({ email: 'lim@example.com' })).toEqual([]);

    const [match] = (await search({ email: 'ana.lim@example.com', status: ['CONFIRMED'] })).json()
      .items as Match[];
    expect(match).toEqual({
      orderId: 'ord_ana1',
      orderNumber: 'WB-ANA1',
      status: 'CONFIRMED',
      email: 'ana.lim@example.com',
      currency: 'MYR',
      totalAmount: 4_990,
      courier: 'simulator',
      trackingNumbers: ['SIM-ANA-1', 'SIM-ANA-2'],
      createdAt: new Date(T0).toISOString(),
    });
  });

  it('filters by status and by creation time, from inclusive, to exclusive', async () => {
    expect(await ids({ status: ['FAILED'] })).toEqual(['ord_bob2', 'ord_bob1']);
    expect(await ids({ status: ['FAILED', 'DELIVERED'] })).toEqual(['ord_ana2', 'ord_bob2', 'ord_bob1']);
    expect(
      await ids({
        createdFrom: new Date(T0 + HOUR).toISOString(),
        createdTo: new Date(T0 + 3 * HOUR).toISOString(),
      }),
    ).toEqual(['ord_bob1', 'ord_ana3']);
    expect(
      await ids({ email: 'bob@example.com', createdFrom: new Date(T0 + 3 * HOUR).toISOString() }),
    ).toEqual(['ord_bob2']);
  });

  it('pages newest first without repeating or skipping orders that share a creation time, even as new orders arrive', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await search({ limit: 3, ...(cursor ? { cursor } : {}) }, 'admin');
      expect(res.statusCode).toBe(200);
      const body = res.json() as { items: Match[]; nextCursor: string | null };
      seen.push(...body.items.map((m) => m.orderId));
      cursor = body.nextCursor;
      pages += 1;
      // A newer order arriving mid-way lands before the first page, not in the next one.
      if (pages === 1) await seed('ord_late', { createdAt: T0 + 9 * HOUR });
    } while (cursor !== null);
    expect(pages).toBe(4);
    expect(seen).toEqual(seeded.filter((o) => o.id !== 'ord_late').map((o) => o.id));
    await db().deleteFrom('orders').where('id', '=', 'ord_late').execute();
    seeded.splice(
      seeded.findIndex((o) => o.id === 'ord_late'),
      1,
    );
  });

  it('answers 400 naming what is wrong: bad cursor, bad date range, bad e-mail, limits, unknown status or field', async () => {
    // A cursor in the API's own format whose time is in year 0, which Postgres does not have.
    const yearZero = ['0000-01-01T00:00:00.000000Z', 'ord_ana1'];
    const cases: [object, string, RegExp][] = [
      [{ cursor: 'bm90LWEtY3Vyc29y' }, 'INVALID_CURSOR', /cursor/],
      [{ cursor: Buffer.from(JSON.stringify(yearZero)).toString('base64url') }, 'INVALID_CURSOR', /cursor/],
      [
        { createdFrom: '2026-11-02T00:00:00Z', createdTo: '2026-11-01T00:00:00Z' },
        'INVALID_DATE_RANGE',
        /createdFrom .* must be before createdTo/,
      ],
      [
        { createdFrom: '2026-11-02T00:00:00Z', createdTo: '2026-11-02T00:00:00Z' },
        'INVALID_DATE_RANGE',
        /createdFrom/,
      ],
      [{ createdFrom: 'yesterday' }, 'VALIDATION_FAILED', /createdFrom/],
      [{ email: 'not-an-address' }, 'VALIDATION_FAILED', /email/],
      [{ limit: 0 }, 'VALIDATION_FAILED', /limit/],
      [{ limit: 101 }, 'VALIDATION_FAILED', /limit/],
      [{ status: ['SHIPPED_TO_MARS'] }, 'VALIDATION_FAILED', /status/],
      [{ postcode: '40000' }, 'VALIDATION_FAILED', /unknown field "postcode"/],
    ];
    for (const [payload, code, message] of cases) {
      const res = await search(payload);
      expect({ payload, status: res.statusCode, code: res.json().error?.code }).toEqual({
        payload,
        status: 400,
        code,
      });
      expect(res.json().error.message).toMatch(message);
    }
  });

  it('answers 400 naming the field for a time RFC 3339 allows but no JS Date or Postgres holds: a leap second, year 0', async () => {
    const payloads = [
      { createdFrom: '2026-06-30T23:59:60Z' },
      { createdTo: '2026-07-01T01:59:60+02:00' },
      { createdFrom: '0000-01-01T00:00:00Z' },
      { createdTo: '0001-01-01T00:30:00+01:00' },
    ];
    const answers = [];
    for (const payload of payloads) {
      const res = await search(payload);
      answers.push({ payload, status: res.statusCode, error: res.json().error });
    }
    expect(answers).toEqual(
      payloads.map((payload) => ({
        payload,
        status: 400,
        error: {
          code: 'VALIDATION_FAILED',
          message: `body.${Object.keys(payload)[0]} must match format "date-time"`,
        },
      })),
    );
  });

  it('is for staff: a customer is refused, support may search', async () => {
    const asCustomer = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/orders/search',
      headers: stack.api.customer('cus_1'),
      payload: { email: 'ana.lim@example.com' },
    });
    expect(asCustomer.statusCode).toBe(403);
    expect((await search({ orderNumber: 'WB-ANA1' }, 'support')).statusCode).toBe(200);
  });

  it('serves every filter from an index (plans read with sequential scans priced out, as on a large table)', async () => {
    const filters: Record<string, [OrderSearch, string]> = {
      orderNumber: [{ orderNumber: 'WB-ANA1' }, 'orders_number_key'],
      email: [{ email: 'Ana.Lim@example.com' }, 'orders_email_lower_idx'],
      trackingNumber: [{ trackingNumber: 'SIM-ANA-1' }, 'shipments_tracking_number_idx'],
      status: [{ status: ['FAILED'] }, 'orders_status_created_idx'],
      createdRange: [{ createdFrom: new Date(T0), createdTo: new Date(T0 + HOUR) }, 'orders_created_idx'],
      nothing: [{}, 'orders_created_idx'],
    };
    // The plan itself when the index is not used, so a failure shows what the planner chose.
    const used: Record<string, true | string> = {};
    const expected: Record<string, true> = {};
    for (const [name, [filter, index]] of Object.entries(filters)) {
      // A dozen rows fit one page: the planner reads them sequentially unless told the
      // sequential scan is dear. Without a usable index it still picks one (or another index).
      const plan = await db()
        .transaction()
        .execute(async (trx) => {
          await sql`set local enable_seqscan = off`.execute(trx);
          const rows = await orderSearchQuery(trx, { search: filter, limit: 25, after: null }).explain(
            'json',
          );
          return JSON.stringify(rows);
        });
      used[name] =
        (plan.includes(`"Index Name":"${index}"`) && !plan.includes('"Node Type":"Seq Scan"')) || plan;
      expected[name] = true;
    }
    expect(used).toEqual(expected);
  });
});
