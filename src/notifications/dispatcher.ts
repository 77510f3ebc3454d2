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
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { writeAudit } from '../read-model/audit';
import {
  claimDueDeliveries,
  countEndpointFailure,
  disableEndpoint,
  insertAttempt,
  markDelivered,
  resetEndpointFailures,
  scheduleRetry,
  type ClaimedDelivery,
} from '../read-model/events';
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
  row: Pick<
    ClaimedDelivery,
    'event_key' | 'type' | 'order_id' | 'shipment_id' | 'seq' | 'data' | 'occurred_at'
  >,
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

async function record(
  db: Kysely<Database>,
  log: Logger,
  settings: DispatcherSettings,
  row: ClaimedDelivery,
  outcome: { statusCode: number | null; error: string | null; durationMs: number },
): Promise<void> {
  const ok = outcome.error === null;
  await db.transaction().execute(async (trx) => {
    await insertAttempt(trx, row, { ...outcome, ok });
    const attempts = row.attempts + 1;
    if (ok) {
      await markDelivered(trx, row, attempts);
      await resetEndpointFailures(trx, row.endpoint_id);
      return;
    }
    await scheduleRetry(
      trx,
      row,
      attempts,
      outcome.error!,
      new Date(Date.now() + retryDelayMs(attempts, settings)),
    );
    const endpoint = await countEndpointFailure(trx, row.endpoint_id);
    if (endpoint?.status !== 'ENABLED' || endpoint.consecutive_failures < settings.disableAfterFailures)
      return;
    const reason = `${endpoint.consecutive_failures} deliveries failed in a row; last: ${outcome.error}`;
    await disableEndpoint(trx, row.endpoint_id, reason);
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
  row: ClaimedDelivery,
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
    // The lease: long enough for the request to end, so no other process sends it meanwhile.
    const rows = await claimDueDeliveries(db, settings.batchSize, settings.timeoutMs + 5_000);
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
