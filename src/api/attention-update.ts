/**
 * An admin's retry or resolve of a parked step: the order workflow's `resolveAttention`
 * update, waited for a while. A retry runs the step at the provider or the courier under the
 * step's own retry policy, which can outlast any HTTP wait (an outage being ridden out): that
 * is answered 202 STILL_RUNNING, the update going on, never 503 as if Temporal were down.
 */
import { WorkflowUpdateStage } from '@temporalio/client';
import {
  orderWorkflowId,
  resolveAttentionUpdate,
  type ResolveAttentionRequest,
  type ResolveAttentionResult,
} from '../workflows/contract';
import type { ApiDeps } from './app';
import { ApiError } from './errors';
import { within } from './order-actions';

export async function resolveAttention(
  deps: ApiDeps,
  orderId: string,
  request: ResolveAttentionRequest,
  opts: {
    /** Waits this long for the outcome (ms). */
    withinMs: number;
    /** The update's id: a repeat with it joins the same retry (its outcome once done). */
    updateId?: string;
  },
): Promise<ResolveAttentionResult> {
  const deadline = Date.now() + opts.withinMs;
  const handle = deps.temporal.client.workflow.getHandle(orderWorkflowId(orderId));
  const update = await deps.temporal.connection.withDeadline(deadline, () =>
    handle.startUpdate(resolveAttentionUpdate, {
      ...(opts.updateId ? { updateId: opts.updateId } : {}),
      args: [request],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    }),
  );
  const outcome = update.result();
  outcome.catch(() => undefined); // still awaited below; its end after our answer is the workflow's
  const result = await within(outcome, Math.max(0, deadline - Date.now()), null);
  if (result === null) {
    throw new ApiError(
      202,
      'STILL_RUNNING',
      `the ${request.action} of ${request.itemId} is still running (the step's own retries at the provider or courier); its outcome shows on GET /v1/admin/attention and on the order${opts.updateId ? ', or send this request again with the same Idempotency-Key' : ''}`,
    );
  }
  return result;
}
