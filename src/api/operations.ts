/**
 * What the OpenAPI document says about each operation beyond its schemas: its `operationId`
 * (the method name generated clients get: renaming one breaks them, so every name is in
 * this one table) and who may call it (security requirements derived from the route's
 * access guard, so the document cannot drift from what is enforced).
 */
import { rolesWith } from './access';
import { accessOf } from './auth';

/** "METHOD /path/{param}" → operationId. A documented route missing here fails at start. */
export const OPERATION_IDS: Readonly<Record<string, string>> = {
  'GET /health/live': 'getLiveness',
  'GET /health/ready': 'getReadiness',
  'GET /v1/tracking/{trackingNumber}': 'trackParcel',
  'POST /v1/tracking/lookup': 'lookUpOrderTracking',
  'POST /v1/orders': 'createOrder',
  'GET /v1/orders/{orderId}': 'getOrder',
  'GET /v1/orders/{orderId}/tracking': 'getOrderTracking',
  'GET /v1/orders/{orderId}/tracking/stream': 'streamOrderTracking',
  'POST /v1/orders/{orderId}/cancel': 'cancelOrder',
  'GET /v1/admin/shipments': 'listShipments',
  'GET /v1/admin/stats': 'getStats',
  'POST /v1/admin/shipments/{shipmentId}/refresh': 'refreshShipment',
  'POST /v1/admin/shipments/refresh': 'refreshShipments',
  'POST /v1/admin/shipments/{shipmentId}/mark-delivered': 'markShipmentDelivered',
  'POST /v1/admin/orders/{orderId}/cancel': 'cancelOrderAsStaff',
  'GET /v1/admin/attention': 'listAttentionItems',
  'POST /v1/admin/orders/{orderId}/attention/{itemId}': 'actOnAttentionItem',
  'GET /v1/admin/failed-work': 'listFailedWork',
  'POST /v1/admin/failed-work/orders/{orderId}/retry-step': 'retryFailedStep',
  'POST /v1/admin/failed-work/shipments/{shipmentId}/restart-tracking': 'restartShipmentTracking',
  'POST /v1/admin/failed-work/orders/{orderId}/reset': 'resetOrderWorkflow',
  'POST /v1/admin/imports': 'importParcels',
  'GET /v1/admin/imports/{importId}': 'getImport',
  'POST /v1/webhooks/couriers/{courier}': 'receiveCourierPush',
  'POST /v1/webhooks/easyparcel/native': 'receiveEasyParcelWebhook',
  'POST /v1/admin/event-endpoints': 'createEventEndpoint',
  'GET /v1/admin/event-endpoints': 'listEventEndpoints',
  'GET /v1/admin/event-endpoints/{endpointId}': 'getEventEndpoint',
  'PATCH /v1/admin/event-endpoints/{endpointId}': 'updateEventEndpoint',
  'DELETE /v1/admin/event-endpoints/{endpointId}': 'deleteEventEndpoint',
  'POST /v1/admin/event-endpoints/{endpointId}/disable': 'disableEventEndpoint',
  'POST /v1/admin/event-endpoints/{endpointId}/enable': 'enableEventEndpoint',
  'POST /v1/admin/event-endpoints/{endpointId}/rotate-secret': 'rotateEventEndpointSecret',
  'GET /v1/admin/event-endpoints/{endpointId}/deliveries': 'listEventDeliveries',
  'GET /v1/admin/event-endpoints/{endpointId}/attempts': 'listEventDeliveryAttempts',
  'POST /v1/admin/event-endpoints/{endpointId}/events/{eventId}/resend': 'resendEvent',
  'POST /v1/admin/catalogue/skus': 'createSku',
  'PATCH /v1/admin/catalogue/skus/{sku}': 'updateSku',
  'GET /v1/admin/stock': 'listStockLevels',
  'POST /v1/admin/stock/{sku}/receive': 'receiveStock',
  'POST /v1/admin/stock/{sku}/adjust': 'adjustStock',
  'GET /v1/admin/stock/alerts': 'listLowStockAlerts',
  'POST /v1/admin/stock/alerts/{alertId}/acknowledge': 'acknowledgeLowStockAlert',
  'POST /v1/admin/orders/search': 'searchOrders',
  'GET /v1/admin/exports/deliveries': 'exportDeliveries',
  'GET /v1/admin/exports/exceptions': 'exportExceptions',
  'GET /v1/admin/exports/courier-usage': 'exportCourierUsage',
  'GET /v1/admin/exports/orders': 'exportOrders',
  'POST /v1/admin/fleet/vehicles': 'createFleetVehicle',
  'GET /v1/admin/fleet/vehicles': 'listFleetVehicles',
  'POST /v1/admin/fleet/drivers': 'createFleetDriver',
  'GET /v1/admin/fleet/drivers': 'listFleetDrivers',
  'POST /v1/admin/fleet/drivers/{driverId}/token': 'issueDriverToken',
  'DELETE /v1/admin/fleet/drivers/{driverId}/token': 'revokeDriverToken',
  'POST /v1/admin/fleet/runs': 'openFleetRun',
  'GET /v1/admin/fleet/runs': 'listFleetRuns',
  'GET /v1/admin/fleet/runs/{runId}': 'getFleetRun',
  'POST /v1/admin/fleet/runs/{runId}/parcels': 'assignParcelsToRun',
  'POST /v1/admin/fleet/runs/{runId}/close': 'closeFleetRun',
  'GET /v1/admin/fleet/queue': 'listDispatchQueue',
  'GET /v1/driver/run': 'getDriverRun',
  'POST /v1/driver/reports': 'reportParcel',
};

export const SECURITY_SCHEMES = {
  customerBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      "A customer's token from the shop's login: HS256, with sub (the customer id), iat, exp, the configured issuer and audience; no role. Verified as RFC8725 (JSON Web Token Best Current Practices) asks: the one algorithm pinned (no `none`, no algorithm from the token), exp, iat and sub required, issuer and audience checked, a maximum age since iat.",
  },
  staffBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      "A staff token from the staff identity provider: ES256/RS256/EdDSA with its kid, sub, role (admin, ops or support), iat, exp, the staff issuer and the audience. Verified as RFC8725 (JSON Web Token Best Current Practices) asks: the algorithm of the key the kid names (never one the token picks), exp, iat, sub and role required, issuer and audience checked, a maximum age since iat; its own issuer and key, separate from customers'. What each role may do: docs/api.md#staff-roles.",
  },
  adminApiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
    description: 'An admin API key (role admin).',
  },
  courierSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'x-waybill-signature',
    description:
      "`sha256=` + hex HMAC-SHA256 with the courier's webhook secret over `<x-waybill-timestamp>.<raw body>`; the timestamp header is required too.",
  },
  easyParcelWebhookToken: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      "EasyParcel's webhooks carry no signature: the URL given to EasyParcel holds the secret `EASYPARCEL_WEBHOOK_TOKEN` (32+ characters). A missing or wrong token answers 404.",
  },
  driverToken: {
    type: 'apiKey',
    in: 'header',
    name: 'x-driver-token',
    description:
      "A driver of the shop's own fleet: the driver's token (`wbd_…`), issued by an admin (`POST /v1/admin/fleet/drivers/{driverId}/token`), stored hashed, revocable at once.",
  },
} as const;

type Requirement = Partial<Record<keyof typeof SECURITY_SCHEMES, string[]>>;

/**
 * A staff credential holding `permission`. OpenAPI lets non-OAuth requirements name the
 * roles they need; we name the permission (docs/api.md#staff-roles maps it to roles), so
 * the document says which staff operation needs what, not just "some staff credential".
 */
const staff = (permission: string): Requirement[] => [
  { staffBearer: [permission] },
  { adminApiKey: [permission] },
];

interface RouteSchema {
  hide?: boolean;
  operationId?: string;
  security?: Requirement[];
  description?: string;
  summary?: string;
  response?: Record<string, unknown>;
}

/**
 * Names the operation and says who may call it. Routes without a guard are open to anyone
 * (`[{}]`) unless their schema declares its own security (the courier webhook, order creation).
 */
export function describeOperation(operation: string, schema: RouteSchema, onRequest: unknown): void {
  const operationId = OPERATION_IDS[operation];
  if (operationId === undefined) {
    throw new Error(`${operation} has no operationId: add it to OPERATION_IDS in src/api/operations.ts`);
  }
  schema.operationId ??= operationId;
  if (schema.security !== undefined) return;
  const access = accessOf(onRequest);
  if (access === null) {
    schema.security = [{}];
    return;
  }
  const roles = rolesWith(access.permission).join(', ');
  if (access.kind === 'staff') {
    schema.security = staff(access.permission);
    schema.description = [
      schema.description,
      `Staff with \`${access.permission}\`: ${roles} (an admin API key is admin). Others get 403.`,
    ]
      .filter(Boolean)
      .join('\n\n');
    if (schema.response && !('403' in schema.response)) schema.response['403'] = { $ref: 'Error#' };
  } else {
    schema.security = [{ customerBearer: [] }, ...staff(access.permission)];
    schema.description = [
      schema.description,
      `The order's customer, or staff with \`${access.permission}\` (${roles}).`,
    ]
      .filter(Boolean)
      .join('\n\n');
  }
}

/** Requests per window: the largest limit configurable (WAYBILL_RATE_LIMIT_PER_MINUTE × 5 for pushes). */
const RequestCount = { type: 'integer', format: 'int32', minimum: 0, maximum: 100_000_000 } as const;
/** Seconds: every rate-limit window is one minute. */
const Seconds = { type: 'integer', format: 'int32', minimum: 0, maximum: 60 } as const;

/**
 * Sent by @fastify/rate-limit (draft-spec names) on every answer of a limited route, once the
 * request reached routing: a URL the router refuses (414, 400 BAD_URL) is answered without them.
 */
const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': {
    ...RequestCount,
    description: 'Requests allowed per window to this route, per client',
  },
  'RateLimit-Remaining': { ...RequestCount, description: 'Requests left in the current window' },
  'RateLimit-Reset': { ...Seconds, description: 'Seconds until the window resets' },
} as const;

/**
 * Declares the response headers a caller can rely on: the rate-limit headers on every answer
 * of a limited route, Retry-After on 429 (seconds until the window resets, or a moment for
 * WORKFLOW_BUSY) and on an error
 * 503 (5: a dependency is down, retry shortly).
 */
export function documentResponseHeaders(responses: Record<string, unknown>, limited: boolean): void {
  for (const [status, response] of Object.entries(responses)) {
    const isError = (response as { $ref?: string }).$ref === 'Error#';
    const retryAfter =
      status === '429'
        ? {
            ...Seconds,
            description:
              'Seconds until the rate-limit window resets; for WORKFLOW_BUSY, a moment to let the requests in progress on that order or parcel finish',
          }
        : status === '503' && isError
          ? { type: 'integer', format: 'int32', minimum: 1, maximum: 60, description: 'Seconds; retry then' }
          : null;
    const headers = {
      ...(limited ? RATE_LIMIT_HEADERS : {}),
      ...(retryAfter ? { 'Retry-After': retryAfter } : {}),
    };
    // A copy: response schemas are shared between routes (and with other statuses).
    if (Object.keys(headers).length > 0) responses[status] = { ...(response as object), headers };
  }
}
