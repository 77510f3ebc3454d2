/**
 * Shipment activities: the courier poll (on the courier task queue, budget-checked) and
 * the read-model writes. Every one is safe to run twice: events are keyed and inserted
 * with ON CONFLICT, snapshots are plain overwrites of what the workflow decided.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { sql, type Kysely } from 'kysely';
import { RECENT_EVENTS_LIMIT, type Database } from '../../db/database';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type CourierCode,
  type NormalisedEvent,
} from '../couriers/types';
import { isUnknownCode } from '../couriers/unknown-codes';
import { isPickedUpStatus, isTerminal, type ShipmentStatus } from '../domain/status';
import type { Logger } from '../logger';
import { count, Metrics, observe } from '../metrics';
import { activityMeter } from './meter';
import { budgetDay, nextBudgetWindowMs } from '../workflows/policy';

export interface ShipmentActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  /** Courier calls allowed per courier per UTC day. */
  dailyBudget: number;
  log: Logger;
  now?: () => number;
}

export interface PollInput {
  shipmentId: string;
  courier: CourierCode;
  trackingNumber: string;
}

export type PollOutcome =
  | {
      kind: 'found';
      status: ShipmentStatus;
      subStatus: string | null;
      eta: string | null;
      events: NormalisedEvent[];
      raw: unknown;
    }
  | { kind: 'not_found' };

export interface RecordTrackingInput {
  shipmentId: string;
  events: NormalisedEvent[];
  status: ShipmentStatus;
  subStatus: string | null;
  eta: string | null;
  raw: unknown;
  /** ISO time of the courier answer these come from; null for pushed or manual changes. */
  syncedAt: string | null;
  /** With `syncedAt`: the courier answered, but with a problem to show (e.g. number unknown). */
  syncError?: string | null;
  nextPollAt: string | null;
}

export interface RecordSyncProblemInput {
  shipmentId: string;
  error: string;
  failingSince: string | null;
  consecutiveFailures: number;
  nextPollAt: string;
}

/**
 * Takes one call from today's budget, atomically: the conditional upsert only counts a
 * call while the counter is below the budget, so concurrent workers never exceed it.
 */
export async function takeCourierCall(
  db: Kysely<Database>,
  courier: string,
  day: string,
  budget: number,
): Promise<boolean> {
  const row = await db
    .insertInto('courier_api_usage')
    .values({ courier, day, calls: 1 })
    .onConflict((oc) =>
      oc
        .columns(['courier', 'day'])
        .doUpdateSet({ calls: sql`courier_api_usage.calls + 1` })
        .where('courier_api_usage.calls', '<', budget),
    )
    .returning('calls')
    .executeTakeFirst();
  return row !== undefined;
}

export function createShipmentActivities(deps: ShipmentActivityDeps) {
  const { db, log } = deps;
  const now = deps.now ?? Date.now;

  async function countFailure(courier: string, day: string): Promise<void> {
    await db
      .updateTable('courier_api_usage')
      .set({ failures: sql`failures + 1` })
      .where('courier', '=', courier)
      .where('day', '=', day)
      .execute();
  }

  return {
    /** One courier call for one tracking number. Throws BudgetExhausted (non-retryable) past the daily budget. */
    async pollCourier(input: PollInput): Promise<PollOutcome> {
      const adapter = deps.couriers[input.courier];
      if (!adapter) {
        throw ApplicationFailure.create({
          type: 'CourierRejectedError',
          message: `no adapter configured for courier "${input.courier}"`,
          nonRetryable: true,
        });
      }
      const nowMs = now();
      const day = budgetDay(nowMs);
      const meter = activityMeter();
      if (!(await takeCourierCall(db, input.courier, day, deps.dailyBudget))) {
        count(meter, Metrics.courierBudgetRefusals, { courier: input.courier });
        throw ApplicationFailure.create({
          type: 'BudgetExhausted',
          message: `daily budget of ${deps.dailyBudget} ${input.courier} calls used up for ${day}`,
          details: [{ nextWindowAt: new Date(nextBudgetWindowMs(nowMs)).toISOString() }],
          nonRetryable: true,
        });
      }
      const startedAt = Date.now();
      const called = (outcome: string) => {
        count(meter, Metrics.courierCalls, { courier: input.courier, outcome });
        observe(meter, Metrics.courierCallDuration, Date.now() - startedAt, { courier: input.courier });
      };
      try {
        const [result] = await adapter.track([input.trackingNumber]);
        called(!result || result.kind === 'not_found' ? 'not_found' : 'found');
        if (!result || result.kind === 'not_found') return { kind: 'not_found' };
        // Scans outside the courier's published format: kept as UNKNOWN, or skipped unreadable.
        const outside = {
          unknown_code: result.events.filter(isUnknownCode).length,
          unreadable: result.skippedScans,
        };
        for (const [kind, scans] of Object.entries(outside)) {
          if (scans > 0) count(meter, Metrics.courierUnknownScans, { courier: input.courier, kind }, scans);
        }
        return {
          kind: 'found',
          status: result.status,
          subStatus: result.subStatus,
          eta: result.eta,
          events: result.events,
          raw: result.raw,
        };
      } catch (err) {
        called(
          err instanceof CourierRejectedError
            ? 'rejected'
            : err instanceof CourierUnavailableError
              ? 'unavailable'
              : 'error',
        );
        await countFailure(input.courier, day);
        const attempt = Context.current().info.attempt;
        if (err instanceof CourierRejectedError) {
          throw ApplicationFailure.create({
            type: 'CourierRejectedError',
            message: err.message,
            nonRetryable: true,
          });
        }
        if (err instanceof CourierUnavailableError) {
          log.warn(
            { courier: input.courier, trackingNumber: input.trackingNumber, attempt, ...err.details },
            'courier unavailable',
          );
          throw ApplicationFailure.create({
            type: 'CourierUnavailableError',
            message: err.message,
            ...(err.details.retryAfterMs ? { nextRetryDelay: err.details.retryAfterMs } : {}),
          });
        }
        throw err;
      }
    },

    /** Writes new events (deduped by key), the snapshot the workflow decided and the newest-events copy. */
    async recordTracking(input: RecordTrackingInput): Promise<{ inserted: number }> {
      const result = await db.transaction().execute(async (trx) => {
        let inserted = 0;
        if (input.events.length > 0) {
          const rows = await trx
            .insertInto('tracking_events')
            .values(
              input.events.map((e) => ({
                shipment_id: input.shipmentId,
                event_key: e.key,
                status: e.status,
                sub_status: e.subStatus,
                raw_code: e.rawCode,
                raw_text: e.rawText,
                occurred_at: e.occurredAt,
                occurred_at_raw: e.occurredAtRaw,
                location_city: e.location.city,
                location_state: e.location.state,
                location_country: e.location.country,
                source: e.source,
              })),
            )
            .onConflict((oc) => oc.columns(['shipment_id', 'event_key']).doNothing())
            .returning('id')
            .execute();
          inserted = rows.length;
        }
        const lastEvent = await trx
          .selectFrom('tracking_events')
          .select((eb) => eb.fn.max('occurred_at').as('at'))
          .where('shipment_id', '=', input.shipmentId)
          .executeTakeFirst();
        const updated = await trx
          .updateTable('shipments')
          .set(() => ({
            status: input.status,
            sub_status: input.subStatus,
            eta: input.eta,
            last_event_at: lastEvent?.at ?? null,
            // The read routes' copy of the newest events: one row answers a tracking read.
            ...(inserted > 0
              ? {
                  recent_events: sql<string>`coalesce((
                    select jsonb_agg(jsonb_build_object('status', e.status, 'occurredAt', e.occurred_at,
                                                        'city', e.location_city, 'country', e.location_country)
                                     order by e.occurred_at desc, e.id desc)
                    from (select * from tracking_events t where t.shipment_id = ${input.shipmentId}
                          order by t.occurred_at desc, t.id desc limit ${RECENT_EVENTS_LIMIT}) e), '[]'::jsonb)`,
                }
              : {}),
            next_poll_at: input.nextPollAt,
            ...(input.syncedAt
              ? {
                  last_synced_at: input.syncedAt,
                  sync_error: input.syncError ?? null,
                  sync_failing_since: null,
                  consecutive_failures: 0,
                }
              : {}),
            ...(input.raw !== null && input.raw !== undefined
              ? { raw_latest: JSON.stringify(input.raw) }
              : {}),
            ...(input.status === 'DELIVERED'
              ? { delivered_at: sql<Date>`coalesce(delivered_at, now())` }
              : {}),
            ...(isPickedUpStatus(input.status)
              ? { picked_up_at: sql<Date>`coalesce(picked_up_at, now())` }
              : {}),
            // Housekeeping ages (archive, scrub) count from here; a delivered parcel that
            // starts a return is unfinished again.
            finished_at: isTerminal(input.status) ? sql<Date>`coalesce(finished_at, now())` : null,
            // A retried write of the same state is not a new version.
            version: sql<number>`version + case when ${inserted} > 0 or status is distinct from ${input.status} or sub_status is distinct from ${input.subStatus} then 1 else 0 end`,
            updated_at: sql<Date>`now()`,
          }))
          .where('id', '=', input.shipmentId)
          .executeTakeFirst();
        if (updated.numUpdatedRows === 0n) {
          throw ApplicationFailure.create({
            type: 'ShipmentNotFound',
            message: `shipment ${input.shipmentId} is not in the read model`,
            nonRetryable: true,
          });
        }
        return { inserted };
      });
      if (result.inserted > 0) count(activityMeter(), Metrics.trackingEventsRecorded, {}, result.inserted);
      return result;
    },

    /** Marks the read model stale: the API shows cached data with this error. */
    async recordSyncProblem(input: RecordSyncProblemInput): Promise<void> {
      await db
        .updateTable('shipments')
        .set({
          sync_error: input.error,
          sync_failing_since: input.failingSince,
          consecutive_failures: input.consecutiveFailures,
          next_poll_at: input.nextPollAt,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', input.shipmentId)
        .execute();
    },
  };
}

export type ShipmentActivities = ReturnType<typeof createShipmentActivities>;
