/**
 * Courier calls per delivered parcel: Waybill's status-dependent poll policy vs a fixed
 * 15-minute poller, on the same simulated lifecycles (the simulator's scenarios, chosen by
 * the simulator's own hash rule for N tracking numbers).
 *
 * Both pollers run in virtual time over the scenario timelines with the same stopping
 * rules (terminal status, no scan for 7 days, max age 60 days), using the same pure
 * functions the shipment workflow uses (`pollDelayMs`, `expiryReason`). It also reports
 * how late each poller notices a status change (the freshness each one buys).
 *
 *   npm run bench:courier -- [parcels=2000]
 *
 * Prints a table and writes bench/results/courier-efficiency.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { isTerminal, ShipmentStatus } from '../src/domain/status';
import { pollPolicyFromConfig } from '../src/poll-policy';
import { SCENARIOS, scenarioFor, type ScenarioName } from '../simulators/courier/scenarios';
import type { PollPolicy } from '../src/workflows/contract';
import { expiryReason, pollDelayMs } from '../src/workflows/policy';

const MINUTE = 60_000;
const GOAL_RATIO = 0.15;

type NextDelay = (status: ShipmentStatus) => number;

/**
 * Scans happen at arbitrary moments relative to polls: every parcel's timeline is shifted
 * by its own phase (0 to 6 h after tracking starts), from a fixed-seed PRNG.
 */
function phases(count: number): number[] {
  let state = 0x9e3779b9;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return Math.floor((state / 2 ** 32) * 6 * 60) * MINUTE;
  });
}

/** The parcel's status as a poll at courier time `t` would see it. */
function statusAt(
  scenario: ScenarioName,
  t: number,
  phase = 0,
): { status: ShipmentStatus; lastScanAt: number | null } {
  let status: ShipmentStatus = ShipmentStatus.PENDING;
  let lastScanAt: number | null = null;
  for (const step of SCENARIOS[scenario].steps) {
    if (step.after + phase > t) break;
    lastScanAt = step.after + phase;
    if (step.leg === 'return') {
      // The return leg delivered means the parcel is back with the shipper.
      if (step.status === ShipmentStatus.DELIVERED) status = ShipmentStatus.RETURNED;
    } else {
      status = step.status;
    }
  }
  return { status, lastScanAt };
}

/** Status changes of the main lifecycle: (time, status) pairs a tracker should notice. */
function changes(scenario: ScenarioName, phase: number): { at: number; status: ShipmentStatus }[] {
  const out: { at: number; status: ShipmentStatus }[] = [];
  let previous: ShipmentStatus = ShipmentStatus.PENDING;
  for (const step of SCENARIOS[scenario].steps) {
    const { status } = statusAt(scenario, step.after + phase, phase);
    if (status !== previous) out.push({ at: step.after + phase, status });
    previous = status;
  }
  return out;
}

interface RunResult {
  calls: number;
  delivered: boolean;
  /** Courier ms between each status change and the poll that saw it. */
  lags: number[];
}

function run(scenario: ScenarioName, phase: number, nextDelay: NextDelay, policy: PollPolicy): RunResult {
  const polls: number[] = [];
  let t = 0;
  let lastScanAt = 0;
  let status: ShipmentStatus = ShipmentStatus.PENDING;
  for (;;) {
    polls.push(t);
    const seen = statusAt(scenario, t, phase);
    status = seen.status;
    if (seen.lastScanAt !== null) lastScanAt = seen.lastScanAt;
    if (isTerminal(status)) break;
    if (expiryReason(t, { startedAtMs: 0, quietSinceMs: lastScanAt, unansweredSinceMs: null }, policy)) break;
    t += nextDelay(status);
  }
  const lags = changes(scenario, phase)
    .map((change) => {
      const seenAt = polls.find((p) => p >= change.at);
      return seenAt === undefined ? null : seenAt - change.at;
    })
    .filter((lag): lag is number => lag !== null);
  return { calls: polls.length, delivered: status === ShipmentStatus.DELIVERED, lags };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function main(): void {
  const parcels = Number(process.argv[2] ?? 2000);
  const policy = pollPolicyFromConfig(loadConfig({}));
  const pollers: Record<string, NextDelay> = {
    waybill: (status) => pollDelayMs(status, policy) ?? Infinity,
    'fixed-15min': () => 15 * MINUTE,
  };

  const mix: Record<string, number> = {};
  const totals: Record<string, { calls: number; delivered: number; lags: number[] }> = {};
  for (const name of Object.keys(pollers)) totals[name] = { calls: 0, delivered: 0, lags: [] };
  const phase = phases(parcels);
  for (let i = 0; i < parcels; i++) {
    const scenario = scenarioFor(`SIM${String(1_000_000 + i)}`);
    mix[scenario] = (mix[scenario] ?? 0) + 1;
    for (const [name, nextDelay] of Object.entries(pollers)) {
      const result = run(scenario, phase[i]!, nextDelay, policy);
      totals[name]!.calls += result.calls;
      totals[name]!.delivered += result.delivered ? 1 : 0;
      totals[name]!.lags.push(...result.lags);
    }
  }

  const rows = Object.entries(totals).map(([name, t]) => ({
    poller: name,
    calls: t.calls,
    delivered: t.delivered,
    callsPerDelivered: t.calls / t.delivered,
    lagMedianMin: percentile(t.lags, 50) / MINUTE,
    lagP95Min: percentile(t.lags, 95) / MINUTE,
  }));
  const waybill = rows.find((r) => r.poller === 'waybill')!;
  const fixed = rows.find((r) => r.poller === 'fixed-15min')!;
  const ratio = waybill.callsPerDelivered / fixed.callsPerDelivered;

  console.log(
    `Courier calls per delivered parcel — ${parcels} simulated parcels, scenario mix ${JSON.stringify(mix)}`,
  );
  console.log('poller        calls     delivered  calls/delivered  notice lag p50 (min)  p95 (min)');
  for (const r of rows) {
    console.log(
      `${r.poller.padEnd(12)}  ${String(r.calls).padStart(8)}  ${String(r.delivered).padStart(9)}  ${r.callsPerDelivered.toFixed(2).padStart(15)}  ${r.lagMedianMin.toFixed(1).padStart(20)}  ${r.lagP95Min.toFixed(1).padStart(9)}`,
    );
  }
  console.log(
    `ratio waybill / fixed-15min: ${ratio.toFixed(3)} (goal <= ${GOAL_RATIO}): ${ratio <= GOAL_RATIO ? 'PASS' : 'MISS'}`,
  );

  const out = path.join(__dirname, 'results', 'courier-efficiency.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), parcels, mix, rows, ratio, goal: GOAL_RATIO, pass: ratio <= GOAL_RATIO }, null, 2)}\n`,
  );
  console.log(`written ${path.relative(process.cwd(), out)}`);
}

main();
