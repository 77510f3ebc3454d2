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
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  proxyLocalActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { ShipmentActivities } from '../activities/shipments';
import { expiryReason, isPolledCourier, noScanDeadlineMs } from '../domain/polling';
import { FailureType } from '../domain/failures';
import { ShipmentStatus } from '../domain/status';
import {
  STOPPED_BY_SHOP,
  type CancelShipmentRequest,
  type ShipmentSnapshot,
  type ShipmentWorkflowInput,
} from './contract';
import { shipmentSearchAttributes } from './search-attributes';
import { upsertChangedSearchAttributes } from './search-attribute-updates';
import { newestEvent, ShipmentTracking } from './shipment-tracking';
import { duration } from './summaries';

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
  const tracking = new ShipmentTracking(input);
  // Handlers first, so what comes with the run's first task is taken while it asks its policy.
  tracking.listen();
  tracking.usePolicy(input.policy ?? (await worker.pollPolicy()));
  upsertChangedSearchAttributes(shipmentSearchAttributes(input, tracking.state.status));

  // A courier that is never polled (the shop's own fleet) is only ever heard from: pushed
  // events, a cancel, or the expiry deadline wake this loop.
  const polled = isPolledCourier(input.courier);
  if (!polled) {
    // Its driver's reports are handed over as they are made, but one made while no run was
    // there to take it (the order had not started this tracking yet, or a failed run was
    // waiting for its restart) was only recorded: each run starts from the log in Postgres.
    const reports = await worker.driverReports.executeWithOptions(
      { summary: "the driver's reports so far" },
      [{ trackingNumber: input.trackingNumber }],
    );
    if (reports.length > 0) tracking.pushed.push(reports);
    tracking.logRead = true;
  }
  // A new parcel's first poll waits for its courier's slot too (nothing is scanned yet anyway).
  if (
    polled &&
    input.state === undefined &&
    tracking.nextPollAtMs === null &&
    tracking.pollAt(0) > Date.now()
  )
    tracking.nextPollAtMs = tracking.pollAt(0);
  let pollNow = polled && tracking.nextPollAtMs === null;
  let cyclesThisRun = 0;
  // A stop from outside the parcel's order (ops' "Stop tracking") fails the run: the order takes
  // it as tracking that died, and failed work can restart it. Its own order's stop (or any stop
  // of a parcel without an order) ends it CANCELLED.
  const ownStop = ({ byOrder }: CancelShipmentRequest) => input.orderId === null || byOrder === true;
  while (!tracking.finished()) {
    // What the courier pushed before a stop, or with it, is recorded before the stop is obeyed:
    // it was answered "accepted", and a restarted run starts from the read model. A delivery
    // that came with the stop finishes the parcel as delivered.
    while (tracking.pushed.length > 0) {
      const events = tracking.pushed.shift()!;
      const newest = newestEvent(events)!;
      // The courier is pushing about this parcel: its policy may poll it rarely for a while.
      tracking.state.lastPushAtMs = Date.now();
      // A late webhook (older than the newest scan we know) adds history but no new status.
      // With no scan known, every scan is news, however long before this run it was made.
      const known = tracking.state.newestScanAtMs;
      if (known === null || Date.parse(newest.occurredAt) >= known) tracking.applyEvents(events, newest);
      if (!tracking.finished() && polled) tracking.scheduleAfterSuccess();
      await tracking.record(events, { synced: false });
    }
    if (tracking.finished()) break;
    if (tracking.cancelRequest !== null) {
      if (ownStop(tracking.cancelRequest)) {
        log.info('tracking cancelled', { reason: tracking.cancelRequest.reason });
        await tracking.finishAs(ShipmentStatus.CANCELLED, STOPPED_BY_SHOP);
        break;
      }
      throw ApplicationFailure.create({
        type: FailureType.TRACKING_STOPPED,
        message: `tracking stopped from outside its order: ${tracking.cancelRequest.reason}`,
        nonRetryable: true,
      });
    }
    if (pollNow) {
      await tracking.pollCycle();
      cyclesThisRun += 1;
      if (tracking.finished()) break;
    }
    const expired = expiryReason(Date.now(), tracking.state, tracking.policy);
    if (expired) {
      await tracking.finishAs(ShipmentStatus.EXPIRED, expired);
      break;
    }
    const nothingPending =
      !tracking.refreshWanted && tracking.pushed.length === 0 && tracking.cancelRequest === null;
    if (
      nothingPending &&
      (workflowInfo().continueAsNewSuggested || cyclesThisRun >= tracking.policy.maxCyclesPerRun)
    ) {
      // A refreshNow waiting for the next poll keeps refreshWanted set, so it is never
      // stranded here: the loop polls first and continues as new on a later pass.
      await condition(allHandlersFinished);
      return await continueAsNew<typeof shipmentWorkflow>({
        ...input,
        state: tracking.state,
        nextPollAtMs: tracking.nextPollAtMs,
        syncError: tracking.syncError,
      });
    }
    if (polled) tracking.nextPollAtMs ??= tracking.pollAt(tracking.delayNow() ?? 0);
    // Never sleep past the expiry deadline: an unscanned parcel must expire on time.
    const expiryAt = Math.min(
      noScanDeadlineMs(tracking.state, tracking.policy) ?? Infinity,
      tracking.state.startedAtMs + tracking.policy.maxAgeMs,
    );
    const wakeAt = Math.min(tracking.nextPollAtMs ?? Infinity, expiryAt);
    const waitMs = Math.max(1, wakeAt - Date.now());
    tracking.showDetails();
    const woken = await condition(
      () =>
        tracking.refreshWanted ||
        tracking.rescheduled ||
        tracking.pushed.length > 0 ||
        tracking.cancelRequest !== null,
      waitMs,
      {
        summary: !polled
          ? `${tracking.state.status}: waiting for the driver's report (expires in ${duration(waitMs)} without one)`
          : wakeAt === tracking.nextPollAtMs
            ? `${tracking.state.status}: next poll in ${duration(waitMs)}`
            : `${tracking.state.status}: expires in ${duration(waitMs)} unless a scan arrives`,
      },
    );
    // Woken by the timer (poll due, or the expiry deadline): ask the courier once more, so a
    // scan since the last poll can still save a parcel from expiring.
    pollNow = polled && (tracking.refreshWanted || !woken);
    if (pollNow) tracking.nextPollAtMs = null;
    tracking.refreshWanted = false;
    tracking.rescheduled = false;
  }

  // A push that came while the run was finishing is kept as history: the parcel's status no
  // longer moves, but the courier was told it was accepted.
  do {
    while (tracking.pushed.length > 0) await tracking.record(tracking.pushed.shift()!, { synced: false });
    tracking.showDetails();
    await condition(allHandlersFinished);
  } while (tracking.pushed.length > 0);
  return tracking.snapshot();
}
