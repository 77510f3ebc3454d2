/**
 * Housekeeping's deletes of rows kept only for a while (`api_idempotency_keys`,
 * `courier_webhook_events`, `notifications`): one bounded DELETE each, the rows picked
 * oldest first, at most `batchSize`, skipping any a writer holds, and deleted by primary
 * key in one statement. Answers how many went. The domain events' pruning is in events.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { ago } from './time';

export interface PruneInput {
  /** Rows older than this (ms). */
  olderThanMs: number;
  batchSize: number;
}

const deleted = (result: { numAffectedRows?: bigint }) => Number(result.numAffectedRows ?? 0);

/**
 * Finished (DONE) Idempotency-Key records, or abandoned ones (lock expired) with no PENDING
 * order behind them (housekeeping closes those first; until then a retry takes it over).
 */
export async function pruneIdempotencyKeys(db: Kysely<Database>, input: PruneInput): Promise<number> {
  return deleted(
    await sql`delete from api_idempotency_keys where (scope, key) in (
        select k.scope, k.key from api_idempotency_keys k
        where k.created_at < ${ago(input.olderThanMs)}
          and (k.state = 'DONE' or (
            coalesce(k.locked_until < now(), true)
            and not exists (select 1 from orders o where o.id = k.resource_id and o.status = 'PENDING')))
        order by k.created_at limit ${input.batchSize}
        for update of k skip locked)`.execute(db),
  );
}

/** Courier push dedupe rows. */
export async function pruneWebhookEvents(db: Kysely<Database>, input: PruneInput): Promise<number> {
  return deleted(
    await sql`delete from courier_webhook_events where (courier, event_id) in (
        select courier, event_id from courier_webhook_events
        where received_at < ${ago(input.olderThanMs)}
        order by received_at limit ${input.batchSize}
        for update skip locked)`.execute(db),
  );
}

/** Customer notifications SENT or FAILED (PENDING ones are still the saga's to send). */
export async function pruneNotifications(db: Kysely<Database>, input: PruneInput): Promise<number> {
  return deleted(
    await sql`delete from notifications where id in (
        select id from notifications
        where status in ('SENT', 'FAILED') and created_at < ${ago(input.olderThanMs)}
        order by created_at limit ${input.batchSize}
        for update skip locked)`.execute(db),
  );
}
