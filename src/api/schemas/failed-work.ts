/**
 * The HTTP contract of the failed-work routes (src/api/routes/failed-work.ts): the list of
 * what stopped (order and shipment workflows that failed, were terminated or timed out;
 * orders parked in NEEDS_ATTENTION; parcels whose courier sync fails) and the three audited,
 * idempotent actions on it (retry a parked step, restart tracking, reset an order workflow).
 */
import { Type, type Static } from 'typebox';
import { Id, Reason } from './admin';
import { CourierCodeText, DateTime, IdText, Text } from './common';
import { IdempotencyHeaders } from './orders';
import { ShipmentStatus } from '../../domain/status';

export const FAILED_WORK_PAGE_DEFAULT = 50;
export const FAILED_WORK_PAGE_MAX = 100;

/** What the list holds; one kind per request, each with its own cursor. */
export const FailedWorkKind = {
  ORDER_WORKFLOW: 'order_workflow',
  SHIPMENT_WORKFLOW: 'shipment_workflow',
  NEEDS_ATTENTION: 'needs_attention',
  SYNC_ERROR: 'sync_error',
} as const;
export type FailedWorkKind = (typeof FailedWorkKind)[keyof typeof FailedWorkKind];

/** How a workflow's last run stopped without completing, as Temporal names it. */
const STOPPED_WORKFLOW = ['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED'];

/** How a workflow run ended, as the `reason` filter of the workflow kinds names it. */
export const WorkflowEnd = { FAILED: 'failed', TERMINATED: 'terminated', TIMED_OUT: 'timed_out' } as const;
export type WorkflowEnd = (typeof WorkflowEnd)[keyof typeof WorkflowEnd];

const WorkflowId = Type.String({
  pattern: '^(order|shipment)-[A-Za-z0-9_.:-]{1,128}$',
  maxLength: 137,
  description: 'order-<orderId> or shipment-<shipmentId>',
});
const RunId = (description?: string) =>
  Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$', maxLength: 64, ...(description ? { description } : {}) });
const RunStatus = Type.Unsafe<string>({
  type: 'string',
  enum: ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut', 'Unknown'],
});
const Actor = Type.String({
  pattern: '^[a-z]+:[A-Za-z0-9_.:@-]{1,128}$',
  maxLength: 140,
  description: 'Who acted, as the audit log names them, e.g. ops:sam',
});

export const FailedWorkQuery = Type.Object(
  {
    kind: Type.Unsafe<FailedWorkKind>({
      type: 'string',
      enum: Object.values(FailedWorkKind),
      description:
        'order_workflow / shipment_workflow: runs that failed, were terminated or timed out (Temporal visibility); needs_attention: open parked steps; sync_error: parcels still tracked whose last courier sync failed',
    }),
    courier: Type.Optional(
      CourierCodeText('Only this courier (shipment_workflow and sync_error; 400 for the other kinds)'),
    ),
    olderThanMinutes: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: 5_256_000,
        description:
          'Only items at least this old: since the run closed, the step was parked, or the sync started failing',
      }),
    ),
    reason: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          'Workflow kinds: how the run ended (failed, terminated or timed_out). Other kinds: text the reason contains (case-insensitive)',
      }),
    ),
    limit: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: FAILED_WORK_PAGE_MAX,
        description: `Page size (1 to ${FAILED_WORK_PAGE_MAX}, default ${FAILED_WORK_PAGE_DEFAULT})`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description: 'nextCursor of the previous page, with the same kind and filters',
      }),
    ),
  },
  { additionalProperties: false },
);
export type FailedWorkQuery = Static<typeof FailedWorkQuery>;

export const FailedWorkItem = Type.Object(
  {
    kind: Type.Unsafe<FailedWorkKind>({ type: 'string', enum: Object.values(FailedWorkKind) }),
    orderId: Type.Union([IdText(), Type.Null()]),
    shipmentId: Type.Union([IdText(), Type.Null()]),
    itemId: Type.Union([IdText('needs_attention: the parked step, for the retry action'), Type.Null()]),
    workflowId: Type.Union([WorkflowId, Type.Null()]),
    runId: Type.Union([RunId('The run that stopped'), Type.Null()]),
    courier: Type.Union([CourierCodeText(), Type.Null()]),
    reason: Text(2000, {
      description: 'How the run ended, why the step stopped, or the sync error',
    }),
    since: DateTime,
    currentRun: Type.Union(
      [Type.Object({ runId: RunId(), status: RunStatus }, { additionalProperties: false }), Type.Null()],
      {
        description:
          'Workflow kinds: the latest run of this workflow id; another run than `runId` means it was restarted or reset since',
      },
    ),
    actions: Type.Array(
      Type.Unsafe<string>({ type: 'string', enum: ['retry_step', 'restart_tracking', 'reset'] }),
      { maxItems: 3, description: 'The actions that may apply (each still checks its own conditions)' },
    ),
  },
  { additionalProperties: false },
);

export const FailedWorkPage = Type.Object(
  {
    items: Type.Array(FailedWorkItem, { maxItems: FAILED_WORK_PAGE_MAX }),
    nextCursor: Type.Union(
      [Type.String({ pattern: '^[A-Za-z0-9_-]{1,4096}$', maxLength: 4096 }), Type.Null()],
      {
        description: 'Pass as `cursor` (with the same kind and filters) for the next page; null on the last',
      },
    ),
  },
  { additionalProperties: false },
);

export const ActionHeaders = IdempotencyHeaders;
export const OrderActionParams = Type.Object({ orderId: Id('Order id') });
export const ShipmentActionParams = Type.Object({ shipmentId: Id('Shipment id') });
export const RetryStepBody = Type.Object(
  { itemId: Id('The parked step (itemId in the list)'), reason: Reason },
  { additionalProperties: false },
);
export const ActionReasonBody = Type.Object({ reason: Reason }, { additionalProperties: false });

export const ActionResult = Type.Object(
  {
    action: Type.Unsafe<string>({ type: 'string', enum: ['retry_step', 'restart_tracking', 'reset'] }),
    subjectId: IdText('The order or shipment acted on'),
    outcome: Type.Unsafe<string>({
      type: 'string',
      enum: ['retried', 'still_failing', 'restarted', 'reset'],
      description:
        'retried: the step ran and succeeded; still_failing: it ran and failed again (reason says why); restarted: a new shipment run tracks the parcel; reset: the order workflow runs again from its last sound point',
    }),
    reason: Type.Union([Text(2000), Type.Null()], { description: 'Why a retried step still fails' }),
    workflowId: WorkflowId,
    runId: Type.Union([RunId(), Type.Null()], { description: 'The new run (restart, reset)' }),
    resetEventId: Type.Union([Type.Integer({ format: 'int64', minimum: 1, maximum: 1e12 }), Type.Null()], {
      description: 'reset: the WorkflowTaskCompleted event the new run continues from',
    }),
    by: Actor,
    at: DateTime,
    openItems: Type.Union([Type.Array(IdText(), { maxItems: 1000 }), Type.Null()], {
      description: "retry_step: the order's steps still parked",
    }),
    trackingEnded: Type.Optional(
      Type.Array(
        Type.Object(
          {
            shipmentId: IdText(),
            ended: Type.Unsafe<string>({
              type: 'string',
              enum: [...new Set([...Object.values(ShipmentStatus), ...STOPPED_WORKFLOW])],
              description:
                "Its final status when it completed, else how its workflow's last run ended (FAILED, TERMINATED, TIMED_OUT, CANCELLED)",
            }),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 1000,
          description:
            'reset: the parcels whose shipment workflow ended while the order was stopped; the reset run was told how each ended (a delivered parcel is settled as delivered, a dead one waits for a restart of its tracking)',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ActionResult = Static<typeof ActionResult>;
