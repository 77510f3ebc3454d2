/**
 * Admin routes (`/v1/admin/...`): steer shipment and order workflows (refresh, cancel,
 * manual delivery) and work the exceptions queue. Actions go through the workflows as
 * signals and updates, never around them; lists and stats read Postgres only, so they keep
 * answering while Temporal is down.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import { Type } from 'typebox';
import type { NormalisedEvent } from '../../couriers/types';
import { isTerminal, ShipmentStatus } from '../../domain/status';
import { courierEventsSignal, refreshSignal, shipmentWorkflowId } from '../../workflows/contract';
import {
  adminStats,
  decodeCursor,
  encodeCursor,
  openShipmentsMatching,
  shipmentQueuePage,
  type ShipmentFilter,
} from '../admin-queries';
import type { ApiDeps } from '../app';
import { Permission } from '../access';
import { actorOf, requireStaff } from '../auth';
import { ApiError, isTemporalUnavailable, temporalUnavailable } from '../errors';
import { cancelOrder, orderVisibleTo } from '../order-actions';
import { AUTH_ERRORS, errors, Id, OrderParams, ReasonBody, trimmedReason } from '../schemas/admin';
import {
  Count,
  CourierCodeText,
  DateTime,
  IdText,
  NullableDateTime,
  NullableText,
  Text,
  TrackingNumber,
} from '../schemas/common';
import { StatusSchema } from '../tracking-view';

/** Most shipments one bulk refresh signals (by ids, or matched by a filter). */
const BULK_REFRESH_CAP = 500;
/** Signals in flight at once during a bulk refresh: the Temporal frontend is shared. */
const BULK_REFRESH_CONCURRENCY = 10;
const PAGE_SIZE_DEFAULT = 50;
const PAGE_SIZE_MAX = 200;
/** Failures listed one by one in a bulk answer (the counts are always complete). */
const FAILURES_LISTED = 50;

const ShipmentParams = Type.Object({ shipmentId: Id('Shipment id') });
const Courier = CourierCodeText();
/** Shipments, calls and failures counted: far below 2^31 for any one shop. */
const Tally = (description?: string) => Count(2_147_483_647, description);
const Freshness = Type.Union([Type.Literal('fresh'), Type.Literal('stale'), Type.Literal('expired')]);

const RefreshAccepted = Type.Object(
  {
    shipmentId: IdText(),
    workflowId: Type.String({ pattern: '^shipment-[A-Za-z0-9_.:-]{1,128}$', maxLength: 137 }),
    signalled: Type.Literal(true),
    requestedBy: Type.String({
      pattern: '^[a-z]+:[A-Za-z0-9_.:@-]{1,128}$',
      maxLength: 140,
      description: 'Who asked, as the audit log names them, e.g. ops:sam',
    }),
    cooldownUntil: Type.Union([DateTime, Type.Null()], {
      description:
        'The courier answered less than the refresh cooldown ago: the workflow polls when the cooldown ends instead of at once. Null: it polls at once',
    }),
  },
  { additionalProperties: false, description: 'The shipment workflow was asked to poll its courier' },
);

const BulkRefreshBody = Type.Object(
  {
    shipmentIds: Type.Optional(
      Type.Array(Id('Shipment id'), {
        minItems: 1,
        maxItems: BULK_REFRESH_CAP,
        uniqueItems: true,
        description: `Shipments to refresh (1 to ${BULK_REFRESH_CAP}); send this or filter`,
      }),
    ),
    filter: Type.Optional(
      Type.Object(
        {
          status: Type.Optional(Type.Array(StatusSchema, { minItems: 1, maxItems: 12, uniqueItems: true })),
          courier: Type.Optional(Courier),
          stale: Type.Optional(
            Type.Boolean({ description: 'true: only stale or expired data; false: only fresh' }),
          ),
        },
        {
          additionalProperties: false,
          description: `Shipments still being tracked that match; at most ${BULK_REFRESH_CAP}, stalest first`,
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const BulkRefreshResult = Type.Object(
  {
    matched: Count(BULK_REFRESH_CAP, 'Shipments found for the ids, or matching the filter (up to the cap)'),
    signalled: Count(BULK_REFRESH_CAP, 'Shipment workflows asked to poll'),
    inCooldown: Count(
      BULK_REFRESH_CAP,
      'Of those signalled, shipments whose courier answered less than the refresh cooldown ago: they poll when it ends, not at once',
    ),
    skipped: Count(BULK_REFRESH_CAP, 'Finished shipments (delivered, returned, cancelled, expired)'),
    failed: Count(BULK_REFRESH_CAP, 'Shipments whose workflow could not be signalled'),
    notFound: Type.Array(Id('Shipment id'), {
      maxItems: BULK_REFRESH_CAP,
      description: 'Requested ids with no shipment',
    }),
    capped: Type.Boolean({ description: 'The filter matched more than `cap`: the stalest `cap` were taken' }),
    cap: Count(BULK_REFRESH_CAP),
    failures: Type.Array(
      Type.Object({ shipmentId: IdText(), reason: Text(1000) }, { additionalProperties: false }),
      { maxItems: FAILURES_LISTED, description: `The first ${FAILURES_LISTED} failures` },
    ),
  },
  { additionalProperties: false },
);

const CancelResult = Type.Object(
  {
    orderId: IdText(),
    status: Type.Union([Type.Literal('CANCELLED'), Type.Literal('CANCELLING')], {
      description: 'CANCELLED: compensations done; CANCELLING: accepted, compensations still running',
    }),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Array(StatusSchema, {
        minItems: 1,
        maxItems: 12,
        description: 'One or several statuses (repeat the parameter: ?status=EXCEPTION&status=ATTEMPT_FAIL)',
      }),
    ),
    courier: Type.Optional(Courier),
    stale: Type.Optional(
      Type.Boolean({
        description: 'true: stale or expired data (judged against the poll intervals); false: fresh',
      }),
    ),
    exception: Type.Optional(
      Type.Boolean({ description: 'true: status EXCEPTION or a sync error; false: neither' }),
    ),
    noScanForDays: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: 3650,
        description: 'No scan (or, with none yet, no creation) for at least this many days',
      }),
    ),
    orderId: Type.Optional(Id('Order id')),
    limit: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 1,
        maximum: PAGE_SIZE_MAX,
        default: PAGE_SIZE_DEFAULT,
        description: `Page size (1 to ${PAGE_SIZE_MAX})`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const QueueItem = Type.Object(
  {
    shipmentId: IdText(),
    orderId: Type.Union([IdText(), Type.Null()]),
    courier: Courier,
    trackingNumber: TrackingNumber,
    status: StatusSchema,
    subStatus: Type.Union([Type.String({ pattern: '^[A-Z0-9_]{1,64}$', maxLength: 64 }), Type.Null()]),
    freshness: Freshness,
    lastSyncedAt: NullableDateTime,
    nextPollAt: NullableDateTime,
    lastEventAt: NullableDateTime,
    syncError: NullableText(2000),
    syncFailingSince: NullableDateTime,
    consecutiveFailures: Tally(),
    createdAt: DateTime,
  },
  { additionalProperties: false },
);

const QueuePage = Type.Object(
  {
    items: Type.Array(QueueItem, { maxItems: PAGE_SIZE_MAX }),
    nextCursor: Type.Union(
      [Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$', maxLength: 512 }), Type.Null()],
      {
        description: 'Pass as `cursor` for the next page; null on the last page',
      },
    ),
  },
  { additionalProperties: false },
);

const Stats = Type.Object(
  {
    generatedAt: DateTime,
    shipmentsByStatus: Type.Object(
      Object.fromEntries(Object.values(ShipmentStatus).map((s) => [s, Tally()])),
      {
        additionalProperties: false,
        description: 'Every status, zeros included (archived shipments left out)',
      },
    ),
    courierCalls: Type.Object(
      {
        day: Type.String({
          format: 'date',
          maxLength: 10,
          description: 'The UTC day the daily budgets count',
        }),
        couriers: Type.Array(
          Type.Object(
            {
              courier: Courier,
              calls: Tally(),
              failures: Tally(),
              budget: Tally(),
              remaining: Tally(),
            },
            { additionalProperties: false },
          ),
          { maxItems: 100, description: 'Couriers called today' },
        ),
      },
      { additionalProperties: false },
    ),
    pollFailures: Type.Object(
      {
        failingNow: Tally('Shipments still tracked whose last sync attempt failed'),
        failuresToday: Tally('Failed courier calls today, all couriers'),
      },
      { additionalProperties: false },
    ),
    oldestStale: Type.Union([
      Type.Object(
        {
          shipmentId: IdText(),
          status: StatusSchema,
          courier: Courier,
          lastSyncedAt: NullableDateTime,
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

const MarkDeliveredResult = Type.Object(
  {
    shipmentId: IdText(),
    outcome: Type.Union([Type.Literal('accepted'), Type.Literal('already_delivered')], {
      description:
        'accepted: the shipment workflow records the delivery and tells the order; already_delivered: an earlier request did',
    }),
    eventKey: Type.String({ pattern: '^manual:delivered:[A-Za-z0-9_.:-]{1,128}$', maxLength: 145 }),
  },
  { additionalProperties: false },
);

/** The one event a manual delivery adds: a fixed key, so a retried request is one event. */
const manualDeliveryKey = (shipmentId: string) => `manual:delivered:${shipmentId}`;
const markDeliveredAuditKey = (shipmentId: string) => `shipment.mark_delivered:${shipmentId}`;

const notRunning = (shipmentId: string) =>
  new ApiError(
    409,
    'NOT_TRACKING',
    `no tracking workflow is running for shipment ${shipmentId}; it may have just finished`,
  );

/** Runs `work` on every item, at most `limit` at once, starting no new item once `stop()` holds. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  stop: () => boolean,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length && !stop()) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export const adminRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const shipmentRow = (id: string) =>
    deps.db
      .selectFrom('shipments')
      .select(['id', 'order_id', 'status', 'last_event_at', 'last_synced_at'])
      .where('id', '=', id)
      .executeTakeFirst();

  /** When the refresh cooldown since this sync ends; null when it is over. */
  const cooldownEnd = (syncedAt: Date | null): Date | null => {
    if (syncedAt === null) return null;
    const end = syncedAt.getTime() + deps.shipmentPolicy.refreshCooldownMs;
    return end > Date.now() ? new Date(end) : null;
  };

  async function openShipment(id: string) {
    const shipment = await shipmentRow(id);
    if (!shipment) throw new ApiError(404, 'NOT_FOUND', `no shipment ${id}`);
    return shipment;
  }

  app.post(
    '/v1/admin/shipments/:shipmentId/refresh',
    {
      onRequest: requireStaff(Permission.REFRESH_SHIPMENT),
      schema: {
        tags: ['admin'],
        summary: 'Ask one shipment workflow to poll its courier now (or when the refresh cooldown ends)',
        description:
          'Signals the workflow (`refresh`); the poll lands in the read model moments later, within the courier budget. Admins have no refresh quota but are held to the refresh cooldown like everyone: within it the workflow polls when it ends (`cooldownUntil`). 409 once the shipment is finished.',
        params: ShipmentParams,
        response: { 202: RefreshAccepted, ...errors(400, ...AUTH_ERRORS, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { shipmentId } = request.params;
      const shipment = await openShipment(shipmentId);
      if (isTerminal(shipment.status as ShipmentStatus)) {
        throw new ApiError(
          409,
          'SHIPMENT_FINISHED',
          `shipment ${shipmentId} is ${shipment.status}: tracking has finished, there is nothing to refresh`,
        );
      }
      const requestedBy = actorOf(request.principal);
      const workflowId = shipmentWorkflowId(shipmentId);
      try {
        await deps.temporal.client.workflow.getHandle(workflowId).signal(refreshSignal, { requestedBy });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw notRunning(shipmentId);
        throw err;
      }
      return reply.code(202).send({
        shipmentId,
        workflowId,
        signalled: true as const,
        requestedBy,
        cooldownUntil: cooldownEnd(shipment.last_synced_at)?.toISOString() ?? null,
      });
    },
  );

  app.post(
    '/v1/admin/shipments/refresh',
    {
      onRequest: requireStaff(Permission.REFRESH_SHIPMENTS_BULK),
      schema: {
        tags: ['admin'],
        summary: 'Ask many shipment workflows to poll now: by ids, or by a filter',
        description: `Send \`shipmentIds\` (at most ${BULK_REFRESH_CAP}) or \`filter\` (matches shipments still being tracked, stalest first, at most ${BULK_REFRESH_CAP}: \`capped\` says when more matched). Finished shipments are skipped. No quota for admins, but the refresh cooldown holds: shipments inside it poll when it ends (\`inCooldown\`). 503 when Temporal cannot be reached at all.`,
        body: BulkRefreshBody,
        response: { 202: BulkRefreshResult, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request, reply) => {
      const { shipmentIds, filter } = request.body;
      if ((shipmentIds === undefined) === (filter === undefined)) {
        throw new ApiError(400, 'VALIDATION_FAILED', 'body: send either shipmentIds or filter (exactly one)');
      }
      const now = new Date();
      let targets: string[];
      let skipped = 0;
      let notFound: string[] = [];
      let capped = false;
      let matched: number;
      if (shipmentIds) {
        const rows = await deps.db
          .selectFrom('shipments')
          .select(['id', 'status'])
          .where('id', 'in', shipmentIds)
          .execute();
        const found = new Set(rows.map((r) => r.id));
        notFound = shipmentIds.filter((id) => !found.has(id));
        const open = rows.filter((r) => !isTerminal(r.status as ShipmentStatus));
        skipped = rows.length - open.length;
        matched = rows.length;
        // In the order asked, so the first failures listed are the first ids sent.
        const openIds = new Set(open.map((r) => r.id));
        targets = shipmentIds.filter((id) => openIds.has(id));
      } else {
        const shipmentFilter: ShipmentFilter = {
          ...(filter!.status ? { status: filter!.status } : {}),
          ...(filter!.courier !== undefined ? { courier: filter!.courier } : {}),
          ...(filter!.stale !== undefined ? { stale: filter!.stale } : {}),
        };
        const result = await openShipmentsMatching(deps.db, {
          filter: shipmentFilter,
          policy: deps.shipmentPolicy,
          now,
          cap: BULK_REFRESH_CAP,
        });
        targets = result.ids;
        capped = result.capped;
        matched = targets.length;
      }

      const requestedBy = actorOf(request.principal);
      const failures: { shipmentId: string; reason: string }[] = [];
      const tried = new Set<string>();
      let signalled = 0;
      let temporalDown: unknown = null;
      await forEachLimited(
        targets,
        BULK_REFRESH_CONCURRENCY,
        async (shipmentId) => {
          tried.add(shipmentId);
          try {
            await deps.temporal.client.workflow
              .getHandle(shipmentWorkflowId(shipmentId))
              .signal(refreshSignal, { requestedBy });
            signalled += 1;
          } catch (err) {
            if (isTemporalUnavailable(err)) {
              temporalDown ??= err;
              failures.push({ shipmentId, reason: 'the workflow service is unreachable' });
            } else if (err instanceof WorkflowNotFoundError) {
              failures.push({ shipmentId, reason: 'no tracking workflow is running for it' });
            } else {
              request.log.warn({ err, shipmentId }, 'bulk refresh: signal failed');
              failures.push({ shipmentId, reason: 'the signal failed' });
            }
          }
        },
        // Once Temporal is unreachable, every further signal would wait out its own timeout.
        () => temporalDown !== null,
      );
      if (temporalDown !== null && signalled === 0) {
        request.log.warn({ err: temporalDown }, 'bulk refresh: Temporal unreachable');
        throw temporalUnavailable();
      }
      for (const shipmentId of targets.filter((id) => !tried.has(id))) {
        failures.push({ shipmentId, reason: 'not tried: the workflow service became unreachable' });
      }
      const failed = new Set(failures.map((f) => f.shipmentId));
      const signalledIds = targets.filter((id) => tried.has(id) && !failed.has(id));
      const synced =
        signalledIds.length === 0
          ? []
          : await deps.db
              .selectFrom('shipments')
              .select('last_synced_at')
              .where('id', 'in', signalledIds)
              .execute();
      return reply.code(202).send({
        matched,
        signalled,
        inCooldown: synced.filter((r) => cooldownEnd(r.last_synced_at) !== null).length,
        skipped,
        failed: targets.length - signalled,
        notFound,
        capped,
        cap: BULK_REFRESH_CAP,
        failures: failures.slice(0, FAILURES_LISTED),
      });
    },
  );

  app.post(
    '/v1/admin/orders/:orderId/cancel',
    {
      onRequest: requireStaff(Permission.CANCEL_ORDERS),
      schema: {
        tags: ['admin'],
        summary: 'Cancel an order before pickup (with a reason, audited)',
        description:
          'Runs the order workflow’s `cancel` update: 200 once the compensations are done, 202 when accepted and still compensating, 409 once a parcel is picked up (ALREADY_PICKED_UP) or the order is finished.',
        params: OrderParams,
        body: ReasonBody,
        response: { 200: CancelResult, 202: CancelResult, ...errors(400, ...AUTH_ERRORS, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const reason = trimmedReason(request.body.reason);
      const order = await orderVisibleTo(deps, request.principal, request.params.orderId);
      const outcome = await cancelOrder(deps, { order, requestedBy: actorOf(request.principal), reason });
      return outcome === 'cancelled'
        ? reply.code(200).send({ orderId: order.id, status: 'CANCELLED' as const })
        : reply.code(202).send({ orderId: order.id, status: 'CANCELLING' as const });
    },
  );

  app.get(
    '/v1/admin/shipments',
    {
      onRequest: requireStaff(Permission.READ_SHIPMENTS),
      schema: {
        tags: ['admin'],
        summary: 'The exceptions queue: shipments by status, courier, staleness, problems',
        description:
          'Oldest shipment first; filters combine with AND. Staleness uses the same rule as the tracking views (last sync vs the poll interval of the status). Archived shipments are left out.',
        querystring: ListQuery,
        response: { 200: QueuePage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
      if (q.cursor !== undefined && after === null) {
        throw new ApiError(
          400,
          'INVALID_CURSOR',
          'querystring: cursor is not one this API handed out; pass nextCursor from the previous page',
        );
      }
      const filter: ShipmentFilter = {
        ...(q.status ? { status: q.status } : {}),
        ...(q.courier !== undefined ? { courier: q.courier } : {}),
        ...(q.stale !== undefined ? { stale: q.stale } : {}),
        ...(q.exception !== undefined ? { exception: q.exception } : {}),
        ...(q.noScanForDays !== undefined ? { noScanForDays: q.noScanForDays } : {}),
        ...(q.orderId !== undefined ? { orderId: q.orderId } : {}),
      };
      const page = await shipmentQueuePage(deps.db, {
        filter,
        policy: deps.shipmentPolicy,
        now: new Date(),
        limit: q.limit ?? PAGE_SIZE_DEFAULT,
        after,
      });
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/v1/admin/stats',
    {
      onRequest: requireStaff(Permission.READ_STATS),
      schema: {
        tags: ['admin'],
        summary: 'Shipments by status, courier calls today vs budget, poll failures, oldest stale shipment',
        response: { 200: Stats, ...errors(...AUTH_ERRORS, 503) },
      },
    },
    async () =>
      adminStats(deps.db, {
        policy: deps.shipmentPolicy,
        now: new Date(),
        dailyBudget: deps.config.courier.dailyBudget,
      }),
  );

  app.post(
    '/v1/admin/shipments/:shipmentId/mark-delivered',
    {
      onRequest: requireStaff(Permission.MARK_DELIVERED),
      schema: {
        tags: ['admin'],
        summary: 'Record a delivery the courier did not report (with a reason, audited)',
        description:
          'Sends the shipment workflow one DELIVERED event (source manual): it records it, stops tracking and tells the order. Safe to retry: one event, one audit entry. 409 when the shipment has finished otherwise.',
        params: ShipmentParams,
        body: ReasonBody,
        response: {
          200: MarkDeliveredResult,
          202: MarkDeliveredResult,
          ...errors(400, ...AUTH_ERRORS, 404, 409, 503),
        },
      },
    },
    async (request, reply) => {
      const reason = trimmedReason(request.body.reason);
      const { shipmentId } = request.params;
      const shipment = await openShipment(shipmentId);
      const eventKey = manualDeliveryKey(shipmentId);
      const audit = () =>
        deps.db
          .insertInto('audit_log')
          .values({
            actor: actorOf(request.principal),
            action: 'shipment.mark_delivered',
            subject_type: 'shipment',
            subject_id: shipmentId,
            reason,
            details: JSON.stringify({
              eventKey,
              orderId: shipment.order_id,
              previousStatus: shipment.status,
            }),
            dedupe_key: markDeliveredAuditKey(shipmentId),
          })
          .onConflict((oc) => oc.column('dedupe_key').doNothing())
          .execute();

      if (isTerminal(shipment.status as ShipmentStatus)) {
        const manual = await deps.db
          .selectFrom('tracking_events')
          .select('id')
          .where('shipment_id', '=', shipmentId)
          .where('event_key', '=', eventKey)
          .executeTakeFirst();
        if (shipment.status === 'DELIVERED' && manual) {
          // A retry of a request that went through: make sure its audit entry exists too.
          await audit();
          return reply.code(200).send({ shipmentId, outcome: 'already_delivered' as const, eventKey });
        }
        throw new ApiError(
          409,
          'SHIPMENT_FINISHED',
          `shipment ${shipmentId} is already ${shipment.status}: it cannot be marked delivered`,
        );
      }

      // The workflow applies a pushed event's status only when it is the newest scan: a
      // courier clock ahead of ours must not turn the delivery into a late footnote.
      const lastScan = shipment.last_event_at?.getTime() ?? 0;
      const occurredAt = new Date(Math.max(Date.now(), lastScan + 1)).toISOString();
      const event: NormalisedEvent = {
        key: eventKey,
        status: ShipmentStatus.DELIVERED,
        subStatus: 'MARKED_BY_ADMIN',
        rawCode: null,
        rawText: 'Marked delivered by an admin',
        occurredAt,
        occurredAtRaw: null,
        location: { city: null, state: null, country: null },
        source: 'manual',
      };
      try {
        await deps.temporal.client.workflow
          .getHandle(shipmentWorkflowId(shipmentId))
          .signal(courierEventsSignal, { events: [event] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw notRunning(shipmentId);
        throw err;
      }
      // After the signal: an entry only for a delivery the workflow was actually told about.
      await audit();
      return reply.code(202).send({ shipmentId, outcome: 'accepted' as const, eventKey });
    },
  );
};
