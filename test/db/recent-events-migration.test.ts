/**
 * The recent-events migration on a real Postgres: entries written before 2026-12-06 (Postgres's
 * JSON text of the time, `…+00:00`) get their time in the API's form, keeping their order and
 * their other fields; rows already in that form and empty ones are left as they are.
 */
import { withDatabaseAt } from '../support/db';

const MIGRATION = '2026-12-06T10-00-00_recent_events_api_times';
const BEFORE = '2026-12-06T09-00-00_attention_settlement';

describe('the recent-events API times migration', () => {
  it('rewrites old entries to UTC with milliseconds and leaves new and empty rows alone', async () => {
    await withDatabaseAt(BEFORE, async (db, migrator) => {
      const old = [
        {
          status: 'IN_TRANSIT',
          occurredAt: '2026-12-01T09:30:00.123456+00:00',
          city: 'Klang',
          country: 'MY',
        },
        { status: 'INFO_RECEIVED', occurredAt: '2026-12-01T08:00:00+08:00', city: null, country: null },
      ];
      const current = [
        { status: 'DELIVERED', occurredAt: '2026-12-02T10:00:00.500Z', city: 'Ipoh', country: 'MY' },
      ];
      const shipment = (id: string, events: unknown[]) => ({
        id,
        order_id: null,
        courier: 'simulator',
        tracking_number: `T-${id}`,
        recent_events: JSON.stringify(events),
      });
      await db
        .insertInto('shipments')
        .values([shipment('shp-old', old), shipment('shp-new', current), shipment('shp-none', [])])
        .execute();

      expect((await migrator.migrateTo(MIGRATION)).error).toBeUndefined();
      const rows = await db.selectFrom('shipments').select(['id', 'recent_events']).orderBy('id').execute();
      const byId = Object.fromEntries(rows.map((r) => [r.id, r.recent_events]));
      expect(byId['shp-old']).toEqual([
        { ...old[0], occurredAt: '2026-12-01T09:30:00.123Z' },
        { ...old[1], occurredAt: '2026-12-01T00:00:00.000Z' },
      ]);
      expect(byId['shp-new']).toEqual(current);
      expect(byId['shp-none']).toEqual([]);
      expect((await migrator.migrateDown()).error).toBeUndefined();
    });
  });
});
