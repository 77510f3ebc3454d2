/**
 * Shipment activities: the courier poll (a shipment workflow's local activity, batched per
 * courier in the worker under its caps, every HTTP request budget-checked) and
 * the read-model writes. Every one is safe to run twice: events are keyed and inserted
 * with ON CONFLICT, snapshots are plain overwrites of what the workflow decided.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type CourierCode,
  type NormalisedEvent,
  type TrackResult,
} from '../couriers/types';
import {
  CourierNotAnsweringError,
  createTrackBatcher,
  type CallWatch,
  type TrackBatcher,
} from '../couriers/batcher';
import { gatedRequests } from '../couriers/http';
import { isUnknownCode } from '../couriers/unknown-codes';
import { isPickedUpStatus, isTerminal, type ShipmentStatus } from '../domain/status';
import type { Logger } from '../logger';
import { count, Metrics, observe } from '../metrics';
import { writeShipmentEvent } from '../notifications/outbox';
import { parcelEvents } from '../couriers/fleet';
import { fleetParcelView } from '../read-model/fleet';
import { insertTrackingEvents } from '../read-model/tracking-events';
import {
  lockShipment,
  markSyncProblem,
  saveRawLatest,
  writeShipmentSnapshot,
  type SyncProblem,
} from '../read-model/shipments';
import { activityMeter } from './meter';
import { nextBudgetWindowMs, type PollPolicy } from '../domain/polling';
import { FailureType } from '../domain/failures';
import { BudgetExhaustedError, CourierRateWaitError, createCourierBudget } from './courier-budget';

export interface ShipmentActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  /** Courier HTTP requests allowed per courier per UTC day (token requests included). */
  dailyBudget: number;
  /** Of the daily budget, the calls polls leave to bookings (default: a tenth). */
  bookingReserve?: number;
  /** Requests per courier started in any second of Postgres's clock, across every worker (./courier-budget.ts); none when not given. */
  requestsPerSecond?: number;
  /** How long a courier's bulk tracking call waits for more polls to join (ms); 0: a call per poll. */
  batchWindowMs?: number;
  /** Bulk tracking calls in flight at once per courier in this worker (default: no cap). */
  batchConcurrency?: number;
  /** Bulk tracking calls started per second per courier in this worker (default: no cap). */
  batchCallsPerSecond?: number;
  /** A courier's tracking call out this long (ms) means it is not answering; its polls are put off meanwhile (default: never). */
  batchSlowAfterMs?: number;
  log: Logger;
  now?: () => number;
  /** This worker's poll policy (from its own config): what its shipment workflows run on. */
  pollPolicy?: PollPolicy;
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
    }
  | { kind: 'not_found' };

export interface RecordTrackingInput {
  shipmentId: string;
  events: NormalisedEvent[];
  status: ShipmentStatus;
  subStatus: string | null;
  eta: string | null;
  /** ISO time of the courier answer these come from; null for pushed or manual changes. */
  syncedAt: string | null;
  /** With `syncedAt`: the courier answered, but with a problem to show (e.g. number unknown). */
  syncError?: string | null;
  nextPollAt: string | null;
}

export type RecordSyncProblemInput = SyncProblem;

/**
 * Heartbeats while a poll waits for its batch and the courier, so a dead worker's polls are
 * retried soon. A local poll (a shipment workflow's) does not: it runs inside its workflow task,
 * which the worker keeps alive meanwhile, and a dead worker's task times out and runs again.
 */
async function whileHeartbeating<T>(work: Promise<T>): Promise<T> {
  const context = Context.current();
  if (context.info.isLocal) return work;
  const beat = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(beat);
  }
}

/** How often a waiting poll heartbeats (ms); the workflow's heartbeat timeout is a few of these. */
const HEARTBEAT_EVERY_MS = 2_000;

export function createShipmentActivities(deps: ShipmentActivityDeps) {
  const { db, log } = deps;

  const budget = createCourierBudget(deps);

  /**
   * One bulk tracking call through the budget gate, counted in the metrics by outcome. The
   * batcher's `watch` is held while a request waits at the gate and told when it is sent; the
   * duration counts from the first request sent.
   */
  async function trackCall(
    courier: CourierCode,
    adapter: CourierAdapter,
    numbers: string[],
    watch: CallWatch,
  ) {
    const meter = activityMeter();
    let startedAt: number | null = null;
    const called = (outcome: string) => {
      count(meter, Metrics.courierCalls, { courier, outcome });
      observe(meter, Metrics.courierCallDuration, Date.now() - (startedAt ?? Date.now()), { courier });
    };
    const gate = budget.gate(courier, 'poll');
    const passed = async (path: string) => {
      watch.held();
      await gate(path);
      startedAt ??= Date.now();
      watch.sent();
    };
    try {
      const results = await gatedRequests(passed, () => adapter.track(numbers));
      called(results.every((r) => r.kind === 'not_found') ? 'not_found' : 'found');
      return results;
    } catch (err) {
      // Not sent (the day's budget, or no request slot in time): not a call, nor a failure of the courier's.
      if (err instanceof BudgetExhaustedError || err instanceof CourierRateWaitError) throw err;
      called(
        err instanceof CourierRejectedError
          ? 'rejected'
          : err instanceof CourierUnavailableError
            ? 'unavailable'
            : 'error',
      );
      await budget.countFailure(courier);
      throw err;
    }
  }

  const batchers = new Map<CourierCode, TrackBatcher>();
  /** The worker's one batcher per courier: every poll of that courier in this process joins it. */
  function batcherFor(courier: CourierCode): TrackBatcher {
    let batcher = batchers.get(courier);
    if (batcher) return batcher;
    const adapter = deps.couriers[courier];
    if (!adapter) {
      throw ApplicationFailure.create({
        type: FailureType.COURIER_REJECTED,
        message: `no adapter configured for courier "${courier}"`,
        nonRetryable: true,
      });
    }
    batcher = createTrackBatcher({
      adapter,
      windowMs: deps.batchWindowMs ?? 0,
      concurrency: deps.batchConcurrency ?? Number.POSITIVE_INFINITY,
      callsPerSecond: deps.batchCallsPerSecond ?? Number.POSITIVE_INFINITY,
      call: (numbers, watch) => trackCall(courier, adapter, numbers, watch),
      ...(deps.batchSlowAfterMs ? { slowAfterMs: deps.batchSlowAfterMs } : {}),
      onSlow: (slow) => {
        if (slow) {
          log.warn(
            { courier, slowAfterMs: deps.batchSlowAfterMs },
            'courier not answering: a tracking call is out past WAYBILL_COURIER_SLOW_AFTER; its polls are put off until a call answers in time',
          );
        } else {
          log.info({ courier }, 'courier answering again: its polls go out as before');
        }
      },
    });
    batchers.set(courier, batcher);
    return batcher;
  }

  return {
    /**
     * The poll policy of the worker running the workflow, from its own configuration: a
     * shipment workflow asks at the start of every run, as a local activity (see
     * src/workflows/shipment.ts), so `WAYBILL_POLL_*` set on the worker is what applies.
     */
    async pollPolicy(): Promise<PollPolicy> {
      if (deps.pollPolicy) return deps.pollPolicy;
      throw ApplicationFailure.create({
        type: FailureType.NOT_CONFIGURED,
        message: 'this worker was started without a poll policy',
        nonRetryable: true,
      });
    },

    /**
     * A fleet parcel's driver reports as Postgres holds them, as tracking events (newest
     * first); none for a number the fleet does not know. Each run of a fleet parcel's
     * workflow starts from them (a local activity), so a report recorded while no run was
     * there to take its hand-over still reaches the tracking. Reads only.
     */
    async driverReports(input: { trackingNumber: string }): Promise<NormalisedEvent[]> {
      const view = await fleetParcelView(db, input.trackingNumber);
      return view ? parcelEvents(view) : [];
    },

    /**
     * One parcel's poll, answered from its courier's next bulk call (see `batcherFor`). The
     * courier's payload for the parcel goes straight to Postgres (`raw_latest`), never into
     * the workflow's history. Throws BudgetExhausted (non-retryable) past the daily budget.
     */
    async pollCourier(input: PollInput): Promise<PollOutcome> {
      const batcher = batcherFor(input.courier);
      const meter = activityMeter();
      let result: TrackResult;
      try {
        result = await whileHeartbeating(batcher.track(input.trackingNumber));
      } catch (err) {
        if (err instanceof BudgetExhaustedError) {
          count(meter, Metrics.courierBudgetRefusals, { courier: input.courier });
          throw ApplicationFailure.create({
            type: FailureType.BUDGET_EXHAUSTED,
            message: err.message,
            details: [{ nextWindowAt: new Date(nextBudgetWindowMs(err.atMs)).toISOString() }],
            nonRetryable: true,
          });
        }
        if (err instanceof CourierRejectedError) {
          throw ApplicationFailure.create({
            type: FailureType.COURIER_REJECTED,
            message: err.message,
            nonRetryable: true,
          });
        }
        if (err instanceof CourierNotAnsweringError) {
          // No call was made: counted, not logged per poll (the batcher logged the courier once).
          count(meter, Metrics.courierPollsPutOff, { courier: input.courier });
          throw ApplicationFailure.create({ type: FailureType.COURIER_UNAVAILABLE, message: err.message });
        }
        if (err instanceof CourierUnavailableError) {
          log.warn(
            {
              courier: input.courier,
              trackingNumber: input.trackingNumber,
              attempt: Context.current().info.attempt,
              ...err.details,
            },
            'courier unavailable',
          );
          throw ApplicationFailure.create({
            type: FailureType.COURIER_UNAVAILABLE,
            message: err.message,
            ...(err.details.retryAfterMs ? { nextRetryDelay: err.details.retryAfterMs } : {}),
          });
        }
        throw err;
      }
      if (result.kind === 'not_found') return { kind: 'not_found' };
      // Scans outside the courier's published format: kept as UNKNOWN, or skipped unreadable.
      const outside = {
        unknown_code: result.events.filter(isUnknownCode).length,
        unreadable: result.skippedScans,
      };
      for (const [kind, scans] of Object.entries(outside)) {
        if (scans > 0) count(meter, Metrics.courierUnknownScans, { courier: input.courier, kind }, scans);
      }
      // Kept for support, in Postgres only: the history carries what the workflow decides on.
      await saveRawLatest(db, input.shipmentId, result.raw);
      return {
        kind: 'found',
        status: result.status,
        subStatus: result.subStatus,
        eta: result.eta,
        events: result.events,
      };
    },

    /** Writes new events (deduped by key), the snapshot the workflow decided and the newest-events copy. */
    async recordTracking(input: RecordTrackingInput): Promise<{ inserted: number }> {
      const result = await db.transaction().execute(async (trx) => {
        const { inserted, rekeyed, placed } = await insertTrackingEvents(trx, input.shipmentId, input.events);
        // Locked: a racing second run of this write sees the new status and writes no second event.
        const before = await lockShipment(trx, input.shipmentId);
        // A booking the order cancelled stays CANCELLED while the courier's data still shows it
        // booked (a poll answered before the cancel reached the courier): the parcel never goes
        // back to INFO_RECEIVED in front of the customer, nor ends EXPIRED (a last poll's answer
        // landing after the cancel). A scan of a real pickup still shows, a delivery too.
        const keepCancelled = before?.status === 'CANCELLED' && !isPickedUpStatus(input.status);
        const status = keepCancelled ? 'CANCELLED' : input.status;
        const subStatus = keepCancelled ? (before?.sub_status ?? null) : input.subStatus;
        const found = await writeShipmentSnapshot(trx, {
          shipmentId: input.shipmentId,
          status,
          subStatus,
          eta: input.eta,
          nextPollAt: keepCancelled ? null : input.nextPollAt,
          syncedAt: input.syncedAt,
          syncError: input.syncError ?? null,
          // A row an earlier version recorded under another key, or without its place, changed
          // too: the copy is redone.
          eventsAdded: inserted + rekeyed + placed,
          delivered: input.status === 'DELIVERED',
          // A scan past pickup counts even when the parcel's status is not one (a pickup and a
          // problem in one poll: EXCEPTION), as the order is told of the pickup then.
          pickedUp: isPickedUpStatus(input.status) || input.events.some((e) => isPickedUpStatus(e.status)),
          // A delivered parcel that starts a return is unfinished again.
          finished: isTerminal(status),
        });
        if (!found) {
          throw ApplicationFailure.create({
            type: FailureType.SHIPMENT_NOT_FOUND,
            message: `shipment ${input.shipmentId} is not in the read model`,
            nonRetryable: true,
          });
        }
        if (before && before.status !== status) {
          await writeShipmentEvent(trx, {
            shipmentId: input.shipmentId,
            orderId: before.order_id,
            courier: before.courier,
            trackingNumber: before.tracking_number,
            status: input.status,
            subStatus: input.subStatus,
            eta: input.eta,
          });
        }
        return { inserted };
      });
      if (result.inserted > 0) count(activityMeter(), Metrics.trackingEventsRecorded, {}, result.inserted);
      return result;
    },

    /** Marks the read model stale: the API shows cached data with this error. */
    async recordSyncProblem(input: RecordSyncProblemInput): Promise<void> {
      await markSyncProblem(db, input);
    },
  };
}

export type ShipmentActivities = ReturnType<typeof createShipmentActivities>;
