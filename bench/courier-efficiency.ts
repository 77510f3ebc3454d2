/**
 * Courier calls per delivered parcel, and how late a status change is seen: Waybill's
 * status-dependent poll policy (one call per poll, as for a courier without a bulk API) vs a
 * fixed 15-minute poller, and EasyParcel's own policy with bulk calls, on the same simulated
 * lifecycles (the simulator's scenarios, chosen by the simulator's own hash rule).
 *
 * Every poller runs in virtual time over the scenario timelines with the same stopping rules
 * (terminal status, no scan for 7 days, max age 60 days), using the pure functions the
 * shipment workflow uses (`pollDelayMs`, `alignToSlot`, `expiryReason`). For EasyParcel the
 * parcels are a shop's flow (their starts spread evenly over `days`), their door scans in
 * working hours (simulators/courier/scan-hours.ts), every poll lands on its slot and none
 * waiting for a door scan in the courier's night, and the polls of one slot go out as
 * ceil(polls / EASYPARCEL_TRACKING_BATCH) bulk calls, plus one token request per access-token
 * lifetime (10 h): HTTP requests, as the budget counts them. Variants: the same scans polled
 * at night too, and the policy if door scans happened round the clock.
 *
 *   npm run bench:courier -- [parcels=2000] [days=10] [batch=EASYPARCEL_TRACKING_BATCH]
 *
 * Prints a table with PASS/MISS against the goals and writes bench/results/courier-efficiency.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { isTerminal, ShipmentStatus } from '../src/domain/status';
import { pollPolicyFromConfig } from '../src/poll-policy';
import {
  SCENARIOS,
  scenarioFor,
  type ScenarioName,
  type ScenarioStep,
} from '../simulators/courier/scenarios';
import type { CourierNight, PollPolicy } from '../src/domain/polling';
import { inWorkingHours, MALAYSIA_WORKING_HOURS } from '../simulators/courier/scan-hours';
import { alignToSlot, expiryReason, pollDelayMs } from '../src/domain/polling';
import { CourierCode } from '../src/couriers/types';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const GOAL_RATIO = 0.15;
/** Issue 16's goals for EasyParcel with bulk calls. */
const GOAL_EASYPARCEL_CALLS = 1.0;
const GOAL_EASYPARCEL_P95_MIN = 30;
/** EasyParcel's access-token lifetime (`expires_in` 36000 s): one token request each. */
const TOKEN_LIFETIME_MS = 10 * HOUR;

/** The delay after a poll that saw `status`, `quietForMs` after the newest scan. */
type NextDelay = (status: ShipmentStatus, quietForMs: number) => number;

/**
 * Scans happen at arbitrary moments relative to polls: every parcel's timeline is shifted
 * by its own phase (0 to 6 h after tracking starts), from a fixed-seed PRNG.
 */
function phases(count: number): number[] {
  const next = random(0x9e3779b9);
  return Array.from({ length: count }, () => Math.floor(next() * 6 * 60) * MINUTE);
}

/** A fixed-seed PRNG: numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

/** A parcel's scans: its scenario's steps, offsets from the parcel's start. */
type Timeline = readonly ScenarioStep[];

/** A scenario's timeline shifted by the parcel's phase. */
function shifted(scenario: ScenarioName, phase: number): Timeline {
  return SCENARIOS[scenario].steps.map((step) => ({ ...step, after: step.after + phase }));
}

/** The parcel's status as a poll at courier time `t` would see it. */
function statusAt(timeline: Timeline, t: number): { status: ShipmentStatus; lastScanAt: number | null } {
  let status: ShipmentStatus = ShipmentStatus.PENDING;
  let lastScanAt: number | null = null;
  for (const step of timeline) {
    if (step.after > t) break;
    lastScanAt = step.after;
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
function changes(timeline: Timeline): { at: number; status: ShipmentStatus }[] {
  const out: { at: number; status: ShipmentStatus }[] = [];
  let previous: ShipmentStatus = ShipmentStatus.PENDING;
  for (const step of timeline) {
    const { status } = statusAt(timeline, step.after);
    if (status !== previous) out.push({ at: step.after, status });
    previous = status;
  }
  return out;
}

interface RunResult {
  calls: number;
  delivered: boolean;
  /** Courier ms between each status change and the poll that saw it. */
  lags: number[];
  /** When each poll happened, ms from the parcel's start. */
  polls: number[];
}

/**
 * One parcel's polls from its start; `align` maps a wanted poll time (ms from the start) to
 * the one the workflow schedules (its courier's slot), identity for unaligned pollers.
 */
function run(
  timeline: Timeline,
  nextDelay: NextDelay,
  policy: PollPolicy,
  align: (t: number, status: ShipmentStatus) => number = (t) => t,
): RunResult {
  const polls: number[] = [];
  let status: ShipmentStatus = ShipmentStatus.PENDING;
  let t = align(0, status);
  let lastScanAt = 0;
  for (;;) {
    polls.push(t);
    const seen = statusAt(timeline, t);
    status = seen.status;
    if (seen.lastScanAt !== null) lastScanAt = seen.lastScanAt;
    if (isTerminal(status)) break;
    if (expiryReason(t, { startedAtMs: 0, quietSinceMs: lastScanAt, unansweredSinceMs: null }, policy)) break;
    t = align(t + nextDelay(status, t - lastScanAt), status);
  }
  const lags = changes(timeline)
    .map((change) => {
      const seenAt = polls.find((p) => p >= change.at);
      return seenAt === undefined ? null : seenAt - change.at;
    })
    .filter((lag): lag is number => lag !== null);
  return { calls: polls.length, delivered: status === ShipmentStatus.DELIVERED, lags, polls };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Row {
  poller: string;
  calls: number;
  polls: number;
  delivered: number;
  callsPerDelivered: number;
  pollsPerDelivered: number;
  lagMedianMin: number;
  lagP95Min: number;
}

function row(poller: string, t: { calls: number; polls: number; delivered: number; lags: number[] }): Row {
  return {
    poller,
    calls: t.calls,
    polls: t.polls,
    delivered: t.delivered,
    callsPerDelivered: t.calls / t.delivered,
    pollsPerDelivered: t.polls / t.delivered,
    lagMedianMin: percentile(t.lags, 50) / MINUTE,
    lagP95Min: percentile(t.lags, 95) / MINUTE,
  };
}

/**
 * EasyParcel's parcels as a shop's flow: parcel i starts at `starts[i]` (epoch ms), its scans
 * are `timelines[i]`, it polls on its courier's slots (and not in the courier's night, when the
 * policy has one), and each slot's polls share bulk calls of `batch` numbers.
 */
function easyParcelRun(timelines: Timeline[], starts: number[], policy: PollPolicy, batch: number) {
  const courier = CourierCode.EASYPARCEL;
  const bySlot = new Map<number, number>();
  const totals = { calls: 0, polls: 0, delivered: 0, lags: [] as number[] };
  let first = Infinity;
  let last = -Infinity;
  timelines.forEach((timeline, i) => {
    const start = starts[i]!;
    const result = run(
      timeline,
      (status, quietForMs) => pollDelayMs(status, policy, courier, quietForMs) ?? Infinity,
      policy,
      (t, status) => alignToSlot(start + t, policy, courier, status) - start,
    );
    // Every poll lands on a slot boundary, so a slot's polls are one batch.
    for (const p of result.polls) {
      bySlot.set(start + p, (bySlot.get(start + p) ?? 0) + 1);
      first = Math.min(first, start + p);
      last = Math.max(last, start + p);
    }
    totals.polls += result.polls.length;
    totals.delivered += result.delivered ? 1 : 0;
    totals.lags.push(...result.lags);
  });
  const sizes = [...bySlot.values()].flatMap((n) =>
    Array.from({ length: Math.ceil(n / batch) }, (_, k) => Math.min(batch, n - k * batch)),
  );
  const trackingCalls = sizes.length;
  const tokenCalls = Math.ceil((last - first) / TOKEN_LIFETIME_MS);
  totals.calls = trackingCalls + tokenCalls;
  const fill = {
    meanNumbersPerCall: totals.polls / trackingCalls,
    fullCallsShare: sizes.filter((n) => n === batch).length / trackingCalls,
  };
  return { totals, trackingCalls, tokenCalls, fill };
}

function night(n: CourierNight | undefined): string {
  const hhmm = (m: number) =>
    `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return n ? `${hhmm(n.fromMinute)}-${hhmm(n.toMinute)}` : 'off';
}

function main(): void {
  const parcels = Number(process.argv[2] ?? 2000);
  const days = Number(process.argv[3] ?? 10);
  const config = loadConfig({});
  const policy = pollPolicyFromConfig(config);
  const batch = Number(process.argv[4] ?? config.courier.easyParcel.maxBatch);
  const pollers: Record<string, NextDelay> = {
    waybill: (status) => pollDelayMs(status, policy) ?? Infinity,
    'fixed-15min': () => 15 * MINUTE,
  };

  const mix: Record<string, number> = {};
  const totals: Record<string, { calls: number; polls: number; delivered: number; lags: number[] }> = {};
  for (const name of Object.keys(pollers)) totals[name] = { calls: 0, polls: 0, delivered: 0, lags: [] };
  const phase = phases(parcels);
  const scenarios: ScenarioName[] = [];
  for (let i = 0; i < parcels; i++) {
    const scenario = scenarioFor(`SIM${String(1_000_000 + i)}`);
    scenarios.push(scenario);
    mix[scenario] = (mix[scenario] ?? 0) + 1;
    for (const [name, nextDelay] of Object.entries(pollers)) {
      const result = run(shifted(scenario, phase[i]!), nextDelay, policy);
      totals[name]!.calls += result.calls;
      totals[name]!.polls += result.calls;
      totals[name]!.delivered += result.delivered ? 1 : 0;
      totals[name]!.lags.push(...result.lags);
    }
  }
  // A shop's flow: starts at random moments over `days` (slots are epoch-aligned).
  const epoch = Date.UTC(2026, 10, 2, 0, 0, 0);
  const startAt = random(0x51ed270b);
  const starts = scenarios.map(() => epoch + Math.floor(startAt() * days * DAY));
  // Two scan models: door scans in working hours (scan-hours.ts: what couriers do), and the
  // plain timelines round the clock (what the night rule would miss if they scanned at night).
  const spread = random(0x2545f491);
  const roundTheClock = scenarios.map((scenario, i) => shifted(scenario, phase[i]!));
  const workingHours = roundTheClock.map((timeline, i) =>
    inWorkingHours(timeline, starts[i]!, MALAYSIA_WORKING_HOURS, spread),
  );
  const ep0 = policy.couriers?.easyparcel;
  const noNight: PollPolicy = { ...policy, couriers: { easyparcel: { ...ep0, night: undefined } } };
  const easyParcel = easyParcelRun(workingHours, starts, policy, batch);
  const variants = {
    'ep-no-night': easyParcelRun(workingHours, starts, noNight, batch),
    'ep-24h-scans': easyParcelRun(roundTheClock, starts, policy, batch),
  };

  const rows = Object.entries(totals).map(([name, t]) => row(name, t));
  const ep = row('easyparcel', easyParcel.totals);
  rows.push(ep);
  const variantRows = Object.entries(variants).map(([name, v]) => row(name, v.totals));
  rows.push(...variantRows);
  const waybill = rows.find((r) => r.poller === 'waybill')!;
  const fixed = rows.find((r) => r.poller === 'fixed-15min')!;
  const ratio = waybill.callsPerDelivered / fixed.callsPerDelivered;
  const epCallsPass = ep.callsPerDelivered <= GOAL_EASYPARCEL_CALLS;
  const epLagPass = ep.lagP95Min <= GOAL_EASYPARCEL_P95_MIN;
  const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');

  console.log(
    `Courier calls per delivered parcel — ${parcels} simulated parcels, scenario mix ${JSON.stringify(mix)}`,
  );
  console.log(
    `easyparcel: starts spread over ${days} days, slot ${(ep0?.slotMs ?? 0) / MINUTE} min, night ${night(ep0?.night)} Malaysia time, ${batch} numbers per bulk call; ${easyParcel.trackingCalls} tracking + ${easyParcel.tokenCalls} token requests; ${easyParcel.fill.meanNumbersPerCall.toFixed(1)} numbers per call on average, ${(100 * easyParcel.fill.fullCallsShare).toFixed(0)} % of calls full`,
  );
  console.log(
    'rows: easyparcel = its policy, door scans in working hours (simulators/courier/scan-hours.ts); ep-no-night = the same scans, polled at night too; ep-24h-scans = its policy if door scans happened round the clock',
  );
  console.log(
    'poller        HTTP calls  polls     delivered  calls/delivered  polls/delivered  notice lag p50 (min)  p95 (min)',
  );
  for (const r of rows) {
    console.log(
      `${r.poller.padEnd(12)}  ${String(r.calls).padStart(10)}  ${String(r.polls).padStart(8)}  ${String(r.delivered).padStart(9)}  ${r.callsPerDelivered.toFixed(2).padStart(15)}  ${r.pollsPerDelivered.toFixed(2).padStart(15)}  ${r.lagMedianMin.toFixed(1).padStart(20)}  ${r.lagP95Min.toFixed(1).padStart(9)}`,
    );
  }
  console.log(
    `ratio waybill / fixed-15min: ${ratio.toFixed(3)} (goal <= ${GOAL_RATIO}): ${verdict(ratio <= GOAL_RATIO)}`,
  );
  console.log(
    `easyparcel calls per delivered parcel: ${ep.callsPerDelivered.toFixed(3)} (goal <= ${GOAL_EASYPARCEL_CALLS}): ${verdict(epCallsPass)}`,
  );
  console.log(
    `easyparcel status change seen p95: ${ep.lagP95Min.toFixed(1)} min after the scan (goal <= ${GOAL_EASYPARCEL_P95_MIN}): ${verdict(epLagPass)}`,
  );

  const out = path.join(__dirname, 'results', 'courier-efficiency.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        parcels,
        days,
        mix,
        rows,
        ratio,
        goal: GOAL_RATIO,
        pass: ratio <= GOAL_RATIO,
        easyparcel: {
          batch,
          night: ep0?.night ?? null,
          scanModel: MALAYSIA_WORKING_HOURS,
          fill: easyParcel.fill,
          variants: variantRows,
          slotMs: policy.couriers?.easyparcel?.slotMs ?? 0,
          trackingCalls: easyParcel.trackingCalls,
          tokenCalls: easyParcel.tokenCalls,
          callsPerDelivered: ep.callsPerDelivered,
          lagP95Min: ep.lagP95Min,
          goals: { callsPerDelivered: GOAL_EASYPARCEL_CALLS, lagP95Min: GOAL_EASYPARCEL_P95_MIN },
          pass: { callsPerDelivered: epCallsPass, lagP95Min: epLagPass },
        },
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written ${path.relative(process.cwd(), out)}`);
}

main();
