/**
 * The virtual-time model behind `npm run bench:courier` (bench/courier-efficiency.ts): one
 * parcel's polls over its scenario timeline with the shipment workflow's own timing functions,
 * and EasyParcel's parcels as a shop's flow sharing bulk calls per slot. Besides the totals it
 * says where EasyParcel's calls go: each poll is tagged with the phase its parcel is in (still
 * waiting for a first push, pushed about recently, pushes quiet, no pushes at all) and whether
 * the parcel is ever delivered, and carries its share of its slot's calls (a slot of n polls
 * makes ceil(n / batch) calls: each poll pays ceil(n / batch) / n of a call).
 */
import { CourierCode } from '../../src/couriers/types';
import {
  alignToSlot,
  expiryReason,
  pollDelayMs,
  pushedRecently,
  sincePushMs,
  type PollPolicy,
} from '../../src/domain/polling';
import { isTerminal, ShipmentStatus } from '../../src/domain/status';
import type { ScenarioStep } from '../../simulators/courier/scenarios';

/** A parcel's scans: its scenario's steps, offsets (ms) from the parcel's start. */
export type Timeline = readonly ScenarioStep[];

/**
 * The delay after a poll (or push) that saw `status`, `quietForMs` after the newest scan and
 * `sincePushMs` after the courier's last push about the parcel (null: none yet).
 */
export type NextDelay = (status: ShipmentStatus, quietForMs: number, sincePushMs: number | null) => number;

/**
 * What a poll is for, by where its parcel is: `first-push` waits for the parcel's first push
 * (tracking starts as if pushed), `fallback` follows a real push within the push rule's
 * quiet-after, `push-quiet` is past it (the normal intervals again), `polled` has no push rule.
 */
export type PollPhase = 'first-push' | 'fallback' | 'push-quiet' | 'polled';
export const POLL_PHASES: readonly PollPhase[] = ['first-push', 'fallback', 'push-quiet', 'polled'];

export interface Poll {
  /** Ms from the parcel's start. */
  at: number;
  phase: PollPhase;
  /** The poll showed a status change nothing had shown before (a lost push caught, or plain polling). */
  useful: boolean;
}

export interface Change {
  /** Ms from the scan to the poll or push that showed it. */
  lag: number;
  seenBy: 'push' | 'poll';
  /** The change's own push was lost (push runs only). */
  pushLost: boolean;
}

export interface RunResult {
  delivered: boolean;
  changes: Change[];
  polls: Poll[];
}

/** The parcel's status as a poll at courier time `t` would see it. */
export function statusAt(
  timeline: Timeline,
  t: number,
): { status: ShipmentStatus; lastScanAt: number | null } {
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
export function changes(timeline: Timeline): { at: number; status: ShipmentStatus }[] {
  const out: { at: number; status: ShipmentStatus }[] = [];
  let previous: ShipmentStatus = ShipmentStatus.PENDING;
  for (const step of timeline) {
    const { status } = statusAt(timeline, step.after);
    if (status !== previous) out.push({ at: step.after, status });
    previous = status;
  }
  return out;
}

/**
 * One parcel's polls from its start; `align` maps a wanted poll time (ms from the start) to
 * the one the workflow schedules (its courier's slot), identity for unaligned pollers.
 * `pushes` (ms from the start, ascending) are the courier's webhooks that arrive: each shows
 * the parcel's whole log, costs no call, and reschedules the next poll as the workflow does;
 * `pushLatencyMs` is how long after its scan a push arrives (to tell which changes lost theirs).
 */
export function run(
  timeline: Timeline,
  nextDelay: NextDelay,
  policy: PollPolicy,
  align: (t: number, status: ShipmentStatus, sincePushMs: number | null, delayMs: number) => number = (t) =>
    t,
  push: { arrivals: readonly number[]; latencyMs: number; courier: CourierCode } | null = null,
): RunResult {
  const pushes = push?.arrivals ?? [];
  const courier = push?.courier ?? CourierCode.SIMULATOR;
  const own = policy.couriers?.[courier];
  const polls: Poll[] = [];
  const observed: { at: number; by: 'push' | 'poll' }[] = [];
  const lifecycle = changes(timeline);
  const shownAt = (t: number) => lifecycle.filter((c) => c.at <= t).length;
  // The workflow's own rule: with `push.fromStart` (subscribed), the start counts as a push.
  let lastPushAt: number | null = null;
  const since = (now: number) => (push ? sincePushMs(lastPushAt, 0, now, policy, courier) : null);
  let t = align(0, ShipmentStatus.PENDING, since(0), 0);
  let lastScanAt = 0;
  let shown = 0;
  let nextPush = 0;
  for (;;) {
    const pushed = nextPush < pushes.length && pushes[nextPush]! <= t;
    const now = pushed ? pushes[nextPush++]! : t;
    if (pushed) {
      lastPushAt = now;
    } else {
      const phase: PollPhase = !push
        ? 'polled'
        : !pushedRecently(own, since(now))
          ? 'push-quiet'
          : lastPushAt !== null
            ? 'fallback'
            : 'first-push';
      polls.push({ at: now, phase, useful: shownAt(now) > shown });
    }
    shown = shownAt(now);
    observed.push({ at: now, by: pushed ? 'push' : 'poll' });
    const seen = statusAt(timeline, now);
    if (seen.lastScanAt !== null) lastScanAt = seen.lastScanAt;
    if (isTerminal(seen.status)) break;
    if (expiryReason(now, { startedAtMs: 0, quietSinceMs: lastScanAt, unansweredSinceMs: null }, policy))
      break;
    const after = since(now);
    const delay = nextDelay(seen.status, now - lastScanAt, after);
    t = align(now + delay, seen.status, after, delay);
  }
  const pushSet = new Set(pushes);
  const seenChangesOut = lifecycle.flatMap((change): Change[] => {
    const seenAt = observed.find((o) => o.at >= change.at);
    if (seenAt === undefined) return [];
    return [
      {
        lag: seenAt.at - change.at,
        seenBy: seenAt.by,
        pushLost: push !== null && !pushSet.has(change.at + push.latencyMs),
      },
    ];
  });
  const ended = statusAt(timeline, observed[observed.length - 1]!.at).status;
  return { delivered: ended === ShipmentStatus.DELIVERED, changes: seenChangesOut, polls };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Where one kind of poll went: how many, their share of the calls, how many showed a change. */
export interface PollShare {
  polls: number;
  calls: number;
  useful: number;
}

const share = (): PollShare => ({ polls: 0, calls: 0, useful: 0 });

/** How full the tracking calls are: calls by how many numbers they carry, out of `batch`. */
function fillLabel(n: number, batch: number): string {
  if (n === batch) return 'full';
  const bounds = [1, 9, 24, batch - 1];
  const i = bounds.findIndex((max) => n <= max);
  return i === 0 ? '1' : `${bounds[i - 1]! + 1}-${bounds[i]}`;
}

export interface EasyParcelRun {
  totals: { calls: number; polls: number; delivered: number; lags: number[] };
  trackingCalls: number;
  tokenCalls: number;
  fill: { meanNumbersPerCall: number; fullCallsShare: number; calls: Record<string, number> };
  /** Polls and their share of the calls by phase, for parcels delivered and never delivered. */
  byPhase: Record<'delivered' | 'never delivered', Record<PollPhase, PollShare>>;
  /** Changes whose own push was lost: how late they were seen (ms), and by what. */
  lostPush: { lags: number[]; byPoll: number };
}

/**
 * EasyParcel's parcels as a shop's flow: parcel i starts at `starts[i]` (epoch ms), its scans
 * are `timelines[i]`, it polls on its courier's slots (and not in the courier's night, when the
 * policy has one), and each slot's polls share bulk calls of `batch` numbers, plus one token
 * request per `tokenLifetimeMs` of the run.
 */
export function easyParcelRun(
  timelines: readonly Timeline[],
  starts: readonly number[],
  policy: PollPolicy,
  batch: number,
  tokenLifetimeMs: number,
  push: { arrivalsOf: (timeline: Timeline) => number[]; latencyMs: number } | null = null,
): EasyParcelRun {
  const courier = CourierCode.EASYPARCEL;
  const bySlot = new Map<number, number>();
  const totals = { calls: 0, polls: 0, delivered: 0, lags: [] as number[] };
  const lostPush = { lags: [] as number[], byPoll: 0 };
  const results = timelines.map((timeline, i) => {
    const start = starts[i]!;
    const result = run(
      timeline,
      (status, quietForMs, sincePushMs) =>
        pollDelayMs(status, policy, courier, quietForMs, sincePushMs) ?? Infinity,
      policy,
      (t, status, sincePushMs, delayMs) =>
        alignToSlot(start + t, policy, courier, status, sincePushMs, delayMs) - start,
      push ? { arrivals: push.arrivalsOf(timeline), latencyMs: push.latencyMs, courier } : null,
    );
    // Every poll lands on a slot boundary, so a slot's polls are one batch.
    for (const p of result.polls) bySlot.set(start + p.at, (bySlot.get(start + p.at) ?? 0) + 1);
    totals.polls += result.polls.length;
    totals.delivered += result.delivered ? 1 : 0;
    totals.lags.push(...result.changes.map((c) => c.lag));
    for (const c of result.changes.filter((c) => c.pushLost)) {
      lostPush.lags.push(c.lag);
      if (c.seenBy === 'poll') lostPush.byPoll += 1;
    }
    return result;
  });
  const slots = [...bySlot.keys()];
  const first = Math.min(...slots);
  const last = Math.max(...slots);
  const sizes = [...bySlot.values()].flatMap((n) =>
    Array.from({ length: Math.ceil(n / batch) }, (_, k) => Math.min(batch, n - k * batch)),
  );
  const trackingCalls = sizes.length;
  const tokenCalls = Math.ceil((last - first) / tokenLifetimeMs);
  totals.calls = trackingCalls + tokenCalls;

  const byPhase = {
    delivered: Object.fromEntries(POLL_PHASES.map((p) => [p, share()])) as Record<PollPhase, PollShare>,
    'never delivered': Object.fromEntries(POLL_PHASES.map((p) => [p, share()])) as Record<
      PollPhase,
      PollShare
    >,
  };
  results.forEach((result, i) => {
    const fate = byPhase[result.delivered ? 'delivered' : 'never delivered'];
    for (const p of result.polls) {
      const n = bySlot.get(starts[i]! + p.at)!;
      const s = fate[p.phase];
      s.polls += 1;
      s.calls += Math.ceil(n / batch) / n;
      s.useful += p.useful ? 1 : 0;
    }
  });
  const calls: Record<string, number> = {};
  for (const label of [1, 2, 10, 25, batch].map((n) => fillLabel(n, batch))) calls[label] = 0;
  for (const n of sizes) calls[fillLabel(n, batch)]! += 1;
  return {
    totals,
    trackingCalls,
    tokenCalls,
    fill: {
      meanNumbersPerCall: totals.polls / trackingCalls,
      fullCallsShare: sizes.filter((n) => n === batch).length / trackingCalls,
      calls,
    },
    byPhase,
    lostPush,
  };
}
