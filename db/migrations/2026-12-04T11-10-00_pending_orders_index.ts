/**
 * Housekeeping looks for PENDING orders whose workflow never started, and for the
 * idempotency key that reserved each one: a partial index on the (few) PENDING orders and
 * an index on the key's resource id keep that hourly look-up off a full scan.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('orders_pending_idx')
    .on('orders')
    .column('id')
    .where(sql.ref('status'), '=', 'PENDING')
    .execute();
  await db.schema
    .createIndex('api_idempotency_keys_resource_idx')
    .on('api_idempotency_keys')
    .column('resource_id')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('api_idempotency_keys_resource_idx').execute();
  await db.schema.dropIndex('orders_pending_idx').execute();
}
