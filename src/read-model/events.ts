/**
 * SQL of the domain events (`event_streams`, `event_key_entries`, `event_outbox`, `event_deliveries`,
 * `event_delivery_attempts`, and `event_endpoints` as the dispatcher sees them): the outbox
 * write (src/notifications/outbox.ts decides which change gets which event), the
 * dispatcher's claim and what it records of an attempt (src/notifications/dispatcher.ts
 * decides retries and disabling). The admin routes' endpoint SQL is in event-endpoints.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { EventType } from '../domain/events';
import { ago } from './time';

export interface NewEvent {
  type: EventType;
  /** `<subject>:<status>`: the change's key is this plus the subject's count of entries into it. */
  keyPrefix: string;
  orderId: string | null;
  shipmentId: string | null;
  data: Record<string, unknown>;
  /** The stream it is ordered in; default its order's, or its parcel's when it has none. */
  stream?: string;
}

/** Writes one event and its deliveries in `trx`; answers its id, or null when its key was taken. */
export async function insertEvent(trx: Kysely<Database>, event: NewEvent): Promise<number | null> {
  const stream = event.stream ?? event.orderId ?? `shipment:${event.shipmentId}`;
  const { last_seq: seq } = await trx
    .insertInto('event_streams')
    .values({ stream, last_seq: 1 })
    .onConflict((oc) =>
      oc.column('stream').doUpdateSet({ last_seq: sql<number>`event_streams.last_seq + 1` }),
    )
    .returning('last_seq')
    .executeTakeFirstOrThrow();
  // Counted under the stream's lock: two writers of one order never count the same number.
  // The count lives apart from the outbox, which housekeeping prunes (pruneEvents).
  const entered = await trx
    .selectFrom('event_key_entries')
    .select('entries')
    .where('key_prefix', '=', event.keyPrefix)
    .executeTakeFirst();
  const entries = (entered?.entries ?? 0) + 1;
  const inserted = await trx
    .insertInto('event_outbox')
    .values({
      event_key: `${event.keyPrefix}:${entries}`,
      type: event.type,
      stream,
      seq,
      order_id: event.orderId,
      shipment_id: event.shipmentId,
      data: JSON.stringify(event.data),
    })
    .onConflict((oc) => oc.column('event_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) return null;
  await trx
    .insertInto('event_key_entries')
    .values({ key_prefix: event.keyPrefix, entries })
    .onConflict((oc) => oc.column('key_prefix').doUpdateSet({ entries }))
    .execute();
  // Disabled endpoints too: their backlog goes out, in order, once an admin enables them again
  // (the part older than WAYBILL_PRUNE_EVENTS_AFTER is pruned as abandoned: docs/events.md#retention).
  await sql`
    insert into event_deliveries (endpoint_id, event_id, stream, seq)
    select id, ${inserted.id}, ${stream}, ${seq} from event_endpoints where ${event.type} = any(event_types)`.execute(
    trx,
  );
  return inserted.id;
}

/** A delivery the dispatcher leased, with its endpoint and event. */
export interface ClaimedDelivery {
  endpoint_id: string;
  event_id: number;
  attempts: number;
  url: string;
  secret: string;
  event_key: string;
  type: string;
  order_id: string | null;
  shipment_id: string | null;
  seq: number;
  data: Record<string, unknown>;
  occurred_at: Date;
}

/**
 * Claims up to `batchSize` due deliveries of enabled endpoints (none with an earlier event of
 * its stream still pending at that endpoint) and leases them for `leaseMs`.
 */
export async function claimDueDeliveries(
  db: Kysely<Database>,
  batchSize: number,
  leaseMs: number,
): Promise<ClaimedDelivery[]> {
  const rows = await sql<ClaimedDelivery>`
    with due as (
      select d.endpoint_id, d.event_id
      from event_deliveries d
      join event_endpoints e on e.id = d.endpoint_id and e.status = 'ENABLED'
      where d.status = 'PENDING' and d.next_attempt_at <= now()
        and not exists (
          select 1 from event_deliveries earlier
          where earlier.endpoint_id = d.endpoint_id and earlier.stream = d.stream
            and earlier.status = 'PENDING' and earlier.seq < d.seq)
      order by d.next_attempt_at, d.event_id
      limit ${batchSize}
      for update of d skip locked)
    update event_deliveries d
    set next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
    from due, event_endpoints e, event_outbox o
    where d.endpoint_id = due.endpoint_id and d.event_id = due.event_id
      and e.id = d.endpoint_id and o.id = d.event_id
    returning d.endpoint_id, d.event_id, d.attempts, e.url, e.secret, o.event_key, o.type,
              o.order_id, o.shipment_id, o.seq, o.data, o.occurred_at`.execute(db);
  return rows.rows;
}

type DeliveryKey = Pick<ClaimedDelivery, 'endpoint_id' | 'event_id'>;

/** One attempt at a delivery, as it went. */
export async function insertAttempt(
  trx: Kysely<Database>,
  row: DeliveryKey,
  outcome: { statusCode: number | null; ok: boolean; error: string | null; durationMs: number },
): Promise<void> {
  await trx
    .insertInto('event_delivery_attempts')
    .values({
      endpoint_id: row.endpoint_id,
      event_id: row.event_id,
      status_code: outcome.statusCode,
      ok: outcome.ok,
      error: outcome.error,
      duration_ms: outcome.durationMs,
    })
    .execute();
}

export async function markDelivered(
  trx: Kysely<Database>,
  row: DeliveryKey,
  attempts: number,
): Promise<void> {
  await trx
    .updateTable('event_deliveries')
    .set({ status: 'DELIVERED', attempts, last_error: null, delivered_at: sql<Date>`now()` })
    .where('endpoint_id', '=', row.endpoint_id)
    .where('event_id', '=', row.event_id)
    .execute();
}

/** The delivery stays PENDING, due again at `nextAttemptAt`. */
export async function scheduleRetry(
  trx: Kysely<Database>,
  row: DeliveryKey,
  attempts: number,
  error: string,
  nextAttemptAt: Date,
): Promise<void> {
  await trx
    .updateTable('event_deliveries')
    .set({ attempts, last_error: error, next_attempt_at: nextAttemptAt })
    .where('endpoint_id', '=', row.endpoint_id)
    .where('event_id', '=', row.event_id)
    .execute();
}

/** A delivery went through: the endpoint's run of failures ends. */
export async function resetEndpointFailures(trx: Kysely<Database>, endpointId: string): Promise<void> {
  await trx
    .updateTable('event_endpoints')
    .set({ consecutive_failures: 0 })
    .where('id', '=', endpointId)
    .where('consecutive_failures', '>', 0)
    .execute();
}

/** One more failure in the endpoint's run; answers the run's length and the endpoint's status. */
export async function countEndpointFailure(trx: Kysely<Database>, endpointId: string) {
  return trx
    .updateTable('event_endpoints')
    .set({ consecutive_failures: sql<number>`consecutive_failures + 1` })
    .where('id', '=', endpointId)
    .returning(['consecutive_failures', 'status'])
    .executeTakeFirst();
}

export async function disableEndpoint(
  trx: Kysely<Database>,
  endpointId: string,
  reason: string,
): Promise<void> {
  await trx
    .updateTable('event_endpoints')
    .set({ status: 'DISABLED', disabled_reason: reason, updated_at: sql<Date>`now()` })
    .where('id', '=', endpointId)
    .execute();
}

/**
 * Housekeeping: one bounded batch of events older than `olderThanMs` that no enabled
 * endpoint still waits for (every delivery DELIVERED, or left PENDING only at a disabled
 * endpoint: abandoned), deleted with their deliveries and attempts (cascade). Oldest first,
 * skipping any a writer holds (a resend locks its event). Answers how many events went.
 */
export async function pruneEvents(
  db: Kysely<Database>,
  input: { olderThanMs: number; batchSize: number },
): Promise<number> {
  const result = await sql`delete from event_outbox where id in (
      select o.id from event_outbox o
      where o.occurred_at < ${ago(input.olderThanMs)}
        and not exists (
          select 1 from event_deliveries d
          join event_endpoints e on e.id = d.endpoint_id and e.status = 'ENABLED'
          where d.event_id = o.id and d.status = 'PENDING')
      order by o.occurred_at, o.id limit ${input.batchSize}
      for update of o skip locked)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** What the dispatcher's gauges show: the backlog at enabled endpoints and the disabled endpoints. */
export async function deliveryBacklog(
  db: Kysely<Database>,
): Promise<{ pending: number; oldestPendingAgeMs: number; disabledEndpoints: number }> {
  const { rows } = await sql<{ pending: number; oldest_ms: number | null; disabled: number }>`
    select
      (select count(*)::int from event_deliveries d
         join event_endpoints e on e.id = d.endpoint_id and e.status = 'ENABLED'
         where d.status = 'PENDING') as pending,
      (select extract(epoch from now() - min(o.occurred_at)) * 1000 from event_deliveries d
         join event_endpoints e on e.id = d.endpoint_id and e.status = 'ENABLED'
         join event_outbox o on o.id = d.event_id
         where d.status = 'PENDING')::float8 as oldest_ms,
      (select count(*)::int from event_endpoints where status = 'DISABLED') as disabled`.execute(db);
  const row = rows[0]!;
  return { pending: row.pending, oldestPendingAgeMs: row.oldest_ms ?? 0, disabledEndpoints: row.disabled };
}
