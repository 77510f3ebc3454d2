/**
 * The order tracking view migration on a real Postgres: orders placed before it get their
 * shipments' view on their row (as the by-number read builds each shipment), orders without
 * shipments an empty one, and it goes down cleanly.
 */
import { sql } from 'kysely';
import { shipmentJson } from '../../src/read-model/order-tracking';
import { insertOrderRow, withDatabaseAt } from '../support/db';

const MIGRATION = '2026-12-06T23-00-00_order_tracking_view';
const BEFORE = '2026-12-06T19-00-00_courier_request_slots';

describe('the order tracking view migration', () => {
  it("backfills every order's view from its shipments, and goes down", async () => {
    await withDatabaseAt(BEFORE, async (db, migrator) => {
      const withParcels = await insertOrderRow(db, { customerId: 'cus_before' });
      const without = await insertOrderRow(db, { customerId: 'cus_before' });
      await db
        .insertInto('shipments')
        .values(
          ['p2', 'p1'].map((p) => ({
            id: `${withParcels}-${p}`,
            order_id: withParcels,
            courier: 'simulator',
            tracking_number: `T-${withParcels}-${p}`,
            status: p === 'p1' ? 'IN_TRANSIT' : 'INFO_RECEIVED',
            last_synced_at: new Date('2026-12-06T08:00:00.123Z'),
            recent_events: JSON.stringify([
              { status: 'IN_TRANSIT', occurredAt: '2026-12-06T07:00:00.000Z', city: 'Klang', country: 'MY' },
            ]),
          })),
        )
        .execute();

      expect((await migrator.migrateTo(MIGRATION)).error).toBeUndefined();
      const { rows } = await sql<{ id: string; view: unknown; truth: unknown }>`
        select o.id, o.tracking_view as view,
               coalesce((select json_agg(${shipmentJson} order by s.id)
                         from shipments s where s.order_id = o.id), '[]'::json) as truth
        from orders o order by o.id`.execute(db);
      const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
      expect(byId[withParcels]!.view).toEqual(byId[withParcels]!.truth);
      expect((byId[withParcels]!.view as { id: string; lastSyncedAt: number }[]).map((s) => s.id)).toEqual([
        `${withParcels}-p1`,
        `${withParcels}-p2`,
      ]);
      expect((byId[withParcels]!.view as { lastSyncedAt: number }[])[0]!.lastSyncedAt).toBe(
        Date.parse('2026-12-06T08:00:00.123Z'),
      );
      expect(byId[without]!.view).toEqual([]);

      expect((await migrator.migrateDown()).error).toBeUndefined();
      const columns = await sql<{ column_name: string }>`
        select column_name from information_schema.columns
        where table_name = 'orders' and column_name = 'tracking_view'`.execute(db);
      expect(columns.rows).toEqual([]);
    });
  });
});
