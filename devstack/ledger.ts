/**
 * The money ledger (DESIGN.md, "Money rules"): one invariant over the read model, the
 * payment provider's books and the courier's bookings, checked after the saga tests, every
 * fault suite and the demo. A dev and test tool, not product code.
 *
 * For every settled order (DELIVERED, RETURNED, CANCELLED, FAILED):
 * - `money`: captured − refunded at the provider equals the value of the order's lines in
 *   parcels DELIVERED (and so not RETURNED) on the read model; 0 for CANCELLED and FAILED,
 *   and for an order whose charge an admin waived (a parked capture resolved `not_charged`);
 * - `capture-once`: at most one payment of the order was ever captured;
 * - `capture-after-pickup`: Waybill (its capture's idempotency key) captured nothing unless a
 *   parcel of the order was collected (by the read model's account or the courier's), even if
 *   it was refunded since; a capture made outside it (the provider's dashboard) is not judged;
 * - `read-model-payments`: the read model's `payments` rows agree with the provider's books;
 * - `authorisation-held`: no payment of the order is still AUTHORISED at the provider;
 * - `live-booking`: no booking of the order at the courier is live (booked, not cancelled,
 *   not collected), and none it collected is unknown to the read model; the shop's own fleet's
 *   bookings (Postgres) always, a cancelled one also off every run;
 * - `stock`: nothing reserved; consumed only for skus in collected parcels, restocked only
 *   for returned ones, released for the rest; and per sku of these orders (every sku when
 *   no orders are named), `reserved` matches the open reservations of all orders and, when
 *   the starting stock is known, `on_hand` is that less what left and did not come back.
 * Orders in any other status (in flight, or parked for an admin) are listed as `unsettled`;
 * of them only `capture-once` and `capture-after-pickup` are judged, the rules that hold at
 * every moment of an order.
 */
import { type Kysely } from 'kysely';
import type { Database } from '../db/database';
import type { RunningPaymentSimulator } from '../simulators/payment/server';
import type { RunningSimulator } from '../simulators/courier/server';
import { OrderStatus } from '../src/workflows/contract';
import { readFacts } from './ledger-facts';
import {
  LedgerRule,
  bookingViolations,
  paymentViolations,
  skuViolations,
  stockViolations,
  type LedgerViolation,
} from './ledger-rules';
/** The rules that hold at every moment of an order: judged for orders in flight too. */
const ALWAYS_JUDGED: ReadonlySet<LedgerRule> = new Set([
  LedgerRule.CAPTURE_ONCE,
  LedgerRule.CAPTURE_AFTER_PICKUP,
]);

export const SETTLED_STATUSES: ReadonlySet<string> = new Set([
  OrderStatus.DELIVERED,
  OrderStatus.RETURNED,
  OrderStatus.CANCELLED,
  OrderStatus.FAILED,
]);

/**
 * The payment provider's books: the running simulator, read from its memory, or just its
 * URL (another process, as in the demo), read through `GET /control/payments`.
 */
export type PaymentBooks = Pick<RunningPaymentSimulator, 'url'> &
  Partial<Pick<RunningPaymentSimulator, 'state'>>;

/**
 * The courier's bookings: the running simulator, read from its memory (every booking, the
 * ones the read model never heard of too), or just its URL, read parcel by parcel through
 * `GET /control/parcels/:trackingNumber` for the parcels the read model knows.
 */
export type CourierBooks = Pick<RunningSimulator, 'url'> & Partial<Pick<RunningSimulator, 'backend'>>;

export interface LedgerInput {
  db: Kysely<Database>;
  /** Omitted: the read model's `payments` rows stand in for the provider's books. */
  payments?: PaymentBooks;
  /** Omitted: the `live-booking` rule checks only the shop's own fleet (its bookings are in Postgres). */
  courier?: CourierBooks;
  /** The orders to check; omitted: every order on the read model. */
  orderIds?: readonly string[];
  /** Units every sku started with, when known (the fault suites): checks `on_hand` too. */
  initialStock?: number;
}

export interface LedgerResult {
  /** No violation (unsettled orders do not count against it). */
  ok: boolean;
  /** Settled orders checked. */
  orders: number;
  violations: LedgerViolation[];
  /** Orders not settled yet, with their status (null: no row on the read model). */
  unsettled: { orderId: string; status: string | null }[];
  /** What could not be checked with the books given (e.g. no courier). */
  notes: string[];
}

/**
 * Checks the money rules (see the top of this file) for `orderIds`, or every order.
 *
 * ```ts
 * const ledger = await checkLedger({ db, payments, courier, orderIds: [orderId] });
 * expect(ledger.violations).toEqual([]);
 * ```
 */
export async function checkLedger(input: LedgerInput): Promise<LedgerResult> {
  const { db } = input;
  const scope = input.orderIds
    ? [...new Set(input.orderIds)]
    : (await db.selectFrom('orders').select('id').orderBy('id').execute()).map((r) => r.id);
  const rows = scope.length
    ? await db.selectFrom('orders').select(['id', 'status']).where('id', 'in', scope).execute()
    : [];
  const statusOf = new Map(rows.map((r) => [r.id, r.status]));
  const settled = scope.filter((id) => SETTLED_STATUSES.has(statusOf.get(id) ?? ''));
  const unsettled = scope
    .filter((id) => !SETTLED_STATUSES.has(statusOf.get(id) ?? ''))
    .map((id) => ({ orderId: id, status: statusOf.get(id) ?? null }));
  const lines = scope.length
    ? await db
        .selectFrom('order_items')
        .select(['order_id', 'sku', 'quantity', 'unit_amount', 'shipment_id'])
        .where('order_id', 'in', scope)
        .execute()
    : [];

  // Orders on the read model but not settled: a second capture, or one before any pickup, is
  // wrong whenever it is seen.
  const inFlight = unsettled.filter((u) => u.status !== null).map((u) => u.orderId);
  const facts = await readFacts(input, [...settled, ...inFlight], statusOf, lines);
  const violations: LedgerViolation[] = [
    ...inFlight.flatMap((orderId) =>
      paymentViolations(facts, orderId)
        .filter((v) => ALWAYS_JUDGED.has(v.rule))
        .map((v) => ({ orderId, ...v })),
    ),
    ...settled.flatMap((orderId) =>
      [
        ...paymentViolations(facts, orderId),
        ...bookingViolations(facts, orderId),
        ...stockViolations(facts, orderId),
      ].map((v) => ({ orderId, ...v })),
    ),
    ...(await skuViolations(
      db,
      input.orderIds ? new Set(lines.map((l) => l.sku)) : null,
      input.initialStock,
    )),
  ];

  const notes: string[] = [];
  if (!input.payments)
    notes.push("no payment provider given: the read model's payments stand in for its books");
  if (!input.courier) notes.push('no courier given: live bookings not checked');
  else if (!input.courier.backend) {
    notes.push(
      'courier read by URL: bookings the read model never recorded (a lost booking answer) are not seen',
    );
  }
  return { ok: violations.length === 0, orders: settled.length, violations, unsettled, notes };
}
