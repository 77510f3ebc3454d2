/**
 * The one-row-per-scan migration on a real Postgres: second rows of a scan that an earlier
 * deploy wrote under a new event key are removed (the newest reading stays), other scans stay,
 * and the shipment's newest-events copy is rebuilt.
 */
import { withDatabaseAt } from '../support/db';

const MIGRATION = '2026-12-05T03-00-00_tracking_events_one_row_per_scan';
const BEFORE = '2026-12-04T21-00-00_parcel_imports';

describe('the tracking_events one-row-per-scan migration', () => {
  it('removes the older row of a scan recorded twice and rebuilds the recent-events copy', async () => {
    await withDatabaseAt(BEFORE, async (db, migrator) => {
      await db
        .insertInto('shipments')
        .values({ id: 'shp-1', order_id: null, courier: 'easyparcel', tracking_number: 'EP1' })
        .execute();
      const scan = {
        shipment_id: 'shp-1',
        raw_code: '7',
        raw_text: 'Schedule In Arrangement',
        occurred_at_raw: '2026-01-23 12:28:52',
        source: 'poll' as const,
      };
      await db
        .insertInto('tracking_events')
        .values([
          { ...scan, event_key: 'old', status: 'PENDING', occurred_at: '2026-01-23T04:28:52Z' },
          {
            shipment_id: 'shp-1',
            event_key: 'other',
            status: 'IN_TRANSIT',
            raw_code: '3',
            raw_text: 'Collected',
            occurred_at: '2026-01-24T02:00:00Z',
            occurred_at_raw: '2026-01-24 10:00:00',
            source: 'poll',
          },
          { ...scan, event_key: 'new', status: 'INFO_RECEIVED', occurred_at: '2026-01-23T12:28:52Z' },
        ])
        .execute();

      expect((await migrator.migrateTo(MIGRATION)).error).toBeUndefined();
      const left = await db
        .selectFrom('tracking_events')
        .select(['event_key'])
        .orderBy('event_key')
        .execute();
      expect(left.map((r) => r.event_key)).toEqual(['new', 'other']);
      const shipment = await db
        .selectFrom('shipments')
        .select('recent_events')
        .where('id', '=', 'shp-1')
        .executeTakeFirstOrThrow();
      expect((shipment.recent_events as { status: string }[]).map((e) => e.status)).toEqual([
        'IN_TRANSIT',
        'INFO_RECEIVED',
      ]);
      expect((await migrator.migrateDown()).error).toBeUndefined();
    });
  });
});
