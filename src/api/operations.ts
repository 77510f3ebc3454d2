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
  'POST /v1/webhooks/couriers/{courier}': 'receiveCourierPush',
};

export const SECURITY_SCHEMES = {
  customerBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      "A customer's token from the shop's login: HS256, with sub (the customer id), iat, exp, the configured issuer and audience; no role.",
  },
  staffBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'A staff token from the staff identity provider: ES256/RS256/EdDSA with its kid, sub, role (admin, ops or support), iat, exp, the staff issuer and the audience. What each role may do: docs/api.md#staff-roles.',
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
} as const;

type Requirement = Partial<Record<keyof typeof SECURITY_SCHEMES, string[]>>;

const STAFF: Requirement[] = [{ staffBearer: [] }, { adminApiKey: [] }];

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
    schema.security = STAFF;
    schema.description = [
      schema.description,
      `Staff with \`${access.permission}\`: ${roles} (an admin API key is admin). Others get 403.`,
    ]
      .filter(Boolean)
      .join('\n\n');
    if (schema.response && !('403' in schema.response)) schema.response['403'] = { $ref: 'Error#' };
  } else {
    schema.security = [{ customerBearer: [] }, ...STAFF];
    schema.description = [
      schema.description,
      `The order's customer, or staff with \`${access.permission}\` (${roles}).`,
    ]
      .filter(Boolean)
      .join('\n\n');
  }
}
