/**
 * The consistency checks every fault suite ends with, over the read model, the payment
 * provider's own books (the payment simulator's memory), the courier's bookings (the courier
 * simulator's parcels) and Temporal. Each returns PASS/FAIL with the offending ids.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { RunningPaymentSimulator } from '../../src/payments/simulator-server';
import type { RunningSimulator } from '../../src/simulator/server';
import type { TemporalClient } from '../../src/temporal';
import { orderWorkflowId, OrderStatus } from '../../src/workflows/contract';

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export const SETTLED: ReadonlySet<string> = new Set([
  OrderStatus.DELIVERED,
  OrderStatus.CANCELLED,
  OrderStatus.FAILED,
  OrderStatus.RETURNED,
]);

const MONEY_BACK: ReadonlySet<string> = new Set([
  OrderStatus.CANCELLED,
  OrderStatus.FAILED,
  OrderStatus.RETURNED,
]);

function listed(ids: string[], max = 5): string {
  if (ids.length === 0) return '';
  return `${ids.slice(0, max).join(', ')}${ids.length > max ? ` (+${ids.length - max} more)` : ''}`;
}

function check(name: string, bad: string[], okDetail: string, badWhat: string): Check {
  return bad.length === 0
    ? { name, pass: true, detail: okDetail }
    : { name, pass: false, detail: `${bad.length} ${badWhat}: ${listed(bad)}` };
}

export interface ConsistencyInput {
  db: Kysely<Database>;
  temporal: TemporalClient;
  payments: RunningPaymentSimulator;
  courier: RunningSimulator;
  /** Orders the API accepted (202). */
  orderIds: string[];
  /** Stock each sku started with. */
  initialStock: number;
}

export async function consistencyChecks(input: ConsistencyInput): Promise<Check[]> {
  const { db, orderIds } = input;
  const checks: Check[] = [];
  const orders = orderIds.length
    ? await db
        .selectFrom('orders')
        .select(['id', 'status', 'total_amount'])
        .where('id', 'in', orderIds)
        .execute()
    : [];
  const byId = new Map(orders.map((o) => [o.id, o]));

  // 1. Every order settled, in the read model and in Temporal.
  const unsettled = orderIds.filter((id) => !SETTLED.has(byId.get(id)?.status ?? 'MISSING'));
  checks.push(
    check(
      'every order reached a terminal state (read model)',
      unsettled.map((id) => `${id}=${byId.get(id)?.status ?? 'no row'}`),
      `${orderIds.length} orders: ${summarise(orders.map((o) => o.status))}`,
      'orders not terminal',
    ),
  );
  const open: string[] = [];
  for (const id of orderIds) {
    const description = await input.temporal.client.workflow
      .getHandle(orderWorkflowId(id))
      .describe()
      .catch(() => null);
    if (description?.status.name !== 'COMPLETED')
      open.push(`${id}=${description?.status.name ?? 'not found'}`);
  }
  checks.push(
    check('every order workflow completed (Temporal)', open, `${orderIds.length} completed`, 'workflows'),
  );

  // 2. No tracking event recorded twice (same shipment, status and time), no order booked twice.
  const dupEvents = await sql<{ shipment_id: string; status: string; n: number }>`
    select shipment_id, status, count(*)::int as n from tracking_events
    group by shipment_id, status, occurred_at having count(*) > 1`.execute(db);
  const events = await sql<{ n: number }>`select count(*)::int as n from tracking_events`.execute(db);
  checks.push(
    check(
      'no duplicate tracking events',
      dupEvents.rows.map((r) => `${r.shipment_id} ${r.status} ×${r.n}`),
      `${events.rows[0]!.n} events, each once`,
      'events recorded more than once',
    ),
  );
  // Bookings at the courier, by the shipment they were made for (the booking reference).
  const shipments = orderIds.length
    ? await db.selectFrom('shipments').select(['id', 'order_id']).where('order_id', 'in', orderIds).execute()
    : [];
  const orderOfShipment = new Map(shipments.map((s) => [s.id, s.order_id!]));
  const liveByOrder = new Map<string, { trackingNumber: string; pickedUp: boolean }[]>();
  const orphans: string[] = [];
  for (const parcel of input.courier.backend.list()) {
    if (parcel.cancelled || !parcel.reference) continue;
    const orderId = orderOfShipment.get(parcel.reference);
    if (!orderId) {
      orphans.push(`${parcel.trackingNumber} (reference ${parcel.reference})`);
      continue;
    }
    const scans = input.courier.backend.inspect(parcel.trackingNumber)?.view.scans ?? [];
    const pickedUp = scans.some((scan) => scan.status !== 'INFO_RECEIVED');
    liveByOrder.set(orderId, [
      ...(liveByOrder.get(orderId) ?? []),
      { trackingNumber: parcel.trackingNumber, pickedUp },
    ]);
  }
  const doubleBooked = [...liveByOrder]
    .filter(([, p]) => p.length > 1)
    .map(([id, p]) => `${id} ×${p.length}`);
  checks.push(
    check(
      'one live courier booking per order, none unknown to the read model',
      [...doubleBooked, ...orphans.map((o) => `orphan booking ${o}`)],
      `${liveByOrder.size} orders with a live booking, one each`,
      'problems',
    ),
  );

  // 3. Payments: captured at most once; settled orders' money where it should be.
  const provider = input.payments.state;
  const twiceCaptured: string[] = [];
  const moneyWrong: string[] = [];
  for (const id of orderIds) {
    const order = byId.get(id);
    const pays = provider.paymentsOf(id);
    const captured = pays.filter((p) => p.amountCaptured > 0);
    if (captured.length > 1) twiceCaptured.push(`${id} ×${captured.length}`);
    const held = pays.filter((p) => p.status === 'AUTHORISED' && !p.voided);
    const net = pays.reduce((sum, p) => sum + p.amountCaptured - p.amountRefunded, 0);
    if (!order) continue;
    if (held.length > 0) moneyWrong.push(`${id} (${order.status}) still holds an authorisation`);
    else if (order.status === OrderStatus.DELIVERED && net !== order.total_amount)
      moneyWrong.push(`${id} DELIVERED with ${net} net of ${order.total_amount}`);
    else if (MONEY_BACK.has(order.status) && net !== 0)
      moneyWrong.push(`${id} ${order.status} with ${net} kept`);
  }
  checks.push(
    check(
      'payments captured at most once per order (provider)',
      twiceCaptured,
      `${provider.paymentsOf().filter((p) => p.amountCaptured > 0).length} captures, one per order at most`,
      'orders captured more than once',
    ),
  );

  // 4. No half-compensation: a cancelled, failed or returned order gave everything back.
  const heldStock = await db
    .selectFrom('inventory_reservations as r')
    .innerJoin('orders as o', 'o.id', 'r.order_id')
    .select(['o.id', 'o.status', 'r.status as reservation'])
    .where('o.status', 'in', [...SETTLED])
    .where((eb) =>
      eb.or([
        eb('r.status', '=', 'RESERVED'),
        // Shipped stock of a failed order stays shipped only when the courier had the parcel
        // (lost in transit: the goods left); otherwise it must be back on the shelf.
        eb.and([
          eb('o.status', 'in', [OrderStatus.CANCELLED, OrderStatus.FAILED]),
          eb('r.status', '=', 'CONSUMED'),
          eb.not(
            eb.exists(
              eb
                .selectFrom('shipments as s')
                .select('s.id')
                .whereRef('s.order_id', '=', 'o.id')
                .where('s.picked_up_at', 'is not', null),
            ),
          ),
        ]),
      ]),
    )
    .execute();
  const liveShipments = await db
    .selectFrom('shipments as s')
    .innerJoin('orders as o', 'o.id', 's.order_id')
    .select(['o.id', 's.status'])
    .where('o.status', 'in', [OrderStatus.CANCELLED, OrderStatus.FAILED])
    .where('s.status', 'not in', ['CANCELLED', 'RETURNED', 'EXPIRED'])
    .execute();
  // A cancelled or failed order's booking must be cancelled, unless the courier had the parcel.
  const bookedButCancelled = [...liveByOrder]
    .filter(([id, parcels]) => {
      const status = byId.get(id)?.status;
      return (
        (status === OrderStatus.CANCELLED || status === OrderStatus.FAILED) &&
        parcels.some((p) => !p.pickedUp)
      );
    })
    .map(([id]) => id);
  checks.push(
    check(
      'no order half-compensated (stock, payment, booking)',
      [
        ...moneyWrong,
        ...heldStock.map((r) => `${r.id} (${r.status}) reservation ${r.reservation}`),
        ...liveShipments.map((r) => `${r.id} (${r.status}) shipment ${r.status}`),
        ...bookedButCancelled.map((id) => `${id} still booked at the courier`),
      ],
      'every cancelled, failed or returned order gave back stock, money and booking',
      'problems',
    ),
  );

  // 5. Stock reconciles: reserved = open reservations; on hand = start − shipped + restocked.
  const stock = await sql<{ sku: string; on_hand: number; reserved: number; open: number; shipped: number }>`
    select i.sku, i.on_hand, i.reserved,
      coalesce(sum(r.quantity) filter (where r.status = 'RESERVED'), 0)::int as open,
      coalesce(sum(r.quantity) filter (where r.status = 'CONSUMED'), 0)::int as shipped
    from inventory_items i left join inventory_reservations r on r.sku = i.sku
    group by i.sku, i.on_hand, i.reserved`.execute(db);
  const stockWrong = stock.rows
    .filter((r) => r.reserved !== r.open || r.on_hand !== input.initialStock - r.shipped)
    .map(
      (r) =>
        `${r.sku}: on_hand ${r.on_hand} (expected ${input.initialStock - r.shipped}), reserved ${r.reserved} (open ${r.open})`,
    );
  checks.push(
    check(
      'stock reconciles with the orders',
      stockWrong,
      stock.rows
        .map((r) => `${r.sku} ${r.on_hand} on hand, ${r.shipped} shipped, ${r.reserved} reserved`)
        .join('; '),
      'skus off',
    ),
  );
  return checks;
}

export function summarise(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}
