/**
 * An order started straight on a test stack's worker, as the API would start it after writing
 * the order row: one line from the main warehouse (and optionally a second from another,
 * which makes a second parcel), each parcel pre-booked at the courier simulator with the
 * lifecycle the test wants. The workflow is handed to the stack, which terminates it when the
 * test ends.
 */
import { WithStartWorkflowOperation, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { CourierCode } from '../../src/couriers/types';
import { insertOrder } from '../../src/read-model/orders';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import {
  cancelOrderUpdate,
  orderShipmentId,
  orderWorkflowId,
  type CancelOrderRequest,
  type OrderWorkflowInput,
} from '../../src/workflows/contract';
import type { PollPolicy } from '../../src/domain/polling';
import type { orderWorkflow } from '../../src/workflows/order';
import { orderStaticSummary } from '../../src/workflows/summaries';
import { ADDRESS } from './shopper';
import type { Stack } from './stack';
import { fastPolicy, uniqueId } from './temporal';

/** The payment simulator's test tokens (simulators/payment/state.ts TEST_TOKENS): never card numbers. */
export const GOOD_PAYMENT = { token: 'tok_visa' };
export const DECLINED_PAYMENT = { token: 'tok_chargeDeclined' };

export interface PlaceOrderOptions {
  sku: string;
  quantity: number;
  payment?: OrderWorkflowInput['payment'];
  scenario?: ScenarioName;
  policy?: PollPolicy;
  bookingRetryWindowMs?: number;
  settleRetryWindowMs?: number;
  /** How long the order waits for a dead shipment workflow's tracking to be restarted (default: not at all). */
  trackingRestartWindowMs?: number;
  /** A second line shipped from another place: a second parcel with its own lifecycle. */
  second?: { sku: string; quantity: number; scenario: ScenarioName };
  /**
   * Pre-book each parcel at the courier with its scenario (default true). An order that never
   * books (declined, out of stock, booking refused) must not: the pre-booking would be a
   * booking the ledger finds live with no order behind it.
   */
  prebook?: boolean;
  /** Give the workflow the static summary the API gives it (what the Temporal UI lists). */
  staticSummary?: boolean;
  /** The courier booked (default the simulator's native format; another needs `prebook: false`). */
  courier?: CourierCode;
  /** The recipient's name (default ADDRESS's): `… [scenario:<name>]` picks a new booking's lifecycle. */
  recipientName?: string;
  /** Runs once the order row exists, before its workflow starts (e.g. what a lost first attempt left). */
  beforeStart?: (input: OrderWorkflowInput) => Promise<void>;
  /** A cancel sent with the start (update-with-start): it reaches the run in its first task. */
  cancelAtStart?: CancelOrderRequest;
}

export interface PlacedOrder {
  orderId: string;
  orderNumber: string;
  handle: WorkflowHandle<typeof orderWorkflow>;
  total: number;
  input: OrderWorkflowInput;
}

export async function startOrder(stack: Stack, opts: PlaceOrderOptions): Promise<PlacedOrder> {
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
    courier: opts.courier ?? CourierCode.SIMULATOR,
    shippingAddress: { ...ADDRESS, ...(opts.recipientName ? { name: opts.recipientName } : {}) },
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
    courier: opts.courier ?? CourierCode.SIMULATOR,
    lines: lines.map(({ name: _name, ...line }) => line),
    payment: opts.payment ?? GOOD_PAYMENT,
    shipmentPolicy: opts.policy ?? fastPolicy(),
    ...(opts.bookingRetryWindowMs === undefined ? {} : { bookingRetryWindowMs: opts.bookingRetryWindowMs }),
    ...(opts.settleRetryWindowMs === undefined ? {} : { settleRetryWindowMs: opts.settleRetryWindowMs }),
    ...(opts.trackingRestartWindowMs === undefined
      ? {}
      : { trackingRestartWindowMs: opts.trackingRestartWindowMs }),
    courierTaskQueue: stack.worker.courierTaskQueue,
  };
  await opts.beforeStart?.(input);
  const startOptions = {
    workflowId: orderWorkflowId(orderId),
    taskQueue: stack.worker.taskQueue,
    args: [input] as [OrderWorkflowInput],
    ...(opts.staticSummary ? { staticSummary: orderStaticSummary(input) } : {}),
  };
  let handle: WorkflowHandle<typeof orderWorkflow>;
  if (opts.cancelAtStart) {
    const start = new WithStartWorkflowOperation<typeof orderWorkflow>('orderWorkflow', {
      ...startOptions,
      workflowIdConflictPolicy: 'FAIL',
    });
    await stack.worker.client.workflow.startUpdateWithStart(cancelOrderUpdate, {
      args: [opts.cancelAtStart],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
      startWorkflowOperation: start,
    });
    handle = await start.workflowHandle();
  } else {
    handle = await stack.worker.client.workflow.start<typeof orderWorkflow>('orderWorkflow', startOptions);
  }
  stack.started(handle);
  return { orderId, orderNumber: input.orderNumber, handle, total, input };
}
