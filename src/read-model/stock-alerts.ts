/**
 * Low-stock alerts: raised when a sku's available stock (`on_hand - reserved`) falls below
 * its threshold, by the saga after a reservation and by a stock change through the API; at
 * most one per sku per UTC day (the same key as the ops notification); listed and
 * acknowledged by staff. Plain functions on `db` or a caller's transaction.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { LowStock } from './stock-checks';

const KEY_PREFIX = 'low-stock:';

/** `low-stock:<sku>:<YYYY-MM-DD UTC>`: one alert (and one ops notification) per sku per day. */
export function lowStockDedupeKey(sku: string, nowMs: number): string {
  return `${KEY_PREFIX}${sku}:${new Date(nowMs).toISOString().slice(0, 10)}`;
}

/** Records an alert for each low sku not yet alerted today; returns the skus alerted now. */
export async function raiseLowStockAlerts(
  db: Kysely<Database>,
  low: LowStock[],
  nowMs: number,
): Promise<string[]> {
  if (low.length === 0) return [];
  const rows = await db
    .insertInto('stock_alerts')
    .values(
      low.map((item) => ({
        sku: item.sku,
        dedupe_key: lowStockDedupeKey(item.sku, nowMs),
        available: item.available,
        threshold: item.threshold,
      })),
    )
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('sku')
    .execute();
  return rows.map((r) => r.sku);
}

export const AlertState = { OPEN: 'open', ACKNOWLEDGED: 'acknowledged', ALL: 'all' } as const;
export type AlertState = (typeof AlertState)[keyof typeof AlertState];

export interface AlertView {
  /** `<sku>:<YYYY-MM-DD UTC>`: the sku and the day it was raised (its dedupe key without the prefix). */
  alertId: string;
  sku: string;
  name: string;
  warehouse: string;
  /** When raised. */
  available: number;
  threshold: number;
  /** `on_hand - reserved` now. */
  availableNow: number;
  raisedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  note: string | null;
}

function alertsQuery(db: Kysely<Database>) {
  return db
    .selectFrom('stock_alerts as a')
    .innerJoin('inventory_items as i', 'i.sku', 'a.sku')
    .select([
      'a.id',
      'a.dedupe_key',
      'a.sku',
      'i.name',
      'i.location',
      'a.available',
      'a.threshold',
      sql<number>`i.on_hand - i.reserved`.as('available_now'),
      'a.raised_at',
      'a.acknowledged_at',
      'a.acknowledged_by',
      'a.note',
    ]);
}

type AlertRow = Awaited<ReturnType<ReturnType<typeof alertsQuery>['executeTakeFirstOrThrow']>>;

function alertView(r: AlertRow): AlertView {
  return {
    alertId: r.dedupe_key.slice(KEY_PREFIX.length),
    sku: r.sku,
    name: r.name,
    warehouse: r.location,
    available: r.available,
    threshold: r.threshold,
    availableNow: r.available_now,
    raisedAt: r.raised_at.toISOString(),
    acknowledgedAt: r.acknowledged_at?.toISOString() ?? null,
    acknowledgedBy: r.acknowledged_by,
    note: r.note,
  };
}

/**
 * One page of alerts, oldest first (by id, which is raise order). Open alerts come from a
 * partial index on the open ones, so the list stays cheap however many were acknowledged.
 */
export async function alertsPage(
  db: Kysely<Database>,
  opts: { state: AlertState; warehouse?: string; limit: number; afterId: number | null },
): Promise<{ items: AlertView[]; nextAfterId: number | null }> {
  let query = alertsQuery(db);
  if (opts.state === AlertState.OPEN) query = query.where('a.acknowledged_at', 'is', null);
  if (opts.state === AlertState.ACKNOWLEDGED) query = query.where('a.acknowledged_at', 'is not', null);
  if (opts.warehouse !== undefined) query = query.where('i.location', '=', opts.warehouse);
  if (opts.afterId !== null) query = query.where('a.id', '>', opts.afterId);
  const rows = await query
    .orderBy('a.id')
    .limit(opts.limit + 1)
    .execute();
  const page = rows.slice(0, opts.limit);
  return {
    items: page.map(alertView),
    // The row id (raise order) is the page position; the cursor keeps it opaque.
    nextAfterId: rows.length > opts.limit ? page[page.length - 1]!.id : null,
  };
}

/**
 * Acknowledges an alert, audited. Idempotent: acknowledging it again changes nothing and
 * answers the first acknowledgement (who, when, note). Null for an unknown alert.
 */
export async function acknowledgeAlert(
  db: Kysely<Database>,
  input: { alertId: string; actor: string; note: string | null },
): Promise<{ alert: AlertView; alreadyAcknowledged: boolean } | null> {
  return db.transaction().execute(async (trx) => {
    const acknowledged = await trx
      .updateTable('stock_alerts')
      .set({ acknowledged_at: sql<Date>`now()`, acknowledged_by: input.actor, note: input.note })
      .where('dedupe_key', '=', `${KEY_PREFIX}${input.alertId}`)
      .where('acknowledged_at', 'is', null)
      .returning(['id', 'sku'])
      .executeTakeFirst();
    if (acknowledged) {
      await trx
        .insertInto('audit_log')
        .values({
          actor: input.actor,
          action: 'stock_alert.acknowledge',
          subject_type: 'stock_alert',
          subject_id: input.alertId,
          reason: input.note,
          details: JSON.stringify({ sku: acknowledged.sku }),
          dedupe_key: `stock-alert-ack:${input.alertId}`,
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .execute();
    }
    const row = await alertsQuery(trx)
      .where('a.dedupe_key', '=', `${KEY_PREFIX}${input.alertId}`)
      .executeTakeFirst();
    return row ? { alert: alertView(row), alreadyAcknowledged: !acknowledged } : null;
  });
}
