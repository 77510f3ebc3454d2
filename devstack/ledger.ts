/**
 * The money ledger (DESIGN.md, "Money rules"): one invariant over the read model, the
 * payment provider's books and the courier's bookings, checked after the saga tests, every
 * fault suite and the demo. A dev and test tool, not product code.
 *
 * For every settled order (DELIVERED, RETURNED, CANCELLED, FAILED):
 * - `money`: captured − refunded at the provider equals the value of the order's lines in
 *   parcels DELIVERED (and so not RETURNED) on the read model; 0 for CANCELLED and FAILED;
 * - `capture-once`: at most one payment of the order was ever captured;
 * - `read-model-payments`: the read model's `payments` rows agree with the provider's books;
 * - `authorisation-held`: no payment of the order is still AUTHORISED at the provider;
 * - `live-booking`: no booking of the order at the courier is live (booked, not cancelled,
 *   not collected), and none it collected is unknown to the read model;
 * - `stock`: nothing reserved; consumed only for skus in collected parcels, restocked only
 *   for returned ones, released for the rest; and per sku of these orders (every sku when
 *   no orders are named), `reserved` matches the open reservations of all orders and, when
 *   the starting stock is known, `on_hand` is that less what left and did not come back.
 * Orders in any other status (in flight, or parked for an admin) are listed as `unsettled`.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database';
import { isPickedUpStatus, ShipmentStatus } from '../src/domain/status';
import { stockReconciliation } from '../src/read-model/stock-checks';
import type { RunningPaymentSimulator } from '../simulators/payment/server';
import type { SimPaymentView } from '../simulators/payment/wire';
import { PaymentStatus } from '../src/payments/types';
import type { RunningSimulator } from '../simulators/courier/server';
import { OrderStatus } from '../src/workflows/contract';

export const LedgerRule = {
  MONEY: 'money',
  CAPTURE_ONCE: 'capture-once',
  READ_MODEL_PAYMENTS: 'read-model-payments',
  AUTHORISATION_HELD: 'authorisation-held',
  LIVE_BOOKING: 'live-booking',
  STOCK: 'stock',
} as const;
export type LedgerRule = (typeof LedgerRule)[keyof typeof LedgerRule];
export const LEDGER_RULES = Object.values(LedgerRule) as LedgerRule[];

/** What each rule asks, one line (for reports). */
export const LEDGER_RULE_TEXT: Readonly<Record<LedgerRule, string>> = {
  money: 'captured − refunded = value of lines delivered and kept',
  'capture-once': 'at most one capture per order',
  'read-model-payments': "the read model's payments agree with the provider",
  'authorisation-held': 'no authorisation held for a settled order',
  'live-booking': 'no live courier booking for a settled order',
  stock: 'stock reconciles',
};

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
  /** Omitted: the `live-booking` rule is not checked. */
  courier?: CourierBooks;
  /** The orders to check; omitted: every order on the read model. */
  orderIds?: readonly string[];
  /** Units every sku started with, when known (the fault suites): checks `on_hand` too. */
  initialStock?: number;
}

export interface LedgerViolation {
  /** Null for a sku's counters (they belong to no one order). */
  orderId: string | null;
  rule: LedgerRule;
  detail: string;
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

/** A booking at the courier as the ledger needs it. */
interface Booking {
  trackingNumber: string;
  reference: string | null;
  cancelled: boolean;
  /** The courier has had the parcel: a scan past "info received". */
  collected: boolean;
}

interface ShipmentFacts {
  id: string;
  orderId: string;
  trackingNumber: string;
  status: string;
  /** Picked up by the read model's account (a pickup time, or a status only a pickup reaches). */
  collected: boolean;
}

/** Shipment ids are `<orderId>-p<n>` (`orderShipmentId`), and a booking's reference is its shipment id. */
function orderIdOfReference(reference: string): string | null {
  return /^(.+)-p\d+$/.exec(reference)?.[1] ?? null;
}

const money = (minor: number) => (minor / 100).toFixed(2);

function scansCollected(statuses: readonly string[]): boolean {
  // The courier's own rule (it refuses a cancel then): any scan past info received.
  return statuses.some((s) => s !== ShipmentStatus.INFO_RECEIVED && s !== ShipmentStatus.CANCELLED);
}

async function controlGet<T>(url: string): Promise<T | null> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as T;
}

async function providerPayments(books: PaymentBooks, orderIds: ReadonlySet<string>) {
  let all = books.state?.paymentsOf();
  if (!all) {
    const url = `${books.url}/control/payments`;
    const answer = await controlGet<{ payments: SimPaymentView[] }>(url);
    if (!answer) throw new Error(`${url} answered 404: the ledger reads the payment simulator's books`);
    all = answer.payments;
  }
  return all.filter((p) => orderIds.has(p.orderId));
}

async function courierBookings(
  books: CourierBooks,
  shipments: readonly ShipmentFacts[],
  orderIds: ReadonlySet<string>,
): Promise<Booking[]> {
  if (books.backend) {
    const backend = books.backend;
    const known = new Set(shipments.map((s) => s.trackingNumber));
    return backend
      .list()
      .filter(
        (p) =>
          known.has(p.trackingNumber) ||
          (p.reference !== null && orderIds.has(orderIdOfReference(p.reference) ?? '')),
      )
      .map((p) => ({
        trackingNumber: p.trackingNumber,
        reference: p.reference,
        cancelled: p.cancelled,
        collected: scansCollected(backend.inspect(p.trackingNumber)?.view.scans.map((s) => s.status) ?? []),
      }));
  }
  const bookings: Booking[] = [];
  for (const s of shipments) {
    const found = await controlGet<{
      parcel: { reference: string | null; cancelled: boolean };
      view: { scans: { status: string }[] };
    }>(`${books.url}/control/parcels/${encodeURIComponent(s.trackingNumber)}`);
    if (!found) continue;
    bookings.push({
      trackingNumber: s.trackingNumber,
      reference: found.parcel.reference ?? s.id,
      cancelled: found.parcel.cancelled,
      collected: scansCollected(found.view.scans.map((scan) => scan.status)),
    });
  }
  return bookings;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

type Line = {
  order_id: string;
  sku: string;
  quantity: number;
  unit_amount: number;
  shipment_id: string | null;
};
type PaymentRow = {
  order_id: string;
  provider_ref: string | null;
  status: string;
  amount_captured: number;
  amount_refunded: number;
};
type ProviderPayment = Pick<
  SimPaymentView,
  'id' | 'orderId' | 'status' | 'amountCaptured' | 'amountRefunded'
>;

/** What the ledger knows of the settled orders, from the read model and the books. */
interface Facts {
  statusOf: ReadonlyMap<string, string>;
  linesOf: ReadonlyMap<string, Line[]>;
  shipmentById: ReadonlyMap<string, ShipmentFacts>;
  shipmentsOf: ReadonlyMap<string, ShipmentFacts[]>;
  /** The read model's payment rows; the provider's payments (null: no provider given). */
  paymentRowsOf: ReadonlyMap<string, PaymentRow[]>;
  providerPaymentsOf: ReadonlyMap<string, ProviderPayment[]> | null;
  /** Null: no courier given. */
  bookingsOf: ReadonlyMap<string, Booking[]> | null;
  reservationsOf: ReadonlyMap<string, { sku: string; quantity: number; status: string }[]>;
}

async function readFacts(
  input: LedgerInput,
  settled: string[],
  statusOf: ReadonlyMap<string, string>,
  lines: Line[],
): Promise<Facts> {
  const { db } = input;
  const [shipmentRows, paymentRows, reservations] = settled.length
    ? await Promise.all([
        db
          .selectFrom('shipments')
          .select(['id', 'order_id', 'tracking_number', 'status', 'picked_up_at'])
          .where('order_id', 'in', settled)
          .execute(),
        db
          .selectFrom('payments')
          .select(['order_id', 'provider_ref', 'status', 'amount_captured', 'amount_refunded'])
          .where('order_id', 'in', settled)
          .execute(),
        db
          .selectFrom('inventory_reservations')
          .select(['order_id', 'sku', 'quantity', 'status'])
          .where('order_id', 'in', settled)
          .execute(),
      ])
    : [[], [], []];
  const shipments: ShipmentFacts[] = shipmentRows.map((s) => ({
    id: s.id,
    orderId: s.order_id!,
    trackingNumber: s.tracking_number,
    status: s.status,
    collected: s.picked_up_at !== null || isPickedUpStatus(s.status),
  }));
  const shipmentById = new Map(shipments.map((s) => [s.id, s]));
  const settledSet = new Set(settled);
  const provider = input.payments ? await providerPayments(input.payments, settledSet) : null;
  const bookings = input.courier ? await courierBookings(input.courier, shipments, settledSet) : null;
  return {
    statusOf,
    linesOf: groupBy(lines, (l) => l.order_id),
    shipmentById,
    shipmentsOf: groupBy(shipments, (s) => s.orderId),
    paymentRowsOf: groupBy(paymentRows, (r) => r.order_id),
    providerPaymentsOf: provider && groupBy(provider, (p) => p.orderId),
    bookingsOf:
      bookings &&
      groupBy(
        bookings.filter((b) => b.reference !== null),
        (b) => shipmentById.get(b.reference!)?.orderId ?? orderIdOfReference(b.reference!) ?? '',
      ),
    reservationsOf: groupBy(reservations, (r) => r.order_id),
  };
}

type Found = Omit<LedgerViolation, 'orderId'>;

/** Captured − refunded against the lines delivered and kept; one capture; the read model agrees; nothing held. */
function paymentViolations(facts: Facts, orderId: string): Found[] {
  const found: Found[] = [];
  const status = facts.statusOf.get(orderId)!;
  const rows = facts.paymentRowsOf.get(orderId) ?? [];
  // Without the provider's books, the read model's rows stand in for them.
  const pays: ProviderPayment[] =
    facts.providerPaymentsOf?.get(orderId) ??
    (facts.providerPaymentsOf
      ? []
      : rows
          .filter((r) => r.provider_ref !== null)
          .map((r) => ({
            id: r.provider_ref!,
            orderId,
            status: r.status as PaymentStatus,
            amountCaptured: r.amount_captured,
            amountRefunded: r.amount_refunded,
          })));

  const lines = facts.linesOf.get(orderId) ?? [];
  const kept = lines.filter(
    (l) =>
      l.shipment_id !== null && facts.shipmentById.get(l.shipment_id)?.status === ShipmentStatus.DELIVERED,
  );
  const expected =
    status === OrderStatus.CANCELLED || status === OrderStatus.FAILED
      ? 0
      : kept.reduce((sum, l) => sum + l.unit_amount * l.quantity, 0);
  const captured = pays.reduce((sum, p) => sum + p.amountCaptured, 0);
  const refunded = pays.reduce((sum, p) => sum + p.amountRefunded, 0);
  if (captured - refunded !== expected) {
    const parcels = (facts.shipmentsOf.get(orderId) ?? []).map((s) => `${s.id} ${s.status}`).join(', ');
    found.push({
      rule: LedgerRule.MONEY,
      detail:
        `${status}: captured ${money(captured)} − refunded ${money(refunded)} = ${money(captured - refunded)} kept, ` +
        `but the lines delivered and kept are worth ${money(expected)} (parcels: ${parcels || 'none'})`,
    });
  }

  const captures = pays.filter((p) => p.amountCaptured > 0);
  if (captures.length > 1) {
    found.push({
      rule: LedgerRule.CAPTURE_ONCE,
      detail: `${captures.length} payments captured: ${captures.map((p) => `${p.id} ${money(p.amountCaptured)}`).join(', ')}`,
    });
  }

  if (facts.providerPaymentsOf) {
    const byRef = new Map(pays.map((p) => [p.id, p]));
    for (const row of rows) {
      if (row.provider_ref === null) continue;
      const p = byRef.get(row.provider_ref);
      if (!p) {
        found.push({
          rule: LedgerRule.READ_MODEL_PAYMENTS,
          detail: `payment ${row.provider_ref} is unknown to the provider`,
        });
      } else if (
        p.status !== row.status ||
        p.amountCaptured !== row.amount_captured ||
        p.amountRefunded !== row.amount_refunded
      ) {
        found.push({
          rule: LedgerRule.READ_MODEL_PAYMENTS,
          detail:
            `payment ${row.provider_ref}: read model ${row.status} captured ${money(row.amount_captured)} refunded ${money(row.amount_refunded)}, ` +
            `provider ${p.status} captured ${money(p.amountCaptured)} refunded ${money(p.amountRefunded)}`,
        });
      }
    }
  }

  for (const p of pays.filter((p) => p.status === PaymentStatus.AUTHORISED)) {
    found.push({
      rule: LedgerRule.AUTHORISATION_HELD,
      detail: `${status} with payment ${p.id} still authorised`,
    });
  }
  return found;
}

/** Every booking of the order cancelled, or collected and known to the read model. */
function bookingViolations(facts: Facts, orderId: string): Found[] {
  const status = facts.statusOf.get(orderId)!;
  return (facts.bookingsOf?.get(orderId) ?? []).flatMap((b): Found[] => {
    if (b.cancelled) return [];
    const known = facts.shipmentById.get(b.reference!);
    if (!b.collected) {
      return [
        {
          rule: LedgerRule.LIVE_BOOKING,
          detail: `${status} with a live booking ${b.trackingNumber} (${b.reference}; read model: ${known?.status ?? 'no shipment row'}): never collected, never cancelled`,
        },
      ];
    }
    if (!known) {
      return [
        {
          rule: LedgerRule.LIVE_BOOKING,
          detail: `the courier collected ${b.trackingNumber} (${b.reference}), which the read model has no shipment for`,
        },
      ];
    }
    return [];
  });
}

/** Nothing held; consumed only what left in a collected parcel, restocked only what was returned, released the rest. */
function stockViolations(facts: Facts, orderId: string): Found[] {
  const status = facts.statusOf.get(orderId)!;
  const lines = facts.linesOf.get(orderId) ?? [];
  const skusIn = (keep: (s: ShipmentFacts) => boolean) =>
    new Set(
      lines
        .filter((l) => {
          const parcel = l.shipment_id === null ? undefined : facts.shipmentById.get(l.shipment_id);
          return parcel !== undefined && keep(parcel);
        })
        .map((l) => l.sku),
    );
  const collected = skusIn((s) => s.collected);
  const stayedOut = skusIn((s) => s.collected && s.status !== ShipmentStatus.RETURNED);
  const returned = skusIn((s) => s.status === ShipmentStatus.RETURNED);
  return (facts.reservationsOf.get(orderId) ?? []).flatMap((r): Found[] => {
    const what = `${r.quantity} × ${r.sku}`;
    const detail =
      r.status === 'RESERVED'
        ? `${status} still holds ${what} reserved`
        : r.status === 'CONSUMED' && !stayedOut.has(r.sku)
          ? `${what} consumed, but no collected parcel that stayed out carries it`
          : r.status === 'RESTOCKED' && !returned.has(r.sku)
            ? `${what} restocked, but no parcel carrying it was returned`
            : r.status === 'RELEASED' && collected.has(r.sku)
              ? `${what} released, but a collected parcel carries it`
              : null;
    return detail ? [{ rule: LedgerRule.STOCK, detail }] : [];
  });
}

/**
 * Per sku (these, or every one): the counters match the reservations of every order, and
 * when the starting stock is known, on hand is that less what left for good. A finished
 * order's hold is judged per order, for the orders in scope only.
 */
async function skuViolations(
  db: Kysely<Database>,
  skus: ReadonlySet<string> | null,
  initialStock: number | undefined,
): Promise<LedgerViolation[]> {
  const found: LedgerViolation[] = [];
  const stock = (detail: string) => found.push({ orderId: null, rule: LedgerRule.STOCK, detail });
  for (const d of await stockReconciliation(db)) {
    if (skus && !skus.has(d.sku)) continue;
    if (d.reserved !== d.reservedByReservations || d.onHand < 0 || d.reserved < 0 || d.reserved > d.onHand) {
      stock(`${d.sku}: ${d.problems.join('; ')}`);
    }
  }
  if (initialStock === undefined) return found;
  const left = await db
    .selectFrom('inventory_items as i')
    .leftJoin('inventory_reservations as r', (join) =>
      join.onRef('r.sku', '=', 'i.sku').on('r.status', '=', 'CONSUMED'),
    )
    .select((eb) => [
      'i.sku',
      'i.on_hand',
      eb.fn.coalesce(eb.fn.sum<string>('r.quantity'), sql<string>`0`).as('left'),
    ])
    .groupBy(['i.sku', 'i.on_hand'])
    .execute();
  for (const s of left) {
    if (skus && !skus.has(s.sku)) continue;
    const expected = initialStock - Number(s.left);
    if (s.on_hand !== expected) {
      stock(
        `${s.sku}: on_hand ${s.on_hand}, expected ${expected} (${initialStock} at the start, ${Number(s.left)} left for good)`,
      );
    }
  }
  return found;
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

  const facts = await readFacts(input, settled, statusOf, lines);
  const violations: LedgerViolation[] = [
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
