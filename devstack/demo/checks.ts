/**
 * The demo's checks, pure: whether an order has settled, how it differs from its kind's
 * expectation and the verdict, whether the staged courier outage did its job, and whether a
 * Temporal visibility query listed the workflows it should.
 */
import { isTerminal, type ShipmentStatus } from '../../src/domain/status';
import { OrderStatus } from '../../src/workflows/contract';
import type { DemoKindSpec, Expectation, PaymentOutcome } from './kinds';

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
