/**
 * Stock activities for the order saga: reserve (step 1) and its compensation (release),
 * consume at shipment, restock a returned parcel, and the ops low-stock notification and alert.
 * All safe to run twice: reservation rows are keyed by order + sku and move through their
 * statuses with guards; notifications and alerts are keyed by sku and UTC day.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import {
  consumeCollected,
  consumeStock,
  releaseStock,
  ReservationSettledError,
  reserveStock,
  restockReturned,
  type ReserveStockInput,
  type Shortage,
  type StockChange,
} from '../read-model/inventory';
import { lowStockSkus, type LowStock } from '../read-model/stock-checks';
import { lowStockDedupeKey, raiseLowStockAlerts } from '../read-model/stock-alerts';
import { storeOpsNotices } from '../read-model/notices';
import type { Logger } from '../logger';
import { FailureType } from '../domain/failures';

export interface InventoryActivityDeps {
  db: Kysely<Database>;
  log: Logger;
  /** Clock for the notification day (ms since epoch); tests move it. */
  now?: () => number;
}

export interface NotifyLowStockResult {
  /** Skus a notification row was created for now (not already notified today). */
  notified: string[];
}

export { lowStockDedupeKey };

function describeShortages(shortages: Shortage[]): string {
  return shortages.map((s) => `${s.sku} (requested ${s.requested}, available ${s.available})`).join(', ');
}

export function createInventoryActivities(deps: InventoryActivityDeps) {
  const { db, log } = deps;
  const now = deps.now ?? Date.now;

  return {
    /**
     * Reserves every line of the order, all or nothing. Throws a non-retryable `OutOfStock`
     * failure naming the short skus (details: `[Shortage[]]`); nothing stays reserved then.
     */
    async reserveStock(input: ReserveStockInput): Promise<void> {
      let result;
      try {
        result = await reserveStock(db, input);
      } catch (err) {
        if (err instanceof ReservationSettledError) {
          throw ApplicationFailure.create({
            type: FailureType.RESERVATION_SETTLED,
            message: err.message,
            nonRetryable: true,
          });
        }
        if (err instanceof RangeError) {
          throw ApplicationFailure.create({
            type: FailureType.INVALID_STOCK_REQUEST,
            message: err.message,
            nonRetryable: true,
          });
        }
        throw err;
      }
      if (!result.ok) {
        log.info({ orderId: input.orderId, shortages: result.shortages }, 'out of stock');
        throw ApplicationFailure.create({
          type: FailureType.OUT_OF_STOCK,
          message: `out of stock: ${describeShortages(result.shortages)}`,
          details: [result.shortages],
          nonRetryable: true,
        });
      }
      log.info({ orderId: input.orderId }, 'stock reserved');
    },

    /** Compensation of reserveStock: gives held stock back. A no-op when nothing is held. */
    async releaseStock(input: { orderId: string }): Promise<StockChange> {
      const result = await releaseStock(db, input);
      if (result.changed.length > 0) log.info({ orderId: input.orderId, ...result }, 'stock released');
      return result;
    },

    /** At shipment: the held units leave the warehouse (`skus` = this parcel's, or all). */
    async consumeStock(input: { orderId: string; skus?: string[] }): Promise<StockChange> {
      const result = await consumeStock(db, input);
      if (result.changed.length > 0) log.info({ orderId: input.orderId, ...result }, 'stock consumed');
      return result;
    },

    /** A parcel the courier collected while its order was being settled: its goods left, held or released. */
    async consumeCollectedStock(input: {
      orderId: string;
      skus: string[];
    }): Promise<Awaited<ReturnType<typeof consumeCollected>>> {
      const result = await consumeCollected(db, input);
      if (result.changed.length > 0)
        log.info({ orderId: input.orderId, changed: result.changed }, 'collected stock consumed');
      if (result.oversold.length > 0)
        log.warn(
          { orderId: input.orderId, oversold: result.oversold },
          'a collected parcel carries units sold again after the clean-up released them',
        );
      return result;
    },

    /** A returned parcel's units go back on the shelf. */
    async restockReturned(input: { orderId: string; skus: string[] }): Promise<StockChange> {
      const result = await restockReturned(db, input);
      if (result.changed.length > 0) log.info({ orderId: input.orderId, ...result }, 'stock restocked');
      return result;
    },

    /**
     * One ops notification for each of these skus whose available stock is below its
     * threshold, at most one per sku per UTC day (a retry or a later order the same day
     * adds nothing). The delivery activity sends the rows.
     */
    async notifyLowStock(input: { skus: string[] }): Promise<NotifyLowStockResult> {
      const low: LowStock[] = await lowStockSkus(db, input.skus);
      if (low.length === 0) return { notified: [] };
      const nowMs = now();
      // The alert staff list and acknowledge (GET /v1/admin/stock/alerts), same key as the notification.
      await raiseLowStockAlerts(db, low, nowMs);
      const created = await storeOpsNotices(
        db,
        low.map((item) => ({
          dedupeKey: lowStockDedupeKey(item.sku, nowMs),
          kind: 'LOW_STOCK',
          payload: { sku: item.sku, available: item.available, threshold: item.threshold },
        })),
      );
      const notified = low
        .filter((item) => created.has(lowStockDedupeKey(item.sku, nowMs)))
        .map((i) => i.sku);
      if (notified.length > 0) log.info({ skus: notified }, 'low stock notification queued');
      return { notified };
    },
  };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
