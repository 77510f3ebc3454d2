/**
 * The stack a saga test runs on: the file's stack (test/support/stack.ts: a fresh database,
 * the courier and payment simulators over HTTP, a real worker on the shared Temporal dev
 * server) with orders placed straight on the worker. After each test the workflows it
 * started are terminated, the stock must reconcile and the money ledger of the orders it
 * placed must hold (devstack/ledger.ts).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { CourierCode } from '../../src/couriers/types';
import { checkLedger } from '../../devstack/ledger';
import { stockReconciliation } from '../../src/inventory/queries';
import type { NotificationTransport } from '../../src/notifications/transport';
import { insertOrder } from '../../src/orders/queries';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import {
  orderShipmentId,
  orderWorkflowId,
  type OrderWorkflowInput,
  type PollPolicy,
} from '../../src/workflows/contract';
import type { orderWorkflow } from '../../src/workflows/order';
import type { TestDatabase } from './db';
import { ADDRESS } from './shopper';
import { useStack, type Stack } from './stack';
import { fastPolicy, uniqueId, type TestWorker } from './temporal';

/** The payment simulator's test tokens (simulators/payment/state.ts TEST_TOKENS): never card numbers. */
export const GOOD_PAYMENT = { token: 'tok_visa' };
export const DECLINED_PAYMENT = { token: 'tok_chargeDeclined' };
export { ADDRESS };

export interface PlaceOrderOptions {
  sku: string;
  quantity: number;
  payment?: OrderWorkflowInput['payment'];
  scenario?: ScenarioName;
  policy?: PollPolicy;
  bookingRetryWindowMs?: number;
  settleRetryWindowMs?: number;
  /** A second line shipped from another place: a second parcel with its own lifecycle. */
  second?: { sku: string; quantity: number; scenario: ScenarioName };
  /**
   * Pre-book each parcel at the courier with its scenario (default true). An order that never
   * books (declined, out of stock, booking refused) must not: the pre-booking would be a
   * booking the ledger finds live with no order behind it.
   */
  prebook?: boolean;
}

export interface PlacedOrder {
  orderId: string;
  handle: WorkflowHandle<typeof orderWorkflow>;
  total: number;
}

export interface SagaStack {
  readonly database: TestDatabase;
  readonly couriers: Stack['couriers'];
  readonly payments: Stack['payments'];
  readonly worker: TestWorker;
  /** Puts `onHand` units of a new sku in stock. */
  stock(sku: string, onHand: number): Promise<void>;
  /** Creates the order row and starts its saga; each parcel plays its scenario at the courier. */
  placeOrder(opts: PlaceOrderOptions): Promise<PlacedOrder>;
  /** The courier collects the parcel: it plays `delivered` from 10 courier hours in (picked up). */
  collectAtCourier(trackingNumber: string): void;
  orderRow(id: string): ReturnType<typeof orderRowOf>;
  paymentRows(orderId: string): ReturnType<typeof paymentRowsOf>;
  item(sku: string): ReturnType<typeof itemOf>;
  shipments(orderId: string): ReturnType<typeof shipmentsOf>;
  /** The notification kinds of an order, oldest first. */
  notifications(orderId: string): Promise<string[]>;
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

export function useSagaStack(opts: { notifications?: () => NotificationTransport } = {}): SagaStack {
  /** Orders placed by the running test: the ledger is checked over them when it ends. */
  const placed: string[] = [];
  const stack = useStack({
    worker: opts.notifications ? { notifications: opts.notifications } : {},
    // Stock must reconcile with active orders after every scenario, and the money with what
    // was delivered: every saga test ends by checking the ledger of the orders it placed.
    async afterEachTest() {
      expect(await stockReconciliation(stack.database.db)).toEqual([]);
      const ledger = await checkLedger({
        db: stack.database.db,
        payments: stack.payments,
        courier: stack.couriers,
        orderIds: placed.splice(0),
      });
      expect(ledger.violations).toEqual([]);
    },
  });

  async function placeOrder(opts: PlaceOrderOptions): Promise<PlacedOrder> {
    const orderId = uniqueId('ord');
    const lines = [
      {
        lineNo: 1,
        sku: opts.sku,
        name: 'Kettle',
        quantity: opts.quantity,
        unitAmount: 4_990,
        shipFrom: 'main',
      },
      ...(opts.second
        ? [
            {
              lineNo: 2,
              sku: opts.second.sku,
              name: 'Mug',
              quantity: opts.second.quantity,
              unitAmount: 1_500,
              shipFrom: 'north',
            },
          ]
        : []),
    ];
    const total = await insertOrder(stack.database.db, {
      id: orderId,
      number: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      email: 'aisyah@example.com',
      currency: 'MYR',
      courier: CourierCode.SIMULATOR,
      shippingAddress: ADDRESS,
      lines: lines.map(({ shipFrom: _place, ...line }) => line),
    });
    // The courier books by reference: pre-book each parcel with the lifecycle this test wants.
    const scenarios = [opts.scenario ?? 'delivered', ...(opts.second ? [opts.second.scenario] : [])];
    if (opts.prebook !== false)
      scenarios.forEach((scenario, i) =>
        stack.couriers.backend.bookParcel(
          'native',
          { reference: orderShipmentId(orderId, i + 1), recipient: { ...ADDRESS }, weightGrams: 500 },
          scenario,
        ),
      );
    const input: OrderWorkflowInput = {
      orderId,
      orderNumber: `WB-${orderId.slice(-8)}`,
      customerId: 'cus_1',
      currency: 'MYR',
      totalAmount: total,
      courier: CourierCode.SIMULATOR,
      lines: lines.map(({ name: _name, ...line }) => line),
      payment: opts.payment ?? GOOD_PAYMENT,
      shipmentPolicy: opts.policy ?? fastPolicy(),
      // Long enough for the five booking attempts the booking-failure tests count, short enough to fail.
      bookingRetryWindowMs: opts.bookingRetryWindowMs ?? 30_000,
      settleRetryWindowMs: opts.settleRetryWindowMs ?? 60_000,
      courierTaskQueue: stack.worker.courierTaskQueue,
    };
    const handle = await stack.worker.client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
      workflowId: orderWorkflowId(orderId),
      taskQueue: stack.worker.taskQueue,
      args: [input],
    });
    stack.started(handle);
    placed.push(orderId);
    return { orderId, handle, total };
  }

  return {
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
    async stock(sku, onHand) {
      await stack.database.db
        .insertInto('inventory_items')
        .values({ sku, name: `Item ${sku}`, on_hand: onHand, low_stock_threshold: 1 })
        .execute();
    },
    placeOrder,
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
  };
}
