/**
 * Orders parked for an admin (`NEEDS_ATTENTION`): a capture, void, refund or booking
 * cancellation that the payment provider or the courier refused for good, or that outlasted
 * its retry window. The list reads Postgres; an action goes through the order workflow's
 * `resolveAttention` update, which retries the step or closes it with the admin's reason
 * (audited either way).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { Type } from 'typebox';
import {
  AttentionStep,
  SettlementRefusal,
  type CaptureSettlement,
  type OrderStatus,
} from '../../workflows/contract';
import { FailureType } from '../../domain/failures';
import { attentionItems, openAttentionStep } from '../../read-model/order-attention';
import { orderExists } from '../../read-model/orders';
import { orderNotRunning } from '../order-actions';
import { resolveAttention } from '../attention-update';
import type { ApiDeps } from '../app';
import { Permission } from '../access';
import { actorOf, requireStaff } from '../auth';
import { ApiError, isTemporalUnavailable, temporalUnavailable } from '../errors';
import { AUTH_ERRORS, errors, Id, Reason, trimmedReason } from '../schemas/admin';
import {
  DateTime,
  IdText,
  NullableDateTime,
  NullableText,
  OrderNumber,
  OrderStatusName,
  Text,
} from '../schemas/common';

const PAGE_SIZE_DEFAULT = 50;
const PAGE_SIZE_MAX = 200;

const ItemStatus = Type.Union([Type.Literal('OPEN'), Type.Literal('RETRIED'), Type.Literal('RESOLVED')]);
const Step = Type.Unsafe<AttentionStep>({ type: 'string', enum: Object.values(AttentionStep) });

const AttentionRow = Type.Object(
  {
    orderId: IdText(),
    orderNumber: OrderNumber,
    orderStatus: Type.Unsafe<OrderStatus>({
      ...OrderStatusName,
      description: 'The order as the read model shows it now',
    }),
    itemId: IdText('Pass it to the action route'),
    step: Step,
    reason: Text(2000, { description: 'Why the step stopped: the provider or courier answer' }),
    status: ItemStatus,
    openedAt: DateTime,
    closedAt: NullableDateTime,
    closedBy: Type.Union([Text(200), Type.Null()], {
      description: 'Who closed it, as the audit log names them, e.g. ops:sam',
    }),
    resolution: NullableText(500),
    settlement: Type.Union([Type.Literal('captured_by_hand'), Type.Literal('not_charged'), Type.Null()], {
      description: 'How a resolved capture was settled (null for every other item)',
    }),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(ItemStatus),
    limit: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: PAGE_SIZE_MAX })),
    offset: Type.Optional(Type.Integer({ format: 'int32', minimum: 0, maximum: 100_000 })),
  },
  { additionalProperties: false },
);

const SETTLEMENT_HELP =
  'captured_by_hand: the payment was captured in the provider dashboard; Waybill reads it there (refused if the provider holds no capture), counts what was refunded there, and pays back what is still owed for parcels that did not arrive. not_charged: the shopper is not charged on this payment (waived, or charged another way); Waybill voids the authorisation (refused if the provider says it was captured) and captures or refunds nothing more on it.';

const ActionParams = Type.Object({ orderId: Id('Order id'), itemId: Id('Attention item id') });
const ActionBody = Type.Object(
  {
    action: Type.Union([Type.Literal('retry'), Type.Literal('resolve')], {
      description:
        'retry: run the step again now. resolve: it was settled outside Waybill (say how in the reason); the step is closed without running',
    }),
    reason: Reason,
    settlement: Type.Optional(
      Type.Union([Type.Literal('captured_by_hand'), Type.Literal('not_charged')], {
        description: `Required to resolve a parked capture, and only that. ${SETTLEMENT_HELP}`,
      }),
    ),
  },
  { additionalProperties: false },
);
const ActionResult = Type.Object(
  {
    orderId: IdText(),
    itemId: IdText(),
    outcome: Type.Union([Type.Literal('retried'), Type.Literal('resolved'), Type.Literal('still_failing')]),
    reason: Type.Union([Text(2000), Type.Null()], { description: 'Why a retried step still fails' }),
    orderStatus: OrderStatusName,
    openItems: Type.Array(IdText(), {
      maxItems: 1000,
      description: "The order's items still open (a few steps per parcel at most)",
    }),
  },
  { additionalProperties: false },
);

export const attentionRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/admin/attention',
    {
      onRequest: requireStaff(Permission.READ_ATTENTION),
      schema: {
        tags: ['admin'],
        summary: 'Orders parked for an admin (NEEDS_ATTENTION): the steps and why they stopped',
        description:
          'Open items by default, oldest first. `status` RETRIED or RESOLVED lists the closed ones.',
        querystring: ListQuery,
        response: {
          200: Type.Object(
            { items: Type.Array(AttentionRow, { maxItems: PAGE_SIZE_MAX }) },
            { additionalProperties: false },
          ),
          ...errors(400, ...AUTH_ERRORS, 503),
        },
      },
    },
    async (request) => {
      const rows = await attentionItems(deps.db, {
        status: request.query.status ?? 'OPEN',
        limit: request.query.limit ?? PAGE_SIZE_DEFAULT,
        offset: request.query.offset ?? 0,
      });
      return {
        items: rows.map((r) => ({
          orderId: r.order_id,
          orderNumber: r.number,
          orderStatus: r.order_status as OrderStatus,
          itemId: r.item_id,
          step: r.step as AttentionStep,
          reason: r.reason,
          status: r.status,
          openedAt: r.opened_at.toISOString(),
          closedAt: r.closed_at?.toISOString() ?? null,
          closedBy: r.closed_by,
          resolution: r.resolution,
          settlement: r.settlement as CaptureSettlement | null,
        })),
      };
    },
  );

  app.post(
    '/v1/admin/orders/:orderId/attention/:itemId',
    {
      onRequest: requireStaff(Permission.RESOLVE_ATTENTION),
      schema: {
        tags: ['admin'],
        summary: 'Retry a parked step, or resolve it with a reason (audited)',
        description:
          "Runs the order workflow's `resolveAttention` update. 200 with `retried` (the step ran and succeeded), `resolved`, or `still_failing` (it ran and failed again; `reason` says why, the item stays open). 202 `STILL_RUNNING` when a retry is still running at the provider or courier after `WAYBILL_ADMIN_ACTION_WAIT` (25 s by default): its outcome shows on the attention list and the order. A resolve of a parked `capture` must say how it was settled (`settlement`; 400 SETTLEMENT_REQUIRED without it), and is refused 409 SETTLEMENT_REFUSED when the provider's books contradict it (502 SETTLEMENT_FAILED when the provider could not be asked); either way the item stays open with the reason. 409 NOT_OPEN when the item is not open on this order.",
        params: ActionParams,
        body: ActionBody,
        response: { 200: ActionResult, ...errors(202, 400, ...AUTH_ERRORS, 404, 409, 502, 503) },
      },
    },
    async (request) => {
      const { orderId, itemId } = request.params;
      const { action, settlement } = request.body;
      const reason = trimmedReason(request.body.reason);
      if (!(await orderExists(deps.db, orderId))) throw new ApiError(404, 'NOT_FOUND', `no order ${orderId}`);
      await checkSettlement(deps, orderId, itemId, action, settlement);
      try {
        const result = await resolveAttention(
          deps,
          orderId,
          {
            itemId,
            action,
            reason,
            requestedBy: actorOf(request.principal),
            ...(settlement ? { settlement } : {}),
          },
          { withinMs: deps.config.api.adminActionWaitMs },
        );
        return {
          orderId,
          itemId,
          outcome: result.outcome,
          reason: result.reason,
          orderStatus: result.order.status,
          openItems: result.order.attention.map((a) => a.id),
        };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const cause = err.cause as (Error & { type?: string }) | undefined;
          // The provider's books contradict the settlement: the item stays open.
          if (cause?.type === FailureType.SETTLEMENT_REFUSED) {
            throw new ApiError(409, 'SETTLEMENT_REFUSED', cause.message);
          }
          // The provider could not be asked for the step's whole retry window.
          if (cause?.type === FailureType.SETTLEMENT_FAILED) {
            throw new ApiError(502, 'SETTLEMENT_FAILED', cause.message);
          }
          // The read model had not shown the item yet: the workflow's own check, same answer.
          const said = cause?.message ?? '';
          for (const code of Object.values(SettlementRefusal)) {
            if (said.startsWith(`${code}: `)) {
              throw new ApiError(400, code, `body/settlement: ${said.slice(code.length + 2)}`);
            }
          }
          throw new ApiError(409, 'NOT_OPEN', cause?.message ?? err.message);
        }
        if (err instanceof WorkflowNotFoundError) {
          throw await orderNotRunning(
            deps,
            orderId,
            new ApiError(409, 'NOT_OPEN', `order ${orderId} has finished: nothing of it is parked`),
          );
        }
        if (isTemporalUnavailable(err)) throw temporalUnavailable();
        throw err;
      }
    },
  );
};

/**
 * A resolve of a parked capture must say how it was settled, and nothing else takes a
 * settlement: 400 naming what is wrong, before the workflow is asked. An item the read model
 * does not show open is left to the workflow (it checks the same, or answers 409 NOT_OPEN).
 */
async function checkSettlement(
  deps: ApiDeps,
  orderId: string,
  itemId: string,
  action: 'retry' | 'resolve',
  settlement: CaptureSettlement | undefined,
): Promise<void> {
  if (action === 'retry') {
    if (settlement) {
      throw new ApiError(
        400,
        SettlementRefusal.INVALID,
        'body/settlement: only a resolve says how a step was settled',
      );
    }
    return;
  }
  const step = await openAttentionStep(deps.db, orderId, itemId);
  if (step === AttentionStep.CAPTURE && !settlement) {
    throw new ApiError(
      400,
      SettlementRefusal.REQUIRED,
      `body/settlement: resolving a parked capture needs a settlement, captured_by_hand or not_charged. ${SETTLEMENT_HELP}`,
    );
  }
  if (step !== null && step !== AttentionStep.CAPTURE && settlement) {
    throw new ApiError(
      400,
      SettlementRefusal.INVALID,
      `body/settlement: applies only to a parked capture (${itemId} is a ${step}); say how it was settled in the reason`,
    );
  }
}
