/**
 * A small demo catalogue so `npm start` can take orders at once: four skus in two
 * warehouses (lines from different warehouses ship as separate parcels), priced in MYR.
 * Idempotent: existing rows, and the stock they hold, are left as they are.
 * `npm run seed` runs it against DATABASE_URL (or the embedded default).
 */
import type { Kysely } from 'kysely';
import type { Database } from './database';

export const DEMO_CATALOGUE = [
  { sku: 'KETTLE-1L', name: 'Stainless kettle 1 L', location: 'shah-alam', unit_amount: 8_990 },
  { sku: 'MUG-SET-4', name: 'Stoneware mugs, set of 4', location: 'shah-alam', unit_amount: 5_490 },
  { sku: 'TEA-SAMPLER', name: 'Tea sampler box', location: 'penang', unit_amount: 3_200 },
  { sku: 'TRIVET-OAK', name: 'Oak trivet', location: 'penang', unit_amount: 2_450 },
] as const;

export async function seedCatalogue(db: Kysely<Database>): Promise<number> {
  const inserted = await db
    .insertInto('inventory_items')
    .values(
      DEMO_CATALOGUE.map((item) => ({
        ...item,
        currency: 'MYR',
        on_hand: 1_000,
        low_stock_threshold: 20,
      })),
    )
    .onConflict((oc) => oc.column('sku').doNothing())
    .returning('sku')
    .execute();
  return inserted.length;
}
