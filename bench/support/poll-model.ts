/**
 * How many polls a parcel gets and how long it stays open, in virtual time: the simulator's
 * scenario timelines walked with the shipment workflow's own timing functions (`pollDelayMs`,
 * `expiryReason`), general policy, first poll at the start, every poll on time. What a parcel
 * would cost on an unloaded stack, where a loaded machine's late timers stretch the polls apart.
 */
import { isTerminal, ShipmentStatus } from '../../src/domain/status';
import type { PollPolicy } from '../../src/workflows/contract';
import { expiryReason, pollDelayMs } from '../../src/workflows/policy';
import { SCENARIOS, type ScenarioName } from '../../simulators/courier/scenarios';

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
