import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb } from '../../db/client';
import { MigrationError, migrateToLatest } from '../../db/migrator';
import { migrations } from '../../db/migrations';
import { emptyDatabase } from '../support/db';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

describe('migrations on a real Postgres', () => {
  it('create every read-model table on an empty database, and a second run applies nothing', async () => {
    const empty = await emptyDatabase();
    const db = createDb({ url: empty.url, poolMax: 1 });
    try {
      expect(await migrateToLatest(db)).toEqual(Object.keys(migrations));
      const tables = await sql<{ table_name: string }>`
        select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(
        db,
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining([
          'orders',
          'order_items',
          'inventory_items',
          'inventory_reservations',
          'payments',
          'shipments',
          'tracking_events',
          'courier_api_usage',
          'notifications',
          'audit_log',
        ]),
      );
      expect(await migrateToLatest(db)).toEqual([]);
    } finally {
      await db.destroy();
      await empty.drop();
    }
  });

  it('keep one tracking event per shipment and event key', async () => {
    const empty = await emptyDatabase();
    const db = createDb({ url: empty.url, poolMax: 1 });
    try {
      await migrateToLatest(db);
      await db
        .insertInto('shipments')
        .values({ id: 's1', courier: 'simulator', tracking_number: 'SIM1' })
        .execute();
      const event = {
        shipment_id: 's1',
        event_key: 'k1',
        status: 'IN_TRANSIT',
        sub_status: null,
        raw_code: '4',
        raw_text: 'In transit',
        occurred_at: '2026-11-20T10:00:00Z',
        occurred_at_raw: null,
        location_city: null,
        location_state: null,
        location_country: null,
        source: 'poll' as const,
      };
      await db.insertInto('tracking_events').values(event).execute();
      await expect(db.insertInto('tracking_events').values(event).execute()).rejects.toThrow(
        /tracking_events_shipment_key_uq/,
      );
      await expect(
        db
          .insertInto('tracking_events')
          .values({ ...event, event_key: 'k2', status: 'TELEPORTED' })
          .execute(),
      ).rejects.toThrow(/check constraint/);
    } finally {
      await db.destroy();
      await empty.drop();
    }
  });

  it('name the migration that failed', async () => {
    const empty = await emptyDatabase();
    const db = createDb({ url: empty.url, poolMax: 1 });
    try {
      // A table in the way makes the initial migration fail part-way.
      await sql`create table shipments (id text)`.execute(db);
      const error = await migrateToLatest(db).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as MigrationError).migration).toBe('2026-11-23T09-00-00_initial_read_model');
      expect((error as Error).message).toMatch(
        /migration 2026-11-23T09-00-00_initial_read_model failed: .*shipments/,
      );
    } finally {
      await db.destroy();
      await empty.drop();
    }
  });

  it('`npm run migrate` exits non-zero with one line naming the failed migration', async () => {
    const empty = await emptyDatabase();
    const db = createDb({ url: empty.url, poolMax: 1 });
    await sql`create table shipments (id text)`.execute(db);
    await db.destroy();
    try {
      const run = spawnSync(TSX, ['db/migrate.ts'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: empty.url },
        encoding: 'utf8',
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          /^waybill: migration 2026-11-23T09-00-00_initial_read_model failed: relation "shipments" already exists$/,
        ),
      ]);
    } finally {
      await empty.drop();
    }
  });

  it('`npm run migrate` against an unreachable DATABASE_URL ends with one clear line', () => {
    const run = spawnSync(TSX, ['db/migrate.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: 'postgres://u:secret@127.0.0.1:9/nowhere' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^waybill: cannot reach Postgres at postgres:\/\/u:\*\*\*@127\.0\.0\.1:9\/nowhere: ECONNREFUSED/,
    );
    expect(run.stderr).not.toContain('secret');
  });
});
