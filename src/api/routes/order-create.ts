/**
 * Order creation: POST /v1/orders (with Idempotency-Key) prices the lines from the catalogue,
 * writes the order row and starts its saga through Temporal. The reads, tracking, cancel and
 * guest lookup are src/api/routes/orders.ts; the schemas are src/api/schemas/orders.ts.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import { type CourierCode } from '../../couriers/types';
import { looksLikeCardNumber } from '../../domain/card-data';
import { courierFor, type CourierChoice } from '../../domain/courier-choice';
import { findOrderNumber, insertOrder, nextOrderNumber, orderLines } from '../../read-model/orders';
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
import type { Principal } from '../auth';
import { ApiError } from '../errors';
import { orderableItems } from '../../read-model/catalogue';
import { completeKey, releaseKey } from '../../read-model/idempotency-keys';
import { claimKey, requestHash } from '../idempotency';
import { CreateOrderBody, IdempotencyHeaders, OrderCreated } from '../schemas/orders';

const err = { $ref: 'Error#' } as const;

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

/** How an order's email is stored, and compared by the guest lookup. */
export const normaliseEmail = (email: string) => email.trim().toLowerCase();

export const orderCreateRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db, config } = deps;

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

  /** Prices the lines from the catalogue and starts the saga; throws 422 for what cannot be ordered. */
  async function createOrder(
    orderId: string,
    body: CreateOrderBody,
    principal: Principal,
  ): Promise<Static<typeof OrderCreated>> {
    const skus = body.lines.map((l) => l.sku);
    const items = await orderableItems(db, skus);
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
    const existing = await findOrderNumber(db, orderId);
    if (existing?.failure_code === OrderFailure.NOT_STARTED) {
      // Housekeeping closed it: its start failed long ago and nobody retried until now.
      // Starting it this late would surprise the shopper; a new order is a new key.
      throw new ApiError(
        409,
        'ORDER_NOT_STARTED',
        `order ${existing.number} (${orderId}) could not be started when it was placed (the workflow service was unreachable) and has since been closed as FAILED; nothing was reserved or charged. Place the order again with a new Idempotency-Key.`,
      );
    }
    const orderNumber = existing?.number ?? (await nextOrderNumber(db));
    // The retry charges what the order row says, the prices the shopper placed it at, not
    // the catalogue's now (a price changed in between would be authorised and captured).
    const placedAt = new Map((existing ? await orderLines(db, orderId) : []).map((l) => [l.line_no, l]));
    const lines = body.lines.map((l, i) => {
      const item = bySku.get(l.sku)!;
      const placed = placedAt.get(i + 1);
      return {
        lineNo: i + 1,
        sku: l.sku,
        name: placed?.name ?? item.name,
        quantity: l.quantity,
        unitAmount: placed?.unit_amount ?? item.unit_amount,
        shipFrom: item.location,
      };
    });
    const currency = existing?.currency ?? currencies[0]!;
    const total = await insertOrder(db, {
      id: orderId,
      number: orderNumber,
      customerId,
      email: normaliseEmail(body.email),
      currency,
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
      currency,
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
};
