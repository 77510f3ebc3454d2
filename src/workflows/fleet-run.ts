/**
 * Fleet run watch (`fleet-run-<runId>`): one per run of the shop's own fleet, from when ops
 * open it until they close it (docs/fleet.md). It raises the silent-run alarm: a timer of
 * `silentAfterMs` that every driver report restarts (the driver API signals `runReport`);
 * when it fires, one activity looks at the run by Postgres's clock (the reports are recorded
 * there first, so a lost signal cannot raise a false alarm) and, if the driver has been quiet
 * that long with parcels still to deliver, raises the alarm once: the run's `silent_since`, an
 * audit entry, the `fleet.run_silent` event and a metric. It then keeps looking every
 * `silentAfterMs` until a report clears the alarm (a signal, or the run's last report in
 * Postgres when the signal was lost) or the run is closed. Deterministic code only.
 */
import {
  condition,
  continueAsNew,
  defineSignal,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { FleetActivities } from '../activities/fleet';
import { duration } from './summaries';

export const fleetRunWorkflowId = (runId: string): string => `fleet-run-${runId}`;

export interface FleetRunInput {
  runId: string;
  silentAfterMs: number;
  /** Carried over a continue-as-new: the alarm is raised and no report has come since. */
  silent?: boolean;
  /** Carried over a continue-as-new: the alarms raised on this run so far. */
  alarms?: number;
}

/** A driver reported on this run: the silence timer starts again (and a raised alarm is over). */
export const runReportSignal = defineSignal<[]>('runReport');
/** Ops closed the run: the watch ends. */
export const runClosedSignal = defineSignal<[]>('runClosed');

const act = proxyActivities<FleetActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export async function fleetRunWorkflow(input: FleetRunInput): Promise<{ alarms: number }> {
  let reports = 0;
  let closed = false;
  let alarms = input.alarms ?? 0;
  let silent = input.silent ?? false;
  setHandler(runReportSignal, () => {
    reports += 1;
  });
  setHandler(runClosedSignal, () => {
    closed = true;
  });
  const show = () =>
    setCurrentDetails(
      `run ${input.runId} · ${silent ? 'SILENT: waiting for a driver report' : `alarm after ${duration(input.silentAfterMs)} without a report`} · ${alarms} alarm(s) this run`,
    );
  let seen = reports;
  const woken = () => closed || reports !== seen;
  while (!closed) {
    show();
    // Silent or not, the wait ends after silentAfterMs at the latest and the run is looked at
    // again: a report or a close whose signal was lost is found in Postgres (the alarm, once
    // raised, is not raised again for the same silence; a closed run ends the watch).
    const heard = await condition(woken, input.silentAfterMs);
    if (closed) break;
    if (heard) {
      seen = reports;
      silent = false;
    } else {
      const check = await act.checkFleetRun.executeWithOptions({ summary: `is run ${input.runId} silent?` }, [
        { runId: input.runId, silentAfterMs: input.silentAfterMs },
      ]);
      if (check.state === 'closed') break;
      if (check.state === 'silent' && check.raised) alarms += 1;
      // A report that arrived during the check wakes the next wait at once.
      silent = check.state === 'silent';
    }
    if (workflowInfo().continueAsNewSuggested) {
      return await continueAsNew<typeof fleetRunWorkflow>({ ...input, silent, alarms });
    }
  }
  setCurrentDetails(`run ${input.runId} closed · ${alarms} alarm(s)`);
  return { alarms };
}
