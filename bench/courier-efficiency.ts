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
import { pollPolicyFromConfig } from '../src/poll-policy';
import { SCENARIOS, scenarioFor, type ScenarioName } from '../simulators/courier/scenarios';
import type { CourierNight, PollPolicy } from '../src/domain/polling';
import { inWorkingHours, MALAYSIA_WORKING_HOURS } from '../simulators/courier/scan-hours';
import { pollDelayMs } from '../src/domain/polling';
import {
  easyParcelRun,
  percentile,
  run,
  type EasyParcelRun,
  type NextDelay,
  type Timeline,
} from './support/courier-model';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const GOAL_RATIO = 0.15;
/** Issue 16's goals for EasyParcel with bulk calls. */
const GOAL_EASYPARCEL_CALLS = 1.0;
const GOAL_EASYPARCEL_P95_MIN = 30;
/** EasyParcel's access-token lifetime (`expires_in` 36000 s): one token request each. */
const TOKEN_LIFETIME_MS = 10 * HOUR;

/** Share of EasyParcel's pushes lost for good in the push variant, and how late the rest arrive. */
const PUSH_LOSS = 0.05;
const PUSH_LATENCY_MS = 5 * MINUTE;

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

/** A scenario's timeline shifted by the parcel's phase. */
function shifted(scenario: ScenarioName, phase: number): Timeline {
  return SCENARIOS[scenario].steps.map((step) => ({ ...step, after: step.after + phase }));
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

function night(n: CourierNight | undefined): string {
  const hhmm = (m: number) =>
    `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return n ? `${hhmm(n.fromMinute)}-${hhmm(n.toMinute)}` : 'off';
}

function main(): void {
  const parcels = Number(process.argv[2] ?? 2000);
  const days = Number(process.argv[3] ?? 10);
  // The policy as shipped; only the push fallback's settings may be tried from the environment.
  const config = loadConfig(
    Object.fromEntries(
      [
        'EASYPARCEL_PUSH_FALLBACK_INTERVAL',
        'EASYPARCEL_PUSH_QUIET_AFTER',
        'EASYPARCEL_POLL_QUIET_SLOT',
      ].flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]!]])),
    ),
  );
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
      totals[name]!.calls += result.polls.length;
      totals[name]!.polls += result.polls.length;
      totals[name]!.delivered += result.delivered ? 1 : 0;
      totals[name]!.lags.push(...result.changes.map((c) => c.lag));
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
  const epRun = (timelines: Timeline[], p: PollPolicy, push?: Parameters<typeof easyParcelRun>[5]) =>
    easyParcelRun(timelines, starts, p, batch, TOKEN_LIFETIME_MS, push ?? null);
  const easyParcel = epRun(workingHours, policy);
  // EasyParcel's webhooks, subscribed (EASYPARCEL_WEBHOOK_TOKEN set: tracking starts as if
  // pushed): one push per log entry, PUSH_LATENCY_MS after the scan, PUSH_LOSS of them lost for good.
  const subscribed: PollPolicy = {
    ...policy,
    couriers: { easyparcel: { ...ep0, push: { ...ep0!.push!, fromStart: true } } },
  };
  const lose = random(0x7f4a7c15);
  const arrivalsOf = (timeline: Timeline) =>
    timeline
      .map((step) => step.after + PUSH_LATENCY_MS)
      .filter(() => lose() >= PUSH_LOSS)
      .sort((a, b) => a - b);
  const pushed = epRun(workingHours, subscribed, { arrivalsOf, latencyMs: PUSH_LATENCY_MS });
  const variants = {
    'ep-no-night': epRun(workingHours, noNight),
    'ep-24h-scans': epRun(roundTheClock, policy),
    'ep-push': pushed,
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
  const epPush = variantRows.find((r) => r.poller === 'ep-push')!;
  const epPushCallsPass = epPush.callsPerDelivered <= GOAL_EASYPARCEL_CALLS;
  const epPushLagPass = epPush.lagP95Min <= GOAL_EASYPARCEL_P95_MIN;
  const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');
  const lost = pushed.lostPush;

  console.log(
    `Courier calls per delivered parcel — ${parcels} simulated parcels, scenario mix ${JSON.stringify(mix)}`,
  );
  console.log(
    `easyparcel: starts spread over ${days} days, slot ${(ep0?.slotMs ?? 0) / MINUTE} min, night ${night(ep0?.night)} Malaysia time, ${batch} numbers per bulk call; ${easyParcel.trackingCalls} tracking + ${easyParcel.tokenCalls} token requests; ${easyParcel.fill.meanNumbersPerCall.toFixed(1)} numbers per call on average, ${(100 * easyParcel.fill.fullCallsShare).toFixed(0)} % of calls full`,
  );
  console.log(
    `rows: easyparcel = its policy, door scans in working hours (simulators/courier/scan-hours.ts); ep-no-night = the same scans, polled at night too; ep-24h-scans = its policy if door scans happened round the clock; ep-push = its policy with EasyParcel's webhooks (one per log entry, ${PUSH_LATENCY_MS / MINUTE} min after the scan, ${PUSH_LOSS * 100} % lost), polling as the fallback`,
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
  console.log(
    `easyparcel with pushes (${pushed.trackingCalls} tracking + ${pushed.tokenCalls} token requests): ${epPush.callsPerDelivered.toFixed(3)} calls per delivered parcel (goal <= ${GOAL_EASYPARCEL_CALLS}): ${verdict(epPushCallsPass)}; change seen p95 ${epPush.lagP95Min.toFixed(1)} min (goal <= ${GOAL_EASYPARCEL_P95_MIN}): ${verdict(epPushLagPass)}`,
  );
  printBreakdown(pushed, epPush.delivered);

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
          slotMs: ep0?.slotMs ?? 0,
          trackingCalls: easyParcel.trackingCalls,
          tokenCalls: easyParcel.tokenCalls,
          callsPerDelivered: ep.callsPerDelivered,
          lagP95Min: ep.lagP95Min,
          goals: { callsPerDelivered: GOAL_EASYPARCEL_CALLS, lagP95Min: GOAL_EASYPARCEL_P95_MIN },
          pass: { callsPerDelivered: epCallsPass, lagP95Min: epLagPass },
          push: {
            loss: PUSH_LOSS,
            latencyMs: PUSH_LATENCY_MS,
            push: subscribed.couriers?.easyparcel?.push ?? null,
            callsPerDelivered: epPush.callsPerDelivered,
            lagP95Min: epPush.lagP95Min,
            trackingCalls: pushed.trackingCalls,
            tokenCalls: pushed.tokenCalls,
            fill: pushed.fill,
            byPhase: pushed.byPhase,
            lostPushChanges: {
              count: lost.lags.length,
              seenByPoll: lost.byPoll,
              p50Min: percentile(lost.lags, 50) / MINUTE,
              p95Min: percentile(lost.lags, 95) / MINUTE,
              maxMin: Math.max(0, ...lost.lags) / MINUTE,
            },
            pass: { callsPerDelivered: epPushCallsPass, lagP95Min: epPushLagPass },
          },
        },
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written ${path.relative(process.cwd(), out)}`);
}

/** Where the push variant's calls go: by parcel phase and fate, how full, and how late a lost push is seen. */
function printBreakdown(r: EasyParcelRun, delivered: number): void {
  console.log(
    `ep-push calls per delivered parcel by poll phase (first-push: waiting for a parcel's first push; fallback: pushed about within the quiet-after; push-quiet: past it, normal intervals), share of ${r.trackingCalls} tracking calls:`,
  );
  console.log('fate             phase        polls  calls  calls/delivered  polls that showed a change');
  for (const [fate, phases] of Object.entries(r.byPhase)) {
    for (const [name, s] of Object.entries(phases)) {
      if (s.polls === 0) continue;
      console.log(
        `${fate.padEnd(15)}  ${name.padEnd(11)}  ${String(s.polls).padStart(5)}  ${s.calls.toFixed(0).padStart(5)}  ${(s.calls / delivered).toFixed(3).padStart(15)}  ${String(s.useful).padStart(5)}`,
      );
    }
  }
  console.log(
    `token requests: ${r.tokenCalls} (${(r.tokenCalls / delivered).toFixed(3)} per delivered parcel); tracking calls by numbers carried: ${JSON.stringify(r.fill.calls)}, ${r.fill.meanNumbersPerCall.toFixed(1)} on average`,
  );
  const { lags, byPoll } = r.lostPush;
  console.log(
    `changes whose own push was lost: ${lags.length} (${byPoll} seen first by a poll, the rest by a later push); seen p50 ${(percentile(lags, 50) / MINUTE).toFixed(0)} min, p95 ${(percentile(lags, 95) / MINUTE).toFixed(0)} min, max ${(Math.max(0, ...lags) / MINUTE).toFixed(0)} min after the scan`,
  );
}

main();
