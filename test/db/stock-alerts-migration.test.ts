/**
 * The stock_alerts migration on a real Postgres: low-stock notifications raised before it
 * become alerts staff can list (once each, for skus still in the catalogue), and it rolls back.
 */
import { withDatabaseAt } from '../support/db';

const MIGRATION = '2026-12-04T20-20-00_stock_alerts_order_search';
const BEFORE = '2026-12-04T17-10-00_prune_indexes';

describe('the stock_alerts migration', () => {
  it('copies earlier LOW_STOCK notifications into alerts, and its down migration removes the table', async () => {
    await withDatabaseAt(BEFORE, async (db, migrator) => {
      await db
        .insertInto('inventory_items')
        .values({ sku: 'KETTLE-1L', name: 'Kettle', on_hand: 3 })
        .execute();
      await db
        .insertInto('notifications')
        .values([
          {
            dedupe_key: 'low-stock:KETTLE-1L:2026-12-01',
            order_id: null,
            kind: 'LOW_STOCK',
            channel: 'ops',
            recipient: 'ops',
            payload: JSON.stringify({ sku: 'KETTLE-1L', available: 2, threshold: 5 }),
            created_at: '2026-12-01T08:00:00Z',
          },
          // A sku since removed from the catalogue: nothing to alert about.
          {
            dedupe_key: 'low-stock:GONE-1:2026-12-01',
            order_id: null,
            kind: 'LOW_STOCK',
            channel: 'ops',
            recipient: 'ops',
            payload: JSON.stringify({ sku: 'GONE-1', available: 0, threshold: 1 }),
          },
          {
            dedupe_key: 'order-confirmed:ord_1',
            order_id: null,
            kind: 'confirmed',
            channel: 'email',
            recipient: 'a@example.com',
            payload: JSON.stringify({}),
          },
        ])
        .execute();

      expect((await migrator.migrateTo(MIGRATION)).error).toBeUndefined();
      const alerts = await db
        .selectFrom('stock_alerts')
        .select(['sku', 'dedupe_key', 'available', 'threshold', 'raised_at', 'acknowledged_at'])
        .execute();
      expect(alerts).toEqual([
        {
          sku: 'KETTLE-1L',
          dedupe_key: 'low-stock:KETTLE-1L:2026-12-01',
          available: 2,
          threshold: 5,
          raised_at: new Date('2026-12-01T08:00:00Z'),
          acknowledged_at: null,
        },
      ]);

      expect((await migrator.migrateTo(BEFORE)).error).toBeUndefined();
      await expect(db.selectFrom('stock_alerts').select('id').execute()).rejects.toThrow(/does not exist/);
    });
  });
});
