/**
 * How many workflow tasks an order takes (bench/saga.ts): a few warm-up orders placed one by
 * one, their workflow tasks counted from their real histories once the forward path is done.
 */
import { temporal } from '@temporalio/proto';
import { sql } from 'kysely';
import { orderWorkflowId, shipmentWorkflowId } from '../../src/workflows/contract';
import { sleep } from './measure';
import { placeOrder, timelines, type Run } from './saga-shop';
import type { ProcessStack } from './stack';

const WARM_UP_ORDERS = 3;

export interface OrderTasks {
  /** WorkflowTaskCompleted events of each warm-up order once its forward path was done. */
  perOrder: number[];
  /** The same, of each order's shipment workflow(s) by then (not counted in tasks per order). */
  perOrderShipments: number[];
  /** The median order's. */
  tasks: number;
}

const WORKFLOW_TASK_COMPLETED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED;

/** A workflow's history once nothing is in flight and it has not grown for a second and a half. */
async function quietHistory(stack: ProcessStack, workflowId: string) {
  const handle = stack.temporal.client.workflow.getHandle(workflowId);
  const deadline = Date.now() + 60_000;
  let length = -1;
  for (;;) {
    const [history, description] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    const events = history.events ?? [];
    const idle =
      (description.raw.pendingActivities ?? []).length === 0 && !description.raw.pendingWorkflowTask;
    if (idle && events.length === length) return events;
    if (Date.now() > deadline) throw new Error(`${workflowId} did not settle within a minute`);
    length = idle ? events.length : -1;
    await sleep(1_500);
  }
}

const workflowTasks = (events: temporal.api.history.v1.IHistoryEvent[]) =>
  events.filter((e) => e.eventType === WORKFLOW_TASK_COMPLETED).length;

/** Places a few orders one by one and counts their workflow tasks from their real histories. */
export async function countOrderTasks(run: Run): Promise<OrderTasks> {
  const perOrder: number[] = [];
  const perOrderShipments: number[] = [];
  for (let n = 0; n < WARM_UP_ORDERS; n++) {
    const placed = await placeOrder(run.stack, run.token, `saga-${run.runId}-warm-${n}`, n);
    if (placed.status !== 202 || !placed.orderId)
      throw new Error(`warm-up order answered ${placed.status} ${placed.error ?? ''}`);
    const orderId = placed.orderId;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await timelines(run.stack, [orderId]);
      if (row?.confirmedAt != null) break;
      if (Date.now() > deadline)
        throw new Error(`warm-up order ${orderId} was not confirmed within a minute`);
      await sleep(250);
    }
    const events = await quietHistory(run.stack, orderWorkflowId(orderId));
    perOrder.push(workflowTasks(events));
    const { rows } = await sql<{ id: string }>`select id from shipments where order_id = ${orderId}`.execute(
      run.stack.db,
    );
    let shipments = 0;
    for (const { id } of rows)
      shipments += workflowTasks(await quietHistory(run.stack, shipmentWorkflowId(id)));
    perOrderShipments.push(shipments);
  }
  const sorted = [...perOrder].sort((a, b) => a - b);
  return { perOrder, perOrderShipments, tasks: sorted[Math.floor(sorted.length / 2)]! };
}
