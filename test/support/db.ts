import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { createDb, type Database } from '../../db/client';
import { createMigrator } from '../../db/migrator';
import type { NewOrder } from '../../db/database';
import { CourierCode } from '../../src/couriers/types';
import { insertOrder, type NewOrderRecord } from '../../src/read-model/orders';
import { ADDRESS } from './shopper';

function adminUrl(database: string): string {
  const url = new URL(process.env.WAYBILL_TEST_PG_URL!);
  url.pathname = `/${database}`;
  return url.toString();
}

export interface TestDatabase {
  url: string;
  db: Kysely<Database>;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** A new database cloned from the migrated template: every test file starts from a clean read model. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `waybill_t_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl('postgres') });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${process.env.WAYBILL_TEST_TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const url = adminUrl(name);
  const db = createDb({ url, poolMax: 5 });
  return {
    url,
    db,
    async drop() {
      await db.destroy();
      const client = new pg.Client({ connectionString: adminUrl('postgres') });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** An empty database with no migrations applied (for migration tests). */
export async function emptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `waybill_e_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl('postgres') });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: adminUrl(name),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl('postgres') });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

/** A catalogue item (`sku`) in stock: 10 kettles at 49.90 MYR in `main` unless told otherwise. */
export async function stockItem(
  db: Kysely<Database>,
  sku: string,
  opts: { price?: number; location?: string; onHand?: number; currency?: string } = {},
): Promise<string> {
  await db
    .insertInto('inventory_items')
    .values({
      sku,
      name: `Kettle ${sku}`,
      on_hand: opts.onHand ?? 10,
      unit_amount: opts.price ?? 4_990,
      location: opts.location ?? 'main',
      currency: opts.currency ?? 'MYR',
    })
    .execute();
  return sku;
}

/**
 * An order with its lines, written as the API writes it (read-model insertOrder): a simulator
 * order of customer cus_1 numbered after its id. Returns its total.
 */
export function insertOrderWithLines(
  db: Kysely<Database>,
  orderId: string,
  lines: NewOrderRecord['lines'],
): Promise<number> {
  return insertOrder(db, {
    id: orderId,
    number: `WB-${orderId.slice(-8)}`,
    customerId: 'cus_1',
    email: 'aisyah@example.com',
    currency: 'MYR',
    courier: CourierCode.SIMULATOR,
    shippingAddress: ADDRESS,
    lines,
  });
}

/**
 * An order row as the API writes it before starting the saga (PENDING, no lines): for
 * tests that need an order to exist, not one that runs. Returns its id.
 */
export async function insertOrderRow(
  db: Kysely<Database>,
  values: {
    customerId: string;
    createdAt?: Date;
    /** Its own id, number, e-mail or status instead of the defaults (a fresh id and number, PENDING). */
    row?: Partial<Pick<NewOrder, 'id' | 'number' | 'email' | 'status'>>;
  },
): Promise<string> {
  const id = values.row?.id ?? `ord_${randomBytes(6).toString('hex')}`;
  await db
    .insertInto('orders')
    .values({
      number: `WB-${randomBytes(4).toString('hex')}`,
      customer_id: values.customerId,
      email: 'ana@example.com',
      postcode: '40000',
      currency: 'MYR',
      total_amount: 4_990,
      courier: 'simulator',
      failure_code: null,
      failure_message: null,
      shipping_address: JSON.stringify({
        name: 'Ana Lim',
        line1: '1 Jalan Satu',
        city: 'Shah Alam',
        postcode: '40000',
        country: 'MY',
      }),
      ...(values.createdAt ? { created_at: values.createdAt } : {}),
      ...values.row,
      id,
    })
    .execute();
  return id;
}

/**
 * Runs `test` on a new database migrated up to `migration` (for migration tests): its client
 * and migrator, closed and dropped afterwards.
 */
export async function withDatabaseAt(
  migration: string,
  test: (db: Kysely<Database>, migrator: ReturnType<typeof createMigrator>) => Promise<void>,
): Promise<void> {
  const empty = await emptyDatabase();
  const db = createDb({ url: empty.url, poolMax: 1 });
  const migrator = createMigrator(db);
  try {
    const { error } = await migrator.migrateTo(migration);
    if (error) throw error;
    await test(db, migrator);
  } finally {
    await db.destroy();
    await empty.drop();
  }
}
