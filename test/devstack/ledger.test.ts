/**
 * The money ledger on real Postgres and the real courier and payment simulators: ledgers
 * built by hand (read-model rows written as the saga writes them, money and bookings moved
 * through the simulators) that balance, and each rule's violation caught.
 */
import { sql } from 'kysely';
import { checkLedger, type LedgerInput } from '../../devstack/ledger';
import { LedgerRule } from '../../devstack/ledger-rules';
import { ShipmentStatus } from '../../src/domain/status';
import { consumeStock, releaseStock, reserveStock, restockReturned } from '../../src/read-model/inventory';
import { insertOrder } from '../../src/read-model/orders';
import { createHttpPaymentProvider } from '../../src/payments/http-provider';
import { startPaymentSimulator, type RunningPaymentSimulator } from '../../simulators/payment/server';
import { paymentIdempotencyKey, type PaymentProvider, type PaymentSummary } from '../../src/payments/types';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';
import { orderShipmentId, OrderStatus } from '../../src/workflows/contract';
import { freshDatabase, type TestDatabase } from '../support/db';
import { ADDRESS } from '../support/shopper';
import { uniqueId } from '../support/temporal';

const PRICE = 4_990;
const STOCK = 10;
const RECIPIENT = { ...ADDRESS, phone: null };
const DAY = 24 * 3_600_000;

describe('the money ledger', () => {
  let database: TestDatabase;
  let courier: RunningSimulator;
  let payments: RunningPaymentSimulator;
  let provider: PaymentProvider;

  beforeAll(async () => {
    database = await freshDatabase();
    courier = await startSimulator({ port: 0, timeScale: 1 });
    payments = await startPaymentSimulator({ port: 0 });
    provider = createHttpPaymentProvider({ baseUrl: payments.url, timeoutMs: 2_000 });
  });

  afterAll(async () => {
    await courier?.stop();
    await payments?.stop();
    await database?.drop();
  });

  const ledger = (orderIds: string[], more: Partial<LedgerInput> = {}) =>
    checkLedger({ db: database.db, payments, courier, orderIds, initialStock: STOCK, ...more });

  // --- Building a ledger by hand ---------------------------------------------------------

  /** An order of one unit of a sku of its own, its stock reserved, in `status`. */
  async function order(status: string): Promise<{ orderId: string; sku: string }> {
    const orderId = uniqueId('ord');
    const sku = uniqueId('SKU').toUpperCase();
    await database.db
      .insertInto('inventory_items')
      .values({ sku, name: `Item ${sku}`, on_hand: STOCK, low_stock_threshold: 0 })
      .execute();
    await insertOrder(database.db, {
      id: orderId,
      number: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      email: 'aisyah@example.com',
      currency: 'MYR',
      courier: 'simulator',
      shippingAddress: { ...RECIPIENT, phone: null },
      lines: [{ lineNo: 1, sku, name: 'Kettle', quantity: 1, unitAmount: PRICE }],
    });
    await reserveStock(database.db, { orderId, lines: [{ sku, quantity: 1 }] });
    await database.db.updateTable('orders').set({ status }).where('id', '=', orderId).execute();
    return { orderId, sku };
  }

  /**
   * Books the order's parcel at the courier and records it; `collected`: the courier plays
   * `scenario` from `ageMs` in (past its pickup), else it only ever has the manifest.
   */
  async function ship(
    orderId: string,
    opts: { status: ShipmentStatus; collected: { scenario: ScenarioName; ageMs: number } | null },
  ): Promise<string> {
    const shipmentId = orderShipmentId(orderId, 1);
    const { trackingNumber } = courier.backend.bookParcel(
      'native',
      { reference: shipmentId, recipient: RECIPIENT, weightGrams: 500 },
      'never_picked_up',
    );
    if (opts.collected) courier.backend.register({ trackingNumber, ...opts.collected });
    await database.db
      .insertInto('shipments')
      .values({
        id: shipmentId,
        order_id: orderId,
        courier: 'simulator',
        tracking_number: trackingNumber,
        status: opts.status,
        picked_up_at: opts.collected ? new Date() : null,
      })
      .execute();
    await database.db
      .updateTable('order_items')
      .set({ shipment_id: shipmentId })
      .where('order_id', '=', orderId)
      .execute();
    return trackingNumber;
  }

  /** An authorisation of the order's total at the provider, and its read-model row. */
  async function authorise(orderId: string): Promise<string> {
    const key = paymentIdempotencyKey(orderId, 'authorise');
    const result = await provider.authorise({
      idempotencyKey: key,
      orderId,
      amount: PRICE,
      currency: 'MYR',
      card: { token: 'tok_visa' },
    });
    if (result.status !== 'AUTHORISED') throw new Error(`declined: ${result.declineCode}`);
    await database.db
      .insertInto('payments')
      .values({
        id: key,
        order_id: orderId,
        idempotency_key: key,
        provider: 'simulator',
        provider_ref: result.providerRef,
        status: result.status,
        currency: 'MYR',
        amount_authorised: PRICE,
        decline_code: null,
      })
      .execute();
    return result.providerRef;
  }

  /** The read model's row follows the provider's answer, as the payment activities do. */
  async function mirror(orderId: string, summary: PaymentSummary): Promise<void> {
    await database.db
      .updateTable('payments')
      .set({
        status: summary.status,
        amount_captured: summary.amountCaptured,
        amount_refunded: summary.amountRefunded,
      })
      .where('order_id', '=', orderId)
      .execute();
  }

  const capture = async (orderId: string, providerRef: string) =>
    mirror(
      orderId,
      await provider.capture({
        idempotencyKey: paymentIdempotencyKey(orderId, 'capture'),
        providerRef,
        amount: PRICE,
      }),
    );
  const voidIt = async (orderId: string, providerRef: string) =>
    mirror(
      orderId,
      await provider.void({ idempotencyKey: paymentIdempotencyKey(orderId, 'void'), providerRef }),
    );
  const refund = async (orderId: string, providerRef: string) =>
    mirror(
      orderId,
      await provider.refund({
        idempotencyKey: paymentIdempotencyKey(orderId, 'refund'),
        providerRef,
        amount: PRICE,
      }),
    );

  /** Delivered and paid for: captured at pickup (or, `without` it, voided), stock left with the parcel. */
  async function delivered(without?: 'capture'): Promise<{ orderId: string; sku: string }> {
    const { orderId, sku } = await order(OrderStatus.DELIVERED);
    const ref = await authorise(orderId);
    await ship(orderId, {
      status: ShipmentStatus.DELIVERED,
      collected: { scenario: 'delivered', ageMs: 5 * DAY },
    });
    if (without === 'capture') await voidIt(orderId, ref);
    else await capture(orderId, ref);
    await consumeStock(database.db, { orderId, skus: [sku] });
    return { orderId, sku };
  }

  /**
   * Cancelled before pickup: booking cancelled at the courier, authorisation voided, stock
   * released; or with one of those compensations left out.
   */
  async function cancelled(
    without?: 'void' | 'courier-cancel' | 'release',
  ): Promise<{ orderId: string; sku: string; trackingNumber: string; ref: string }> {
    const { orderId, sku } = await order(OrderStatus.CANCELLED);
    const ref = await authorise(orderId);
    const trackingNumber = await ship(orderId, { status: ShipmentStatus.CANCELLED, collected: null });
    if (without !== 'courier-cancel')
      expect(courier.backend.cancel('native', trackingNumber)).toBe('cancelled');
    if (without !== 'void') await voidIt(orderId, ref);
    if (without !== 'release') await releaseStock(database.db, { orderId });
    return { orderId, sku, trackingNumber, ref };
  }

  // --- Ledgers that balance ------------------------------------------------------------------

  it('balances for a delivered, a returned, a cancelled and a declined order', async () => {
    const { orderId: deliveredId } = await delivered();

    const returned = await order(OrderStatus.RETURNED);
    const returnedRef = await authorise(returned.orderId);
    await ship(returned.orderId, {
      status: ShipmentStatus.RETURNED,
      collected: { scenario: 'return_to_origin', ageMs: 7 * DAY },
    });
    await capture(returned.orderId, returnedRef);
    await consumeStock(database.db, { orderId: returned.orderId });
    await restockReturned(database.db, { orderId: returned.orderId, skus: [returned.sku] });
    await refund(returned.orderId, returnedRef);

    const { orderId: cancelledId } = await cancelled();

    // Declined at authorisation: nothing at the provider, no parcel, stock released.
    const declined = await order(OrderStatus.FAILED);
    await releaseStock(database.db, { orderId: declined.orderId });

    const result = await ledger([deliveredId, returned.orderId, cancelledId, declined.orderId]);
    expect(result).toEqual({ ok: true, orders: 4, violations: [], unsettled: [], notes: [] });
  });

  it('lists orders in flight or parked for an admin as unsettled, not as violations', async () => {
    const inFlight = await order(OrderStatus.SHIPPED);
    const parked = await order('NEEDS_ATTENTION');
    await authorise(parked.orderId); // still held: not judged while an admin has it

    const result = await ledger([inFlight.orderId, parked.orderId, 'ord_never_created']);
    expect(result.ok).toBe(true);
    expect(result.orders).toBe(0);
    expect(result.unsettled).toEqual([
      { orderId: inFlight.orderId, status: OrderStatus.SHIPPED },
      { orderId: parked.orderId, status: 'NEEDS_ATTENTION' },
      { orderId: 'ord_never_created', status: null },
    ]);
  });

  it('reads the simulators through their control APIs when it only has their URLs', async () => {
    const { orderId: deliveredId } = await delivered();
    const { orderId: cancelledId } = await cancelled();
    const result = await ledger([deliveredId, cancelledId], {
      payments: { url: payments.url },
      courier: { url: courier.url },
    });
    expect(result.violations).toEqual([]);
    expect(result.orders).toBe(2);
    expect(result.notes).toEqual([expect.stringMatching(/bookings the read model never recorded/)]);
  });

  // --- Each rule's violation -------------------------------------------------------------------

  it('catches a capture with no collected parcel', async () => {
    // The courier never collected the parcel (it expired), yet the money was taken.
    const { orderId } = await order(OrderStatus.FAILED);
    const ref = await authorise(orderId);
    const trackingNumber = await ship(orderId, { status: ShipmentStatus.EXPIRED, collected: null });
    courier.backend.cancel('native', trackingNumber);
    await capture(orderId, ref);
    await releaseStock(database.db, { orderId });

    const result = await ledger([orderId]);
    expect(result.ok).toBe(false);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.MONEY,
        detail: `FAILED: captured 49.90 − refunded 0.00 = 49.90 kept, but the lines delivered and kept are worth 0.00 (parcels: ${orderId}-p1 EXPIRED)`,
      },
      {
        orderId,
        rule: LedgerRule.CAPTURE_AFTER_PICKUP,
        detail: `FAILED: ${ref} captured 49.90, but no parcel of the order was collected (parcels: ${orderId}-p1 EXPIRED)`,
      },
    ]);
  });

  it('catches a capture before any pickup on an order still in flight', async () => {
    // Booked, the courier has not come: the money must wait for the parcel.
    const { orderId } = await order(OrderStatus.CONFIRMED);
    await ship(orderId, { status: ShipmentStatus.INFO_RECEIVED, collected: null });
    const ref = await authorise(orderId);
    await capture(orderId, ref);

    const result = await ledger([orderId]);
    expect(result.unsettled).toEqual([{ orderId, status: OrderStatus.CONFIRMED }]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.CAPTURE_AFTER_PICKUP,
        detail: `CONFIRMED: ${ref} captured 49.90, but no parcel of the order was collected (parcels: ${orderId}-p1 INFO_RECEIVED)`,
      },
    ]);
  });

  it('leaves a capture made outside Waybill (the provider’s dashboard) to the money rule', async () => {
    // The shop captured by hand before pickup, then cancelled: Waybill refunded it in full.
    const { orderId, ref } = await cancelled('void');
    const byHand = await provider.capture({
      idempotencyKey: `dashboard-${orderId}`,
      providerRef: ref,
      amount: PRICE,
    });
    await mirror(orderId, byHand);
    await refund(orderId, ref);

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([]);
  });

  it('catches a capture before any pickup that was refunded since: the sums balance, the charge still happened', async () => {
    // Cancelled before pickup (booking cancelled, stock released), but captured, then refunded.
    const { orderId, ref } = await cancelled('void');
    await capture(orderId, ref);
    await refund(orderId, ref);

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.CAPTURE_AFTER_PICKUP,
        detail: `CANCELLED: ${ref} captured 49.90, but no parcel of the order was collected (parcels: ${orderId}-p1 CANCELLED)`,
      },
    ]);
  });

  it('catches a second capture on an order still in flight (judged before an order settles)', async () => {
    const { orderId } = await order(OrderStatus.SHIPPED);
    await ship(orderId, {
      status: ShipmentStatus.IN_TRANSIT,
      collected: { scenario: 'delivered', ageMs: DAY },
    });
    await capture(orderId, await authorise(orderId));
    // A second payment of the same order, captured too.
    const again = await provider.authorise({
      idempotencyKey: `${orderId}:authorise-again`,
      orderId,
      amount: PRICE,
      currency: 'MYR',
      card: { token: 'tok_visa' },
    });
    if (again.status !== 'AUTHORISED') throw new Error('the second authorisation was declined');
    await provider.capture({
      idempotencyKey: `${orderId}:capture-again`,
      providerRef: again.providerRef,
      amount: PRICE,
    });

    const result = await ledger([orderId]);
    expect(result.orders).toBe(0);
    expect(result.unsettled).toEqual([{ orderId, status: OrderStatus.SHIPPED }]);
    expect(result.violations).toEqual([
      { orderId, rule: LedgerRule.CAPTURE_ONCE, detail: expect.stringMatching(/^2 payments captured: /) },
    ]);
  });

  it('catches money kept for a delivered order that was never captured', async () => {
    const { orderId } = await delivered('capture');

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      expect.objectContaining({
        orderId,
        rule: LedgerRule.MONEY,
        detail: expect.stringMatching(/worth 49\.90/),
      }),
    ]);
  });

  it('catches an authorisation left held', async () => {
    const { orderId, ref } = await cancelled('void');

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.AUTHORISATION_HELD,
        detail: `CANCELLED with payment ${ref} still authorised`,
      },
    ]);
  });

  it('catches a live booking for a cancelled order, in memory and through the control API', async () => {
    const { orderId, trackingNumber } = await cancelled('courier-cancel');

    const expected = [
      {
        orderId,
        rule: LedgerRule.LIVE_BOOKING,
        detail: `CANCELLED with a live booking ${trackingNumber} (${orderId}-p1; read model: CANCELLED): never collected, never cancelled`,
      },
    ];
    expect((await ledger([orderId])).violations).toEqual(expected);
    expect((await ledger([orderId], { courier: { url: courier.url } })).violations).toEqual(expected);
  });

  it('catches a booking the read model never recorded (its answer was lost)', async () => {
    const { orderId } = await cancelled();
    // A second booking the courier holds for this order, which the saga never heard of.
    const lost = courier.backend.bookParcel(
      'native',
      { reference: orderShipmentId(orderId, 2), recipient: RECIPIENT, weightGrams: 500 },
      'never_picked_up',
    );

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.LIVE_BOOKING,
        detail: `CANCELLED with a live booking ${lost.trackingNumber} (${orderId}-p2; read model: no shipment row): never collected, never cancelled`,
      },
    ]);
  });

  it('catches unreleased stock', async () => {
    const { orderId, sku } = await cancelled('release');

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      { orderId, rule: LedgerRule.STOCK, detail: `CANCELLED still holds 1 × ${sku} reserved` },
    ]);
  });

  it('catches stock consumed for a parcel that never left, and a sku whose counters are off', async () => {
    const { orderId, sku } = await cancelled('release');
    await consumeStock(database.db, { orderId });
    // A counter nobody moved through a reservation.
    await sql`update inventory_items set reserved = reserved + 2 where sku = ${sku}`.execute(database.db);

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.STOCK,
        detail: `1 × ${sku} consumed, but no collected parcel that stayed out carries it`,
      },
      { orderId: null, rule: LedgerRule.STOCK, detail: `${sku}: reserved 2 but reservations hold 0` },
    ]);
  });

  it('catches on-hand stock that does not add up to the starting stock less what left', async () => {
    const { orderId, sku } = await delivered();
    await sql`update inventory_items set on_hand = on_hand + 1 where sku = ${sku}`.execute(database.db);

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId: null,
        rule: LedgerRule.STOCK,
        detail: `${sku}: on_hand 10, expected 9 (10 at the start, 1 left for good)`,
      },
    ]);
  });

  it("catches a read model that disagrees with the provider's books", async () => {
    const { orderId, ref } = await cancelled();
    await database.db
      .updateTable('payments')
      .set({ status: 'AUTHORISED' })
      .where('order_id', '=', orderId)
      .execute();

    const result = await ledger([orderId]);
    expect(result.violations).toEqual([
      {
        orderId,
        rule: LedgerRule.READ_MODEL_PAYMENTS,
        detail: `payment ${ref}: read model AUTHORISED captured 0.00 refunded 0.00, provider VOIDED captured 0.00 refunded 0.00`,
      },
    ]);
  });

  it("judges the read model's payment rows when it has no provider's books", async () => {
    const { orderId } = await cancelled('void');

    const result = await checkLedger({ db: database.db, courier, orderIds: [orderId] });
    expect(result.violations).toEqual([
      expect.objectContaining({ orderId, rule: LedgerRule.AUTHORISATION_HELD }),
    ]);
    expect(result.notes).toEqual([expect.stringMatching(/^no payment provider given/)]);
  });
});
