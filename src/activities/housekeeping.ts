/**
 * Housekeeping on the read model, one bounded batch per call (the housekeeping workflow
 * decides how many batches a run takes):
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
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { writeAudit } from '../read-model/audit';
import { redactPersonalText, scrubPersonalData } from '../domain/personal-data';
import { ShipmentStatus } from '../domain/status';
import { writeShipmentEvent } from '../notifications/outbox';
import {
  archiveFinished,
  eventRawTexts,
  expireUnscanned,
  lockUnscrubbedFinished,
  markScrubbed,
  setEventRawTexts,
  unscannedShipmentIds,
} from '../read-model/shipments';
import { ago } from '../read-model/time';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import {
  OrderFailure,
  orderWorkflowId,
  shipmentMilestoneSignal,
  shipmentWorkflowId,
} from '../workflows/contract';
import { activityMeter } from './meter';
import { FailureType } from '../domain/failures';

export interface HousekeepingActivityDeps {
  db: Kysely<Database>;
  /** To ask whether a shipment's workflow is still running (a plain client, not the worker's). */
  temporal?: Client;
  log: Logger;
}

export interface ExpireBatchInput {
  /** No scan (last_event_at, else created_at) for this long → EXPIRED (ms). */
  expireAfterNoScanMs: number;
  batchSize: number;
  /** Shipment ids are visited in order; the next batch starts after this one. */
  afterId: string | null;
}

export interface ExpireBatchResult {
  expired: number;
  /** Stale rows whose shipment workflow is still running: it will expire them itself. */
  skippedRunning: number;
  /** Where the next batch starts; null when this batch was the last. */
  nextAfterId: string | null;
}

export interface UnstartedOrdersInput {
  /** PENDING orders created longer ago than this (ms). */
  olderThanMs: number;
  batchSize: number;
  /** Order ids are visited in order; the next batch starts after this one. */
  afterId: string | null;
}

export interface UnstartedOrdersResult {
  /** Closed as FAILED / NOT_STARTED. */
  failed: number;
  /** Left alone: their workflow exists, a request holds their key, or stock or money was touched. */
  skipped: number;
  nextAfterId: string | null;
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

/** Describes run at once against Temporal while checking a batch. */
const DESCRIBE_CONCURRENCY = 8;

/** The workflow's status name (RUNNING, COMPLETED, TERMINATED, …), or null when there is none. */
async function workflowStatus(temporal: Client, workflowId: string): Promise<string | null> {
  try {
    return (await temporal.workflow.getHandle(workflowId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

const workflowRunning = async (temporal: Client, workflowId: string) =>
  (await workflowStatus(temporal, workflowId)) === 'RUNNING';

function needsTemporal(temporal: Client | undefined, what: string): Client {
  if (temporal) return temporal;
  throw ApplicationFailure.create({
    type: FailureType.NOT_CONFIGURED,
    message: `housekeeping needs a Temporal client to ${what}`,
    nonRetryable: true,
  });
}

/** What the order of a shipment housekeeping expired learns: what its workflow would have sent. */
async function tellOrderExpired(
  temporal: Client,
  shipment: { id: string; order_id: string },
  log: Logger,
): Promise<void> {
  try {
    await temporal.workflow.getHandle(orderWorkflowId(shipment.order_id)).signal(shipmentMilestoneSignal, {
      shipmentId: shipment.id,
      status: 'EXPIRED',
      subStatus: 'NO_SCAN',
      at: new Date().toISOString(),
    });
  } catch (err) {
    // The order has finished (or never ran): nothing waits for this parcel any more.
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    log.info(
      { shipmentId: shipment.id, orderId: shipment.order_id },
      'expired shipment: its order has finished',
    );
  }
}

export function createHousekeepingActivities(deps: HousekeepingActivityDeps) {
  const { db, log } = deps;

  /**
   * Closes one order if its workflow never started. The order row and its idempotency key
   * are locked first: a client retry of the create waits on the key (and then finds the
   * order closed), and one already holding the key (starting the workflow right now) makes
   * this leave the order alone. Only then is Temporal asked, so no start slips in between.
   */
  async function failIfNeverStarted(
    temporal: Client,
    orderId: string,
    olderThanMs: number,
  ): Promise<boolean> {
    return db.transaction().execute(async (trx) => {
      const order = await trx
        .selectFrom('orders')
        .select(['id', 'created_at'])
        .where('id', '=', orderId)
        .where('status', '=', 'PENDING')
        .where('created_at', '<', ago(olderThanMs))
        .forUpdate()
        .skipLocked()
        .executeTakeFirst();
      if (!order) return false;
      const keys = await trx
        .selectFrom('api_idempotency_keys')
        .select(sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'))
        .where('resource_id', '=', orderId)
        .forUpdate()
        .execute();
      if (keys.some((k) => k.locked)) return false;
      const touched = await trx
        .selectFrom('inventory_reservations')
        .select('order_id')
        .where('order_id', '=', orderId)
        .union(trx.selectFrom('payments').select('order_id').where('order_id', '=', orderId))
        .executeTakeFirst();
      if (touched) {
        log.error(
          { orderId },
          'a PENDING order with no workflow holds stock or a payment: left for a person',
        );
        return false;
      }
      // Any run at all (running or closed) means the saga started: not ours to close.
      if ((await workflowStatus(temporal, orderWorkflowId(orderId))) !== null) return false;

      await trx
        .updateTable('orders')
        .set({
          status: 'FAILED',
          failure_code: OrderFailure.NOT_STARTED,
          failure_message:
            'The order could not be started (the workflow service was unreachable when it was placed) and was closed; nothing was reserved or charged. Place it again.',
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', orderId)
        .execute();
      await writeAudit(trx, [
        {
          actor: 'system:housekeeping',
          action: 'order.fail_not_started',
          subjectType: 'order',
          subjectId: orderId,
          reason:
            'PENDING past the start grace with no order workflow: its start failed and was never retried',
          details: { createdAt: order.created_at.toISOString(), graceMs: olderThanMs },
          dedupeKey: `housekeeping:order-not-started:${orderId}`,
        },
      ]);
      return true;
    });
  }

  return {
    /** One batch of unscanned, untracked shipments → EXPIRED (sub-status NO_SCAN), audited. */
    async expireUnscannedShipments(input: ExpireBatchInput): Promise<ExpireBatchResult> {
      const candidates = await unscannedShipmentIds(db, input);

      const temporal =
        candidates.length === 0
          ? null
          : needsTemporal(deps.temporal, 'tell untracked shipments from tracked ones');
      const untracked: string[] = [];
      for (let i = 0; i < candidates.length; i += DESCRIBE_CONCURRENCY) {
        const slice = candidates.slice(i, i + DESCRIBE_CONCURRENCY);
        const running = await Promise.all(
          slice.map((id) => workflowRunning(temporal!, shipmentWorkflowId(id))),
        );
        slice.forEach((id, j) => {
          if (!running[j]) untracked.push(id);
        });
      }

      let expired: string[] = [];
      if (untracked.length > 0) {
        expired = await db.transaction().execute(async (trx) => {
          const rows = await expireUnscanned(trx, untracked, input.expireAfterNoScanMs);
          // Each parcel's event in the same transaction (the update only matched unfinished ones).
          for (const row of rows) {
            await writeShipmentEvent(trx, {
              shipmentId: row.id,
              orderId: row.order_id,
              courier: row.courier,
              trackingNumber: row.tracking_number,
              status: ShipmentStatus.EXPIRED,
              subStatus: 'NO_SCAN',
              eta: row.eta === null ? null : new Date(row.eta).toISOString(),
            });
          }
          await writeAudit(
            trx,
            rows.map((row) => ({
              actor: 'system:housekeeping',
              action: 'shipment.expire',
              subjectType: 'shipment',
              subjectId: row.id,
              reason: 'no scan within the expiry limit and no shipment workflow tracking it',
              details: { expireAfterNoScanMs: input.expireAfterNoScanMs },
              dedupeKey: `housekeeping:expire:${row.id}`,
            })),
          );
          // Before the commit: if telling an order fails, the expiry rolls back and the retry
          // does both again (a second EXPIRED milestone is harmless to the order).
          const ofOrders = rows.flatMap((r) =>
            r.order_id === null ? [] : [{ id: r.id, order_id: r.order_id }],
          );
          for (let i = 0; i < ofOrders.length; i += DESCRIBE_CONCURRENCY) {
            await Promise.all(
              ofOrders.slice(i, i + DESCRIBE_CONCURRENCY).map((row) => tellOrderExpired(temporal!, row, log)),
            );
          }
          return rows.map((r) => r.id);
        });
      }

      const skippedRunning = candidates.length - untracked.length;
      const meter = activityMeter();
      count(meter, Metrics.housekeepingShipments, { action: 'expired' }, expired.length);
      count(meter, Metrics.housekeepingShipments, { action: 'expiry_skipped_running' }, skippedRunning);
      if (expired.length > 0)
        log.info({ shipments: expired }, `housekeeping expired ${expired.length} shipments`);
      return {
        expired: expired.length,
        skippedRunning,
        nextAfterId: candidates.length === input.batchSize ? candidates[candidates.length - 1]! : null,
      };
    },

    /**
     * One batch of PENDING orders older than the grace whose order workflow never started →
     * FAILED / NOT_STARTED, audited. Nothing else to undo: stock is reserved and payment
     * authorised only by the order workflow's own activities, so an order it never ran for
     * holds neither (checked again here: one that does is left alone and logged).
     */
    async failUnstartedOrders(input: UnstartedOrdersInput): Promise<UnstartedOrdersResult> {
      let query = db
        .selectFrom('orders')
        .select('id')
        .where('status', '=', 'PENDING')
        .where('created_at', '<', ago(input.olderThanMs))
        .orderBy('id')
        .limit(input.batchSize);
      if (input.afterId !== null) query = query.where('id', '>', input.afterId);
      const candidates = (await query.execute()).map((r) => r.id);
      const failed: string[] = [];
      if (candidates.length > 0) {
        const temporal = needsTemporal(deps.temporal, 'tell orders that never started from running ones');
        // One at a time: each holds its order's rows while Temporal is asked (a few per run).
        for (const orderId of candidates) {
          if (await failIfNeverStarted(temporal, orderId, input.olderThanMs)) failed.push(orderId);
        }
      }
      const skipped = candidates.length - failed.length;
      const meter = activityMeter();
      count(meter, Metrics.housekeepingOrders, { action: 'failed_not_started' }, failed.length);
      count(meter, Metrics.housekeepingOrders, { action: 'skipped' }, skipped);
      if (failed.length > 0) {
        log.warn(
          { orders: failed },
          `housekeeping closed ${failed.length} orders whose workflow never started`,
        );
      }
      return {
        failed: failed.length,
        skipped,
        nextAfterId: candidates.length === input.batchSize ? candidates[candidates.length - 1]! : null,
      };
    },

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
