/**
 * orders.tracking_view, the order's shipments as the tracking reads show them, kept by
 * triggers on `shipments` (migration 2026-12-06T23-00-00_order_tracking_view): it is what the
 * by-number read builds for each shipment (`shipmentJson`), after every kind of write, a
 * write nothing shows leaves the order's row alone, and two transactions writing two parcels
 * of one order at once both end up in it. Real Postgres.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { shipmentJson } from '../../src/read-model/order-tracking';
import { eventually } from '../support/eventually';
import { insertOrderRow } from '../support/db';
import { useStack } from '../support/stack';

describe('the order tracking view', () => {
  const stack = useStack({ worker: false, payments: false });
  const db = () => stack.database.db;

  /** The view on the order's row, and what the by-number read's SQL builds for its shipments now. */
  async function viewAndTruth(orderId: string) {
    const { rows } = await sql<{ view: string; truth: string }>`
      select o.tracking_view::text as view,
             coalesce((select json_agg(${shipmentJson} order by s.id)
                       from shipments s where s.order_id = o.id), '[]'::json)::text as truth
      from orders o where o.id = ${orderId}`.execute(db());
    return { view: JSON.parse(rows[0]!.view) as unknown, truth: JSON.parse(rows[0]!.truth) as unknown };
  }

  const orderRowVersion = async (orderId: string) =>
    (await sql<{ xmin: string }>`select xmin::text from orders where id = ${orderId}`.execute(db())).rows[0]!
      .xmin;

  async function orderWithShipments(ids: string[]) {
    const orderId = await insertOrderRow(db(), { customerId: 'cus_view' });
    if (ids.length > 0) {
      await db()
        .insertInto('shipments')
        .values(
          ids.map((id) => ({
            id: `${orderId}-${id}`,
            order_id: orderId,
            courier: 'simulator',
            tracking_number: `SIM-${orderId}-${id}`.toUpperCase(),
          })),
        )
        .execute();
    }
    return orderId;
  }

  it('is the shipments as the reads build them after inserts, each shown column written, a move and a delete', async () => {
    const orderId = await orderWithShipments(['p2', 'p1']);
    const other = await orderWithShipments([]);
    expect((await viewAndTruth(other)).view).toEqual([]);
    let now = await viewAndTruth(orderId);
    expect(now.view).toEqual(now.truth);
    expect((now.view as { id: string }[]).map((s) => s.id)).toEqual([`${orderId}-p1`, `${orderId}-p2`]);

    const p1 = `${orderId}-p1`;
    const writes: Record<string, unknown>[] = [
      { status: 'IN_TRANSIT' },
      { eta: new Date('2026-12-09T10:00:00.123Z') },
      { last_synced_at: new Date() },
      { sync_error: 'courier unavailable' },
      { next_poll_at: new Date(Date.now() + 60_000) },
      { sync_failing_since: new Date() },
      { created_at: new Date('2026-12-01T00:00:00Z') },
      {
        recent_events: JSON.stringify([
          { status: 'IN_TRANSIT', occurredAt: '2026-12-06T10:00:00.000Z', city: 'Klang', country: 'MY' },
        ]),
      },
      { tracking_number: `SIM-${orderId}-P1-NEW`.toUpperCase() },
    ];
    for (const write of writes) {
      await db().updateTable('shipments').set(write).where('id', '=', p1).execute();
      now = await viewAndTruth(orderId);
      expect({ write: Object.keys(write)[0], view: now.view }).toEqual({
        write: Object.keys(write)[0],
        view: now.truth,
      });
    }
    expect((now.view as { status: string }[])[0]).toMatchObject({
      status: 'IN_TRANSIT',
      eta: Date.parse('2026-12-09T10:00:00.123Z'),
      syncError: 'courier unavailable',
      events: [{ status: 'IN_TRANSIT', city: 'Klang' }],
    });

    // A parcel moved to another order leaves the first view and joins the other's.
    await db().updateTable('shipments').set({ order_id: other }).where('id', '=', p1).execute();
    expect((await viewAndTruth(orderId)).view).toEqual((await viewAndTruth(orderId)).truth);
    expect(((await viewAndTruth(other)).view as { id: string }[]).map((s) => s.id)).toEqual([p1]);
    await db().deleteFrom('shipments').where('id', '=', p1).execute();
    expect((await viewAndTruth(other)).view).toEqual([]);
  });

  it("leaves the order's row alone on a write the view does not show", async () => {
    const orderId = await orderWithShipments(['p1']);
    const before = await orderRowVersion(orderId);
    await db()
      .updateTable('shipments')
      .set({ raw_latest: JSON.stringify({ answer: 'same as before' }) })
      .where('id', '=', `${orderId}-p1`)
      .execute();
    expect(await orderRowVersion(orderId)).toBe(before);
  });

  it('holds both parcels when two transactions write two parcels of one order at once', async () => {
    const orderId = await orderWithShipments(['p1', 'p2']);
    const first = new pg.Client({ connectionString: stack.database.url });
    const second = new pg.Client({ connectionString: stack.database.url });
    await Promise.all([first.connect(), second.connect()]);
    try {
      await first.query('begin');
      await first.query(`update shipments set status = 'IN_TRANSIT' where id = $1`, [`${orderId}-p1`]);
      // Its view is written now (the order's row locked) and not committed: without it, p2.
      await first.query('set constraints all immediate');
      await second.query('begin');
      await second.query(`update shipments set status = 'DELIVERED' where id = $1`, [`${orderId}-p2`]);
      const secondPid = (await second.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      const committing = second.query('commit');
      // The second commit's view waits for the order's row.
      await eventually(
        async () =>
          (
            await sql<{ waiting: string | null }>`
              select wait_event_type as waiting from pg_stat_activity where pid = ${secondPid}`.execute(db())
          ).rows[0]?.waiting,
        (waiting) => waiting === 'Lock',
      );
      await first.query('commit');
      await committing;
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
    const { view, truth } = await viewAndTruth(orderId);
    expect(view).toEqual(truth);
    expect((view as { status: string }[]).map((s) => s.status)).toEqual(['IN_TRANSIT', 'DELIVERED']);
  });
});
