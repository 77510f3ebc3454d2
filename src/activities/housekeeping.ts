/**
 * Housekeeping on the read model, one bounded batch per call (the housekeeping workflow
 * decides how many batches a run takes); the two expiry steps are in housekeeping-expiry.ts:
 * - expire shipments nobody tracks any more: not finished, no scan for the expiry limit,
 *   and no running shipment workflow (a running one expires itself; it is left alone); the
 *   order they belong to is told, as their workflow would have told it;
 * - close orders whose workflow never started (the API wrote the row, then could not start
 *   the saga, and the client never retried) as FAILED / NOT_STARTED;
 * - archive shipments finished long ago (`archived_at`);
 * - scrub personal data from the raw courier payloads of shipments finished long ago, and
 *   from the lines of parcel imports finished long ago;
 * - delete rows kept only for a while: finished Idempotency-Key records, courier push
 *   dedupe rows, sent or given-up customer notifications, domain events no enabled endpoint
 *   waits for (with their deliveries and attempts), settled EasyParcel submissions.
 * Each is idempotent: rows it has handled no longer match its query.
 */
import type { Client } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { redactPersonalText, scrubPersonalData } from '../domain/personal-data';
import {
  archiveFinished,
  eventRawTexts,
  lockUnscrubbedFinished,
  markScrubbed,
  scrubFleetRecipients,
  setEventRawTexts,
} from '../read-model/shipments';
import { pruneEasyParcelSubmissions } from '../read-model/easyparcel-submissions';
import { pruneEvents } from '../read-model/events';
import { scrubFinishedImportLines } from '../read-model/imports';
import {
  pruneIdempotencyKeys,
  pruneNotifications,
  pruneWebhookEvents,
  type PruneInput,
} from '../read-model/retention';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import { activityMeter } from './meter';
import { createExpiryActivities } from './housekeeping-expiry';

export interface HousekeepingActivityDeps {
  db: Kysely<Database>;
  /** To ask whether a shipment's workflow is still running (a plain client, not the worker's). */
  temporal?: Client;
  log: Logger;
}

export interface AgeBatchInput {
  /** Shipments finished longer ago than this (ms). */
  olderThanMs: number;
  batchSize: number;
}

export interface AgeBatchResult {
  changed: number;
  /** Whether a full batch was handled (there may be more). */
  more: boolean;
}

/** What `pruneOldRows` deletes, each after its own age. */
export const PRUNABLE = {
  /**
   * `api_idempotency_keys` rows: finished (DONE), or abandoned (lock expired) with no
   * PENDING order behind them (housekeeping closes those first; until then a retry takes
   * the order over). A retry with a pruned key is a new request.
   */
  IDEMPOTENCY_KEYS: 'idempotencyKeys',
  /** `courier_webhook_events`: the dedupe of pushes, kept longer than a signature is accepted. */
  WEBHOOK_EVENTS: 'webhookEvents',
  /** `notifications` SENT or FAILED; PENDING ones are still the saga's to send. */
  NOTIFICATIONS: 'notifications',
  /**
   * `event_outbox` rows (their deliveries and attempts by cascade) no enabled endpoint still
   * waits for: delivered everywhere, or pending only at a disabled endpoint (abandoned).
   */
  EVENTS: 'events',
  /**
   * `easyparcel_submissions` settled: the booking's AWB known and its order finished. One
   * still without an AWB is what stops a second submit of its reference: never deleted.
   */
  EASYPARCEL_SUBMISSIONS: 'easyParcelSubmissions',
} as const;
export type Prunable = (typeof PRUNABLE)[keyof typeof PRUNABLE];

export interface PruneBatchInput {
  kind: Prunable;
  /** Rows older than this (ms). */
  olderThanMs: number;
  batchSize: number;
}

export function createHousekeepingActivities(deps: HousekeepingActivityDeps) {
  const { db, log } = deps;

  return {
    ...createExpiryActivities(deps),

    /** One batch of shipments finished longer ago than the limit → archived. */
    async archiveFinishedShipments(input: AgeBatchInput): Promise<AgeBatchResult> {
      const archived = await archiveFinished(db, input.olderThanMs, input.batchSize);
      count(activityMeter(), Metrics.housekeepingShipments, { action: 'archived' }, archived);
      if (archived > 0) log.info(`housekeeping archived ${archived} shipments`);
      return { changed: archived, more: archived === input.batchSize };
    },

    /**
     * One batch of shipments finished longer ago than the limit: personal data scrubbed from
     * `raw_latest`, from their events' `raw_text` and from an own-fleet booking's recipient,
     * then marked `pii_scrubbed_at`.
     */
    async scrubFinishedShipments(input: AgeBatchInput): Promise<AgeBatchResult> {
      const scrubbed = await db.transaction().execute(async (trx) => {
        const shipments = await lockUnscrubbedFinished(trx, input.olderThanMs, input.batchSize);
        if (shipments.length === 0) return 0;
        const ids = shipments.map((s) => s.id);

        const events = await eventRawTexts(trx, ids);
        const changedEvents = events
          .map((e) => ({ id: e.id, text: redactPersonalText(e.raw_text!) }))
          .filter((e, i) => e.text !== events[i]!.raw_text);
        if (changedEvents.length > 0) {
          await setEventRawTexts(trx, changedEvents);
        }

        const payloads = shipments.map((s) =>
          s.raw_latest === null ? null : JSON.stringify(scrubPersonalData(s.raw_latest)),
        );
        await markScrubbed(trx, ids, payloads);
        await scrubFleetRecipients(trx, ids);
        return shipments.length;
      });
      count(activityMeter(), Metrics.housekeepingShipments, { action: 'scrubbed' }, scrubbed);
      if (scrubbed > 0) log.info(`housekeeping scrubbed personal data from ${scrubbed} shipments`);
      return { changed: scrubbed, more: scrubbed === input.batchSize };
    },

    /**
     * One batch of lines of parcel imports finished longer ago than the limit: the e-mail,
     * postcode and order reference they were sent with set to null (the courier, tracking
     * number and result stay for the admin's record). Lines already scrubbed no longer match.
     */
    async scrubFinishedImports(input: AgeBatchInput): Promise<AgeBatchResult> {
      const scrubbed = await scrubFinishedImportLines(db, input.olderThanMs, input.batchSize);
      if (scrubbed > 0) log.info(`housekeeping scrubbed personal data from ${scrubbed} parcel import lines`);
      return { changed: scrubbed, more: scrubbed === input.batchSize };
    },

    /** One batch of `kind`'s rows older than the limit → deleted (a second run finds them gone). */
    async pruneOldRows(input: PruneBatchInput): Promise<AgeBatchResult> {
      const deleted = await PRUNE[input.kind](db, input);
      count(activityMeter(), Metrics.housekeepingPruned, { kind: input.kind }, deleted);
      if (deleted > 0)
        log.info({ kind: input.kind, deleted }, `housekeeping pruned ${deleted} ${input.kind}`);
      return { changed: deleted, more: deleted === input.batchSize };
    },
  };
}

/** Each kind's bounded DELETE (src/read-model/retention.ts). */
const PRUNE: Record<Prunable, (db: Kysely<Database>, input: PruneInput) => Promise<number>> = {
  [PRUNABLE.IDEMPOTENCY_KEYS]: pruneIdempotencyKeys,
  [PRUNABLE.WEBHOOK_EVENTS]: pruneWebhookEvents,
  [PRUNABLE.NOTIFICATIONS]: pruneNotifications,
  [PRUNABLE.EVENTS]: pruneEvents,
  [PRUNABLE.EASYPARCEL_SUBMISSIONS]: pruneEasyParcelSubmissions,
};

export type HousekeepingActivities = ReturnType<typeof createHousekeepingActivities>;
