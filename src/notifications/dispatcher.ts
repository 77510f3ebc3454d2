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
 *   consecutive failures the endpoint is disabled (audited) until an admin enables it. A
 *   410 Gone disables it at once; other 4xx are retried like any failure (docs/events.md
 *   says why).
 * - Metrics (src/metrics.ts, on the worker's Prometheus endpoint): attempts by outcome,
 *   delivery latency, and gauges of the backlog at enabled endpoints and disabled endpoints.
 */
import { noopMetricMeter, type MetricMeter } from '@temporalio/common';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { writeAudit } from '../read-model/audit';
import {
  claimDueDeliveries,
  deliveryBacklog,
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
import { count, gauge, Metrics, observe } from '../metrics';
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

/** How often the loop reads the backlog into its gauges (ms): one small query, not one per round. */
export const GAUGES_EVERY_MS = 15_000;

/** What came of one attempt: delivered, failed (retried later), or the endpoint disabled by it. */
export type DeliveryOutcome = 'delivered' | 'failed' | 'disabled';

export interface Dispatcher {
  /** Sends what is due now, once; answers how many deliveries it attempted. For tests and the loop. */
  runOnce(): Promise<number>;
  /** Reads the backlog into the gauges now (the loop does it at most every GAUGES_EVERY_MS). */
  refreshGauges(): Promise<void>;
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
): Promise<DeliveryOutcome> {
  const ok = outcome.error === null;
  return db.transaction().execute(async (trx): Promise<DeliveryOutcome> => {
    await insertAttempt(trx, row, { ...outcome, ok });
    const attempts = row.attempts + 1;
    if (ok) {
      await markDelivered(trx, row, attempts);
      await resetEndpointFailures(trx, row.endpoint_id);
      return 'delivered';
    }
    await scheduleRetry(
      trx,
      row,
      attempts,
      outcome.error!,
      new Date(Date.now() + retryDelayMs(attempts, settings)),
    );
    const endpoint = await countEndpointFailure(trx, row.endpoint_id);
    if (endpoint?.status !== 'ENABLED') return 'failed';
    // 410 Gone: the receiver says the endpoint is gone for good; retrying it is pointless.
    const gone = outcome.statusCode === 410;
    if (!gone && endpoint.consecutive_failures < settings.disableAfterFailures) return 'failed';
    const reason = gone
      ? `the endpoint answered 410 Gone`
      : `${endpoint.consecutive_failures} deliveries failed in a row; last: ${outcome.error}`;
    await disableEndpoint(trx, row.endpoint_id, reason);
    await writeAudit(trx, [
      {
        actor: 'system:event-dispatcher',
        action: 'event_endpoint.auto_disable',
        subjectType: 'event_endpoint',
        subjectId: row.endpoint_id,
        reason,
        details: { failures: endpoint.consecutive_failures, statusCode: outcome.statusCode },
        dedupeKey: null,
      },
    ]);
    log.warn(
      { endpointId: row.endpoint_id, failures: endpoint.consecutive_failures },
      'event endpoint disabled',
    );
    return 'disabled';
  });
}

async function deliver(
  db: Kysely<Database>,
  log: Logger,
  meter: MetricMeter,
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
  const outcome = await record(db, log, settings, row, {
    statusCode,
    error,
    durationMs: Date.now() - started,
  });
  count(meter, Metrics.eventDeliveries, { outcome });
  if (outcome === 'delivered') {
    observe(meter, Metrics.eventDeliveryLatency, Date.now() - row.occurred_at.getTime(), {});
  }
}

export function startDispatcher(deps: {
  db: Kysely<Database>;
  log: Logger;
  settings: DispatcherSettings;
  /** Where its metrics go: the worker passes its Temporal runtime's meter (served with the others). */
  meter?: MetricMeter;
}): Dispatcher {
  const { db, log, settings } = deps;
  const meter = deps.meter ?? noopMetricMeter;
  let running = true;
  let wake: (() => void) | null = null;
  let gaugesAt = 0;

  async function refreshGauges(): Promise<void> {
    gaugesAt = Date.now();
    const backlog = await deliveryBacklog(db);
    gauge(meter, Metrics.eventsPending, backlog.pending);
    gauge(meter, Metrics.eventsOldestPendingAge, backlog.oldestPendingAgeMs / 1000);
    gauge(meter, Metrics.eventEndpointsDisabled, backlog.disabledEndpoints);
  }

  async function runOnce(): Promise<number> {
    // The lease: long enough for the request to end, so no other process sends it meanwhile.
    const rows = await claimDueDeliveries(db, settings.batchSize, settings.timeoutMs + 5_000);
    await Promise.all(rows.map((row) => deliver(db, log, meter, settings, row)));
    if (Date.now() - gaugesAt >= GAUGES_EVERY_MS) await refreshGauges();
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
    refreshGauges,
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}
