/**
 * How many polls a parcel gets and how long it stays open, in virtual time: the simulator's
 * scenario timelines walked with the shipment workflow's own timing functions (`pollDelayMs`,
 * `expiryReason`), general policy, first poll at the start, every poll on time. What a parcel
 * would cost on an unloaded stack, where a loaded machine's late timers stretch the polls apart.
 */
import { loadConfig } from '../../src/config';
import { isTerminal, ShipmentStatus } from '../../src/domain/status';
import { pollPolicyFromConfig } from '../../src/poll-policy';
import type { PollPolicy } from '../../src/domain/polling';
import { expiryReason, pollDelayMs } from '../../src/domain/polling';
import { SCENARIOS, type ScenarioName } from '../../simulators/courier/scenarios';
import { totalActions, type HistoryCounts } from './history-actions';

export interface ModelParcel {
  polls: number;
  /** Days from the first poll to the last (the workflow's life). */
  days: number;
  ended: ShipmentStatus;
}

/** The status a poll `t` ms after the start sees, and the newest scan's time. */
function seen(scenario: ScenarioName, t: number): { status: ShipmentStatus; scanAt: number } {
  let status: ShipmentStatus = ShipmentStatus.PENDING;
  let scanAt = 0;
  for (const step of SCENARIOS[scenario].steps.filter((s) => s.after <= t)) {
    scanAt = step.after;
    // A return leg delivered back means the parcel is back with the shipper.
    if (step.leg !== 'return') status = step.status;
    else if (step.status === ShipmentStatus.DELIVERED) status = ShipmentStatus.RETURNED;
  }
  return { status, scanAt };
}

export function modelParcel(scenario: ScenarioName, policy: PollPolicy): ModelParcel {
  let t = 0;
  for (let polls = 1; ; polls++) {
    const { status, scanAt } = seen(scenario, t);
    const expired = expiryReason(
      t,
      { startedAtMs: 0, quietSinceMs: scanAt, unansweredSinceMs: null },
      policy,
    );
    const delay = isTerminal(status) || expired ? null : pollDelayMs(status, policy, 'simulator', t - scanAt);
    if (delay === null)
      return { polls, days: t / 86_400_000, ended: expired ? ShipmentStatus.EXPIRED : status };
    t += delay;
  }
}

/** Least squares y = fixed + perPoll × polls over the shipment workflows. */
function fit(xs: number[], ys: number[]): { fixed: number; perPoll: number } {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const mx = mean(xs);
  const my = mean(ys);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const perPoll = sxx === 0 ? 0 : xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / sxx;
  return { fixed: my - perPoll * mx, perPoll };
}

/**
 * Per parcel on an unloaded stack: the measured fixed part and cost per poll of the shipment
 * workflows, the measured order workflows, and the polls and life of the virtual-time model.
 */
export function projection(
  tracked: HistoryCounts[],
  orderPerParcel: Record<'events' | 'bytes' | 'actions' | 'workflowTasks', number>,
  mix: ScenarioName[],
) {
  const polls = tracked.map((h) => h.activityTypes.pollCourier ?? 0);
  const policy = pollPolicyFromConfig(loadConfig({}));
  const model = mix.map((s) => modelParcel(s, policy));
  const modelPolls = model.reduce((a, m) => a + m.polls, 0) / model.length;
  const modelDays = model.reduce((a, m) => a + m.days, 0) / model.length;
  const figures = {
    events: tracked.map((h) => h.events),
    bytes: tracked.map((h) => h.bytes),
    actions: tracked.map((h) => totalActions(h.actions)),
    workflowTasks: tracked.map((h) => h.workflowTasks),
  };
  const rows = (Object.keys(figures) as (keyof typeof figures)[]).map((what) => {
    const f = fit(polls, figures[what]);
    const perParcel = orderPerParcel[what] + f.fixed + f.perPoll * modelPolls;
    return { what, ...f, perParcel, perParcelDay: perParcel / modelDays };
  });
  return {
    measuredPollsPerParcel: polls.reduce((a, b) => a + b, 0) / polls.length,
    modelPolls,
    modelDays,
    rows,
  };
}
