/**
 * Stock and catalogue through the API, and finding an order:
 * - `stock_alerts`: one low-stock alert per sku per UTC day (the same dedupe key as the ops
 *   notification), listed and acknowledged by staff. Alerts already raised as LOW_STOCK
 *   notifications are copied in, so none raised before this migration is lost.
 * - `inventory_items (location, sku)`: the stock list filtered by warehouse, in sku order.
 * - order search, newest first with (created_at, id) as the keyset: one index per filter,
 *   each ending in (created_at, id) so the filter and the page order come from one scan.
 *   E-mails are matched case-insensitively through `lower(email)`. A tracking number goes
 *   through `shipments_tracking_number_idx` (initial migration) to the order's primary key.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stock_alerts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('sku', 'text', (c) => c.notNull().references('inventory_items.sku').onDelete('cascade'))
    // `low-stock:<sku>:<YYYY-MM-DD UTC>`: raising the same alert twice is one row.
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    // What was available (on_hand - reserved) and the threshold when it was raised.
    .addColumn('available', 'integer', (c) => c.notNull())
    .addColumn('threshold', 'integer', (c) => c.notNull())
    .addColumn('raised_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('acknowledged_at', 'timestamptz')
    .addColumn('acknowledged_by', 'text')
    .addColumn('note', 'text')
    .execute();
  await db.schema
    .createIndex('stock_alerts_open_idx')
    .on('stock_alerts')
    .column('id')
    .where(sql.ref('acknowledged_at'), 'is', null)
    .execute();
  await sql`
    insert into stock_alerts (sku, dedupe_key, available, threshold, raised_at)
    select n.payload->>'sku', n.dedupe_key, (n.payload->>'available')::int, (n.payload->>'threshold')::int, n.created_at
      from notifications n
      join inventory_items i on i.sku = n.payload->>'sku'
     where n.kind = 'LOW_STOCK'
    on conflict (dedupe_key) do nothing`.execute(db);

  await db.schema
    .createIndex('inventory_items_location_idx')
    .on('inventory_items')
    .columns(['location', 'sku'])
    .execute();

  await db.schema.createIndex('orders_created_idx').on('orders').columns(['created_at', 'id']).execute();
  await db.schema
    .createIndex('orders_status_created_idx')
    .on('orders')
    .columns(['status', 'created_at', 'id'])
    .execute();
  await sql`create index orders_email_lower_idx on orders (lower(email), created_at, id)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('orders_email_lower_idx').execute();
  await db.schema.dropIndex('orders_status_created_idx').execute();
  await db.schema.dropIndex('orders_created_idx').execute();
  await db.schema.dropIndex('inventory_items_location_idx').execute();
  await db.schema.dropTable('stock_alerts').execute();
}
