/**
 * Customers' order routes: create (with Idempotency-Key), read, tracking (with an optional
 * live refresh through the shipment workflows), cancel; and the guest lookup by order
 * number + email or postcode. Reads come from Postgres only; writes go through Temporal.
 * Their request and answer schemas are src/api/schemas/orders.ts.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { Type, type Static } from 'typebox';
import type { Order } from '../../../db/database';
import { type CourierCode } from '../../couriers/types';
import { looksLikeCardNumber } from '../../domain/card-data';
import { courierFor, type CourierChoice } from '../../domain/courier-choice';
import { insertOrder } from '../../orders/queries';
import { orderTrackingById, orderTrackingByNumber } from '../../orders/tracking-reads';
import {
  DEFAULT_TRACKING_RESTART_WINDOW_MS,
  OrderFailure,
  OrderStatus,
  orderWorkflowId,
  type OrderWorkflowInput,
} from '../../workflows/contract';
import type { orderWorkflow } from '../../workflows/order';
import { CustomerIdKey, OrderIdKey, OrderStatusKey } from '../../workflows/search-attributes';
import type { ApiDeps } from '../app';
import { actorOf, requireSignedIn, type Principal } from '../auth';
import { ApiError } from '../errors';
import { claimKey, completeKey, releaseKey, requestHash } from '../idempotency';
import { cancelOrder, isVisibleTo, orderNotFound, orderVisibleTo, refreshShipments } from '../order-actions';
import { failureView } from '../order-failures';
import {
  RefreshOutcome,
  selectShipmentViews,
  type StatusSchema,
  toTrackingViews,
  type ShipmentRefresh,
} from '../tracking-view';
import {
  OrderIdParams,
  CreateOrderBody,
  IdempotencyHeaders,
  OrderCreated,
  OrderView,
  OrderTracking,
  GuestOrderTracking,
  GuestLookupBody,
  CancelBody,
  CancelResult,
} from '../schemas/orders';

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

/** 96 random bits: order ids cannot be guessed or enumerated. */
const newOrderId = () => `ord_${randomBytes(12).toString('hex')}`;

function idempotencyScope(principal: Principal): string {
  switch (principal.kind) {
    case 'customer':
      return `orders:customer:${principal.customerId}`;
    case 'staff':
      return `orders:${principal.role}:${principal.staffId}`;
    default:
      return 'orders:guest';
  }
}

const normaliseEmail = (email: string) => email.trim().toLowerCase();
const normalisePostcode = (postcode: string) => postcode.replace(/[\s-]/g, '').toUpperCase();

export const orderRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db, config } = deps;

  async function orderView(order: Order, principal: Principal): Promise<Static<typeof OrderView>> {
    const [lines, shipments, payment] = await Promise.all([
      db.selectFrom('order_items').selectAll().where('order_id', '=', order.id).orderBy('line_no').execute(),
      db
        .selectFrom('shipments')
        .select(['id', 'courier', 'tracking_number', 'status', 'eta', 'last_synced_at'])
        .where('order_id', '=', order.id)
        .orderBy('id')
        .execute(),
      db
        .selectFrom('payments')
        .select(['status', 'amount_authorised', 'amount_captured', 'amount_refunded'])
        .where('order_id', '=', order.id)
        .orderBy('created_at', 'desc')
        .executeTakeFirst(),
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

  /**
   * Who carries the order's parcels: the server's courier for each warehouse they ship from
   * (WAYBILL_COURIER_BY_WAREHOUSE, else WAYBILL_DEFAULT_COURIER). A courier named in the
   * request wins only in development, where the demo takes one courier down on purpose.
   */
  function chooseCouriers(requested: CourierCode | undefined, warehouses: string[]): CourierChoice {
    if (requested !== undefined) return { courier: requested };
    const byWarehouse = config.api.courierByWarehouse;
    return {
      courier: config.api.defaultCourier,
      courierByShipFrom: Object.fromEntries(
        warehouses.filter((w) => Object.hasOwn(byWarehouse, w)).map((w) => [w, byWarehouse[w]!]),
      ),
    };
  }

  async function shipmentsOf(orderId: string) {
    return selectShipmentViews(db).where('order_id', '=', orderId).orderBy('id').execute();
  }

  /** Prices the lines from the catalogue and starts the saga; throws 422 for what cannot be ordered. */
  async function createOrder(
    orderId: string,
    body: CreateOrderBody,
    principal: Principal,
  ): Promise<Static<typeof OrderCreated>> {
    const skus = body.lines.map((l) => l.sku);
    const items = await db
      .selectFrom('inventory_items')
      .select(['sku', 'name', 'location', 'unit_amount', 'currency'])
      .where('sku', 'in', skus)
      .execute();
    const bySku = new Map(items.map((i) => [i.sku, i]));
    const unknown = skus.filter((sku) => !bySku.has(sku));
    if (unknown.length > 0) {
      throw new ApiError(422, 'UNKNOWN_SKU', `these skus are not in the catalogue: ${unknown.join(', ')}`);
    }
    const currencies = [...new Set(items.map((i) => i.currency))];
    if (currencies.length > 1) {
      throw new ApiError(
        422,
        'MIXED_CURRENCIES',
        `the lines are priced in different currencies (${currencies.join(', ')}); order them separately`,
      );
    }
    const couriers = chooseCouriers(body.courier, [...new Set(items.map((i) => i.location))]);
    const customerId = principal.kind === 'customer' ? principal.customerId : null;

    // A retry that takes over a dead attempt finds the order row already there: reuse its number.
    const existing = await db
      .selectFrom('orders')
      .select(['number', 'failure_code'])
      .where('id', '=', orderId)
      .executeTakeFirst();
    if (existing?.failure_code === OrderFailure.NOT_STARTED) {
      // Housekeeping closed it: its start failed long ago and nobody retried until now.
      // Starting it this late would surprise the shopper; a new order is a new key.
      throw new ApiError(
        409,
        'ORDER_NOT_STARTED',
        `order ${existing.number} (${orderId}) could not be started when it was placed (the workflow service was unreachable) and has since been closed as FAILED; nothing was reserved or charged. Place the order again with a new Idempotency-Key.`,
      );
    }
    const orderNumber =
      existing?.number ??
      `WB-${(await sql<{ n: string }>`select nextval('order_number_seq') as n`.execute(db)).rows[0]!.n}`;
    const lines = body.lines.map((l, i) => {
      const item = bySku.get(l.sku)!;
      return {
        lineNo: i + 1,
        sku: l.sku,
        name: item.name,
        quantity: l.quantity,
        unitAmount: item.unit_amount,
        shipFrom: item.location,
      };
    });
    const total = await insertOrder(db, {
      id: orderId,
      number: orderNumber,
      customerId,
      email: normaliseEmail(body.email),
      currency: currencies[0]!,
      courier: courierFor(couriers, lines[0]!.shipFrom),
      shippingAddress: {
        ...body.shippingAddress,
        line2: body.shippingAddress.line2 ?? null,
        state: body.shippingAddress.state ?? null,
        phone: body.shippingAddress.phone ?? null,
      },
      lines,
    });
    const input: OrderWorkflowInput = {
      orderId,
      orderNumber,
      customerId,
      currency: currencies[0]!,
      totalAmount: total,
      ...couriers,
      lines: lines.map(({ name: _name, ...line }) => line),
      payment: { token: body.payment.token },
      courierTaskQueue: config.temporal.courierTaskQueue,
      bookingRetryWindowMs: config.api.bookingRetryWindowMs,
      settleRetryWindowMs: config.api.settleRetryWindowMs,
      trackingRestartWindowMs: DEFAULT_TRACKING_RESTART_WINDOW_MS,
    };
    try {
      await deps.temporal.client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
        workflowId: orderWorkflowId(orderId),
        taskQueue: config.temporal.taskQueue,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: OrderIdKey, value: orderId },
          { key: OrderStatusKey, value: OrderStatus.PENDING },
          ...(customerId ? [{ key: CustomerIdKey, value: customerId }] : []),
        ],
      });
    } catch (e) {
      // An earlier attempt with this key started it: the saga is running, which is the goal.
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    }
    return {
      orderId,
      orderNumber,
      status: OrderStatus.PENDING,
      links: { self: `/v1/orders/${orderId}`, tracking: `/v1/orders/${orderId}/tracking` },
    };
  }

  app.post(
    '/v1/orders',
    {
      // Before validation, so before anything stores, logs or echoes the body.
      preValidation: async (request) => {
        const token = (request.body as { payment?: { token?: unknown } } | null)?.payment?.token;
        if (typeof token === 'string' && looksLikeCardNumber(token)) {
          throw new ApiError(
            400,
            'CARD_DATA_REFUSED',
            "body.payment.token is a card number: send the payment provider's token from checkout (e.g. tok_…), never card details",
          );
        }
      },
      schema: {
        tags: ['orders'],
        summary: 'Create an order (starts its saga); requires Idempotency-Key',
        description:
          'Prices the lines from the catalogue and starts the order workflow. The same key with the same body answers the first response again; with another body 422; while the first request is still running 409. A request that failed with 503 (Temporal unreachable) is safe to retry with the same key; once the order has waited WAYBILL_ORDER_START_GRACE without a successful retry it is closed as FAILED / NOT_STARTED and a retry answers 409 ORDER_NOT_STARTED (use a new key). Signed-in customers own the order; guests track it with its number and email.',
        // Anyone: guests, or a signed-in customer who then owns the order (staff too).
        security: [{}, { customerBearer: [] }, { staffBearer: [] }, { adminApiKey: [] }],
        headers: IdempotencyHeaders,
        body: CreateOrderBody,
        response: { 202: OrderCreated, 400: err, 401: err, 409: err, 422: err, 429: err, 503: err },
      },
    },
    async (request, reply) => {
      if (request.body.courier !== undefined && config.env !== 'development') {
        throw new ApiError(
          400,
          'COURIER_NOT_CHOOSABLE',
          'body.courier is not accepted: the server picks the courier from the warehouse each parcel ships from; leave the field out',
        );
      }
      const seen = new Set<string>();
      for (const line of request.body.lines) {
        if (seen.has(line.sku)) {
          throw new ApiError(
            400,
            'DUPLICATE_SKU',
            `sku ${line.sku} appears on two lines; use one line with the total quantity`,
          );
        }
        seen.add(line.sku);
      }
      const scope = idempotencyScope(request.principal);
      const key = request.headers['idempotency-key'];
      const claim = await claimKey(db, {
        scope,
        key,
        hash: requestHash(request.body),
        newResourceId: newOrderId(),
      });
      if (claim.kind === 'replay') {
        return reply
          .code(claim.status as 202 | 409 | 422)
          .header('idempotent-replayed', 'true')
          .send(claim.body as never);
      }
      try {
        const created = await createOrder(claim.resourceId, request.body, request.principal);
        await completeKey(db, { scope, key, status: 202, body: created });
        return reply.code(202).header('location', created.links.self).send(created);
      } catch (e) {
        if (e instanceof ApiError && (e.statusCode === 422 || e.code === 'ORDER_NOT_STARTED')) {
          // A rejection of the input, or an order closed for good, is the answer to this key: replay it too.
          await completeKey(db, {
            scope,
            key,
            status: e.statusCode,
            body: { error: { code: e.code, message: e.message } },
          });
        } else {
          await releaseKey(db, { scope, key }).catch(() => undefined);
        }
        throw e;
      }
    },
  );

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
          shipments,
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
          shipments = await shipmentsOf(order.id);
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
        description:
          'Runs the saga’s compensations (bookings cancelled, payment voided, stock released). 200 once CANCELLED, 202 while compensations are still running, 409 once a parcel has been picked up or the order has finished.',
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
            : 'The cancel is accepted; the booking, payment and stock are being released.',
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
