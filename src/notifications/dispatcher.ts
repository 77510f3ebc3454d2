/**
 * The event dispatcher: a loop in the worker process that sends the outbox's pending
 * deliveries to the shops' endpoints (docs/events.md says why a loop over Postgres rather
 * than a workflow per endpoint). Everything it knows is in Postgres, so a restart loses
 * nothing: a delivery claimed by a process that died is due again when its lease runs out.
 *
 * - In order per order: a delivery is due only when no earlier event of the same order is
 *   still pending for the same endpoint, so a failing event holds back that order's later
 *   events at that endpoint, and nothing else.
 * - Several worker processes share the work: a claim takes rows `FOR UPDATE SKIP LOCKED`
 *   and leases them (moves `next_attempt_at` past the request timeout) before sending.
 * - Signed as every outbound webhook (transport.ts); any answer but 2xx is a failure,
 *   retried after an exponential backoff with full jitter; after the configured run of
 *   consecutive failures the endpoint is disabled (audited) until an admin enables it.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { writeAudit } from '../read-model/audit';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { postSigned } from './transport';

export interface DispatcherSettings {
  /** How often the loop looks for due deliveries when the last look found none (ms). */
  pollIntervalMs: number;
  /** The first retry waits up to this long; each failure doubles it (ms). */
  retryBaseMs: number;
  /** No retry waits longer than this (ms). */
  retryMaxMs: number;
  /** This many failed attempts in a row disable the endpoint. */
  disableAfterFailures: number;
  /** One request's time limit (ms). */
  timeoutMs: number;
  /** Deliveries sent at once by this process. */
  batchSize: number;
}

/** The configured settings (WAYBILL_EVENTS_*); a batch of 16 deliveries at once per process. */
export function dispatcherSettings(config: Config): DispatcherSettings {
  const { pollIntervalMs, retryBaseMs, retryMaxMs, disableAfterFailures, timeoutMs } = config.events;
  return { pollIntervalMs, retryBaseMs, retryMaxMs, disableAfterFailures, timeoutMs, batchSize: 16 };
}

export interface Dispatcher {
  /** Sends what is due now, once; answers how many deliveries it attempted. For tests and the loop. */
  runOnce(): Promise<number>;
  /** Stops the loop after the round in flight. */
  stop(): Promise<void>;
}

interface Claimed {
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

/** Full jitter: a random wait up to the capped exponential (AWS's "exponential backoff and jitter"). */
export function retryDelayMs(
  attempts: number,
  settings: Pick<DispatcherSettings, 'retryBaseMs' | 'retryMaxMs'>,
): number {
  const ceiling = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.min(attempts - 1, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** What a receiver gets: the event's key (also in `x-waybill-event-id`) is stable across retries and resends. */
export function eventBody(
  row: Pick<Claimed, 'event_key' | 'type' | 'order_id' | 'shipment_id' | 'seq' | 'data' | 'occurred_at'>,
): string {
  return JSON.stringify({
    id: row.event_key,
    type: row.type,
    occurredAt: row.occurred_at.toISOString(),
    orderId: row.order_id,
    shipmentId: row.shipment_id,
    sequence: row.seq,
    data: row.data,
  });
}

async function claim(db: Kysely<Database>, settings: DispatcherSettings): Promise<Claimed[]> {
  // The lease: long enough for the request to end, so no other process sends it meanwhile.
  const leaseMs = settings.timeoutMs + 5_000;
  const rows = await sql<Claimed>`
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
      limit ${settings.batchSize}
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

async function record(
  db: Kysely<Database>,
  log: Logger,
  settings: DispatcherSettings,
  row: Claimed,
  outcome: { statusCode: number | null; error: string | null; durationMs: number },
): Promise<void> {
  const ok = outcome.error === null;
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('event_delivery_attempts')
      .values({
        endpoint_id: row.endpoint_id,
        event_id: row.event_id,
        status_code: outcome.statusCode,
        ok,
        error: outcome.error,
        duration_ms: outcome.durationMs,
      })
      .execute();
    const attempts = row.attempts + 1;
    await trx
      .updateTable('event_deliveries')
      .set(
        ok
          ? { status: 'DELIVERED', attempts, last_error: null, delivered_at: sql<Date>`now()` }
          : {
              attempts,
              last_error: outcome.error,
              next_attempt_at: new Date(Date.now() + retryDelayMs(attempts, settings)),
            },
      )
      .where('endpoint_id', '=', row.endpoint_id)
      .where('event_id', '=', row.event_id)
      .execute();
    if (ok) {
      await trx
        .updateTable('event_endpoints')
        .set({ consecutive_failures: 0 })
        .where('id', '=', row.endpoint_id)
        .where('consecutive_failures', '>', 0)
        .execute();
      return;
    }
    const endpoint = await trx
      .updateTable('event_endpoints')
      .set({ consecutive_failures: sql<number>`consecutive_failures + 1` })
      .where('id', '=', row.endpoint_id)
      .returning(['consecutive_failures', 'status'])
      .executeTakeFirst();
    if (endpoint?.status !== 'ENABLED' || endpoint.consecutive_failures < settings.disableAfterFailures)
      return;
    const reason = `${endpoint.consecutive_failures} deliveries failed in a row; last: ${outcome.error}`;
    await trx
      .updateTable('event_endpoints')
      .set({ status: 'DISABLED', disabled_reason: reason, updated_at: sql<Date>`now()` })
      .where('id', '=', row.endpoint_id)
      .execute();
    await writeAudit(trx, [
      {
        actor: 'system:event-dispatcher',
        action: 'event_endpoint.auto_disable',
        subjectType: 'event_endpoint',
        subjectId: row.endpoint_id,
        reason,
        details: { failures: endpoint.consecutive_failures },
        dedupeKey: null,
      },
    ]);
    log.warn(
      { endpointId: row.endpoint_id, failures: endpoint.consecutive_failures },
      'event endpoint disabled',
    );
  });
}

async function deliver(
  db: Kysely<Database>,
  log: Logger,
  settings: DispatcherSettings,
  row: Claimed,
): Promise<void> {
  const started = Date.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    statusCode = await postSigned({
      url: row.url,
      secret: row.secret,
      eventId: row.event_key,
      body: eventBody(row),
      headers: { 'x-waybill-event-type': row.type },
      timeoutMs: settings.timeoutMs,
    });
    if (statusCode < 200 || statusCode >= 300) error = `answered ${statusCode}`;
  } catch (err) {
    error = (err as Error).message.slice(0, 500);
  }
  await record(db, log, settings, row, { statusCode, error, durationMs: Date.now() - started });
}

export function startDispatcher(deps: {
  db: Kysely<Database>;
  log: Logger;
  settings: DispatcherSettings;
}): Dispatcher {
  const { db, log, settings } = deps;
  let running = true;
  let wake: (() => void) | null = null;

  async function runOnce(): Promise<number> {
    const rows = await claim(db, settings);
    await Promise.all(rows.map((row) => deliver(db, log, settings, row)));
    return rows.length;
  }

  const loop = (async () => {
    while (running) {
      let sent = 0;
      try {
        sent = await runOnce();
      } catch (err) {
        // Postgres away: the next round tries again; nothing claimed is lost (its lease runs out).
        log.warn({ err }, 'event dispatch round failed');
      }
      if (sent > 0 || !running) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, settings.pollIntervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  })();

  return {
    runOnce,
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}
