/**
 * Domain events out: the outbox (one row per state change, written in the transaction that
 * makes the change), the shops' subscribed endpoints, one delivery row per endpoint and
 * event, and every attempt at it. Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    // The event types this endpoint receives (src/domain/events.ts).
    .addColumn('event_types', sql`text[]`, (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('ENABLED')
        .check(sql`status in ('ENABLED', 'DISABLED')`),
    )
    .addColumn('disabled_reason', 'text')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // One row per ordering stream (an order, or a parcel without one): its last sequence number.
  // Taking the next number locks the row, so the events of one order commit in their order.
  await db.schema
    .createTable('event_streams')
    .addColumn('stream', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('event_outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    // One change, one key: a retried activity's second insert is refused by it.
    .addColumn('event_key', 'text', (c) => c.notNull().unique())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('order_id', 'text')
    .addColumn('shipment_id', 'text')
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('event_outbox_stream_seq_key', ['stream', 'seq'])
    .execute();
  // A change's key counts the earlier entries of its order or parcel into the same status.
  await db.schema.createIndex('event_outbox_order_idx').on('event_outbox').column('order_id').execute();
  await db.schema.createIndex('event_outbox_shipment_idx').on('event_outbox').column('shipment_id').execute();

  await db.schema
    .createTable('event_deliveries')
    .addColumn('endpoint_id', 'text', (c) => c.notNull().references('event_endpoints.id').onDelete('cascade'))
    .addColumn('event_id', 'bigint', (c) => c.notNull().references('event_outbox.id').onDelete('cascade'))
    // Copied from the event so the dispatcher's "nothing earlier pending" check is one index probe.
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in ('PENDING', 'DELIVERED')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'timestamptz')
    .addPrimaryKeyConstraint('event_deliveries_pkey', ['endpoint_id', 'event_id'])
    .execute();
  await db.schema
    .createIndex('event_deliveries_pending_idx')
    .on('event_deliveries')
    .columns(['endpoint_id', 'stream', 'seq'])
    .where(sql.ref('status'), '=', 'PENDING')
    .execute();
  await db.schema
    .createIndex('event_deliveries_due_idx')
    .on('event_deliveries')
    .column('next_attempt_at')
    .where(sql.ref('status'), '=', 'PENDING')
    .execute();

  await db.schema
    .createTable('event_delivery_attempts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('endpoint_id', 'text', (c) => c.notNull().references('event_endpoints.id').onDelete('cascade'))
    .addColumn('event_id', 'bigint', (c) => c.notNull().references('event_outbox.id').onDelete('cascade'))
    .addColumn('attempted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // The receiver's HTTP status; null when it could not be reached.
    .addColumn('status_code', 'integer')
    .addColumn('ok', 'boolean', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('event_delivery_attempts_endpoint_idx')
    .on('event_delivery_attempts')
    .columns(['endpoint_id', 'event_id', 'id'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'event_delivery_attempts',
    'event_deliveries',
    'event_outbox',
    'event_streams',
    'event_endpoints',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
