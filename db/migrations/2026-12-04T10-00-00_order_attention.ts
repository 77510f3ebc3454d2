/**
 * Orders parked for an admin: a compensation or a money movement that the payment provider
 * or the courier refused for good (or that outlasted its retry window) is recorded here,
 * one row per order and step, and the order shows NEEDS_ATTENTION until each is retried or
 * resolved. Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

const ORDER_STATUSES = [
  'PENDING',
  'CONFIRMED',
  'SHIPPED',
  'PARTIALLY_SHIPPED',
  'DELIVERED',
  'CANCELLED',
  'FAILED',
  'RETURNED',
  'NEEDS_ATTENTION',
];

const inList = (values: string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table orders drop constraint orders_status_check`.execute(db);
  await sql`alter table orders add constraint orders_status_check check (status in (${inList(ORDER_STATUSES)}))`.execute(
    db,
  );
  await db.schema
    .createTable('order_attention')
    .addColumn('order_id', 'text', (c) => c.notNull().references('orders.id'))
    // The saga's name for the step, e.g. `capture`, `void_or_refund`, `cancel_booking:<shipmentId>`.
    .addColumn('item_id', 'text', (c) => c.notNull())
    .addColumn('step', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('OPEN')
        .check(sql`status in ('OPEN', 'RETRIED', 'RESOLVED')`),
    )
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('closed_at', 'timestamptz')
    .addColumn('closed_by', 'text')
    .addColumn('resolution', 'text')
    .addPrimaryKeyConstraint('order_attention_pkey', ['order_id', 'item_id'])
    .execute();
  await db.schema
    .createIndex('order_attention_open_idx')
    .on('order_attention')
    .column('opened_at')
    .where(sql.ref('status'), '=', 'OPEN')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('order_attention').execute();
  await sql`alter table orders drop constraint orders_status_check`.execute(db);
  await sql`alter table orders add constraint orders_status_check check (status in (${inList(ORDER_STATUSES.slice(0, -1))}))`.execute(
    db,
  );
}
