/**
 * What `npm run demo` orders and what it expects of each order: the kinds of order, the
 * plan (how many of each), the settings the demo's own stack runs with, whether a stack's
 * settings can finish a plan in time, and the check of an order's end state against its
 * expectation. Pure code; the runner (demo.ts) does the I/O.
 */
import { parseDuration } from '../../src/config';
import { CourierCode } from '../../src/couriers/types';
import { isTerminal, ShipmentStatus } from '../../src/domain/status';
import { SCENARIOS, type ScenarioName, type ScenarioStep } from '../../simulators/courier/scenarios';
import { OrderStatus } from '../../src/workflows/contract';
import type { PollPolicy } from '../../src/domain/polling';

export const DemoKind = {
  PAYMENT_DECLINED: 'payment_declined',
  DELIVERED: 'delivered',
  FAILED_ATTEMPT: 'failed_attempt_then_delivered',
  AVAILABLE_FOR_PICKUP: 'available_for_pickup',
  TWO_WAREHOUSES: 'two_warehouses',
  COURIER_OUTAGE: 'courier_outage',
  CANCEL_REFUSED: 'cancel_refused_after_pickup',
  RETURN_TO_ORIGIN: 'return_to_origin',
  EXCEPTION: 'exception',
  CANCELLED: 'cancelled_before_pickup',
  CANCEL_UNKNOWN_BOOKING: 'cancel_unknown_booking',
  NEVER_PICKED_UP: 'never_picked_up',
  LOST: 'lost',
} as const;
export type DemoKind = (typeof DemoKind)[keyof typeof DemoKind];
export const DEMO_KINDS = Object.values(DemoKind) as DemoKind[];

/** Where the payment ends up once the saga is done with the order. */
export type PaymentOutcome =
  /** Captured in full at pickup, nothing refunded. */
  | 'CAPTURED'
  /** Captured at pickup, then refunded in full (returned, or lost after pickup). */
  | 'REFUNDED'
  /** Authorised, then released without any capture. */
  | 'VOIDED'
  /** Never authorised. */
  | 'DECLINED';

export interface Expectation {
  orderStatus: OrderStatus;
  /** The order's failure code (the read model's `failure_code`); null: none. */
  failureCode: string | null;
  /** Final status of each parcel, in parcel order. */
  parcels: ShipmentStatus[];
  /** Statuses every parcel's tracking history must contain (the story really happened). */
  scans: ShipmentStatus[];
  payment: PaymentOutcome;
  /** The demo cancels through the API: accepted (200/202), or refused with 409 ALREADY_PICKED_UP. */
  cancel: 'accepted' | 'refused' | null;
}

export interface DemoKindSpec {
  kind: DemoKind;
  /** One line for --help and the README. */
  description: string;
  /** The simulator scenario its parcels play, through the recipient-name rule. */
  parcelScenario: ScenarioName;
  courier: CourierCode;
  lines: readonly { sku: string; quantity: number }[];
  /** Payment simulator tokens, used in turn. */
  paymentTokens: readonly string[];
  /** When the demo asks the API to cancel the order: once it is booked, or once a parcel is picked up. */
  cancelWhen: 'booked' | 'picked_up' | null;
  /** Its parcels are in flight when the demo takes their courier down. */
  outage: boolean;
  /** Just before the cancel the courier loses the order's bookings (the simulator forgets them): it answers the cancel 404. */
  courierForgetsBooking: boolean;
  /** How many the full plan has. */
  count: number;
  expect: Expectation;
  /**
   * Bugs of the product this kind of order runs into today. An order that differs from its
   * expectation only in ways these explain is reported as a known bug, not as a failure
   * (unless --strict). Remove the entry once the bug is fixed: the demo says when it no
   * longer shows.
   */
  knownBugs: readonly KnownBug[];
}

export interface KnownBug {
  id: string;
  /** One line for the results. */
  title: string;
  /** Whether one problem {@link checkOrder} found is this bug's doing. */
  explains(problem: string): boolean;
}

/**
 * Bugs of the product the demo runs into today, by id. Empty: the three the demo found
 * (a parcel lost after pickup failed its order's workflow; a pickup hidden by a later
 * EXCEPTION in the same poll; an expired parcel shown as CANCELLED) are fixed and every
 * order must now end as expected. Add an entry only with a filed issue, and remove it
 * with the fix.
 */
export const KNOWN_BUGS: Record<string, KnownBug> = {};

const S = ShipmentStatus;
const OK_CARD = ['tok_visa'];
const KETTLE = { sku: 'KETTLE-1L', quantity: 1 };
const MUGS = { sku: 'MUG-SET-4', quantity: 1 };
const TEA = { sku: 'TEA-SAMPLER', quantity: 2 };

function spec(
  kind: DemoKind,
  s: Omit<
    DemoKindSpec,
    | 'kind'
    | 'courier'
    | 'paymentTokens'
    | 'cancelWhen'
    | 'outage'
    | 'courierForgetsBooking'
    | 'expect'
    | 'knownBugs'
  > &
    Partial<
      Pick<
        DemoKindSpec,
        'courier' | 'paymentTokens' | 'cancelWhen' | 'outage' | 'courierForgetsBooking' | 'knownBugs'
      >
    > & {
      expect: Omit<Expectation, 'cancel'> & Partial<Expectation>;
    },
): DemoKindSpec {
  return {
    kind,
    courier: CourierCode.SIMULATOR,
    paymentTokens: OK_CARD,
    cancelWhen: null,
    outage: false,
    courierForgetsBooking: false,
    knownBugs: [],
    ...s,
    expect: { cancel: null, ...s.expect },
  };
}

/** Every kind of order the demo places, in the order the plan lists them. */
export const DEMO_KIND_SPECS: Readonly<Record<DemoKind, DemoKindSpec>> = {
  payment_declined: spec(DemoKind.PAYMENT_DECLINED, {
    description: 'the card is declined: the saga releases the stock and the order FAILS, no parcel',
    parcelScenario: 'delivered',
    lines: [KETTLE],
    paymentTokens: ['tok_chargeDeclined', 'tok_chargeDeclinedInsufficientFunds'],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'PAYMENT_DECLINED',
      parcels: [],
      scans: [],
      payment: 'DECLINED',
    },
  }),
  delivered: spec(DemoKind.DELIVERED, {
    description: 'picked up, through two hubs, out for delivery, delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE, MUGS],
    count: 6,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  failed_attempt_then_delivered: spec(DemoKind.FAILED_ATTEMPT, {
    description: 'the first delivery attempt fails (recipient absent); delivered the next day',
    parcelScenario: 'failed_attempt_then_delivered',
    lines: [MUGS],
    count: 4,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.ATTEMPT_FAIL, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  available_for_pickup: spec(DemoKind.AVAILABLE_FOR_PICKUP, {
    description: 'a failed attempt, held at the courier counter, collected two days later',
    parcelScenario: 'available_for_pickup',
    lines: [KETTLE],
    count: 3,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.ATTEMPT_FAIL, S.AVAILABLE_FOR_PICKUP, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  two_warehouses: spec(DemoKind.TWO_WAREHOUSES, {
    description: 'lines from Shah Alam and Penang: two parcels, two shipment workflows, both delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE, TEA],
    count: 3,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED, S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  courier_outage: spec(DemoKind.COURIER_OUTAGE, {
    description:
      'shipped with EasyParcel, which the demo takes down while the parcels are in transit; they recover and are delivered',
    parcelScenario: 'delivered',
    courier: CourierCode.EASYPARCEL,
    lines: [MUGS],
    outage: true,
    count: 4,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  cancel_refused_after_pickup: spec(DemoKind.CANCEL_REFUSED, {
    description: 'the shopper tries to cancel after pickup: 409 ALREADY_PICKED_UP, and it is delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE],
    cancelWhen: 'picked_up',
    count: 2,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
      cancel: 'refused',
    },
  }),
  return_to_origin: spec(DemoKind.RETURN_TO_ORIGIN, {
    description: 'two failed attempts, returned to the shop: restocked and refunded in full',
    parcelScenario: 'return_to_origin',
    lines: [KETTLE],
    count: 3,
    expect: {
      orderStatus: OrderStatus.RETURNED,
      failureCode: null,
      parcels: [S.RETURNED],
      scans: [S.ATTEMPT_FAIL, S.RETURNING],
      payment: 'REFUNDED',
    },
  }),
  exception: spec(DemoKind.EXCEPTION, {
    description:
      'damaged at the destination hub (EXCEPTION), no scan after that: the parcel EXPIRES, the order FAILS and is refunded',
    parcelScenario: 'exception',
    lines: [MUGS],
    count: 3,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [S.IN_TRANSIT, S.EXCEPTION],
      payment: 'REFUNDED',
    },
  }),
  cancelled_before_pickup: spec(DemoKind.CANCELLED, {
    description: 'the shopper cancels before pickup: booking cancelled, payment voided, stock released',
    parcelScenario: 'never_picked_up',
    lines: [KETTLE],
    cancelWhen: 'booked',
    count: 3,
    expect: {
      orderStatus: OrderStatus.CANCELLED,
      failureCode: 'CANCELLED',
      parcels: [S.CANCELLED],
      scans: [],
      payment: 'VOIDED',
      cancel: 'accepted',
    },
  }),
  cancel_unknown_booking: spec(DemoKind.CANCEL_UNKNOWN_BOOKING, {
    description:
      'the shopper cancels; the courier has lost the booking and answers the cancel 404: CANCELLED, nothing captured',
    parcelScenario: 'never_picked_up',
    lines: [TEA],
    cancelWhen: 'booked',
    courierForgetsBooking: true,
    count: 2,
    expect: {
      orderStatus: OrderStatus.CANCELLED,
      failureCode: 'CANCELLED',
      parcels: [S.CANCELLED],
      scans: [],
      payment: 'VOIDED',
      cancel: 'accepted',
    },
  }),
  never_picked_up: spec(DemoKind.NEVER_PICKED_UP, {
    description: 'manifested but never collected: the parcel EXPIRES, the order FAILS, the payment is voided',
    parcelScenario: 'never_picked_up',
    lines: [MUGS],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [S.INFO_RECEIVED],
      payment: 'VOIDED',
    },
  }),
  lost: spec(DemoKind.LOST, {
    description: 'the courier knows the number but never scans it: EXPIRED, the order FAILS, payment voided',
    parcelScenario: 'lost',
    lines: [KETTLE],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [],
      payment: 'VOIDED',
    },
  }),
};

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
 * kind's own count (39 for every kind). With `orders`: that many, dealt one per kind in turn.
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
// Settings

/** One courier hour per real second: the longest lifecycle (return to origin, 5 d 14 h) takes 134 s. */
export const DEMO_TIME_SCALE = 3_600;
/** How long the demo takes the outage courier down (real ms). */
export const DEMO_OUTAGE_MS = 60_000;

/**
 * Whether the outage did what it is there for: the courier refused calls while it was down,
 * the shop's tracking said so (a parcel's sync error, shown as "courier unavailable"), and
 * (checked per order) every parcel recovered and was delivered. A parcel that happened not to
 * poll through a whole failed cycle never shows the error, so one such parcel is enough.
 */
export function outageProblems(seen: {
  started: boolean;
  refusedCalls: number;
  parcels: number;
  shownDown: number;
}): string[] {
  if (!seen.started) return ['the outage never started (no parcel of the outage courier was picked up)'];
  const problems: string[] = [];
  if (seen.refusedCalls === 0) problems.push('the courier refused no call while it was down');
  if (seen.shownDown === 0) {
    problems.push(`none of the ${seen.parcels} parcels' tracking ever showed the courier as unavailable`);
  }
  return problems;
}

/**
 * What the demo's own stack runs with (environment for src/config). Polls every 3 to 15
 * seconds and an expiry of 2 minutes without a scan: at {@link DEMO_TIME_SCALE} the
 * longest quiet stretch of a parcel that is still moving is 44 s (a return on its way
 * back), under two minutes for one caught in the 60 s outage. The courier budget and the rate caps
 * are lifted: ~40 parcels spend about a thousand courier calls in three minutes, and the
 * demo reads every order every two seconds.
 */
export const DEMO_STACK_ENV: Readonly<Record<string, string>> = {
  COURIER_SIMULATOR_TIME_SCALE: String(DEMO_TIME_SCALE),
  WAYBILL_POLL_PENDING: '4s',
  WAYBILL_POLL_INFO_RECEIVED: '4s',
  WAYBILL_POLL_IN_TRANSIT: '8s',
  WAYBILL_POLL_OUT_FOR_DELIVERY: '3s',
  WAYBILL_POLL_AVAILABLE_FOR_PICKUP: '8s',
  WAYBILL_POLL_ATTEMPT_FAIL: '4s',
  WAYBILL_POLL_EXCEPTION: '15s',
  WAYBILL_POLL_BACKOFF_CAP: '5s',
  WAYBILL_EXPIRE_AFTER_NO_SCAN: '2m',
  WAYBILL_TRACKING_MAX_AGE: '1h',
  WAYBILL_COURIER_DAILY_BUDGET: '1000000',
  WAYBILL_COURIER_CONCURRENCY: '10',
  WAYBILL_COURIER_CALLS_PER_SECOND: '50',
  WAYBILL_RATE_LIMIT_PER_MINUTE: '100000',
  LOG_LEVEL: 'info',
};

/**
 * Variables the demo's stack must not inherit: it runs everything embedded and local, so it
 * never writes into the user's database or Temporal, nor calls a real courier, payment
 * provider or shop webhook.
 */
export const DEMO_STACK_UNSET: readonly string[] = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
  'COURIER_SIMULATOR_URL',
  'EASYPARCEL_BASE_URL',
  'BLUEDART_BASE_URL',
  'PAYMENTS_BASE_URL',
  'PAYMENTS_API_KEY',
  'WAYBILL_NOTIFY_WEBHOOK_URL',
  'WAYBILL_NOTIFY_WEBHOOK_SECRET',
];

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

// ---------------------------------------------------------------------------------------
// Checking an order against its expectation

export const SETTLED_ORDER_STATUSES: ReadonlySet<string> = new Set([
  OrderStatus.DELIVERED,
  OrderStatus.CANCELLED,
  OrderStatus.FAILED,
  OrderStatus.RETURNED,
]);

/** The order has reached its end: a final order status and every parcel in a final status. */
export function isSettled(order: { status: string | null; parcels: readonly { status: string }[] }): boolean {
  return (
    order.status !== null &&
    SETTLED_ORDER_STATUSES.has(order.status) &&
    order.parcels.every((p) => isTerminal(p.status as ShipmentStatus))
  );
}

/** What the demo saw of one order through the API. */
export interface ObservedOrder {
  /** Why it could not be placed (the API refused or was unreachable); null once placed. */
  createError: string | null;
  status: string | null;
  failureCode: string | null;
  totalAmount: number;
  /** In parcel order, each with the statuses of its tracking history. */
  parcels: { status: string; scans: readonly string[] }[];
  payment: { status: string; amountCaptured: number; amountRefunded: number } | null;
  /** The answer to the demo's cancel, if it sent one. */
  cancel: { httpStatus: number; code: string | null } | null;
}

const money = (minor: number) => (minor / 100).toFixed(2);

function paymentProblem(expected: PaymentOutcome, seen: ObservedOrder): string | null {
  const p = seen.payment;
  if (p === null) return expected === 'DECLINED' ? null : `no payment recorded, expected ${expected}`;
  const total = seen.totalAmount;
  const describe = `payment ${p.status} (captured ${money(p.amountCaptured)}, refunded ${money(p.amountRefunded)} of ${money(total)})`;
  const fine =
    expected === 'CAPTURED'
      ? p.status === 'CAPTURED' && p.amountCaptured === total && p.amountRefunded === 0
      : expected === 'REFUNDED'
        ? p.status === 'REFUNDED' && p.amountCaptured === total && p.amountRefunded === total
        : expected === 'VOIDED'
          ? p.status === 'VOIDED' && p.amountCaptured === 0
          : p.status === 'DECLINED' && p.amountCaptured === 0;
  const wanted = {
    CAPTURED: 'captured in full',
    REFUNDED: 'captured and refunded in full',
    VOIDED: 'voided, nothing captured',
    DECLINED: 'declined',
  }[expected];
  return fine ? null : `${describe}, expected ${wanted}`;
}

/** Every way the order differs from its expectation; empty when it matches. */
export function checkOrder(expect: Expectation, seen: ObservedOrder): string[] {
  if (seen.createError !== null) return [`not placed: ${seen.createError}`];
  const problems: string[] = [];
  if (seen.status !== expect.orderStatus) {
    problems.push(`order ${seen.status ?? 'unknown'}, expected ${expect.orderStatus}`);
  }
  if (seen.failureCode !== expect.failureCode) {
    problems.push(`failure ${seen.failureCode ?? 'none'}, expected ${expect.failureCode ?? 'none'}`);
  }
  const parcels = seen.parcels.map((p) => p.status);
  if (parcels.join() !== expect.parcels.join()) {
    const list = (statuses: readonly string[]) => (statuses.length ? statuses.join(', ') : 'none');
    problems.push(`parcels ${list(parcels)}, expected ${list(expect.parcels)}`);
  }
  seen.parcels.forEach((parcel, i) => {
    const missing = expect.scans.filter((status) => !parcel.scans.includes(status));
    if (missing.length > 0) {
      problems.push(`parcel ${i + 1}'s tracking has no ${missing.join(', ')} scan`);
    }
  });
  const payment = paymentProblem(expect.payment, seen);
  if (payment) problems.push(payment);
  if (expect.cancel !== null) {
    const c = seen.cancel;
    if (c === null) {
      problems.push(
        `the demo never sent its cancel (the order was never ${expect.cancel === 'accepted' ? 'booked' : 'picked up'})`,
      );
    } else if (expect.cancel === 'accepted' && c.httpStatus !== 200 && c.httpStatus !== 202) {
      problems.push(`cancel answered ${c.httpStatus} ${c.code ?? ''}`.trim() + ', expected 200 or 202');
    } else if (expect.cancel === 'refused' && (c.httpStatus !== 409 || c.code !== 'ALREADY_PICKED_UP')) {
      problems.push(
        `cancel answered ${c.httpStatus} ${c.code ?? ''}`.trim() + ', expected 409 ALREADY_PICKED_UP',
      );
    }
  }
  return problems;
}

export type Verdict = 'pass' | 'known-bug' | 'fail';

/** Pass; or only problems the kind's known bugs explain; or a real failure. */
export function verdictOf(spec: DemoKindSpec, problems: readonly string[]): Verdict {
  if (problems.length === 0) return 'pass';
  const explained = problems.every((problem) => spec.knownBugs.some((bug) => bug.explains(problem)));
  return explained ? 'known-bug' : 'fail';
}

/**
 * Compares what a Temporal visibility query listed with what it should list, per order:
 * `expected` and `found` count workflows by order id (an order's own workflow, or its
 * parcels'). Orders whose counts differ are explained when they are known-bug orders.
 */
export function compareListing(opts: {
  expected: ReadonlyMap<string, number>;
  found: ReadonlyMap<string, number>;
  isKnownBug: (orderId: string) => boolean;
}): { listed: number; expectedTotal: number; explained: string[]; unexplained: string[] } {
  const ids = new Set([...opts.expected.keys(), ...opts.found.keys()]);
  const explained: string[] = [];
  const unexplained: string[] = [];
  for (const id of ids) {
    if ((opts.expected.get(id) ?? 0) === (opts.found.get(id) ?? 0)) continue;
    (opts.isKnownBug(id) ? explained : unexplained).push(id);
  }
  const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return { listed: sum(opts.found), expectedTotal: sum(opts.expected), explained, unexplained };
}

// ---------------------------------------------------------------------------------------
// Command line

export interface DemoArgs {
  help: boolean;
  /** Use the stack that already answers on the configured port instead of starting one. */
  attach: boolean;
  /** Leave the stack the demo started running at the end. */
  keep: boolean;
  kinds: DemoKind[] | undefined;
  orders: number | undefined;
  /** How long the orders may take to settle, from the first one placed (ms). */
  timeoutMs: number;
  /** Known bugs count as failures. */
  strict: boolean;
}

export const DEMO_USAGE = `usage: npm run demo -- [--attach] [--keep] [--scenarios a,b,…] [--orders N] [--timeout 10m] [--strict]

  --attach          use the Waybill stack already answering on WAYBILL_PORT (it must run with
                    the demo's settings, e.g. one left by --keep); without it the demo refuses
                    to touch a running stack
  --keep            leave the stack the demo started running (prints how to stop it)
  --scenarios a,b   only these kinds of order (default: all of them)
  --orders N        place N orders, dealt over the chosen kinds in turn (default: 39, each
                    kind its own count)
  --timeout T       fail when the orders have not all settled T after the first one was placed
                    (default 10m; the stack's start-up does not count)
  --strict          orders that hit a known bug (listed in the results) fail the run too

kinds: ${DEMO_KINDS.join(', ')}`;

/** Parses the demo's flags; throws {@link PlanError} with the problem and the usage. */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const args: DemoArgs = {
    help: false,
    attach: false,
    keep: false,
    kinds: undefined,
    orders: undefined,
    timeoutMs: 600_000,
    strict: false,
  };
  const value = (i: number, flag: string): string => {
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--'))
      throw new PlanError(`${flag} needs a value\n${DEMO_USAGE}`);
    return next;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const take = () => inline ?? value(i++, flag);
    switch (flag) {
      case '--help':
      case '-h':
        args.help = true;
        break;
      case '--attach':
        args.attach = true;
        break;
      case '--keep':
        args.keep = true;
        break;
      case '--strict':
        args.strict = true;
        break;
      case '--scenarios':
        args.kinds = parseKinds(take());
        break;
      case '--orders': {
        const text = take();
        if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 500) {
          throw new PlanError(`--orders must be a whole number from 1 to 500 (got "${text}")`);
        }
        args.orders = Number(text);
        break;
      }
      case '--timeout': {
        const text = take();
        const ms = parseDuration(text);
        if (ms === null)
          throw new PlanError(`--timeout must be a duration such as 90s or 10m (got "${text}")`);
        args.timeoutMs = ms;
        break;
      }
      default:
        throw new PlanError(`unknown argument ${arg}\n${DEMO_USAGE}`);
    }
  }
  return args;
}
