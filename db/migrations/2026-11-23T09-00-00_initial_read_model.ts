/**
 * Initial read model. Frozen: never edit a migration that has shipped; add a new one.
 * Uses Kysely<any> and no app imports, so later code changes cannot alter its meaning.
 */
import { type Kysely, sql } from 'kysely';

const SHIPMENT_STATUSES = [
  'PENDING',
  'INFO_RECEIVED',
  'IN_TRANSIT',
  'OUT_FOR_DELIVERY',
  'AVAILABLE_FOR_PICKUP',
  'ATTEMPT_FAIL',
  'DELIVERED',
  'EXCEPTION',
  'RETURNING',
  'RETURNED',
  'CANCELLED',
  'EXPIRED',
];
const ORDER_STATUSES = [
  'PENDING',
  'CONFIRMED',
  'SHIPPED',
  'PARTIALLY_SHIPPED',
  'DELIVERED',
  'CANCELLED',
  'FAILED',
  'RETURNED',
];
const PAYMENT_STATUSES = ['AUTHORISED', 'DECLINED', 'CAPTURED', 'VOIDED', 'REFUNDED', 'PARTIALLY_REFUNDED'];

const inList = (values: string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('orders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('number', 'text', (c) => c.notNull().unique())
    .addColumn('customer_id', 'text')
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('postcode', 'text')
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in (${inList(ORDER_STATUSES)})`),
    )
    .addColumn('failure_code', 'text')
    .addColumn('failure_message', 'text')
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('total_amount', 'bigint', (c) => c.notNull().check(sql`total_amount >= 0`))
    .addColumn('courier', 'text', (c) => c.notNull())
    .addColumn('shipping_address', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('orders_customer_idx')
    .on('orders')
    .columns(['customer_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('inventory_items')
    .addColumn('sku', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull().defaultTo('main'))
    .addColumn('on_hand', 'integer', (c) => c.notNull().check(sql`on_hand >= 0`))
    .addColumn('reserved', 'integer', (c) =>
      c
        .notNull()
        .defaultTo(0)
        .check(sql`reserved >= 0`),
    )
    .addColumn('low_stock_threshold', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('inventory_reserved_le_on_hand', sql`reserved <= on_hand`)
    .execute();

  await db.schema
    .createTable('order_items')
    .addColumn('order_id', 'text', (c) => c.notNull().references('orders.id').onDelete('cascade'))
    .addColumn('line_no', 'integer', (c) => c.notNull())
    .addColumn('sku', 'text', (c) => c.notNull().references('inventory_items.sku'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('unit_amount', 'bigint', (c) => c.notNull().check(sql`unit_amount >= 0`))
    .addColumn('shipment_id', 'text')
    .addPrimaryKeyConstraint('order_items_pk', ['order_id', 'line_no'])
    .execute();

  await db.schema
    .createTable('inventory_reservations')
    .addColumn('order_id', 'text', (c) => c.notNull().references('orders.id').onDelete('cascade'))
    .addColumn('sku', 'text', (c) => c.notNull().references('inventory_items.sku'))
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('RESERVED')
        .check(sql`status in ('RESERVED', 'RELEASED', 'CONSUMED', 'RESTOCKED')`),
    )
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('inventory_reservations_pk', ['order_id', 'sku'])
    .execute();

  await db.schema
    .createTable('payments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('order_id', 'text', (c) => c.notNull().references('orders.id').onDelete('cascade'))
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('provider_ref', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${inList(PAYMENT_STATUSES)})`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('amount_authorised', 'bigint', (c) => c.notNull())
    .addColumn('amount_captured', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('amount_refunded', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('decline_code', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('payments_order_idx').on('payments').column('order_id').execute();

  await db.schema
    .createTable('shipments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('order_id', 'text', (c) => c.references('orders.id').onDelete('cascade'))
    .addColumn('courier', 'text', (c) => c.notNull())
    .addColumn('tracking_number', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in (${inList(SHIPMENT_STATUSES)})`),
    )
    .addColumn('sub_status', 'text')
    .addColumn('eta', 'timestamptz')
    .addColumn('last_event_at', 'timestamptz')
    .addColumn('last_synced_at', 'timestamptz')
    .addColumn('next_poll_at', 'timestamptz')
    .addColumn('sync_error', 'text')
    .addColumn('sync_failing_since', 'timestamptz')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('destination_city', 'text')
    .addColumn('destination_country', 'text')
    .addColumn('raw_latest', 'jsonb')
    .addColumn('picked_up_at', 'timestamptz')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('archived_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('shipments_courier_tracking_uq', ['courier', 'tracking_number'])
    .execute();
  await db.schema.createIndex('shipments_order_idx').on('shipments').column('order_id').execute();
  await db.schema
    .createIndex('shipments_status_idx')
    .on('shipments')
    .columns(['status', 'last_synced_at'])
    .execute();
  await db.schema
    .createIndex('shipments_tracking_number_idx')
    .on('shipments')
    .column('tracking_number')
    .execute();

  await db.schema
    .createTable('tracking_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('shipment_id', 'text', (c) => c.notNull().references('shipments.id').onDelete('cascade'))
    .addColumn('event_key', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${inList(SHIPMENT_STATUSES)})`))
    .addColumn('sub_status', 'text')
    .addColumn('raw_code', 'text')
    .addColumn('raw_text', 'text')
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('occurred_at_raw', 'text')
    .addColumn('location_city', 'text')
    .addColumn('location_state', 'text')
    .addColumn('location_country', 'text')
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('poll', 'push', 'manual')`))
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('tracking_events_shipment_key_uq', ['shipment_id', 'event_key'])
    .execute();
  await db.schema
    .createIndex('tracking_events_shipment_time_idx')
    .on('tracking_events')
    .columns(['shipment_id', 'occurred_at'])
    .execute();

  await db.schema
    .createTable('courier_api_usage')
    .addColumn('courier', 'text', (c) => c.notNull())
    .addColumn('day', 'date', (c) => c.notNull())
    .addColumn('calls', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('courier_api_usage_pk', ['courier', 'day'])
    .execute();

  await db.schema
    .createTable('courier_webhook_events')
    .addColumn('courier', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('tracking_number', 'text')
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('courier_webhook_events_pk', ['courier', 'event_id'])
    .execute();

  await db.schema
    .createTable('notifications')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    .addColumn('order_id', 'text', (c) => c.references('orders.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in ('PENDING', 'SENT', 'FAILED')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('subject_type', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('audit_log_subject_idx')
    .on('audit_log')
    .columns(['subject_type', 'subject_id'])
    .execute();

  await db.schema
    .createTable('api_idempotency_keys')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('IN_PROGRESS', 'DONE')`))
    .addColumn('response_status', 'integer')
    .addColumn('response_body', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('api_idempotency_keys_pk', ['scope', 'key'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'api_idempotency_keys',
    'audit_log',
    'notifications',
    'courier_webhook_events',
    'courier_api_usage',
    'tracking_events',
    'shipments',
    'payments',
    'inventory_reservations',
    'order_items',
    'inventory_items',
    'orders',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
