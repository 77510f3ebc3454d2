/**
 * One parcel's tracking, the state and steps of its shipment workflow (./shipment.ts tells the
 * poll-sleep loop with them): the parcel's snapshot, the handlers ops and the API reach it
 * with (refresh, refresh-now, pushed events, cancel), one poll cycle and what its answer or
 * failure does to the snapshot, the read model and the order. Deterministic code only.
 *
 * Longer than most files (~470 lines) on purpose: one class holds the parcel's state, and
 * every handler and step reads and writes it (a refresh-now waits on the poll cycle's counters,
 * a push on the loop's queue); splitting it would spread that state across modules.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  getExternalWorkflowHandle,
  log,
  metricMeter,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PollOutcome, ShipmentActivities } from '../activities/shipments';
import type { NormalisedEvent } from '../couriers/types';
import { canTransition, isTerminal, PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { count, Metrics } from '../metrics';
import {
  cancelShipmentSignal,
  courierEventsSignal,
  refreshNowUpdate,
  refreshSignal,
  RefreshSource,
  shipmentMilestoneSignal,
  shipmentStateQuery,
  TRACKING_FINISHED_REFUSAL,
  type CancelShipmentRequest,
  type RefreshNowResult,
  type RefreshRequest,
  type ShipmentSnapshot,
  type ShipmentState,
  type ShipmentWorkflowInput,
} from './contract';
import {
  afterAnswer,
  alignToSlot,
  backoffDelayMs,
  isPolledCourier,
  BUDGET_WINDOW_SPREAD_MS,
  budgetWindowFrom,
  pollDelayMs,
  sincePushMs,
  refreshAvailableAtMs,
} from '../domain/polling';
import { activityFailure, FailureType } from '../domain/failures';
import { ShipmentStatusKey } from './search-attributes';
import { courierName, duration, utcTime } from './summaries';

import type { PollPolicy } from '../domain/polling';

const MILESTONES: ReadonlySet<ShipmentStatus> = new Set([
  // IN_TRANSIT is the pickup: the order captures payment and stops accepting cancels.
  ShipmentStatus.IN_TRANSIT,
  ShipmentStatus.OUT_FOR_DELIVERY,
  ShipmentStatus.AVAILABLE_FOR_PICKUP,
  ShipmentStatus.ATTEMPT_FAIL,
  ShipmentStatus.DELIVERED,
  ShipmentStatus.RETURNING,
  ShipmentStatus.RETURNED,
  ShipmentStatus.EXCEPTION,
  ShipmentStatus.EXPIRED,
  ShipmentStatus.CANCELLED,
]);

export function initialShipmentState(nowMs: number): ShipmentState {
  return {
    status: ShipmentStatus.PENDING,
    subStatus: null,
    eta: null,
    startedAtMs: nowMs,
    lastScanAtMs: nowMs,
    newestScanAtMs: null,
    quietSinceMs: nowMs,
    unansweredSinceMs: null,
    lastPolledAtMs: null,
    lastPushAtMs: null,
    lastSyncedAt: null,
    polls: 0,
    consecutiveFailures: 0,
    failingSince: null,
    notFoundCount: 0,
    eventsRecorded: 0,
    reported: [],
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

export function newestEvent(events: NormalisedEvent[]): NormalisedEvent | null {
  let newest: NormalisedEvent | null = null;
  for (const event of events) if (!newest || event.occurredAt > newest.occurredAt) newest = event;
  return newest;
}

/** A parcel being tracked: its state, its handlers and the loop's steps. */
export class ShipmentTracking {
  readonly state: ShipmentState;
  nextPollAtMs: number | null;
  syncError: string | null;
  refreshWanted = false;
  /** A refresh signal within the cooldown moved the next poll earlier: the wait starts again. */
  rescheduled = false;
  /** True while a courier call is out: its answer comes after any request made meanwhile. */
  calling = false;
  /** Poll cycles started in this run, and those whose result is written to the read model. */
  started = 0;
  cycles = 0;
  /** How the last completed poll cycle went: what refreshNow answers after waiting for it. */
  lastCycle: RefreshSource = RefreshSource.LIVE;
  /** Read-model writes in flight: refreshNow never answers ahead of Postgres. */
  writing = 0;
  pushed: NormalisedEvent[][] = [];
  cancelRequest: CancelShipmentRequest | null = null;
  /** The last status change in this run, for the current details ops read in the UI. */
  lastChange: { from: ShipmentStatus; to: ShipmentStatus } | null = null;
  finished = () => isTerminal(this.state.status);
  readonly parcel: string;
  countPoll = (result: 'ok' | 'not_found' | 'failed' | 'budget_exhausted') =>
    count(metricMeter, Metrics.shipmentPolls, { courier: this.input.courier, result });

  /** What the UI shows as this shipment's current details: `IN_TRANSIT → OUT_FOR_DELIVERY · next poll in 30 min (…)`. */
  showDetails(doing?: string): void {
    const now = Date.now();
    const parts = [this.lastChange ? `${this.lastChange.from} → ${this.lastChange.to}` : this.state.status];
    if (doing) parts.push(doing);
    else if (this.finished()) parts.push('tracking finished');
    else if (this.nextPollAtMs !== null)
      parts.push(`next poll in ${duration(this.nextPollAtMs - now)} (${utcTime(this.nextPollAtMs)})`);
    else if (!isPolledCourier(this.input.courier)) parts.push("waiting for the driver's reports");
    if (this.syncError !== null) parts.push(this.syncError);
    parts.push(`${this.state.polls} poll${this.state.polls === 1 ? '' : 's'}`);
    setCurrentDetails(`${this.parcel} · ${parts.join(' · ')}`);
  }

  snapshot = (): ShipmentSnapshot => ({
    shipmentId: this.input.shipmentId,
    courier: this.input.courier,
    trackingNumber: this.input.trackingNumber,
    status: this.state.status,
    subStatus: this.state.subStatus,
    eta: this.state.eta,
    lastSyncedAt: this.state.lastSyncedAt,
    lastPolledAt: this.state.lastPolledAtMs === null ? null : iso(this.state.lastPolledAtMs),
    nextPollAt: this.nextPollAtMs === null || this.finished() ? null : iso(this.nextPollAtMs),
    syncError: this.syncError,
    polls: this.state.polls,
    finished: this.finished(),
  });

  /** When a refresh may next poll the courier; null when it may now. */
  cooldownEndsAtMs = () => refreshAvailableAtMs(this.state.lastPolledAtMs, Date.now(), this.policy);

  refreshAnswer = (source: RefreshSource): RefreshNowResult => {
    const next = this.finished() ? null : (this.cooldownEndsAtMs() ?? Date.now());
    return { snapshot: this.snapshot(), source, nextLiveRefreshAt: next === null ? null : iso(next) };
  };

  /** The run's poll policy: the worker's (asked at the run's start) or the one the input pins. Set by {@link usePolicy}. */
  policy!: PollPolicy;
  /** Whether {@link usePolicy} has run: handlers that need the policy wait for it. */
  private policyKnown = false;
  /** A never-polled parcel's run has read the driver's log it starts from (src/workflows/shipment.ts). */
  logRead = false;
  private courier!: ReturnType<typeof proxyLocalActivities<ShipmentActivities>>;
  private readonly readModel: ReturnType<typeof proxyLocalActivities<ShipmentActivities>>;

  constructor(readonly input: ShipmentWorkflowInput) {
    // Read-model writes retry until Postgres answers: losing one would leave the API stale.
    // Local activities, like the saga's own writes (./order-activities.ts): one short
    // transaction, run by the worker inside the workflow task that took the courier's answer,
    // so a poll is 2 workflow tasks instead of 3 and the write's input (the courier's events)
    // is not stored in history a second time. Safe to run twice (events are keyed, the
    // snapshot is overwritten); each attempt is cut short at 10 s because it holds the task,
    // and retries that back off past a minute wait on a timer.
    this.readModel = proxyLocalActivities<ShipmentActivities>({
      startToCloseTimeout: '10s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
    });
    this.state = input.state ?? initialShipmentState(Date.now());
    this.nextPollAtMs = input.nextPollAtMs ?? null;
    this.syncError = input.syncError ?? null;
    this.parcel = `${courierName(input.courier)} ${input.trackingNumber}`;
  }

  /**
   * Takes the run's poll policy. The handlers are registered before it is known (see
   * {@link listen}); those that need it wait for it.
   */
  usePolicy(policy: PollPolicy): void {
    this.policy = policy;
    // The poll is a local activity: the worker runs it inside the workflow task its timer woke,
    // and the answer is recorded in that same task (with the read-model write). A poll is one
    // workflow task and no activity task: half the server's and the worker's work per poll
    // (docs/benchmarks.md#scale). The task stays open while the poll waits for its bulk call;
    // a worker that dies meanwhile loses the task, which runs again on another worker. The
    // batcher's caps (calls in flight and per second, per courier) are the worker's
    // (src/couriers/batcher.ts); the courier account's requests per second and the daily
    // budget are Postgres's, shared by every worker (src/activities/courier-budget.ts).
    // Its retries wait on timers, never inside the task: a courier that fails (or hangs) must
    // not hold the worker's workflow-task slots through its backoff, which order workflows need.
    this.courier = proxyLocalActivities<ShipmentActivities>({
      startToCloseTimeout: '60s',
      localRetryThreshold: '1s',
      retry: {
        initialInterval: policy.pollRetryInitialMs,
        backoffCoefficient: 2,
        maximumAttempts: policy.pollAttempts,
        nonRetryableErrorTypes: [FailureType.BUDGET_EXHAUSTED, FailureType.COURIER_REJECTED],
      },
    });
    this.policyKnown = true;
  }

  /**
   * The queries, signals and updates ops and the API send this parcel's workflow. Registered
   * before the run's first await: an update that comes with the run's first task and finds no
   * handler when that activation ends is refused by the SDK, and a query fails.
   */
  listen(): void {
    setHandler(shipmentStateQuery, () => this.snapshot());
    setHandler(refreshSignal, async ({ requestedBy }) => {
      if (!this.policyKnown) await condition(() => this.policyKnown);
      // The courier call out now answers it; its result is in the read model moments later.
      // A courier that is never polled has nothing to ask: its reports arrive as they happen.
      if (this.calling || !isPolledCourier(this.input.courier)) return;
      const cooldownEnds = this.cooldownEndsAtMs();
      if (cooldownEnds === null) {
        log.info('refresh requested', { requestedBy });
        this.refreshWanted = true;
      } else if (this.nextPollAtMs === null || cooldownEnds < this.nextPollAtMs) {
        // Within the cooldown the poll moves to its end instead: the courier is asked once.
        log.info('refresh requested within the cooldown: poll moved to its end', {
          requestedBy,
          pollAt: iso(cooldownEnds),
        });
        this.nextPollAtMs = cooldownEnds;
        this.rescheduled = true;
      }
    });
    setHandler(courierEventsSignal, ({ events }) => {
      if (events.length > 0) this.pushed.push(events);
    });
    setHandler(cancelShipmentSignal, (request) => {
      this.cancelRequest ??= request;
    });
    setHandler(
      refreshNowUpdate,
      async ({ requestedBy }) => {
        if (!this.policyKnown) await condition(() => this.policyKnown);
        // Never polled (the shop's own fleet): every report reached this snapshot as it was
        // made, so it is as live as an answer gets; once the read model holds it too.
        if (!isPolledCourier(this.input.courier)) {
          await condition(
            () => (this.finished() || (this.logRead && this.pushed.length === 0)) && this.writing === 0,
          );
          return this.refreshAnswer(RefreshSource.LIVE);
        }
        // The courier call out now answers this request too: its answer comes after the request.
        let target = this.started;
        if (!this.calling) {
          if (this.cooldownEndsAtMs() !== null) {
            // The last answer is in hand: serve it once the read model holds it too.
            await condition(() => this.cycles >= this.started && this.writing === 0);
            return this.refreshAnswer(RefreshSource.COOLDOWN);
          }
          log.info('refresh-now requested', { requestedBy });
          this.refreshWanted = true;
          target = this.started + 1;
        }
        // Only once the read model holds the result: the API answers from Postgres right after.
        await condition(() => (this.cycles >= target || this.finished()) && this.writing === 0);
        return this.refreshAnswer(this.cycles >= target ? this.lastCycle : RefreshSource.FINISHED);
      },
      {
        validator: (_request: RefreshRequest) => {
          if (this.finished())
            throw new Error(`${TRACKING_FINISHED_REFUSAL}: the shipment is ${this.state.status}`);
        },
      },
    );
  }

  async tellOrder(status: ShipmentStatus, subStatus: string | null): Promise<void> {
    const parent = workflowInfo().parent;
    if (!parent) return;
    try {
      await getExternalWorkflowHandle(parent.workflowId).signal(shipmentMilestoneSignal, {
        shipmentId: this.input.shipmentId,
        status,
        subStatus,
        at: iso(Date.now()),
      });
    } catch (err) {
      // The order may have finished already (e.g. cancelled); the read model holds the truth.
      log.warn('could not tell the order workflow', { error: activityFailure(err).message });
    }
  }

  async reportMilestone(events: NormalisedEvent[] = []): Promise<void> {
    // One poll can carry the pickup and a later problem (IN_TRANSIT then EXCEPTION): the
    // order must still hear of the pickup (it captures the payment and stops cancels then).
    if (
      !PICKED_UP_STATUSES.has(this.state.status) &&
      !this.state.reported.some((s) => PICKED_UP_STATUSES.has(s)) &&
      events.some((e) => PICKED_UP_STATUSES.has(e.status))
    ) {
      this.state.reported.push(ShipmentStatus.IN_TRANSIT);
      await this.tellOrder(ShipmentStatus.IN_TRANSIT, null);
    }
    if (!MILESTONES.has(this.state.status) || this.state.reported.includes(this.state.status)) return;
    this.state.reported.push(this.state.status);
    await this.tellOrder(this.state.status, this.state.subStatus);
  }

  /** Moves the snapshot to `status` if the taxonomy allows it; returns whether it changed. */
  moveTo(status: ShipmentStatus, subStatus: string | null): boolean {
    if (!canTransition(this.state.status, status)) return false;
    const changed = status !== this.state.status || subStatus !== this.state.subStatus;
    if (status !== this.state.status) {
      log.info('status changed', { from: this.state.status, to: status, subStatus });
      upsertSearchAttributes([{ key: ShipmentStatusKey, value: status }]);
      count(metricMeter, Metrics.shipmentStatusChanges, { courier: this.input.courier, status });
      this.lastChange = { from: this.state.status, to: status };
    }
    this.state.status = status;
    this.state.subStatus = subStatus;
    return changed;
  }

  /** The next poll `delay` from now, on the courier's slot (where its bulk calls gather polls). */
  pollAt = (delay: number) =>
    alignToSlot(
      Date.now() + delay,
      this.policy,
      this.input.courier,
      this.state.status,
      this.pushAgeMs(),
      delay,
    );
  /** Ms since the courier last pushed about this parcel; null: never. */
  pushAgeMs = () =>
    sincePushMs(
      this.state.lastPushAtMs ?? null,
      this.state.startedAtMs,
      Date.now(),
      this.policy,
      this.input.courier,
    );
  delayNow = () =>
    pollDelayMs(
      this.state.status,
      this.policy,
      this.input.courier,
      Date.now() - this.state.lastScanAtMs,
      this.pushAgeMs(),
    );

  scheduleAfterSuccess(): void {
    const delay = this.delayNow();
    this.nextPollAtMs = delay === null ? null : this.pollAt(delay);
  }

  async record(events: NormalisedEvent[], extra: { synced: boolean }): Promise<void> {
    if (extra.synced) this.state.lastSyncedAt = iso(Date.now());
    const scans = events.length > 0 ? `, ${events.length} scan${events.length === 1 ? '' : 's'}` : '';
    this.writing += 1;
    try {
      const { inserted } = await this.readModel.recordTracking.executeWithOptions(
        { summary: `record ${this.state.status}${scans}` },
        [
          {
            shipmentId: this.input.shipmentId,
            events,
            status: this.state.status,
            subStatus: this.state.subStatus,
            eta: this.state.eta,
            syncedAt: extra.synced ? this.state.lastSyncedAt : null,
            syncError: this.syncError,
            nextPollAt: this.nextPollAtMs === null || this.finished() ? null : iso(this.nextPollAtMs),
          },
        ],
      );
      this.state.eventsRecorded += inserted;
    } finally {
      this.writing -= 1;
    }
    await this.reportMilestone(events);
  }

  applyEvents(
    events: NormalisedEvent[],
    reported: { status: ShipmentStatus; subStatus: string | null },
  ): void {
    const newest = newestEvent(events);
    if (newest) this.noteScan(Date.parse(newest.occurredAt));
    this.moveTo(reported.status, reported.subStatus);
  }

  /** A scan restarts the no-scan clock (never moving it back). */
  noteScan(atMs: number): void {
    this.state.newestScanAtMs = Math.max(this.state.newestScanAtMs ?? atMs, atMs);
    this.state.lastScanAtMs = Math.max(this.state.lastScanAtMs, atMs);
    this.state.quietSinceMs = Math.max(this.state.quietSinceMs, this.state.lastScanAtMs);
  }

  /** One courier call; failures become the read model's sync problem, never the workflow's. */
  async pollCycle(): Promise<void> {
    this.started += 1;
    this.calling = true;
    const startedAtMs = Date.now();
    this.showDetails(`polling ${courierName(this.input.courier)}`);
    try {
      let outcome: PollOutcome;
      try {
        outcome = await this.courier.pollCourier.executeWithOptions({ summary: `poll ${this.parcel}` }, [
          {
            shipmentId: this.input.shipmentId,
            courier: this.input.courier,
            trackingNumber: this.input.trackingNumber,
          },
        ]);
      } catch (err) {
        this.calling = false;
        if (isCancellation(err) || !isPollFailure(err)) throw err;
        this.state.polls += 1;
        this.state.lastPolledAtMs = Date.now();
        // Until the courier answers again, the no-scan expiry clock stands still (from the
        // first attempt of this cycle: its retries were time without answers too).
        this.state.unansweredSinceMs ??= startedAtMs;
        await this.recordPollFailure(err);
        return;
      }
      this.calling = false;
      this.state.polls += 1;
      this.state.lastPolledAtMs = Date.now();
      this.countPoll(outcome.kind === 'not_found' ? 'not_found' : 'ok');
      this.lastCycle = RefreshSource.LIVE;
      // The courier answered: a stretch without answers is not silence about the parcel.
      Object.assign(this.state, afterAnswer(this.state, this.state.lastPolledAtMs));
      this.state.consecutiveFailures = 0;
      this.state.failingSince = null;
      this.syncError = null;
      if (outcome.kind === 'not_found') {
        this.state.notFoundCount += 1;
        if (this.state.notFoundCount >= this.policy.notFoundLimit) {
          this.moveTo(ShipmentStatus.EXCEPTION, 'NOT_FOUND_AT_COURIER');
          this.syncError = `the courier does not know ${this.input.trackingNumber} (${this.state.notFoundCount} answers)`;
        }
        this.scheduleAfterSuccess();
        // A number the courier keeps denying is asked about rarely until it expires.
        if (this.syncError !== null) this.nextPollAtMs = Date.now() + this.policy.backoffCapMs;
        await this.record([], { synced: true });
        return;
      }
      this.state.notFoundCount = 0;
      this.state.eta = outcome.eta;
      this.applyEvents(outcome.events, outcome);
      this.scheduleAfterSuccess();
      await this.record(outcome.events, { synced: true });
    } finally {
      this.calling = false;
      this.cycles += 1;
    }
  }

  async recordPollFailure(err: PollFailure): Promise<void> {
    const { type, message, details } = activityFailure(err);
    this.countPoll(type === FailureType.BUDGET_EXHAUSTED ? 'budget_exhausted' : 'failed');
    this.lastCycle =
      type === FailureType.BUDGET_EXHAUSTED
        ? RefreshSource.BUDGET_EXHAUSTED
        : RefreshSource.COURIER_UNAVAILABLE;
    const now = Date.now();
    if (type === FailureType.BUDGET_EXHAUSTED) {
      // The activity's clock decided the day is used up; wait for the window it names (never
      // less than a minute, in case this clock is ahead) plus a spread so that every blocked
      // shipment does not call at midnight at once.
      const windowAt = budgetWindowFrom(details, now);
      this.nextPollAtMs =
        Math.max(windowAt, now + 60_000) + Math.floor(Math.random() * BUDGET_WINDOW_SPREAD_MS);
      this.syncError = `daily ${this.input.courier} budget used up; next poll when it reopens at ${iso(windowAt)}`;
    } else {
      this.state.consecutiveFailures += 1;
      this.state.failingSince ??= iso(now);
      this.nextPollAtMs = now + backoffDelayMs(this.state.consecutiveFailures, this.policy);
      this.syncError = `courier unavailable since ${this.state.failingSince}: ${message}`;
    }
    log.warn('poll failed', {
      type,
      message,
      failures: this.state.consecutiveFailures,
      nextPollAt: iso(this.nextPollAtMs),
    });
    this.writing += 1;
    try {
      await this.readModel.recordSyncProblem.executeWithOptions(
        {
          summary: `record ${type === FailureType.BUDGET_EXHAUSTED ? 'budget used up' : 'courier unavailable'}; next poll ${utcTime(this.nextPollAtMs)}`,
        },
        [
          {
            shipmentId: this.input.shipmentId,
            error: this.syncError,
            failingSince: this.state.failingSince,
            consecutiveFailures: this.state.consecutiveFailures,
            nextPollAt: iso(this.nextPollAtMs),
          },
        ],
      );
    } finally {
      this.writing -= 1;
    }
  }

  async finishAs(status: ShipmentStatus, subStatus: string): Promise<void> {
    this.moveTo(status, subStatus);
    this.nextPollAtMs = null;
    await this.record([], { synced: false });
  }
}

/**
 * How a failed poll reaches the workflow: a local activity's own failure (refused for good, or
 * out of attempts) comes as the activity's ApplicationFailure itself, its timeout wrapped in an
 * ActivityFailure. A cancellation (also wrapped, or bare) is not a failed poll: it is checked
 * first and goes on.
 */
type PollFailure = ActivityFailure | ApplicationFailure;

function isPollFailure(err: unknown): err is PollFailure {
  return err instanceof ActivityFailure || err instanceof ApplicationFailure;
}
