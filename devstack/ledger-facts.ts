/**
 * What the money ledger reads (ledger.ts): the read model's lines, payments, parcels and
 * reservations of the orders checked, the payment provider's books and the courier's bookings.
 */
import { isPickedUpStatus, ShipmentStatus } from '../src/domain/status';
import { fleetBookings } from '../src/read-model/fleet';
import type { SimPaymentView } from '../simulators/payment/wire';
import type { CourierBooks, LedgerInput, PaymentBooks } from './ledger';

/** A booking at the courier as the ledger needs it. */
export interface Booking {
  trackingNumber: string;
  reference: string | null;
  cancelled: boolean;
  /** The courier has had the parcel: a scan past "info received". */
  collected: boolean;
}

export interface ShipmentFacts {
  id: string;
  orderId: string;
  trackingNumber: string;
  status: string;
  /** Picked up by the read model's account (a pickup time, or a status only a pickup reaches). */
  collected: boolean;
}

/** Shipment ids are `<orderId>-p<n>` (`orderShipmentId`), and a booking's reference is its shipment id. */
export function orderIdOfReference(reference: string): string | null {
  return /^(.+)-p\d+$/.exec(reference)?.[1] ?? null;
}

export const money = (minor: number) => (minor / 100).toFixed(2);

export function scansCollected(statuses: readonly string[]): boolean {
  // The courier's own rule (it refuses a cancel then): any scan past info received.
  return statuses.some((s) => s !== ShipmentStatus.INFO_RECEIVED && s !== ShipmentStatus.CANCELLED);
}

export async function controlGet<T>(url: string): Promise<T | null> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as T;
}

export async function providerPayments(books: PaymentBooks, orderIds: ReadonlySet<string>) {
  let all = books.state?.paymentsOf();
  if (!all) {
    const url = `${books.url}/control/payments`;
    const answer = await controlGet<{ payments: SimPaymentView[] }>(url);
    if (!answer) throw new Error(`${url} answered 404: the ledger reads the payment simulator's books`);
    all = answer.payments;
  }
  return all.filter((p) => orderIds.has(p.orderId));
}

export async function courierBookings(
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

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

export type Line = {
  order_id: string;
  sku: string;
  quantity: number;
  unit_amount: number;
  shipment_id: string | null;
};
export type PaymentRow = {
  order_id: string;
  provider_ref: string | null;
  status: string;
  amount_captured: number;
  amount_refunded: number;
};
export type ProviderPayment = Pick<
  SimPaymentView,
  'id' | 'orderId' | 'status' | 'amountCaptured' | 'amountRefunded' | 'captureKey'
>;

/** What the ledger knows of the orders it judges, from the read model and the books. */
export interface Facts {
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
  /** Orders whose charge an admin waived (a parked capture resolved `not_charged`). */
  waived: ReadonlySet<string>;
}

/** The facts of `judged`: the settled orders, and those in flight whose captures are judged. */
export async function readFacts(
  input: LedgerInput,
  judged: string[],
  statusOf: ReadonlyMap<string, string>,
  lines: Line[],
): Promise<Facts> {
  const { db } = input;
  const [shipmentRows, paymentRows, reservations, waivers] = judged.length
    ? await Promise.all([
        db
          .selectFrom('shipments')
          .select(['id', 'order_id', 'tracking_number', 'status', 'picked_up_at'])
          .where('order_id', 'in', judged)
          .execute(),
        db
          .selectFrom('payments')
          .select(['order_id', 'provider_ref', 'status', 'amount_captured', 'amount_refunded'])
          .where('order_id', 'in', judged)
          .execute(),
        db
          .selectFrom('inventory_reservations')
          .select(['order_id', 'sku', 'quantity', 'status'])
          .where('order_id', 'in', judged)
          .execute(),
        db
          .selectFrom('order_attention')
          .select('order_id')
          .where('order_id', 'in', judged)
          .where('settlement', '=', 'not_charged')
          .execute(),
      ])
    : [[], [], [], []];
  const shipments: ShipmentFacts[] = shipmentRows.map((s) => ({
    id: s.id,
    orderId: s.order_id!,
    trackingNumber: s.tracking_number,
    status: s.status,
    collected: s.picked_up_at !== null || isPickedUpStatus(s.status),
  }));
  const shipmentById = new Map(shipments.map((s) => [s.id, s]));
  const judgedSet = new Set(judged);
  // In this order: the provider's books, then the courier's and the fleet's. A capture of an
  // order in flight that is seen here follows its pickup, so the courier's books read after it
  // show the pickup even when the read model above was read before it was recorded.
  const provider = input.payments ? await providerPayments(input.payments, judgedSet) : null;
  const atCourier = input.courier ? await courierBookings(input.courier, shipments, judgedSet) : null;
  // The shop's own fleet keeps its bookings in Postgres: always checked.
  const fleet = (
    await fleetBookings(
      db,
      shipments.map((s) => s.id),
    )
  ).map((p): Booking => ({
    trackingNumber: p.tracking_number,
    reference: p.shipment_id,
    // Cancelled, and off every run: no driver will come for it.
    cancelled: p.status === ShipmentStatus.CANCELLED && p.run_id === null,
    collected: p.status !== ShipmentStatus.INFO_RECEIVED && p.status !== ShipmentStatus.CANCELLED,
  }));
  const bookings = atCourier || fleet.length > 0 ? [...(atCourier ?? []), ...fleet] : null;
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
    waived: new Set(waivers.map((w) => w.order_id)),
  };
}
