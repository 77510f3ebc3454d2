/**
 * What `POST /v1/orders` needs: a price per sku (the server prices an order, never the
 * client), short order numbers from a sequence, and an owner lock on in-progress
 * idempotency keys so a request that died half-way can be taken over by its retry.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('inventory_items')
    .addColumn('unit_amount', 'bigint', (c) =>
      c
        .notNull()
        .defaultTo(0)
        .check(sql`unit_amount >= 0`),
    )
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('MYR'))
    .execute();
  await db.schema
    .alterTable('api_idempotency_keys')
    .addColumn('resource_id', 'text')
    .addColumn('locked_until', 'timestamptz')
    .execute();
  await sql`create sequence order_number_seq start with 100001`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop sequence if exists order_number_seq`.execute(db);
  await db.schema
    .alterTable('api_idempotency_keys')
    .dropColumn('resource_id')
    .dropColumn('locked_until')
    .execute();
  await db.schema.alterTable('inventory_items').dropColumn('unit_amount').dropColumn('currency').execute();
}
