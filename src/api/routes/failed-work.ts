/**
 * Failed work (`/v1/admin/failed-work…`): what stopped, listed from Temporal visibility and
 * the read model, and three actions on it, each audited (who, why, what, the result) and
 * idempotent by its Idempotency-Key (the same key and body answer the first result again,
 * and never act twice): retry a parked step of an order (through the order workflow's
 * `resolveAttention` update: the saga decides what runs), restart tracking of a parcel whose
 * shipment workflow died, and reset an order workflow to its last sound point when that is
 * safe (src/api/order-reset.ts). Contract: src/api/schemas/failed-work.ts.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { isTerminal, type ShipmentStatus } from '../../domain/status';
import {
  orderWorkflowId,
  restartTrackingUpdate,
  SHIPMENT_WORKFLOW_TASK_TIMEOUT,
  shipmentWorkflowId,
} from '../../workflows/contract';
import { shipmentSearchAttributes } from '../../workflows/search-attributes';
import type { shipmentWorkflow } from '../../workflows/shipment';
import type { CourierCode } from '../../couriers/types';
import { writeAudit } from '../../read-model/audit';
import { orderExists } from '../../read-model/orders';
import { findShipment } from '../../read-model/shipment-lookups';
import { Permission } from '../access';
import type { ApiDeps } from '../app';
import { actorOf, requireStaff } from '../auth';
import { ApiError, isTemporalUnavailable, temporalUnavailable } from '../errors';
import { failedWorkPage, shipmentStateFrom } from '../failed-work';
import { oncePerKey } from '../idempotency';
import { planOrderReset, resetOrder, tellOfEndedTracking } from '../order-reset';
import { orderNotRunning } from '../order-actions';
import { resolveAttention } from '../attention-update';
import { AUTH_ERRORS, errors, trimmedReason } from '../schemas/admin';
import {
  ActionHeaders,
  ActionReasonBody,
  ActionResult,
  FAILED_WORK_PAGE_DEFAULT,
  FailedWorkPage,
  FailedWorkQuery,
  OrderActionParams,
  RetryStepBody,
  ShipmentActionParams,
} from '../schemas/failed-work';

/** How long an action may take: a retried step runs once at the provider or the courier. */
const ACTION_DEADLINE_MS = 30_000;
const RESTARTABLE = new Set(['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED']);

export type Action = 'retry_step' | 'restart_tracking' | 'reset';
type Outcome = Omit<ActionResult, 'action' | 'subjectId' | 'by' | 'at'>;

/** An action route's contract: Idempotency-Key, the subject in the path, a body with the reason. */
const actionSchema = <P, B>({
  stillRunning,
  ...what
}: {
  summary: string;
  description: string;
  params: P;
  body: B;
  /** The action may outlast the wait: 202 STILL_RUNNING. */
  stillRunning?: true;
}) => ({
  tags: ['admin'],
  ...what,
  headers: ActionHeaders,
  response: {
    200: ActionResult,
    ...errors(...(stillRunning ? [202] : []), 400, ...AUTH_ERRORS, 404, 409, 422, 503),
  },
});

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/** Who may act and the key they sent: per action and actor, so two admins' keys never meet. */
const actionScope = (action: Action, actor: string) => `failed-work:${action}:${actor}`;

/**
 * What an action hands to Temporal for a request (a reset's request id, an update's id): the
 * same for every retry of it, whichever API process takes it.
 */
export const actionRequestKey = (action: Action, actor: string, idempotencyKey: string) =>
  digest(`${actionScope(action, actor)}:${idempotencyKey}`);

export const failedWorkRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  /**
   * Runs an action once per Idempotency-Key: a repeat with the same body answers the stored
   * result (header `idempotent-replayed`), another body 422. Acted or refused, the answer is
   * audited; an outage (503) leaves the key for a retry.
   */
  async function once(
    request: FastifyRequest & { headers: { 'idempotency-key': string } },
    reply: FastifyReply,
    what: { action: Action; subjectType: 'order' | 'shipment'; subjectId: string; reason: string },
    act: (key: string) => Promise<Outcome>,
  ) {
    const by = actorOf(request.principal);
    const scope = actionScope(what.action, by);
    const key = request.headers['idempotency-key'];
    const audit = (result: Record<string, unknown>) =>
      writeAudit(db, [
        {
          actor: by,
          action: `failed_work.${what.action}`,
          subjectType: what.subjectType,
          subjectId: what.subjectId,
          reason: what.reason,
          details: { idempotencyKey: key, ...result },
          dedupeKey: `failed_work:${actionRequestKey(what.action, by, key)}`,
        },
      ]);
    // A refusal is this key's answer too: a repeat gets it again, and it is on record.
    const settles = async (err: unknown) => {
      if (!(err instanceof ApiError) || (err.statusCode !== 404 && err.statusCode !== 409)) return null;
      if (err.statusCode === 409) await audit({ result: 'refused', code: err.code, message: err.message });
      return { status: err.statusCode, body: { error: { code: err.code, message: err.message } } };
    };
    try {
      const answer = await oncePerKey(
        db,
        {
          scope,
          key,
          request: { subject: what.subjectId, body: request.body },
          resourceId: what.subjectId,
          settles,
        },
        async (): Promise<ActionResult> => {
          const outcome = await act(actionRequestKey(what.action, by, key));
          const body: ActionResult = {
            action: what.action,
            subjectId: what.subjectId,
            by,
            at: new Date().toISOString(),
            ...outcome,
          };
          await audit({ result: outcome.outcome, ...outcome });
          return body;
        },
      );
      if (answer.replayed) void reply.header('idempotent-replayed', 'true');
      return reply.code(answer.status).send(answer.body as never);
    } catch (err) {
      if (isTemporalUnavailable(err)) throw temporalUnavailable();
      throw err;
    }
  }

  const requireOrder = async (orderId: string) => {
    if (!(await orderExists(db, orderId))) throw new ApiError(404, 'NOT_FOUND', `no order ${orderId}`);
  };

  /** An action on an order: {@link once}, for an order that exists. */
  const orderAction = (
    request: FastifyRequest & {
      params: { orderId: string };
      body: { reason: string };
      headers: { 'idempotency-key': string };
    },
    reply: FastifyReply,
    action: Action,
    act: (orderId: string, reason: string, key: string) => Promise<Outcome>,
  ) => {
    const { orderId } = request.params;
    const reason = trimmedReason(request.body.reason);
    return once(request, reply, { action, subjectType: 'order', subjectId: orderId, reason }, async (key) => {
      await requireOrder(orderId);
      return act(orderId, reason, key);
    });
  };

  /** The update's refusal (its validator's or its handler's message) as a 409. */
  const refusal = (err: unknown, code: string): unknown => {
    if (err instanceof WorkflowUpdateFailedError) {
      return new ApiError(409, code, (err.cause as Error | undefined)?.message ?? err.message);
    }
    return err;
  };

  app.get(
    '/v1/admin/failed-work',
    {
      onRequest: requireStaff(Permission.READ_FAILED_WORK),
      schema: {
        tags: ['admin'],
        summary:
          'Failed work: workflow runs that stopped, orders parked for an admin, parcels whose sync fails',
        description:
          "One kind per request, each with its own cursor. order_workflow and shipment_workflow come from Temporal visibility (this deployment's task queue; newest close first; `currentRun` says whether the id has run again since); needs_attention and sync_error from the read model (oldest first). A filter that does not apply to the kind is refused with 400.",
        querystring: FailedWorkQuery,
        response: { 200: FailedWorkPage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => failedWorkPage(deps, request.query, request.query.limit ?? FAILED_WORK_PAGE_DEFAULT),
  );

  app.post(
    '/v1/admin/failed-work/orders/:orderId/retry-step',
    {
      onRequest: requireStaff(Permission.RETRY_FAILED_WORK),
      schema: actionSchema({
        summary: 'Retry a parked step of an order in NEEDS_ATTENTION (audited, idempotent)',
        description:
          "Runs the order workflow's `resolveAttention` update with `retry`: the saga runs the step once more by its own rules. 200 with `retried` or `still_failing`; 202 `STILL_RUNNING` when the step is still retrying at the provider or courier after `WAYBILL_ADMIN_ACTION_WAIT` (25 s by default) (the same request with the same Idempotency-Key joins it and answers its outcome once done); 409 when the item is not open (or the order has finished, or stopped). Requires Idempotency-Key: a repeat answers the first result.",
        params: OrderActionParams,
        body: RetryStepBody,
        stillRunning: true,
      }),
    },
    async (request, reply) =>
      orderAction(request, reply, 'retry_step', async (orderId, reason, key) => {
        try {
          const result = await resolveAttention(
            deps,
            orderId,
            { itemId: request.body.itemId, action: 'retry', reason, requestedBy: actorOf(request.principal) },
            { withinMs: deps.config.api.adminActionWaitMs, updateId: `failed-work-retry:${key}` },
          );
          return {
            outcome: result.outcome,
            reason: result.reason,
            workflowId: orderWorkflowId(orderId),
            runId: null,
            resetEventId: null,
            openItems: result.order.attention.map((a) => a.id),
          };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            throw await orderNotRunning(
              deps,
              orderId,
              new ApiError(409, 'NOT_OPEN', `order ${orderId} has finished: nothing of it is parked`),
            );
          }
          throw refusal(err, 'NOT_OPEN');
        }
      }),
  );

  app.post(
    '/v1/admin/failed-work/shipments/:shipmentId/restart-tracking',
    {
      onRequest: requireStaff(Permission.RETRY_FAILED_WORK),
      schema: actionSchema({
        summary: 'Bring a parcel whose shipment workflow died back under tracking (audited, idempotent)',
        description:
          "For a parcel not finished on the read model whose shipment workflow failed, was terminated or timed out: a new run of the same workflow id (reuse allowed only after a run that did not complete) continues from the read model's status and polls at once. A parcel of an order is restarted by its order workflow (`restartTracking` update), which owns the new run, while the order still waits for it; 409 once the order has settled the parcel, while its workflow runs, or once it is finished. Requires Idempotency-Key.",
        params: ShipmentActionParams,
        body: ActionReasonBody,
      }),
    },
    async (request, reply) => {
      const { shipmentId } = request.params;
      const reason = trimmedReason(request.body.reason);
      const what = {
        action: 'restart_tracking' as const,
        subjectType: 'shipment' as const,
        subjectId: shipmentId,
        reason,
      };
      return once(request, reply, what, async (key) => {
        const row = await findShipment(db, shipmentId);
        if (!row) throw new ApiError(404, 'NOT_FOUND', `no shipment ${shipmentId}`);
        if (isTerminal(row.status as ShipmentStatus)) {
          throw new ApiError(
            409,
            'SHIPMENT_FINISHED',
            `shipment ${shipmentId} is ${row.status}: tracking has finished`,
          );
        }
        const workflowId = shipmentWorkflowId(shipmentId);
        const current = await deps.temporal.client.workflow
          .getHandle(workflowId)
          .describe()
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return null;
            throw err;
          });
        if (current && !RESTARTABLE.has(current.status.name)) {
          throw new ApiError(
            409,
            'TRACKING_NOT_DEAD',
            `shipment workflow ${workflowId} is ${current.status.name}: only a failed, terminated or timed-out run is restarted`,
          );
        }
        const requestedBy = actorOf(request.principal);
        const state = shipmentStateFrom(row, Date.now());
        if (row.order_id !== null) {
          const handle = deps.temporal.client.workflow.getHandle(orderWorkflowId(row.order_id));
          try {
            const result = await deps.temporal.connection.withDeadline(Date.now() + ACTION_DEADLINE_MS, () =>
              handle.executeUpdate(restartTrackingUpdate, {
                updateId: `failed-work-restart:${key}`,
                args: [{ shipmentId, requestedBy, reason, state }],
              }),
            );
            return {
              outcome: 'restarted',
              reason: null,
              workflowId,
              runId: result.runId,
              resetEventId: null,
              openItems: null,
            };
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) {
              throw await orderNotRunning(
                deps,
                row.order_id,
                new ApiError(
                  409,
                  'ORDER_SETTLED',
                  `order ${row.order_id} has finished and settled this parcel: restarting its tracking would show a journey its money no longer follows`,
                ),
              );
            }
            throw refusal(err, 'NOT_RESTARTABLE');
          }
        }
        // A parcel without an order (imported): nobody else owns its tracking.
        const started = await deps.temporal.client.workflow
          .start<typeof shipmentWorkflow>('shipmentWorkflow', {
            workflowId,
            taskQueue: deps.config.temporal.taskQueue,
            workflowTaskTimeout: SHIPMENT_WORKFLOW_TASK_TIMEOUT,
            workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            typedSearchAttributes: shipmentSearchAttributes(
              { courier: row.courier as CourierCode, trackingNumber: row.tracking_number },
              state.status,
            ),
            args: [
              {
                shipmentId,
                orderId: null,
                courier: row.courier as CourierCode,
                trackingNumber: row.tracking_number,
                state,
              },
            ],
          })
          .catch((err: unknown) => {
            // Another request (another key, another admin) restarted it since the check above.
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
            throw new ApiError(
              409,
              'TRACKING_NOT_DEAD',
              `shipment workflow ${workflowId} was restarted by another request meanwhile`,
            );
          });
        return {
          outcome: 'restarted',
          reason: null,
          workflowId,
          runId: started.firstExecutionRunId,
          resetEventId: null,
          openItems: null,
        };
      });
    },
  );

  app.post(
    '/v1/admin/failed-work/orders/:orderId/reset',
    {
      onRequest: requireStaff(Permission.RESET_WORKFLOWS),
      schema: actionSchema({
        summary:
          'Reset an order workflow that stopped to its last sound point, when safe (audited, idempotent)',
        description:
          'Temporal reset of the latest run to its last completed workflow task. Only when safe (docs/operations.md#failed-work): the run failed, was terminated or timed out; no money or booking step was in flight; every shipment workflow it started and did not see end is still the run it started (one that ended while the order was stopped is told to the reset run: `trackingEnded`). Otherwise 409 RESET_NOT_SAFE with the reason. Requires Idempotency-Key: a repeat answers the first result, and a retry of a request that reset the order but did not answer (the API stopped, or Temporal went away before the parcels were told) finds the run it made and tells it, without resetting again.',
        params: OrderActionParams,
        body: ActionReasonBody,
      }),
    },
    async (request, reply) =>
      orderAction(request, reply, 'reset', async (orderId, reason, key) => {
        const plan = await planOrderReset(deps, orderId, key);
        // A retry of a reset made and not answered goes on to tell the run it made.
        const runId =
          plan.resetRunId ??
          (await resetOrder(deps, plan, {
            reason: `${actorOf(request.principal)}: ${reason}`,
            requestKey: key,
          }));
        const trackingEnded = await tellOfEndedTracking(deps, plan, runId);
        return {
          outcome: 'reset',
          reason: null,
          workflowId: plan.workflowId,
          runId,
          resetEventId: plan.eventId,
          openItems: null,
          trackingEnded,
        };
      }),
  );
};
