/**
 * The demo's plan logic: which orders to place (kinds dealt into numbered entries with a
 * shopper, an address and a card) and whether a stack's settings can finish that plan in
 * time. Pure code; the kinds themselves are data in kinds.ts, the runner (run.ts) does the I/O.
 */
import { isTerminal, ShipmentStatus } from '../../src/domain/status';
import type { PollPolicy } from '../../src/domain/polling';
import { SCENARIOS, type ScenarioName, type ScenarioStep } from '../../simulators/courier/scenarios';
import { DEMO_KIND_SPECS, DEMO_KINDS, type DemoKind, type DemoKindSpec } from './kinds';

// ---------------------------------------------------------------------------------------
// The plan

export interface PlanEntry {
  /** 1-based position in the plan (also the idempotency key's suffix). */
  n: number;
  spec: DemoKindSpec;
  paymentToken: string;
  shippingAddress: {
    name: string;
    line1: string;
    city: string;
    state: string;
    postcode: string;
    country: 'MY';
    phone: string;
  };
  email: string;
}

const SHOPPERS = [
  'Nur Aisyah',
  'Tan Wei Ming',
  'Muthu Krishnan',
  'Siti Rahmah',
  'Lim Mei Ling',
  'Ahmad Faizal',
];
const DESTINATIONS = [
  { city: 'Kuala Lumpur', state: 'Kuala Lumpur', postcode: '50450', street: 'Jalan Tun Razak' },
  { city: 'Johor Bahru', state: 'Johor', postcode: '80000', street: 'Jalan Wong Ah Fook' },
  { city: 'Ipoh', state: 'Perak', postcode: '30000', street: 'Jalan Sultan Idris Shah' },
  { city: 'George Town', state: 'Pulau Pinang', postcode: '10200', street: 'Lebuh Chulia' },
  { city: 'Kota Kinabalu', state: 'Sabah', postcode: '88000', street: 'Jalan Gaya' },
  { city: 'Kuching', state: 'Sarawak', postcode: '93000', street: 'Jalan Padungan' },
  { city: 'Melaka', state: 'Melaka', postcode: '75000', street: 'Jalan Hang Jebat' },
];

export class PlanError extends Error {
  override name = 'PlanError';
}

/** Parses `--scenarios a,b`; throws {@link PlanError} naming the unknown ones and the valid names. */
export function parseKinds(text: string): DemoKind[] {
  const names = text
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const unknown = names.filter((name) => !(DEMO_KINDS as string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new PlanError(
      `${unknown.length > 0 ? `unknown scenario ${unknown.join(', ')}` : 'no scenario named'}; choose from ${DEMO_KINDS.join(', ')}`,
    );
  }
  // Plan order, not the order typed: the table reads the same every run.
  return DEMO_KINDS.filter((kind) => names.includes(kind));
}

/**
 * The orders to place, grouped by kind in {@link DEMO_KINDS} order. Without `orders`: each
 * kind's own count (42 in all with every kind). With `orders`: that many, dealt one per kind in turn.
 */
export function buildPlan(opts: { kinds?: readonly DemoKind[]; orders?: number } = {}): PlanEntry[] {
  const kinds = DEMO_KINDS.filter((kind) => (opts.kinds ?? DEMO_KINDS).includes(kind));
  if (kinds.length === 0) throw new PlanError('no scenario to run');
  const counts = new Map<DemoKind, number>();
  if (opts.orders === undefined) {
    for (const kind of kinds) counts.set(kind, DEMO_KIND_SPECS[kind].count);
  } else {
    if (!Number.isInteger(opts.orders) || opts.orders < 1 || opts.orders > 500) {
      throw new PlanError(`--orders must be a whole number from 1 to 500 (got ${opts.orders})`);
    }
    for (let i = 0; i < opts.orders; i++) {
      const kind = kinds[i % kinds.length]!;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
  }
  const plan: PlanEntry[] = [];
  for (const kind of kinds) {
    const spec = DEMO_KIND_SPECS[kind];
    for (let i = 0; i < (counts.get(kind) ?? 0); i++) {
      const n = plan.length + 1;
      const place = DESTINATIONS[n % DESTINATIONS.length]!;
      plan.push({
        n,
        spec,
        paymentToken: spec.paymentTokens[i % spec.paymentTokens.length]!,
        shippingAddress: {
          // The courier simulator's "test card": the name's tag picks the parcel's lifecycle.
          name: `${SHOPPERS[n % SHOPPERS.length]} [scenario:${spec.parcelScenario}]`,
          line1: `${n} ${place.street}`,
          city: place.city,
          state: place.state,
          postcode: place.postcode,
          country: 'MY',
          phone: `+6012${String(5550000 + n)}`,
        },
        email: `shopper${n}@example.com`,
      });
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------
// Can a stack finish the plan?

export interface StackSettings {
  /** The courier simulator's time scale (courier ms per real ms). */
  timeScale: number;
  /** The poll policy the stack starts shipment workflows with (from an order workflow's input). */
  policy: PollPolicy;
}

const ownSteps = (scenario: ScenarioName): ScenarioStep[] =>
  SCENARIOS[scenario].steps.filter((step) => step.leg !== 'return');

/** Courier ms of the longest stretch without a scan of the parcel itself, up to its last scan. */
export function longestQuietStretch(scenario: ScenarioName): number {
  let previous = 0;
  let longest = 0;
  for (const step of ownSteps(scenario)) {
    longest = Math.max(longest, step.after - previous);
    previous = step.after;
  }
  return longest;
}

/** Whether the parcel reaches a final status by itself (else it ends by expiring). */
export function endsByItself(scenario: ScenarioName): boolean {
  const last = ownSteps(scenario).at(-1);
  return last !== undefined && isTerminal(last.status);
}

/** A failed poll cycle: the activity's attempts with their doubling retry intervals (ms). */
function failedCycleMs(policy: PollPolicy): number {
  let total = 0;
  for (let attempt = 1; attempt < policy.pollAttempts; attempt++) {
    total += policy.pollRetryInitialMs * 2 ** (attempt - 1);
  }
  return total + policy.backoffCapMs;
}

/** "2 d 15 h", "3 min 5 s", "44 s": for people reading a refusal. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3_600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86_400)
    return `${Math.floor(s / 3_600)} h${Math.floor((s % 3_600) / 60) ? ` ${Math.floor((s % 3_600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86_400)} d${Math.floor((s % 86_400) / 3_600) ? ` ${Math.floor((s % 86_400) / 3_600)} h` : ''}`;
}

/** Real ms until an order of this kind is settled on a stack with these settings (an estimate). */
export function estimateMs(spec: DemoKindSpec, settings: StackSettings, outageMs: number): number {
  const { policy, timeScale } = settings;
  const slack = 5_000;
  if (spec.expect.payment === 'DECLINED') return slack;
  if (spec.cancelWhen === 'booked') return policy.intervalMs.PENDING + slack;
  const steps = ownSteps(spec.parcelScenario);
  const lastScan = (steps.at(-1)?.after ?? 0) / timeScale;
  const outage = spec.outage ? outageMs + failedCycleMs(policy) : 0;
  if (!endsByItself(spec.parcelScenario)) return lastScan + policy.expireAfterNoScanMs + outage + slack;
  // The last scan is noticed at the next poll: the interval of the status before it.
  const before = steps.at(-2)?.status ?? ShipmentStatus.PENDING;
  const interval =
    policy.intervalMs[before as keyof PollPolicy['intervalMs']] ?? policy.intervalMs.IN_TRANSIT;
  return lastScan + interval + outage + slack;
}

/**
 * Why a stack with these settings cannot run the plan honestly within `timeoutMs` (empty:
 * it can), and how long it should take. Parcels that are still moving must never expire
 * between two scans, and everything must settle before the run gives up.
 */
export function assessPlan(
  plan: readonly PlanEntry[],
  settings: StackSettings,
  opts: { timeoutMs: number; outageMs: number },
): { problems: string[]; estimateMs: number } {
  const { policy, timeScale } = settings;
  const problems: string[] = [];
  let estimate = 0;
  const kinds = [...new Map(plan.map((entry) => [entry.spec.kind, entry.spec])).values()];
  for (const spec of kinds) {
    const ms = estimateMs(spec, settings, opts.outageMs);
    estimate = Math.max(estimate, ms);
    if (ms > opts.timeoutMs) {
      problems.push(
        `${spec.kind} orders would take about ${humanDuration(ms)} at courier time scale ${timeScale} with these poll intervals and expiry (the run gives up after ${humanDuration(opts.timeoutMs)})`,
      );
    }
    if (ms > policy.maxAgeMs) {
      problems.push(
        `WAYBILL_TRACKING_MAX_AGE is ${humanDuration(policy.maxAgeMs)}: ${spec.kind} parcels would expire before they finish (about ${humanDuration(ms)})`,
      );
    }
    if (spec.expect.payment === 'DECLINED' || spec.cancelWhen === 'booked') continue;
    // A courier outage does not count: the no-scan expiry stands still while polls fail.
    const quiet = longestQuietStretch(spec.parcelScenario) / timeScale + 10_000;
    if (quiet >= policy.expireAfterNoScanMs) {
      problems.push(
        `WAYBILL_EXPIRE_AFTER_NO_SCAN is ${humanDuration(policy.expireAfterNoScanMs)}, but ${spec.kind} parcels can go ${humanDuration(quiet)} without a new scan at courier time scale ${timeScale}: they would expire on their way`,
      );
    }
  }
  return { problems, estimateMs: estimate };
}
