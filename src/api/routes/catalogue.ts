/**
 * The catalogue and stock for staff: skus created and changed (name, warehouse, price,
 * low-stock threshold), stock received and adjusted with a reason, stock levels with what
 * orders hold, and low-stock alerts listed and acknowledged. Every change is audited (who,
 * why, before and after); stock never goes below what orders have reserved. The SQL, and
 * how a change and the saga's reservations take turns on a sku, are in
 * src/read-model/catalogue.ts and stock-alerts.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { acknowledgeAlert, alertsPage } from '../../read-model/stock-alerts';
import {
  changeStock,
  createSku,
  StockChangeKind,
  stockLevelsPage,
  updateSku,
  type StockChangeResult as ChangeOutcome,
} from '../../read-model/catalogue';
import { Permission } from '../access';
import type { ApiDeps } from '../app';
import { actorOf, requireStaff } from '../auth';
import { ApiError } from '../errors';
import { oncePerKey } from '../idempotency';
import { AUTH_ERRORS, errors, trimmedReason } from '../schemas/admin';
import {
  AcknowledgeBody,
  AcknowledgeResult,
  AdjustBody,
  AlertPage,
  AlertParams,
  AlertQuery,
  CreateSkuBody,
  ReceiveBody,
  SkuParams,
  StockChangeHeaders,
  StockChangeResult,
  StockLevel,
  StockPage,
  StockQuery,
  STOCK_PAGE_DEFAULT,
  UpdateSkuBody,
} from '../schemas/catalogue';

/** Page positions: `["sku", <last sku>]` or `["alert", <last id>]`, base64url JSON. */
function encodePosition(kind: 'sku' | 'alert', value: string | number): string {
  return Buffer.from(JSON.stringify([kind, value])).toString('base64url');
}

function decodePosition<T extends string | number>(
  kind: 'sku' | 'alert',
  text: string | undefined,
): T | null {
  if (text === undefined) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value[0] === kind) {
      const position: unknown = value[1];
      if (kind === 'sku' && typeof position === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(position)) {
        return position as T;
      }
      if (kind === 'alert' && Number.isSafeInteger(position) && (position as number) > 0)
        return position as T;
    }
  } catch {
    // Not base64url JSON: refused below like any other cursor we did not hand out.
  }
  throw new ApiError(
    400,
    'INVALID_CURSOR',
    'querystring: cursor is not one this API handed out; pass nextCursor from the previous page',
  );
}

const unknownSku = (sku: string) => new ApiError(404, 'UNKNOWN_SKU', `sku ${sku} is not in the catalogue`);

function changeAnswer(sku: string, kind: StockChangeKind, delta: number, result: ChangeOutcome) {
  switch (result.outcome) {
    case 'unknown_sku':
      throw unknownSku(sku);
    case 'below_reserved':
      throw new ApiError(
        409,
        'STOCK_BELOW_RESERVED',
        `sku ${sku}: ${delta} would leave ${result.onHand + delta} on hand, below the ${result.reserved} reserved by orders (on hand ${result.onHand}, available ${result.available}); remove at most ${result.available}`,
      );
    case 'changed':
      return {
        sku,
        outcome: 'changed' as const,
        change: { kind, delta, before: result.before, after: result.after },
        level: result.level,
      };
    case 'duplicate':
      return {
        sku,
        outcome: 'duplicate' as const,
        change: { ...result.recorded, kind: result.recorded.kind as StockChangeKind },
        level: result.level,
      };
  }
}

export const catalogueRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  app.post(
    '/v1/admin/catalogue/skus',
    {
      onRequest: requireStaff(Permission.WRITE_CATALOGUE),
      schema: {
        tags: ['catalogue'],
        summary: 'Add a sku to the catalogue (nothing on hand yet; receive stock next)',
        description:
          'Price in minor units of `currency` (orders are priced from it). Audited. 409 `SKU_EXISTS` when the sku is already in the catalogue: change it with PATCH.',
        body: CreateSkuBody,
        response: { 201: StockLevel, ...errors(400, ...AUTH_ERRORS, 409, 503) },
      },
    },
    async (request, reply) => {
      const { reason, lowStockThreshold, ...fields } = request.body;
      const level = await createSku(db, {
        ...fields,
        lowStockThreshold: lowStockThreshold ?? 0,
        actor: actorOf(request.principal),
        reason: reason === undefined ? null : trimmedReason(reason),
      });
      if (!level) {
        throw new ApiError(
          409,
          'SKU_EXISTS',
          `sku ${fields.sku} is already in the catalogue; change it with PATCH`,
        );
      }
      return reply.code(201).send(level);
    },
  );

  app.patch(
    '/v1/admin/catalogue/skus/:sku',
    {
      onRequest: requireStaff(Permission.WRITE_CATALOGUE),
      schema: {
        tags: ['catalogue'],
        summary: "Change a sku's name, warehouse, price or low-stock threshold (with a reason, audited)",
        description:
          'Send the fields to change and a reason. Orders already placed keep their prices and warehouses. A threshold that makes the sku low raises its low-stock alert.',
        params: SkuParams,
        body: UpdateSkuBody,
        response: { 200: StockLevel, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const { reason, ...changes } = request.body;
      const level = await updateSku(db, {
        sku: request.params.sku,
        changes,
        actor: actorOf(request.principal),
        reason: trimmedReason(reason),
        nowMs: Date.now(),
      });
      if (!level) throw unknownSku(request.params.sku);
      return level;
    },
  );

  app.get(
    '/v1/admin/stock',
    {
      onRequest: requireStaff(Permission.READ_STOCK),
      schema: {
        tags: ['catalogue'],
        summary: 'Stock levels: on hand, reserved by orders, available, in sku order',
        description: '`warehouse` and `low` (available below the threshold) combine with AND.',
        querystring: StockQuery,
        response: { 200: StockPage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? STOCK_PAGE_DEFAULT;
      const page = await stockLevelsPage(db, {
        ...(q.warehouse !== undefined ? { warehouse: q.warehouse } : {}),
        ...(q.low !== undefined ? { lowOnly: q.low } : {}),
        limit,
        afterSku: decodePosition<string>('sku', q.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextAfterSku === null ? null : encodePosition('sku', page.nextAfterSku),
      };
    },
  );

  const STOCK_CHANGE_RULES =
    'The audit log records who, why, and on hand / reserved / available before and after. Never below what orders have reserved: 409 `STOCK_BELOW_RESERVED` names the sku, on hand, reserved and available. Requires `Idempotency-Key`: the same key with the same request answers the first 200 again (`idempotent-replayed: true`) and applies nothing; with another request 422 `IDEMPOTENCY_KEY_REUSED`; while the first still runs 409 `IDEMPOTENCY_KEY_IN_USE`; a refused change keeps nothing, so its retry runs again. With a `reference`, the same delivery note or count sent again under any key answers `duplicate` and changes nothing.';

  /** Applied once per Idempotency-Key (the key's scope is the staff member; the sku is part of the request). */
  async function applyChange(
    request: {
      params: { sku: string };
      headers: { 'idempotency-key': string };
      principal: Parameters<typeof actorOf>[0];
    },
    reply: FastifyReply,
    change: { kind: StockChangeKind; delta: number; reason: string; reference?: string },
  ) {
    const actor = actorOf(request.principal);
    const { sku } = request.params;
    const answer = await oncePerKey(
      db,
      { scope: `stock:${actor}`, key: request.headers['idempotency-key'], request: { sku, ...change } },
      async () => {
        const result = await changeStock(db, {
          sku,
          kind: change.kind,
          delta: change.delta,
          reason: trimmedReason(change.reason),
          reference: change.reference ?? null,
          actor,
          nowMs: Date.now(),
        });
        return changeAnswer(sku, change.kind, change.delta, result);
      },
    );
    if (answer.replayed) void reply.header('idempotent-replayed', 'true');
    return answer.body;
  }

  app.post(
    '/v1/admin/stock/:sku/receive',
    {
      onRequest: requireStaff(Permission.WRITE_STOCK),
      schema: {
        tags: ['catalogue'],
        summary: 'Receive stock: units put on the shelf (with a reason, audited)',
        description: `\`quantity\` units are added on hand. ${STOCK_CHANGE_RULES}`,
        params: SkuParams,
        headers: StockChangeHeaders,
        body: ReceiveBody,
        response: { 200: StockChangeResult, ...errors(400, ...AUTH_ERRORS, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      applyChange(request, reply, {
        kind: StockChangeKind.RECEIVE,
        delta: request.body.quantity,
        ...request.body,
      }),
  );

  app.post(
    '/v1/admin/stock/:sku/adjust',
    {
      onRequest: requireStaff(Permission.WRITE_STOCK),
      schema: {
        tags: ['catalogue'],
        summary: 'Adjust stock up or down: a count, damage, loss (with a reason, audited)',
        description: `\`delta\` units are added (or, negative, removed) on hand. ${STOCK_CHANGE_RULES}`,
        params: SkuParams,
        headers: StockChangeHeaders,
        body: AdjustBody,
        response: { 200: StockChangeResult, ...errors(400, ...AUTH_ERRORS, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => applyChange(request, reply, { kind: StockChangeKind.ADJUST, ...request.body }),
  );

  app.get(
    '/v1/admin/stock/alerts',
    {
      onRequest: requireStaff(Permission.READ_STOCK),
      schema: {
        tags: ['catalogue'],
        summary: 'Low-stock alerts: at most one per sku per UTC day, oldest first',
        description:
          'Raised when an order or a stock change leaves a sku below its threshold. `state` open (default), acknowledged or all; `availableNow` is the stock as it is now.',
        querystring: AlertQuery,
        response: { 200: AlertPage, ...errors(400, ...AUTH_ERRORS, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await alertsPage(db, {
        state: q.state ?? 'open',
        ...(q.warehouse !== undefined ? { warehouse: q.warehouse } : {}),
        limit: q.limit ?? STOCK_PAGE_DEFAULT,
        afterId: decodePosition<number>('alert', q.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextAfterId === null ? null : encodePosition('alert', page.nextAfterId),
      };
    },
  );

  app.post(
    '/v1/admin/stock/alerts/:alertId/acknowledge',
    {
      onRequest: requireStaff(Permission.WRITE_STOCK),
      schema: {
        tags: ['catalogue'],
        summary: 'Acknowledge a low-stock alert (audited; acknowledging it again changes nothing)',
        params: AlertParams,
        body: AcknowledgeBody,
        response: { 200: AcknowledgeResult, ...errors(400, ...AUTH_ERRORS, 404, 503) },
      },
    },
    async (request) => {
      const note = request.body.note?.trim();
      const result = await acknowledgeAlert(db, {
        alertId: request.params.alertId,
        actor: actorOf(request.principal),
        note: note ? note : null,
      });
      if (!result) throw new ApiError(404, 'NOT_FOUND', `no low-stock alert ${request.params.alertId}`);
      return result;
    },
  );
};
