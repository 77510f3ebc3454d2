/**
 * The shops' event endpoints and what was delivered to them: the SQL behind the admin routes
 * (src/api/routes/subscriptions.ts). Every change an admin makes is audited in the same
 * transaction; the secret is generated here and answered only by create and rotate.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database, EventEndpoint } from '../../db/database';
import { writeAudit } from './audit';

/** `whsec_` and 32 random bytes, base64url: what the receiver keys its HMAC with. */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export interface EndpointChange {
  actor: string;
  reason: string | null;
}

async function audit(
  trx: Kysely<Database>,
  change: EndpointChange,
  action: string,
  endpointId: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  await writeAudit(trx, [
    {
      actor: change.actor,
      action,
      subjectType: 'event_endpoint',
      subjectId: endpointId,
      reason: change.reason,
      details,
      dedupeKey: null,
    },
  ]);
}

export async function createEndpoint(
  db: Kysely<Database>,
  input: { url: string; eventTypes: string[]; description: string | null },
  change: EndpointChange,
): Promise<EventEndpoint> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('event_endpoints')
      .values({
        id: `wep_${randomUUID().replace(/-/g, '')}`,
        url: input.url,
        description: input.description,
        event_types: input.eventTypes,
        secret: newEndpointSecret(),
        disabled_reason: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await audit(trx, change, 'event_endpoint.create', row.id, {
      url: input.url,
      eventTypes: input.eventTypes,
    });
    return row;
  });
}

export async function listEndpoints(db: Kysely<Database>): Promise<EventEndpoint[]> {
  return db.selectFrom('event_endpoints').selectAll().orderBy('created_at').orderBy('id').execute();
}

export async function findEndpoint(db: Kysely<Database>, id: string): Promise<EventEndpoint | undefined> {
  return db.selectFrom('event_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Changes an endpoint's URL, types, description, status or secret, audited as `action`.
 * Enabling clears the failure run and makes its backlog due now. Undefined: no such endpoint.
 */
export async function changeEndpoint(
  db: Kysely<Database>,
  id: string,
  action: 'update' | 'enable' | 'disable' | 'rotate_secret',
  input: { url?: string; eventTypes?: string[]; description?: string | null },
  change: EndpointChange,
): Promise<EventEndpoint | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('event_endpoints')
      .set({
        ...(input.url !== undefined ? { url: input.url } : {}),
        ...(input.eventTypes !== undefined ? { event_types: input.eventTypes } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(action === 'enable' ? { status: 'ENABLED', disabled_reason: null, consecutive_failures: 0 } : {}),
        ...(action === 'disable'
          ? { status: 'DISABLED', disabled_reason: `disabled by ${change.actor}` }
          : {}),
        ...(action === 'rotate_secret' ? { secret: newEndpointSecret() } : {}),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) return undefined;
    if (action === 'enable') {
      await trx
        .updateTable('event_deliveries')
        .set({ next_attempt_at: sql<Date>`now()` })
        .where('endpoint_id', '=', id)
        .where('status', '=', 'PENDING')
        .execute();
    }
    await audit(trx, change, `event_endpoint.${action}`, id, {
      ...(input.url !== undefined ? { url: input.url } : {}),
      ...(input.eventTypes !== undefined ? { eventTypes: input.eventTypes } : {}),
    });
    return row;
  });
}

/** Deletes the endpoint with its deliveries and attempts (audited); false when there was none. */
export async function deleteEndpoint(
  db: Kysely<Database>,
  id: string,
  change: EndpointChange,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const gone = await trx.deleteFrom('event_endpoints').where('id', '=', id).executeTakeFirst();
    if (gone.numDeletedRows === 0n) return false;
    await audit(trx, change, 'event_endpoint.delete', id);
    return true;
  });
}

export interface DeliveryView {
  eventId: string;
  type: string;
  orderId: string | null;
  shipmentId: string | null;
  occurredAt: Date;
  status: 'PENDING' | 'DELIVERED';
  attempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  deliveredAt: Date | null;
}

/** The endpoint's deliveries, newest event first; `before` is the outbox id to page under. */
export async function listDeliveries(
  db: Kysely<Database>,
  endpointId: string,
  filter: { status?: 'PENDING' | 'DELIVERED'; limit: number; before?: number },
): Promise<(DeliveryView & { cursor: number })[]> {
  let query = db
    .selectFrom('event_deliveries as d')
    .innerJoin('event_outbox as o', 'o.id', 'd.event_id')
    .select([
      'o.id',
      'o.event_key',
      'o.type',
      'o.order_id',
      'o.shipment_id',
      'o.occurred_at',
      'd.status',
      'd.attempts',
      'd.next_attempt_at',
      'd.last_error',
      'd.delivered_at',
    ])
    .where('d.endpoint_id', '=', endpointId);
  if (filter.status) query = query.where('d.status', '=', filter.status);
  if (filter.before !== undefined) query = query.where('o.id', '<', filter.before);
  const rows = await query.orderBy('o.id', 'desc').limit(filter.limit).execute();
  return rows.map((r) => ({
    cursor: r.id,
    eventId: r.event_key,
    type: r.type,
    orderId: r.order_id,
    shipmentId: r.shipment_id,
    occurredAt: r.occurred_at,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'PENDING' ? r.next_attempt_at : null,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
  }));
}

/** Every attempt at the endpoint (or at one event of it), newest first. */
export async function listAttempts(
  db: Kysely<Database>,
  endpointId: string,
  filter: { eventKey?: string; limit: number; before?: number },
) {
  let query = db
    .selectFrom('event_delivery_attempts as a')
    .innerJoin('event_outbox as o', 'o.id', 'a.event_id')
    .select([
      'a.id',
      'o.event_key',
      'o.type',
      'a.attempted_at',
      'a.status_code',
      'a.ok',
      'a.error',
      'a.duration_ms',
    ])
    .where('a.endpoint_id', '=', endpointId);
  if (filter.eventKey !== undefined) query = query.where('o.event_key', '=', filter.eventKey);
  if (filter.before !== undefined) query = query.where('a.id', '<', filter.before);
  return query.orderBy('a.id', 'desc').limit(filter.limit).execute();
}

/**
 * Sends an event to the endpoint again: its delivery is pending and due now (created when
 * the endpoint was not subscribed to it then), audited. Like any delivery it waits behind
 * the same order's earlier undelivered events. Answers false when there is no such event.
 */
export async function resendEvent(
  db: Kysely<Database>,
  endpointId: string,
  eventKey: string,
  change: EndpointChange,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const event = await trx
      .selectFrom('event_outbox')
      .select(['id', 'stream', 'seq', 'type'])
      .where('event_key', '=', eventKey)
      // Held against housekeeping's prune (which skips locked events) until the delivery is in.
      .forKeyShare()
      .executeTakeFirst();
    if (!event) return false;
    await trx
      .insertInto('event_deliveries')
      .values({ endpoint_id: endpointId, event_id: event.id, stream: event.stream, seq: event.seq })
      .onConflict((oc) =>
        oc.columns(['endpoint_id', 'event_id']).doUpdateSet({
          status: 'PENDING',
          next_attempt_at: sql<Date>`now()`,
          delivered_at: null,
        }),
      )
      .execute();
    await audit(trx, change, 'event_endpoint.resend', endpointId, { eventId: eventKey, type: event.type });
    return true;
  });
}
