/**
 * Admin actions (`/v1/admin/...`): steer shipment and order workflows (refresh, cancel,
 * manual delivery). Actions go through the workflows as signals and updates, never around
 * them. The exceptions queue and the stats (Postgres only) are src/api/routes/admin-queue.ts.
 * Their request and answer schemas are src/api/schemas/admin-routes.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { NormalisedEvent } from '../../couriers/types';
import { isTerminal, ShipmentStatus } from '../../domain/status';
import {
  courierEventsSignal,
  MARKED_BY_ADMIN,
  refreshSignal,
  shipmentWorkflowId,
} from '../../workflows/contract';
import { openShipmentsMatching, type ShipmentFilter } from '../../read-model/admin-queries';
import { writeAudit } from '../../read-model/audit';
import {
  hasTrackingEvent,
  lastSyncTimes,
  shipmentForAction,
  shipmentStatuses,
} from '../../read-model/shipment-lookups';
import type { ApiDeps } from '../app';
import { Permission } from '../access';
import { actorOf, requireStaff } from '../auth';
import { ApiError, isTemporalUnavailable, temporalUnavailable } from '../errors';
import {
  CANCEL_ACCEPT_WITHIN_MS,
  CANCEL_ANSWER_WITHIN_MS,
  cancelOrder,
  orderVisibleTo,
} from '../order-actions';
import { AUTH_ERRORS, errors, OrderParams, ReasonBody, trimmedReason } from '../schemas/admin';
import {
  BULK_REFRESH_CAP,
  BULK_REFRESH_CONCURRENCY,
  FAILURES_LISTED,
  ShipmentParams,
  RefreshAccepted,
  BulkRefreshBody,
  BulkRefreshResult,
  CancelResult,
  MarkDeliveredResult,
} from '../schemas/admin-routes';

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
  /** When the refresh cooldown since this sync ends; null when it is over. */
  const cooldownEnd = (syncedAt: Date | null): Date | null => {
    if (syncedAt === null) return null;
    const end = syncedAt.getTime() + deps.config.polling.refreshCooldownMs;
    return end > Date.now() ? new Date(end) : null;
  };

  async function openShipment(id: string) {
    const shipment = await shipmentForAction(deps.db, id);
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
        const rows = await shipmentStatuses(deps.db, shipmentIds);
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
          rule: deps.config.api.freshness,
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
      const synced = signalledIds.length === 0 ? [] : await lastSyncTimes(deps.db, signalledIds);
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
        description: `Runs the order workflow’s \`cancel\` update and answers within ${CANCEL_ANSWER_WITHIN_MS / 1000} s: 200 once the compensations are done, 202 when accepted and still compensating (the order’s status follows), 409 once a parcel is picked up (ALREADY_PICKED_UP) or the order is finished, 503 + Retry-After when the workflow did not take it within ${CANCEL_ACCEPT_WITHIN_MS / 1000} s.`,
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
        writeAudit(deps.db, [
          {
            actor: actorOf(request.principal),
            action: 'shipment.mark_delivered',
            subjectType: 'shipment',
            subjectId: shipmentId,
            reason,
            details: { eventKey, orderId: shipment.order_id, previousStatus: shipment.status },
            dedupeKey: markDeliveredAuditKey(shipmentId),
          },
        ]);

      if (isTerminal(shipment.status as ShipmentStatus)) {
        const manual = await hasTrackingEvent(deps.db, shipmentId, eventKey);
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
        subStatus: MARKED_BY_ADMIN,
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
