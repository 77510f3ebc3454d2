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
 *   dedupe rows, sent or given-up customer notifications.
 * Each is idempotent: rows it has handled no longer match its query.
 */
import type { Client } from '@temporalio/client';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { redactPersonalText, scrubPersonalData } from '../domain/personal-data';
import {
  archiveFinished,
  eventRawTexts,
  lockUnscrubbedFinished,
  markScrubbed,
  setEventRawTexts,
} from '../read-model/shipments';
import { ago } from '../read-model/time';
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
     * `raw_latest` and from their events' `raw_text`, then marked `pii_scrubbed_at`.
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
      const result = await sql`update parcel_import_lines as l
          set email = null, postcode = null, order_reference = null
          where (l.import_id, l.line_no) in (
            select pl.import_id, pl.line_no from parcel_import_lines pl
            join parcel_imports i on i.id = pl.import_id
            where i.status = 'DONE' and i.finished_at < ${ago(input.olderThanMs)}
              and (pl.email is not null or pl.postcode is not null or pl.order_reference is not null)
            order by i.finished_at, pl.import_id, pl.line_no limit ${input.batchSize}
            for update of pl skip locked)`.execute(db);
      const scrubbed = Number(result.numAffectedRows ?? 0);
      if (scrubbed > 0) log.info(`housekeeping scrubbed personal data from ${scrubbed} parcel import lines`);
      return { changed: scrubbed, more: scrubbed === input.batchSize };
    },

    /** One batch of `kind`'s rows older than the limit → deleted (a second run finds them gone). */
    async pruneOldRows(input: PruneBatchInput): Promise<AgeBatchResult> {
      const result = await pruneBatch(db, input);
      const deleted = Number(result.numAffectedRows ?? 0);
      count(activityMeter(), Metrics.housekeepingPruned, { kind: input.kind }, deleted);
      if (deleted > 0)
        log.info({ kind: input.kind, deleted }, `housekeeping pruned ${deleted} ${input.kind}`);
      return { changed: deleted, more: deleted === input.batchSize };
    },
  };
}

/**
 * One bounded DELETE of `kind`'s old rows: the rows are picked (oldest first, at most
 * `batchSize`, skipping any a writer holds) and deleted by primary key in one statement.
 */
function pruneBatch(db: Kysely<Database>, input: PruneBatchInput) {
  const cutoff = ago(input.olderThanMs);
  switch (input.kind) {
    case PRUNABLE.IDEMPOTENCY_KEYS:
      return sql`delete from api_idempotency_keys where (scope, key) in (
          select k.scope, k.key from api_idempotency_keys k
          where k.created_at < ${cutoff}
            and (k.state = 'DONE' or (
              coalesce(k.locked_until < now(), true)
              and not exists (select 1 from orders o where o.id = k.resource_id and o.status = 'PENDING')))
          order by k.created_at limit ${input.batchSize}
          for update of k skip locked)`.execute(db);
    case PRUNABLE.WEBHOOK_EVENTS:
      return sql`delete from courier_webhook_events where (courier, event_id) in (
          select courier, event_id from courier_webhook_events
          where received_at < ${cutoff}
          order by received_at limit ${input.batchSize}
          for update skip locked)`.execute(db);
    case PRUNABLE.NOTIFICATIONS:
      return sql`delete from notifications where id in (
          select id from notifications
          where status in ('SENT', 'FAILED') and created_at < ${cutoff}
          order by created_at limit ${input.batchSize}
          for update skip locked)`.execute(db);
  }
}

export type HousekeepingActivities = ReturnType<typeof createHousekeepingActivities>;
