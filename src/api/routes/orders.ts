/**
 * Customers' order routes: read, tracking (with an optional live refresh through the
 * shipment workflows), cancel; and the guest lookup by order number + email or postcode.
 * Reads come from Postgres only; the cancel goes through Temporal. Creating an order is
 * src/api/routes/order-create.ts. Their request and answer schemas are src/api/schemas/orders.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Order } from '../../../db/database';
import {
  orderTrackingById,
  orderTrackingByNumber,
  shipmentViewsOfOrder,
  trackingShipmentOf,
} from '../../read-model/order-tracking';
import { orderLines } from '../../read-model/orders';
import { latestPaymentOf } from '../../read-model/payments';
import { orderParcels } from '../../read-model/shipment-lookups';
import type { OrderStatus } from '../../workflows/contract';
import type { ApiDeps } from '../app';
import { actorOf, requireSignedIn, type Principal } from '../auth';
import { ApiError } from '../errors';
import {
  CANCEL_ACCEPT_WITHIN_MS,
  CANCEL_ANSWER_WITHIN_MS,
  cancelOrder,
  isVisibleTo,
  orderNotFound,
  orderVisibleTo,
  refreshShipments,
} from '../order-actions';
import { failureView } from '../order-failures';
import { RefreshOutcome, type StatusSchema, toTrackingViews, type ShipmentRefresh } from '../tracking-view';
import {
  OrderIdParams,
  OrderView,
  OrderTracking,
  GuestOrderTracking,
  GuestLookupBody,
  CancelBody,
  CancelResult,
} from '../schemas/orders';
import { normaliseEmail } from './order-create';

const err = { $ref: 'Error#' } as const;

/** Refresh outcomes that come from a shipment workflow's answer (the row may have changed). */
const ASKED_WORKFLOW: ReadonlySet<RefreshOutcome> = new Set([
  RefreshOutcome.LIVE,
  RefreshOutcome.COOLDOWN,
  RefreshOutcome.COURIER_UNAVAILABLE,
  RefreshOutcome.BUDGET_EXHAUSTED,
  RefreshOutcome.TIMEOUT,
  RefreshOutcome.FINISHED,
]);

const normalisePostcode = (postcode: string) => postcode.replace(/[\s-]/g, '').toUpperCase();

export const orderRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db, config } = deps;

  async function orderView(order: Order, principal: Principal): Promise<Static<typeof OrderView>> {
    const [lines, shipments, payment] = await Promise.all([
      orderLines(db, order.id),
      orderParcels(db, order.id),
      latestPaymentOf(db, order.id),
    ]);
    const address = order.shipping_address;
    return {
      orderId: order.id,
      orderNumber: order.number,
      status: order.status as OrderStatus,
      failure: failureView(order.failure_code, order.failure_message, principal.kind === 'staff'),
      email: order.email,
      currency: order.currency,
      totalAmount: order.total_amount,
      courier: order.courier,
      shippingAddress: {
        name: address.name,
        line1: address.line1,
        ...(address.line2 ? { line2: address.line2 } : {}),
        city: address.city,
        ...(address.state ? { state: address.state } : {}),
        postcode: address.postcode,
        country: address.country,
        ...(address.phone ? { phone: address.phone } : {}),
      },
      createdAt: order.created_at.toISOString(),
      updatedAt: order.updated_at.toISOString(),
      lines: lines.map((l) => ({
        lineNo: l.line_no,
        sku: l.sku,
        name: l.name,
        quantity: l.quantity,
        unitAmount: l.unit_amount,
        shipmentId: l.shipment_id,
      })),
      shipments: shipments.map((s) => ({
        shipmentId: s.id,
        courier: s.courier,
        trackingNumber: s.tracking_number,
        status: s.status as Static<typeof StatusSchema>,
        eta: s.eta?.toISOString() ?? null,
        lastUpdatedAt: s.last_synced_at?.toISOString() ?? null,
      })),
      payment: payment
        ? {
            status: payment.status,
            amountAuthorised: payment.amount_authorised,
            amountCaptured: payment.amount_captured,
            amountRefunded: payment.amount_refunded,
          }
        : null,
    };
  }

  app.get(
    '/v1/orders/:orderId',
    {
      onRequest: requireSignedIn,
      schema: {
        tags: ['orders'],
        summary: 'An order with its lines, shipments and payment (its customer or an admin)',
        params: OrderIdParams,
        response: { 200: OrderView, 400: err, 401: err, 404: err, 503: err },
      },
    },
    async (request) =>
      orderView(await orderVisibleTo(deps, request.principal, request.params.orderId), request.principal),
  );

  app.get(
    '/v1/orders/:orderId/tracking',
    {
      onRequest: requireSignedIn,
      schema: {
        tags: ['orders', 'tracking'],
        summary: 'Tracking of every shipment of an order, with freshness; ?refresh=true asks for a live poll',
        description:
          "Served from the read model. With refresh=true each unfinished shipment is polled live, within a deadline, unless its courier was asked less than the refresh cooldown ago (any caller's refresh or a scheduled poll) or the customer's live-refresh quota for the window is used up. Each shipment's dataSource says whether it is live (`refresh`: live) or why not (cooldown, quota, courier_unavailable, …) and when a live refresh can next reach the courier (`nextLiveRefreshAt`); `message` says it in words. The API never calls a courier itself.",
        params: OrderIdParams,
        querystring: Type.Object(
          { refresh: Type.Optional(Type.Boolean({ default: false })) },
          { additionalProperties: false },
        ),
        response: { 200: OrderTracking, 400: err, 401: err, 404: err, 503: err },
      },
    },
    async (request) => {
      // One statement: the order (for the access check) with its shipments and their events.
      const tracking = await orderTrackingById(db, request.params.orderId);
      if (!tracking || !isVisibleTo(request.principal, tracking.order.customerId)) {
        throw orderNotFound(request.params.orderId);
      }
      const { order } = tracking;
      let { shipments } = tracking;
      let refreshes = new Map<string, ShipmentRefresh>();
      let message: string | null = null;
      if (request.query.refresh) {
        const { principal } = request;
        const refreshed = await refreshShipments(
          deps,
          shipments.map((s) => ({
            id: s.id,
            status: s.status,
            last_synced_at: s.lastSyncedAt === null ? null : new Date(s.lastSyncedAt),
          })),
          {
            requestedBy: actorOf(principal),
            // Admins have no quota; they are few, and still held to the cooldown.
            quotaSubject: principal.kind === 'customer' ? `customer:${principal.customerId}` : null,
          },
          config.api.refreshDeadlineMs,
        );
        refreshes = refreshed.refreshes;
        message = refreshed.message;
        // Re-read only when a workflow was asked: it answers after its read-model write.
        if ([...refreshes.values()].some((r) => ASKED_WORKFLOW.has(r.outcome))) {
          shipments = (await shipmentViewsOfOrder(db, order.id)).map(trackingShipmentOf);
        }
      }
      return {
        orderId: order.id,
        orderNumber: order.number,
        status: order.status as OrderStatus,
        shipments: toTrackingViews(shipments, deps.config.api.freshness, refreshes),
        message,
      };
    },
  );

  app.post(
    '/v1/orders/:orderId/cancel',
    {
      // The body is optional: a bare POST cancels with a default reason.
      preValidation: async (request) => {
        request.body ??= {};
      },
      onRequest: requireSignedIn,
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order before any parcel is picked up (its customer)',
        description: `Runs the saga’s compensations (bookings cancelled, payment voided, stock released). Answers within ${CANCEL_ANSWER_WITHIN_MS / 1000} s: 200 once CANCELLED, 202 CANCELLING when accepted and still compensating (the order’s status follows), 409 once a parcel has been picked up or the order has finished, 503 + Retry-After when the order’s workflow did not take the cancel within ${CANCEL_ACCEPT_WITHIN_MS / 1000} s (a retry joins the same cancel).`,
        params: OrderIdParams,
        body: CancelBody,
        response: {
          200: CancelResult,
          202: CancelResult,
          400: err,
          401: err,
          403: err,
          404: err,
          409: err,
          503: err,
        },
      },
    },
    async (request, reply) => {
      const order = await orderVisibleTo(deps, request.principal, request.params.orderId);
      if (request.principal.kind !== 'customer') {
        throw new ApiError(
          403,
          'FORBIDDEN',
          'admins cancel with POST /v1/admin/orders/:orderId/cancel and a reason',
        );
      }
      const outcome = await cancelOrder(deps, {
        order,
        requestedBy: actorOf(request.principal),
        reason: request.body.reason?.trim() || 'cancelled by the customer',
      });
      return reply.code(outcome === 'cancelled' ? 200 : 202).send({
        orderId: order.id,
        status: outcome === 'cancelled' ? 'CANCELLED' : 'CANCELLING',
        message:
          outcome === 'cancelled'
            ? 'The order is cancelled; any payment hold is released.'
            : 'The cancel is accepted; the booking, payment and stock are still being released: the order’s status follows (CANCELLED once they are).',
      });
    },
  );

  app.post(
    '/v1/tracking/lookup',
    {
      schema: {
        tags: ['tracking'],
        summary: 'Guest tracking of an order by its number and the email or postcode on it',
        description:
          'For shoppers without an account. A wrong number/email pair answers 404 like an unknown number, and the route is rate limited hard per IP.',
        body: GuestLookupBody,
        response: { 200: GuestOrderTracking, 400: err, 404: err, 429: err },
      },
      config: { rateLimit: { max: config.api.guestRateLimitPerMinute, timeWindow: 60_000 } },
    },
    async (request) => {
      const { orderNumber, email, postcode } = request.body;
      if ((email === undefined) === (postcode === undefined)) {
        throw new ApiError(
          400,
          'PROOF_REQUIRED',
          'send the order number with either its email or its postcode',
        );
      }
      // One statement: the order by its number with its shipments; the proof is checked here.
      const tracking = await orderTrackingByNumber(db, orderNumber.toUpperCase());
      const order = tracking?.order;
      const proven =
        order !== undefined &&
        (email !== undefined
          ? normaliseEmail(order.email) === normaliseEmail(email)
          : order.postcode !== null && normalisePostcode(order.postcode) === normalisePostcode(postcode!));
      if (!order || !proven) {
        throw new ApiError(404, 'NOT_FOUND', 'no order matches this number and email or postcode');
      }
      const views = toTrackingViews(tracking!.shipments, deps.config.api.freshness);
      return {
        orderNumber: order.number,
        status: order.status as OrderStatus,
        shipments: views.map(({ shipmentId: _omitted, ...view }) => view),
      };
    },
  );
};
