/**
 * The catalogue and stock as staff manage them: skus (name, warehouse, price, low-stock
 * threshold), stock received and adjusted with a reason, and stock levels. Every change
 * writes an audit row (who, why, before and after) in the same transaction as the change.
 *
 * Concurrency with the saga ({@link reserveStock} in ./inventory): a stock change is one
 * conditional UPDATE of the sku's row (`on_hand + delta >= reserved`), which takes the same
 * row lock a reservation takes (FOR NO KEY UPDATE) and re-checks the condition on the row
 * as it is once that lock is granted. A reservation and a stock change on one sku therefore
 * run one after the other, and neither can leave `reserved > on_hand`; a change touches
 * one row, so it adds no lock-order cycle with the saga's sku-ordered locks.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, InventoryItem } from '../../db/database';
import { raiseLowStockAlerts } from './stock-alerts';

export interface StockLevel {
  sku: string;
  name: string;
  warehouse: string;
  onHand: number;
  reserved: number;
  /** `onHand - reserved`: what orders can still reserve. */
  available: number;
  lowStockThreshold: number;
  /** Available is below the threshold. */
  low: boolean;
  /** Minor units (cents). */
  unitAmount: number;
  currency: string;
  updatedAt: string;
}

export interface SkuFields {
  name: string;
  warehouse: string;
  unitAmount: number;
  currency: string;
  lowStockThreshold: number;
}

export function stockLevelOf(row: InventoryItem): StockLevel {
  const available = row.on_hand - row.reserved;
  return {
    sku: row.sku,
    name: row.name,
    warehouse: row.location,
    onHand: row.on_hand,
    reserved: row.reserved,
    available,
    lowStockThreshold: row.low_stock_threshold,
    low: available < row.low_stock_threshold,
    unitAmount: row.unit_amount,
    currency: row.currency,
    updatedAt: row.updated_at.toISOString(),
  };
}

const fieldsOf = (level: StockLevel): SkuFields => ({
  name: level.name,
  warehouse: level.warehouse,
  unitAmount: level.unitAmount,
  currency: level.currency,
  lowStockThreshold: level.lowStockThreshold,
});

async function audit(
  trx: Transaction<Database>,
  entry: { actor: string; action: string; sku: string; reason: string | null; details: object },
  dedupeKey: string | null = null,
): Promise<boolean> {
  const row = await trx
    .insertInto('audit_log')
    .values({
      actor: entry.actor,
      action: entry.action,
      subject_type: 'sku',
      subject_id: entry.sku,
      reason: entry.reason,
      details: JSON.stringify(entry.details),
      dedupe_key: dedupeKey,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** The sku's level raises today's low-stock alert when it is low (once per sku per day). */
async function alertIfLow(trx: Transaction<Database>, level: StockLevel, nowMs: number): Promise<void> {
  if (!level.low) return;
  await raiseLowStockAlerts(
    trx,
    [{ sku: level.sku, available: level.available, threshold: level.lowStockThreshold }],
    nowMs,
  );
}

/** Creates a sku with nothing on hand (stock arrives by {@link changeStock}); null when it exists. */
export async function createSku(
  db: Kysely<Database>,
  input: SkuFields & { sku: string; actor: string; reason: string | null },
): Promise<StockLevel | null> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('inventory_items')
      .values({
        sku: input.sku,
        name: input.name,
        location: input.warehouse,
        unit_amount: input.unitAmount,
        currency: input.currency,
        low_stock_threshold: input.lowStockThreshold,
        on_hand: 0,
      })
      .onConflict((oc) => oc.column('sku').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) return null;
    const level = stockLevelOf(row);
    await audit(trx, {
      actor: input.actor,
      action: 'sku.create',
      sku: input.sku,
      reason: input.reason,
      details: { after: fieldsOf(level) },
    });
    return level;
  });
}

/**
 * Changes a sku's fields; the audit row names each changed field before and after. Orders
 * already placed keep the prices and warehouses they were placed with. Null: no such sku.
 */
export async function updateSku(
  db: Kysely<Database>,
  input: { sku: string; changes: Partial<SkuFields>; actor: string; reason: string; nowMs: number },
): Promise<StockLevel | null> {
  return db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('inventory_items')
      .selectAll()
      .where('sku', '=', input.sku)
      .forNoKeyUpdate()
      .executeTakeFirst();
    if (!current) return null;
    const { name, warehouse, unitAmount, currency, lowStockThreshold } = input.changes;
    const row = await trx
      .updateTable('inventory_items')
      .set({
        ...(name !== undefined ? { name } : {}),
        ...(warehouse !== undefined ? { location: warehouse } : {}),
        ...(unitAmount !== undefined ? { unit_amount: unitAmount } : {}),
        ...(currency !== undefined ? { currency } : {}),
        ...(lowStockThreshold !== undefined ? { low_stock_threshold: lowStockThreshold } : {}),
        updated_at: sql<Date>`now()`,
      })
      .where('sku', '=', input.sku)
      .returningAll()
      .executeTakeFirstOrThrow();
    const before = fieldsOf(stockLevelOf(current));
    const level = stockLevelOf(row);
    const after = fieldsOf(level);
    const changed = (Object.keys(after) as (keyof SkuFields)[]).filter((k) => before[k] !== after[k]);
    if (changed.length > 0) {
      await audit(trx, {
        actor: input.actor,
        action: 'sku.update',
        sku: input.sku,
        reason: input.reason,
        details: {
          before: Object.fromEntries(changed.map((k) => [k, before[k]])),
          after: Object.fromEntries(changed.map((k) => [k, after[k]])),
        },
      });
    }
    await alertIfLow(trx, level, input.nowMs);
    return level;
  });
}

export const StockChangeKind = { RECEIVE: 'receive', ADJUST: 'adjust' } as const;
export type StockChangeKind = (typeof StockChangeKind)[keyof typeof StockChangeKind];

interface Counts {
  onHand: number;
  reserved: number;
  available: number;
}

export type StockChangeResult =
  | { outcome: 'changed'; level: StockLevel; before: Counts; after: Counts }
  /** The reference was used before for this sku: nothing changed now; `recorded` is that change. */
  | {
      outcome: 'duplicate';
      level: StockLevel;
      recorded: { kind: string; delta: number; before: Counts; after: Counts };
    }
  | { outcome: 'unknown_sku' }
  /** `on_hand + delta` would fall below what orders hold (or below zero). */
  | { outcome: 'below_reserved'; onHand: number; reserved: number; available: number };

/** Rolls the change back when its reference turns out to be taken. */
class DuplicateReference extends Error {}

const counts = (onHand: number, reserved: number): Counts => ({
  onHand,
  reserved,
  available: onHand - reserved,
});

/** `stock:<sku>:<reference>`: a delivery note or count sheet applied once per sku. */
export const stockReferenceKey = (sku: string, reference: string) => `stock:${sku}:${reference}`;

/**
 * Receives (`delta > 0`) or adjusts (`delta` either sign) a sku's stock on hand, audited
 * with before and after, never below what orders have reserved. With a `reference`, the
 * same reference for the same sku applies once: a retry answers `duplicate`.
 */
export async function changeStock(
  db: Kysely<Database>,
  input: {
    sku: string;
    kind: StockChangeKind;
    delta: number;
    reason: string;
    reference: string | null;
    actor: string;
    nowMs: number;
  },
): Promise<StockChangeResult> {
  try {
    const changed = await db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('inventory_items')
        .set({ on_hand: sql<number>`on_hand + ${input.delta}`, updated_at: sql<Date>`now()` })
        .where('sku', '=', input.sku)
        .where(sql<boolean>`on_hand + ${input.delta} >= reserved`)
        .returningAll()
        .executeTakeFirst();
      if (!row) return null;
      const level = stockLevelOf(row);
      // The row is locked by the update: before is exactly after minus this change.
      const before = counts(row.on_hand - input.delta, row.reserved);
      const after = counts(row.on_hand, row.reserved);
      const recorded = await audit(
        trx,
        {
          actor: input.actor,
          action: `stock.${input.kind}`,
          sku: input.sku,
          reason: input.reason,
          details: { kind: input.kind, delta: input.delta, reference: input.reference, before, after },
        },
        input.reference === null ? null : stockReferenceKey(input.sku, input.reference),
      );
      if (!recorded) throw new DuplicateReference();
      await alertIfLow(trx, level, input.nowMs);
      return { outcome: 'changed' as const, level, before, after };
    });
    if (changed) return changed;
  } catch (err) {
    if (!(err instanceof DuplicateReference)) throw err;
    return duplicateOf(db, input.sku, input.reference!);
  }
  const current = await db
    .selectFrom('inventory_items')
    .select(['on_hand', 'reserved'])
    .where('sku', '=', input.sku)
    .executeTakeFirst();
  if (!current) return { outcome: 'unknown_sku' };
  // A retry whose first attempt went through may now fail the condition: it is a duplicate.
  if (input.reference !== null) {
    const earlier = await db
      .selectFrom('audit_log')
      .select('id')
      .where('dedupe_key', '=', stockReferenceKey(input.sku, input.reference))
      .executeTakeFirst();
    if (earlier) return duplicateOf(db, input.sku, input.reference);
  }
  return { outcome: 'below_reserved', ...counts(current.on_hand, current.reserved) };
}

async function duplicateOf(db: Kysely<Database>, sku: string, reference: string): Promise<StockChangeResult> {
  const [entry, row] = await Promise.all([
    db
      .selectFrom('audit_log')
      .select('details')
      .where('dedupe_key', '=', stockReferenceKey(sku, reference))
      .executeTakeFirstOrThrow(),
    db.selectFrom('inventory_items').selectAll().where('sku', '=', sku).executeTakeFirstOrThrow(),
  ]);
  const details = entry.details as { kind: string; delta: number; before: Counts; after: Counts };
  return {
    outcome: 'duplicate',
    level: stockLevelOf(row),
    recorded: { kind: details.kind, delta: details.delta, before: details.before, after: details.after },
  };
}

/** One page of stock levels in sku order, after `afterSku`; filters combine with AND. */
export async function stockLevelsPage(
  db: Kysely<Database>,
  opts: { warehouse?: string; lowOnly?: boolean; limit: number; afterSku: string | null },
): Promise<{ items: StockLevel[]; nextAfterSku: string | null }> {
  let query = db.selectFrom('inventory_items').selectAll();
  if (opts.warehouse !== undefined) query = query.where('location', '=', opts.warehouse);
  if (opts.lowOnly) query = query.where(sql<boolean>`on_hand - reserved < low_stock_threshold`);
  if (opts.afterSku !== null) query = query.where('sku', '>', opts.afterSku);
  const rows = await query
    .orderBy('sku')
    .limit(opts.limit + 1)
    .execute();
  const page = rows.slice(0, opts.limit);
  return {
    items: page.map(stockLevelOf),
    nextAfterSku: rows.length > opts.limit ? page[page.length - 1]!.sku : null,
  };
}

/** What an order line is priced and shipped from: each of these skus that is in the catalogue. */
export async function orderableItems(db: Kysely<Database>, skus: string[]) {
  return db
    .selectFrom('inventory_items')
    .select(['sku', 'name', 'location', 'unit_amount', 'currency'])
    .where('sku', 'in', skus)
    .execute();
}
