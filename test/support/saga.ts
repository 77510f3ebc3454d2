/**
 * The stack a saga test runs on: the file's stack (test/support/stack.ts: a fresh database,
 * the courier and payment simulators over HTTP, a real worker on the shared Temporal dev
 * server) with orders placed straight on the worker. After each test the workflows it
 * started are terminated, the stock must reconcile and the money ledger of the orders it
 * placed must hold (devstack/ledger.ts).
 */
import { cancelOrderUpdate } from '../../src/workflows/contract';
import { eventually } from './eventually';
import type { NotificationTransport } from '../../src/notifications/transport';
import type { CallKind } from '../../simulators/courier/stats';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import type { PollPolicy } from '../../src/domain/polling';
import type { TestDatabase } from './db';
import { ADDRESS } from './shopper';
import {
  DECLINED_PAYMENT,
  GOOD_PAYMENT,
  startOrder,
  type PlacedOrder,
  type PlaceOrderOptions,
} from './orders';
import { expectBooksBalance } from './books';
import { useStack, type Stack, type StackOptions } from './stack';
import { type TestWorker, uniqueId } from './temporal';

export {
  ADDRESS,
  DECLINED_PAYMENT,
  GOOD_PAYMENT,
  expectBooksBalance,
  type PlacedOrder,
  type PlaceOrderOptions,
};

/** What the shopper's cancel says (the shop's "cancel order" button). */
export const SHOPPER_CANCEL = { requestedBy: 'customer:cus_1', reason: 'changed my mind' } as const;

/**
 * An order for a kettle sku of its own: `onHand` units put in stock first (default 5), then
 * `quantity` (default 1) ordered. `second` adds a mug line of its own sku (also `onHand` in
 * stock) shipped from another place: a second parcel.
 */
export interface OrderInStockOptions extends Omit<Partial<PlaceOrderOptions>, 'sku' | 'second'> {
  onHand?: number;
  second?: { quantity: number; scenario: ScenarioName };
}

export interface OrderInStock extends PlacedOrder {
  sku: string;
  /** The second line's sku, when the order has one. */
  secondSku?: string;
}

/** The courier simulator's native calls of one kind counted from when it was made. */
export interface CourierCallCount {
  /** Calls since. */
  (): number;
  /** Waits until at least `n` calls were made since. */
  atLeast(n: number, timeoutMs?: number): Promise<number>;
}

export interface SagaStack {
  readonly database: TestDatabase;
  readonly couriers: Stack['couriers'];
  readonly payments: Stack['payments'];
  readonly worker: TestWorker;
  /** The API on the worker's queues, when the file asked for one. */
  readonly api: Stack['api'];
  /** Hands a workflow to the stack: terminated after the test if still open. */
  started: Stack['started'];
  /** Puts `onHand` units of a new sku in stock. */
  stock(sku: string, onHand: number): Promise<void>;
  /** Creates the order row and starts its saga; each parcel plays its scenario at the courier. */
  placeOrder(opts: PlaceOrderOptions): Promise<PlacedOrder>;
  /** Stocks a sku of the order's own and places the order (see OrderInStockOptions). */
  orderInStock(opts?: OrderInStockOptions): Promise<OrderInStock>;
  /** Waits until the order's row has `status`; answers the row. */
  orderAt(orderId: string, status: string): ReturnType<typeof orderRowOf>;
  /** Waits until the order's first parcel has `status`; answers its row. */
  parcelAt(orderId: string, status: string): Promise<Awaited<ReturnType<typeof shipmentsOf>>[number]>;
  /** Counts the courier's native calls of `kind` from now on. */
  courierCalls(kind: CallKind): CourierCallCount;
  /**
   * How the money and the stock ended: the payment rows' statuses are `[status]` (and, for
   * CAPTURED, the first captured the order's total) and the sku has `onHand` units, none reserved.
   */
  expectSettled(order: OrderInStock, status: 'CAPTURED' | 'VOIDED', onHand: number): Promise<void>;
  /** The courier collects the parcel: it plays `delivered` from 10 courier hours in (picked up). */
  collectAtCourier(trackingNumber: string): void;
  orderRow(id: string): ReturnType<typeof orderRowOf>;
  paymentRows(orderId: string): ReturnType<typeof paymentRowsOf>;
  item(sku: string): ReturnType<typeof itemOf>;
  shipments(orderId: string): ReturnType<typeof shipmentsOf>;
  /** The notification kinds of an order, oldest first. */
  notifications(orderId: string): Promise<string[]>;
  /**
   * An order whose cancel is parked for an admin: booked, then cancelled while the courier
   * answers its cancel 400. Answers the order, its parcel and the parked item's id.
   */
  parkedCancel(): Promise<
    PlacedOrder & { shipment: Awaited<ReturnType<typeof shipmentsOf>>[number]; itemId: string }
  >;
}

const orderRowOf = (t: TestDatabase, id: string) =>
  t.db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const paymentRowsOf = (t: TestDatabase, orderId: string) =>
  t.db.selectFrom('payments').selectAll().where('order_id', '=', orderId).execute();
const itemOf = (t: TestDatabase, sku: string) =>
  t.db.selectFrom('inventory_items').selectAll().where('sku', '=', sku).executeTakeFirstOrThrow();
const shipmentsOf = (t: TestDatabase, orderId: string) =>
  t.db.selectFrom('shipments').selectAll().where('order_id', '=', orderId).orderBy('id').execute();

/** A cancel update the workflow refused because the courier already has a parcel. */
export function expectPickedUpRefusal(refusal: unknown): void {
  expect((refusal as Error & { cause?: Error }).cause?.message).toMatch(/^ALREADY_PICKED_UP: /);
}

export function useSagaStack(
  opts: {
    notifications?: () => NotificationTransport;
    api?: StackOptions['api'];
    /** The worker's poll policy and daily budget (what parcels without an order, e.g. imported, run on). */
    worker?: { pollPolicy?: PollPolicy; dailyBudget?: number; everyCourier?: boolean };
  } = {},
): SagaStack {
  /** Orders placed by the running test: the ledger is checked over them when it ends. */
  const placed: string[] = [];
  const stack = useStack({
    worker: { ...opts.worker, ...(opts.notifications ? { notifications: opts.notifications } : {}) },
    // Checked below over exactly the orders placed, started straight on the worker.
    ledger: false,
    ...(opts.api ? { api: opts.api } : {}),
    // Stock must reconcile with active orders after every scenario, and the money with what
    // was delivered: every saga test ends by checking the ledger of the orders it placed.
    afterEachTest: () => expectBooksBalance(stack, placed.splice(0)),
  });

  async function placeOrder(opts: PlaceOrderOptions): Promise<PlacedOrder> {
    // Long enough for the five booking attempts the booking-failure tests count, short enough to fail.
    const order = await startOrder(stack, {
      bookingRetryWindowMs: 30_000,
      settleRetryWindowMs: 60_000,
      ...opts,
    });
    placed.push(order.orderId);
    return order;
  }

  async function orderInStock({ onHand = 5, quantity = 1, second, ...opts }: OrderInStockOptions = {}) {
    const sku = uniqueId('KETTLE');
    await sagaStack.stock(sku, onHand);
    const secondSku = second ? uniqueId('MUG') : undefined;
    if (secondSku) await sagaStack.stock(secondSku, onHand);
    const order = await placeOrder({
      ...opts,
      sku,
      quantity,
      ...(second && secondSku ? { second: { ...second, sku: secondSku } } : {}),
    });
    return { ...order, sku, ...(secondSku ? { secondSku } : {}) };
  }

  async function parcelAt(orderId: string, status: string) {
    const [shipment] = await eventually(
      () => shipmentsOf(stack.database, orderId),
      (rows) => rows[0]?.status === status,
    );
    return shipment!;
  }

  function courierCalls(kind: CallKind): CourierCallCount {
    const now = () => stack.couriers.backend.stats.snapshot().formats.native.byKind[kind];
    const before = now();
    const since = () => now() - before;
    return Object.assign(since, {
      atLeast: (n: number, timeoutMs?: number) =>
        eventually(
          async () => since(),
          (c) => c >= n,
          timeoutMs,
        ),
    });
  }

  async function expectSettled(order: OrderInStock, status: 'CAPTURED' | 'VOIDED', onHand: number) {
    const payments = await paymentRowsOf(stack.database, order.orderId);
    if (status === 'CAPTURED')
      expect(payments[0]).toMatchObject({ status: 'CAPTURED', amount_captured: order.total });
    else expect(payments.map((p) => p.status)).toEqual([status]);
    expect(await itemOf(stack.database, order.sku)).toMatchObject({ on_hand: onHand, reserved: 0 });
  }

  async function parkedCancel() {
    const order = await orderInStock({ scenario: 'never_picked_up' });
    const shipment = await parcelAt(order.orderId, 'INFO_RECEIVED');
    stack.couriers.backend.answers.set({
      operation: 'cancel',
      status: 400,
      trackingNumber: shipment.tracking_number,
    });
    await order.handle.executeUpdate(cancelOrderUpdate, {
      args: [{ requestedBy: 'admin:alice', reason: 'fraud check' }],
    });
    return { ...order, shipment, itemId: `cancel_booking:${shipment.id}` };
  }

  const sagaStack: SagaStack = {
    get database() {
      return stack.database;
    },
    get couriers() {
      return stack.couriers;
    },
    get payments() {
      return stack.payments;
    },
    get worker() {
      return stack.worker;
    },
    get api() {
      return stack.api;
    },
    started: (handle) => stack.started(handle),
    async stock(sku, onHand) {
      await stack.database.db
        .insertInto('inventory_items')
        .values({ sku, name: `Item ${sku}`, on_hand: onHand, low_stock_threshold: 1 })
        .execute();
    },
    placeOrder,
    orderInStock,
    orderAt: (orderId, status) =>
      eventually(
        () => orderRowOf(stack.database, orderId),
        (o) => o.status === status,
      ),
    parcelAt,
    courierCalls,
    expectSettled,
    collectAtCourier(trackingNumber) {
      stack.couriers.backend.register({
        trackingNumber,
        scenario: 'delivered',
        format: 'native',
        ageMs: 10 * 3_600_000,
      });
    },
    orderRow: (id) => orderRowOf(stack.database, id),
    paymentRows: (orderId) => paymentRowsOf(stack.database, orderId),
    item: (sku) => itemOf(stack.database, sku),
    shipments: (orderId) => shipmentsOf(stack.database, orderId),
    async notifications(orderId) {
      const rows = await stack.database.db
        .selectFrom('notifications')
        .select('kind')
        .where('order_id', '=', orderId)
        .orderBy('id')
        .execute();
      return rows.map((n) => n.kind);
    },
    parkedCancel,
  };
  return sagaStack;
}
