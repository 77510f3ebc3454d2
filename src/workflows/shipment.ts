/**
 * Shipment workflow (`shipment-<shipmentId>`): one per parcel, alive until the parcel is
 * delivered, returned, cancelled or expired. Loop: poll the courier → record events and
 * the snapshot → sleep for the status's interval, woken early by a refresh, pushed courier
 * events or a cancel. A refresh polls at most once per refresh cooldown, whoever asks: it
 * owns the last poll time. Courier outages back off exponentially; an exhausted daily
 * budget waits for the next window; neither counts towards the no-scan expiry.
 * Deterministic code only.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  metricMeter,
  proxyActivities,
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
  expiryReason,
  nextBudgetWindowMs,
  noScanDeadlineMs,
  pollDelayMs,
  refreshAvailableAtMs,
} from '../domain/polling';
import { activityFailure, FailureType } from '../domain/failures';
import { CourierKey, OrderIdKey, ShipmentStatusKey, TrackingNumberKey } from './search-attributes';
import { courierName, duration, utcTime } from './summaries';

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
    quietSinceMs: nowMs,
    unansweredSinceMs: null,
    lastPolledAtMs: null,
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

function newestEvent(events: NormalisedEvent[]): NormalisedEvent | null {
  let newest: NormalisedEvent | null = null;
  for (const event of events) if (!newest || event.occurredAt > newest.occurredAt) newest = event;
  return newest;
}

/**
 * The worker's poll policy. A local activity, not config read in the workflow (the sandbox
 * has no environment, and a value read outside history would make replay depend on the
 * replaying worker's settings): its answer is recorded in history as a marker, so a replay
 * sees what the run saw, and it runs in the worker executing the workflow, without a trip
 * through a task queue. Asked at the start of every run, so a worker redeployed with other
 * `WAYBILL_POLL_*` settings applies them from the next continue-as-new on.
 */
const worker = proxyLocalActivities<ShipmentActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '10s' },
});

export async function shipmentWorkflow(input: ShipmentWorkflowInput): Promise<ShipmentSnapshot> {
  const policy = input.policy ?? (await worker.pollPolicy());
  const courier = proxyActivities<ShipmentActivities>({
    taskQueue: input.courierTaskQueue,
    startToCloseTimeout: '60s',
    // A poll heartbeats while it waits for its bulk call: a dead worker's polls run again soon.
    heartbeatTimeout: '10s',
    retry: {
      initialInterval: policy.pollRetryInitialMs,
      backoffCoefficient: 2,
      maximumAttempts: policy.pollAttempts,
      nonRetryableErrorTypes: [FailureType.BUDGET_EXHAUSTED, FailureType.COURIER_REJECTED],
    },
  });
  // Read-model writes retry until Postgres answers: losing one would leave the API stale.
  const readModel = proxyActivities<ShipmentActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  });

  const state: ShipmentState = input.state ?? initialShipmentState(Date.now());
  let nextPollAtMs: number | null = input.nextPollAtMs ?? null;
  let syncError: string | null = input.syncError ?? null;
  let refreshWanted = false;
  /** A refresh signal within the cooldown moved the next poll earlier: the wait starts again. */
  let rescheduled = false;
  /** True while a courier call is out: its answer comes after any request made meanwhile. */
  let calling = false;
  /** Poll cycles started in this run, and those whose result is written to the read model. */
  let started = 0;
  let cycles = 0;
  /** How the last completed poll cycle went: what refreshNow answers after waiting for it. */
  let lastCycle: RefreshSource = RefreshSource.LIVE;
  /** Read-model writes in flight: refreshNow never answers ahead of Postgres. */
  let writing = 0;
  const pushed: NormalisedEvent[][] = [];
  let cancelRequest: CancelShipmentRequest | null = null;
  /** The last status change in this run, for the current details ops read in the UI. */
  let lastChange: { from: ShipmentStatus; to: ShipmentStatus } | null = null;
  const finished = () => isTerminal(state.status);
  const parcel = `${courierName(input.courier)} ${input.trackingNumber}`;
  const countPoll = (result: 'ok' | 'not_found' | 'failed' | 'budget_exhausted') =>
    count(metricMeter, Metrics.shipmentPolls, { courier: input.courier, result });

  /** What the UI shows as this shipment's current details: `IN_TRANSIT → OUT_FOR_DELIVERY · next poll in 30 min (…)`. */
  function showDetails(doing?: string): void {
    const now = Date.now();
    const parts = [lastChange ? `${lastChange.from} → ${lastChange.to}` : state.status];
    if (doing) parts.push(doing);
    else if (finished()) parts.push('tracking finished');
    else if (nextPollAtMs !== null)
      parts.push(`next poll in ${duration(nextPollAtMs - now)} (${utcTime(nextPollAtMs)})`);
    if (syncError !== null) parts.push(syncError);
    parts.push(`${state.polls} poll${state.polls === 1 ? '' : 's'}`);
    setCurrentDetails(`${parcel} · ${parts.join(' · ')}`);
  }

  const snapshot = (): ShipmentSnapshot => ({
    shipmentId: input.shipmentId,
    courier: input.courier,
    trackingNumber: input.trackingNumber,
    status: state.status,
    subStatus: state.subStatus,
    eta: state.eta,
    lastSyncedAt: state.lastSyncedAt,
    lastPolledAt: state.lastPolledAtMs === null ? null : iso(state.lastPolledAtMs),
    nextPollAt: nextPollAtMs === null || finished() ? null : iso(nextPollAtMs),
    syncError,
    polls: state.polls,
    finished: finished(),
  });

  /** When a refresh may next poll the courier; null when it may now. */
  const cooldownEndsAtMs = () => refreshAvailableAtMs(state.lastPolledAtMs, Date.now(), policy);

  const refreshAnswer = (source: RefreshSource): RefreshNowResult => {
    const next = finished() ? null : (cooldownEndsAtMs() ?? Date.now());
    return { snapshot: snapshot(), source, nextLiveRefreshAt: next === null ? null : iso(next) };
  };

  setHandler(shipmentStateQuery, snapshot);
  setHandler(refreshSignal, ({ requestedBy }) => {
    // The courier call out now answers it; its result is in the read model moments later.
    if (calling) return;
    const cooldownEnds = cooldownEndsAtMs();
    if (cooldownEnds === null) {
      log.info('refresh requested', { requestedBy });
      refreshWanted = true;
    } else if (nextPollAtMs === null || cooldownEnds < nextPollAtMs) {
      // Within the cooldown the poll moves to its end instead: the courier is asked once.
      log.info('refresh requested within the cooldown: poll moved to its end', {
        requestedBy,
        pollAt: iso(cooldownEnds),
      });
      nextPollAtMs = cooldownEnds;
      rescheduled = true;
    }
  });
  setHandler(courierEventsSignal, ({ events }) => {
    if (events.length > 0) pushed.push(events);
  });
  setHandler(cancelShipmentSignal, (request) => {
    cancelRequest ??= request;
  });
  setHandler(
    refreshNowUpdate,
    async ({ requestedBy }) => {
      // The courier call out now answers this request too: its answer comes after the request.
      let target = started;
      if (!calling) {
        if (cooldownEndsAtMs() !== null) {
          // The last answer is in hand: serve it once the read model holds it too.
          await condition(() => cycles >= started && writing === 0);
          return refreshAnswer(RefreshSource.COOLDOWN);
        }
        log.info('refresh-now requested', { requestedBy });
        refreshWanted = true;
        target = started + 1;
      }
      // Only once the read model holds the result: the API answers from Postgres right after.
      await condition(() => (cycles >= target || finished()) && writing === 0);
      return refreshAnswer(cycles >= target ? lastCycle : RefreshSource.FINISHED);
    },
    {
      validator: (_request: RefreshRequest) => {
        if (finished()) throw new Error(`tracking has finished: the shipment is ${state.status}`);
      },
    },
  );

  upsertSearchAttributes([
    { key: ShipmentStatusKey, value: state.status },
    { key: CourierKey, value: input.courier },
    { key: TrackingNumberKey, value: input.trackingNumber },
    ...(input.orderId ? [{ key: OrderIdKey, value: input.orderId }] : []),
  ]);

  async function tellOrder(status: ShipmentStatus, subStatus: string | null): Promise<void> {
    const parent = workflowInfo().parent;
    if (!parent) return;
    try {
      await getExternalWorkflowHandle(parent.workflowId).signal(shipmentMilestoneSignal, {
        shipmentId: input.shipmentId,
        status,
        subStatus,
        at: iso(Date.now()),
      });
    } catch (err) {
      // The order may have finished already (e.g. cancelled); the read model holds the truth.
      log.warn('could not tell the order workflow', { error: activityFailure(err).message });
    }
  }

  async function reportMilestone(events: NormalisedEvent[] = []): Promise<void> {
    // One poll can carry the pickup and a later problem (IN_TRANSIT then EXCEPTION): the
    // order must still hear of the pickup (it captures the payment and stops cancels then).
    if (
      !PICKED_UP_STATUSES.has(state.status) &&
      !state.reported.some((s) => PICKED_UP_STATUSES.has(s)) &&
      events.some((e) => PICKED_UP_STATUSES.has(e.status))
    ) {
      state.reported.push(ShipmentStatus.IN_TRANSIT);
      await tellOrder(ShipmentStatus.IN_TRANSIT, null);
    }
    if (!MILESTONES.has(state.status) || state.reported.includes(state.status)) return;
    state.reported.push(state.status);
    await tellOrder(state.status, state.subStatus);
  }

  /** Moves the snapshot to `status` if the taxonomy allows it; returns whether it changed. */
  function moveTo(status: ShipmentStatus, subStatus: string | null): boolean {
    if (!canTransition(state.status, status)) return false;
    const changed = status !== state.status || subStatus !== state.subStatus;
    if (status !== state.status) {
      log.info('status changed', { from: state.status, to: status, subStatus });
      upsertSearchAttributes([{ key: ShipmentStatusKey, value: status }]);
      count(metricMeter, Metrics.shipmentStatusChanges, { courier: input.courier, status });
      lastChange = { from: state.status, to: status };
    }
    state.status = status;
    state.subStatus = subStatus;
    return changed;
  }

  /** The next poll `delay` from now, on the courier's slot (where its bulk calls gather polls). */
  const pollAt = (delay: number) => alignToSlot(Date.now() + delay, policy, input.courier);
  const delayNow = () => pollDelayMs(state.status, policy, input.courier, Date.now() - state.lastScanAtMs);

  function scheduleAfterSuccess(): void {
    const delay = delayNow();
    nextPollAtMs = delay === null ? null : pollAt(delay);
  }

  async function record(events: NormalisedEvent[], extra: { synced: boolean }): Promise<void> {
    if (extra.synced) state.lastSyncedAt = iso(Date.now());
    const scans = events.length > 0 ? `, ${events.length} scan${events.length === 1 ? '' : 's'}` : '';
    writing += 1;
    try {
      const { inserted } = await readModel.recordTracking.executeWithOptions(
        { summary: `record ${state.status}${scans}` },
        [
          {
            shipmentId: input.shipmentId,
            events,
            status: state.status,
            subStatus: state.subStatus,
            eta: state.eta,
            syncedAt: extra.synced ? state.lastSyncedAt : null,
            syncError,
            nextPollAt: nextPollAtMs === null || finished() ? null : iso(nextPollAtMs),
          },
        ],
      );
      state.eventsRecorded += inserted;
    } finally {
      writing -= 1;
    }
    await reportMilestone(events);
  }

  function applyEvents(
    events: NormalisedEvent[],
    reported: { status: ShipmentStatus; subStatus: string | null },
  ): void {
    const newest = newestEvent(events);
    if (newest) noteScan(Date.parse(newest.occurredAt));
    moveTo(reported.status, reported.subStatus);
  }

  /** A scan restarts the no-scan clock (never moving it back). */
  function noteScan(atMs: number): void {
    state.lastScanAtMs = Math.max(state.lastScanAtMs, atMs);
    state.quietSinceMs = Math.max(state.quietSinceMs, state.lastScanAtMs);
  }

  /** One courier call; failures become the read model's sync problem, never the workflow's. */
  async function pollCycle(): Promise<void> {
    started += 1;
    calling = true;
    const startedAtMs = Date.now();
    showDetails(`polling ${courierName(input.courier)}`);
    try {
      let outcome: PollOutcome;
      try {
        outcome = await courier.pollCourier.executeWithOptions({ summary: `poll ${parcel}` }, [
          { shipmentId: input.shipmentId, courier: input.courier, trackingNumber: input.trackingNumber },
        ]);
      } catch (err) {
        calling = false;
        if (!(err instanceof ActivityFailure)) throw err;
        state.polls += 1;
        state.lastPolledAtMs = Date.now();
        // Until the courier answers again, the no-scan expiry clock stands still (from the
        // first attempt of this cycle: its retries were time without answers too).
        state.unansweredSinceMs ??= startedAtMs;
        await recordPollFailure(err);
        return;
      }
      calling = false;
      state.polls += 1;
      state.lastPolledAtMs = Date.now();
      countPoll(outcome.kind === 'not_found' ? 'not_found' : 'ok');
      lastCycle = RefreshSource.LIVE;
      // The courier answered: a stretch without answers is not silence about the parcel.
      Object.assign(state, afterAnswer(state, state.lastPolledAtMs));
      state.consecutiveFailures = 0;
      state.failingSince = null;
      syncError = null;
      if (outcome.kind === 'not_found') {
        state.notFoundCount += 1;
        if (state.notFoundCount >= policy.notFoundLimit) {
          moveTo(ShipmentStatus.EXCEPTION, 'NOT_FOUND_AT_COURIER');
          syncError = `the courier does not know ${input.trackingNumber} (${state.notFoundCount} answers)`;
        }
        scheduleAfterSuccess();
        // A number the courier keeps denying is asked about rarely until it expires.
        if (syncError !== null) nextPollAtMs = Date.now() + policy.backoffCapMs;
        await record([], { synced: true });
        return;
      }
      state.notFoundCount = 0;
      state.eta = outcome.eta;
      applyEvents(outcome.events, outcome);
      scheduleAfterSuccess();
      await record(outcome.events, { synced: true });
    } finally {
      calling = false;
      cycles += 1;
    }
  }

  async function recordPollFailure(err: ActivityFailure): Promise<void> {
    const { type, message, details } = activityFailure(err);
    countPoll(type === FailureType.BUDGET_EXHAUSTED ? 'budget_exhausted' : 'failed');
    lastCycle =
      type === FailureType.BUDGET_EXHAUSTED
        ? RefreshSource.BUDGET_EXHAUSTED
        : RefreshSource.COURIER_UNAVAILABLE;
    const now = Date.now();
    if (type === FailureType.BUDGET_EXHAUSTED) {
      // The activity's clock decided the day is used up; wait for the window it names (never
      // less than a minute, in case this clock is ahead) plus a spread so that every blocked
      // shipment does not call at midnight at once.
      const named = Date.parse(String((details[0] as { nextWindowAt?: string } | undefined)?.nextWindowAt));
      const windowAt = Number.isFinite(named) ? named : nextBudgetWindowMs(now);
      nextPollAtMs = Math.max(windowAt, now + 60_000) + Math.floor(Math.random() * 15 * 60_000);
      syncError = `daily ${input.courier} budget used up; next poll when it reopens at ${iso(windowAt)}`;
    } else {
      state.consecutiveFailures += 1;
      state.failingSince ??= iso(now);
      nextPollAtMs = now + backoffDelayMs(state.consecutiveFailures, policy);
      syncError = `courier unavailable since ${state.failingSince}: ${message}`;
    }
    log.warn('poll failed', {
      type,
      message,
      failures: state.consecutiveFailures,
      nextPollAt: iso(nextPollAtMs),
    });
    writing += 1;
    try {
      await readModel.recordSyncProblem.executeWithOptions(
        {
          summary: `record ${type === FailureType.BUDGET_EXHAUSTED ? 'budget used up' : 'courier unavailable'}; next poll ${utcTime(nextPollAtMs)}`,
        },
        [
          {
            shipmentId: input.shipmentId,
            error: syncError,
            failingSince: state.failingSince,
            consecutiveFailures: state.consecutiveFailures,
            nextPollAt: iso(nextPollAtMs),
          },
        ],
      );
    } finally {
      writing -= 1;
    }
  }

  async function finishAs(status: ShipmentStatus, subStatus: string): Promise<void> {
    moveTo(status, subStatus);
    nextPollAtMs = null;
    await record([], { synced: false });
  }

  // A new parcel's first poll waits for its courier's slot too (nothing is scanned yet anyway).
  if (input.state === undefined && nextPollAtMs === null && pollAt(0) > Date.now()) nextPollAtMs = pollAt(0);
  let pollNow = nextPollAtMs === null;
  let cyclesThisRun = 0;
  while (!finished()) {
    if (cancelRequest !== null) {
      log.info('tracking cancelled', { reason: (cancelRequest as CancelShipmentRequest).reason });
      await finishAs(ShipmentStatus.CANCELLED, 'CANCELLED_BY_SHOP');
      break;
    }
    while (pushed.length > 0) {
      const events = pushed.shift()!;
      const newest = newestEvent(events)!;
      // A late webhook (older than the newest scan we know) adds history but no new status.
      if (Date.parse(newest.occurredAt) >= state.lastScanAtMs) applyEvents(events, newest);
      else state.lastScanAtMs = Math.max(state.lastScanAtMs, Date.parse(newest.occurredAt));
      if (!finished()) scheduleAfterSuccess();
      await record(events, { synced: false });
    }
    if (finished()) break;
    if (pollNow) {
      await pollCycle();
      cyclesThisRun += 1;
      if (finished()) break;
    }
    const expired = expiryReason(Date.now(), state, policy);
    if (expired) {
      await finishAs(ShipmentStatus.EXPIRED, expired);
      break;
    }
    const nothingPending = !refreshWanted && pushed.length === 0 && cancelRequest === null;
    if (
      nothingPending &&
      (workflowInfo().continueAsNewSuggested || cyclesThisRun >= policy.maxCyclesPerRun)
    ) {
      // A refreshNow waiting for the next poll keeps refreshWanted set, so it is never
      // stranded here: the loop polls first and continues as new on a later pass.
      await condition(allHandlersFinished);
      return await continueAsNew<typeof shipmentWorkflow>({ ...input, state, nextPollAtMs, syncError });
    }
    nextPollAtMs ??= pollAt(delayNow() ?? 0);
    // Never sleep past the expiry deadline: an unscanned parcel must expire on time.
    const expiryAt = Math.min(
      noScanDeadlineMs(state, policy) ?? Infinity,
      state.startedAtMs + policy.maxAgeMs,
    );
    const wakeAt = Math.min(nextPollAtMs, expiryAt);
    const waitMs = Math.max(1, wakeAt - Date.now());
    showDetails();
    const woken = await condition(
      () => refreshWanted || rescheduled || pushed.length > 0 || cancelRequest !== null,
      waitMs,
      {
        summary:
          wakeAt === nextPollAtMs
            ? `${state.status}: next poll in ${duration(waitMs)}`
            : `${state.status}: expires in ${duration(waitMs)} unless a scan arrives`,
      },
    );
    // Woken by the timer (poll due, or the expiry deadline): ask the courier once more, so a
    // scan since the last poll can still save a parcel from expiring.
    pollNow = refreshWanted || !woken;
    if (pollNow) nextPollAtMs = null;
    refreshWanted = false;
    rescheduled = false;
  }

  showDetails();
  await condition(allHandlersFinished);
  return snapshot();
}
