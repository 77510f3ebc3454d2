/**
 * The money ledger's rules (ledger.ts runs them): each rule's name and line, and the checks
 * of one settled order's payments, bookings and stock, and of every sku's counters, against
 * the facts read for them (ledger-facts.ts).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database';
import { ShipmentStatus } from '../src/domain/status';
import { stockReconciliation } from '../src/read-model/stock-checks';
import { paymentIdempotencyKey, PaymentStatus } from '../src/payments/types';
import { OrderStatus } from '../src/workflows/contract';
import { money, type Facts, type ProviderPayment, type ShipmentFacts } from './ledger-facts';

export const LedgerRule = {
  MONEY: 'money',
  CAPTURE_ONCE: 'capture-once',
  CAPTURE_AFTER_PICKUP: 'capture-after-pickup',
  READ_MODEL_PAYMENTS: 'read-model-payments',
  AUTHORISATION_HELD: 'authorisation-held',
  LIVE_BOOKING: 'live-booking',
  STOCK: 'stock',
} as const;
export type LedgerRule = (typeof LedgerRule)[keyof typeof LedgerRule];
export const LEDGER_RULES = Object.values(LedgerRule) as LedgerRule[];

/** What each rule asks, one line (for reports). */
export const LEDGER_RULE_TEXT: Readonly<Record<LedgerRule, string>> = {
  money: 'captured − refunded = value of lines delivered and kept (0 when the charge was waived)',
  'capture-once': 'at most one capture per order',
  'capture-after-pickup': 'Waybill captured nothing before a parcel of the order was collected',
  'read-model-payments': "the read model's payments agree with the provider",
  'authorisation-held': 'no authorisation held for a settled order',
  'live-booking': 'no live courier booking for a settled order',
  stock: 'stock reconciles',
};

export interface LedgerViolation {
  /** Null for a sku's counters (they belong to no one order). */
  orderId: string | null;
  rule: LedgerRule;
  detail: string;
}

export type Found = Omit<LedgerViolation, 'orderId'>;

/** Captured − refunded against the lines delivered and kept; one capture; the read model agrees; nothing held. */
export function paymentViolations(facts: Facts, orderId: string): Found[] {
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
            // Who captured is the provider's to say: without its books, taken as Waybill.
            captureKey: r.amount_captured > 0 ? paymentIdempotencyKey(orderId, 'capture') : null,
          })));

  const lines = facts.linesOf.get(orderId) ?? [];
  const kept = lines.filter(
    (l) =>
      l.shipment_id !== null && facts.shipmentById.get(l.shipment_id)?.status === ShipmentStatus.DELIVERED,
  );
  // A waived charge (a parked capture resolved `not_charged`) keeps nothing, whatever arrived.
  const expected =
    status === OrderStatus.CANCELLED || status === OrderStatus.FAILED || facts.waived.has(orderId)
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
  // Waybill captures at the first pickup, which the read model records before the order hears
  // of it: a capture of Waybill's (its idempotency key) with no parcel collected is wrong at any
  // moment, even refunded since. One made outside it (the provider's dashboard) is the shop's,
  // and Waybill refunds it if the order is cancelled (the money rule judges that).
  const ours = captures.filter((p) => p.captureKey === paymentIdempotencyKey(orderId, 'capture'));
  const parcels = facts.shipmentsOf.get(orderId) ?? [];
  const collected =
    parcels.some((s) => s.collected) || (facts.bookingsOf?.get(orderId) ?? []).some((b) => b.collected);
  if (ours.length > 0 && !collected) {
    found.push({
      rule: LedgerRule.CAPTURE_AFTER_PICKUP,
      detail:
        `${status}: ${ours.map((p) => `${p.id} captured ${money(p.amountCaptured)}`).join(', ')}, ` +
        `but no parcel of the order was collected (parcels: ${parcels.map((s) => `${s.id} ${s.status}`).join(', ') || 'none'})`,
    });
  }
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
export function bookingViolations(facts: Facts, orderId: string): Found[] {
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
export function stockViolations(facts: Facts, orderId: string): Found[] {
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
export async function skuViolations(
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
