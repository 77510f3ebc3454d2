/**
 * The fuzzer's requests (bench/fuzz.ts): the operations of the OpenAPI document, real ids and
 * skus to aim at, one request per operation (valid or mutated), and the error-shape check.
 */
import { randomUUID } from 'node:crypto';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { customerToken, staffToken } from '../../src/api/tokens';
import { DEV_ADMIN_API_KEY, type Config } from '../../src/config';
import { chance, int, invalidValues, pick, typeOf, valid, type Schema } from './fuzz-values';

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}

export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body: Schema | null;
  responses: Map<number, ValidateFunction | null>;
}

export function resolve(doc: { components?: { schemas?: Record<string, Schema> } }, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((n) => resolve(doc, n));
  if (node && typeof node === 'object') {
    const ref = (node as Schema).$ref;
    if (ref?.startsWith('#/components/schemas/')) {
      return resolve(doc, doc.components!.schemas![ref.slice('#/components/schemas/'.length)]);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(doc, v)]));
  }
  return node;
}

export function operations(rawDoc: Record<string, unknown>): Operation[] {
  const doc = resolve(rawDoc as never, rawDoc) as {
    paths: Record<string, Record<string, Record<string, unknown>>>;
  };
  const ajv = new Ajv({ strict: false, allErrors: false });
  addFormats(ajv);
  const out: Operation[] = [];
  for (const [route, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const responses = new Map<number, ValidateFunction | null>();
      for (const [status, response] of Object.entries(
        (op.responses ?? {}) as Record<string, { content?: Record<string, { schema?: Schema }> }>,
      )) {
        const schema = response.content?.['application/json']?.schema;
        responses.set(Number(status), schema ? ajv.compile(schema) : null);
      }
      const body = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)
        ?.content?.['application/json']?.schema;
      out.push({
        method: method.toUpperCase(),
        path: route,
        parameters: (op.parameters ?? []) as Parameter[],
        body: body ?? null,
        responses,
      });
    }
  }
  return out;
}

// --- Real values to aim at ---------------------------------------------------------------

export class Facts {
  orderIds: string[] = [];
  orderNumbers: string[] = [];
  shipmentIds: string[] = [];
  trackingNumbers: string[] = [];
  skus: string[] = [];

  forField(name: string): unknown {
    const from = (list: string[]) => (list.length > 0 ? pick(list) : undefined);
    switch (name) {
      case 'orderId':
        return from(this.orderIds);
      case 'orderNumber':
        return from(this.orderNumbers);
      case 'shipmentId':
        return from(this.shipmentIds);
      case 'shipmentIds':
        return this.shipmentIds.length > 0 ? [pick(this.shipmentIds)] : undefined;
      case 'trackingNumber':
        return from(this.trackingNumbers);
      case 'sku':
        return from(this.skus);
      case 'token':
        return pick(['tok_visa', 'tok_visa', 'tok_chargeDeclined']);
      case 'idempotency-key':
        return randomUUID();
      default:
        return undefined;
    }
  }

  async load(db: Kysely<Database>): Promise<void> {
    const orders = await db.selectFrom('orders').select(['id', 'number']).limit(200).execute();
    this.orderIds = orders.map((o) => o.id);
    this.orderNumbers = orders.map((o) => o.number);
    const shipments = await db.selectFrom('shipments').select(['id', 'tracking_number']).limit(200).execute();
    this.shipmentIds = shipments.map((s) => s.id);
    this.trackingNumbers = shipments.map((s) => s.tracking_number);
    this.skus = (await db.selectFrom('inventory_items').select('sku').execute()).map((i) => i.sku);
  }
}

// --- Requests ----------------------------------------------------------------------------

export interface FuzzRequest {
  op: Operation;
  mutated: string | null;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** Sent to a URL no route matches (its operation declares nothing about it). */
  unrouted: boolean;
}

/**
 * Path parameter values that travel as written (already percent-encoded where they are):
 * what a scanner or a broken client sends, each with its name for the report.
 */
export const ODD_PATH_VALUES: readonly (() => [string, string])[] = [
  () => {
    const n = pick([101, 500, 2_000, 8_000]);
    return [`${n} characters`, 'A'.repeat(n)];
  },
  () => {
    const n = int(30, 400);
    return [`${n} encoded multi-byte characters`, encodeURIComponent('é😀'.repeat(n))];
  },
  () => ['unicode', encodeURIComponent(pick(['ÉP١٢٣٤', 'ｗａｙｂｉｌｌ', '😀😀😀😀', 'ord_\u202e']))],
  () => ['percent-encoded slash', pick(['a%2Fb', '..%2F..%2Fadmin', '%2F', 'ord%2f..%2f..'])],
  () => ['percent-encoded dots', pick(['%2E%2E', '.%2E', '%2e'])],
  () => ['null byte', pick(['%00', 'EP1000%00', '%00%00%00%00'])],
  () => ['broken percent-encoding', pick(['%E0%A4%A', '%', '%zz', 'ab%C3'])],
  () => ['encoded control characters', pick(['%0D%0Ax-injected:1', '%1B%5B31m', '%7F'])],
];

/** URLs no route matches (or a method no route has): the router answers before any handler. */
export const UNROUTED: readonly (() => [string, string, string])[] = [
  () => ['GET', `/v1/${encodeURIComponent(pick(['nope', 'ORDERS', 'orders.json']))}`, 'unknown path'],
  () => ['GET', '/v1/tracking/', 'empty path parameter'],
  () => ['PATCH', '/v1/orders/ord_x', 'method no route has'],
  () => ['GET', `/${'x/'.repeat(int(10, 200))}`, 'deep unknown path'],
  () => ['GET', '//v1//orders', 'doubled slashes'],
  () => ['DELETE', '/v1/admin/shipments', 'method no route has'],
];

export function credentials(config: Config): Record<string, string> {
  switch (int(0, 4)) {
    case 0:
      return {};
    case 1:
      return { authorization: `Bearer ${customerToken(config, 'cus_fuzz')}` };
    case 2:
      return { authorization: `Bearer ${staffToken(config, 'fuzz-admin', 'admin')}` };
    case 3:
      return { 'x-api-key': DEV_ADMIN_API_KEY };
    default:
      return { authorization: `Bearer ${customerToken(config, `cus_${int(1, 99)}`)}` };
  }
}

export function build(op: Operation, facts: Facts, config: Config, mutate: boolean): FuzzRequest {
  const params: Record<string, unknown> = {};
  const query: Record<string, unknown> = {};
  const headers: Record<string, string> = { ...credentials(config) };
  for (const p of op.parameters) {
    if (!p.required && !chance(0.5)) continue;
    const value = valid(p.schema, p.name, facts);
    if (p.in === 'path') params[p.name] = value;
    else if (p.in === 'query') query[p.name] = value;
    else headers[p.name] = String(value);
  }
  const body: unknown = op.body ? valid(op.body, 'body', facts) : undefined;
  let rawBody: string | undefined;
  let mutated: string | null = null;
  /** Path parameters put in the URL as written (not encoded again). */
  const rawParams: Record<string, string> = {};
  let unrouted: { method: string; url: string } | null = null;

  if (mutate) {
    const options: (() => string | null)[] = [];
    for (const p of op.parameters) {
      // Headers travel as bytes: fetch refuses characters above U+00FF, so those stay out.
      // In a URL or a header every value travels as text: 42 arrives as "42", which a string
      // parameter rightly accepts. Only values that stay invalid as text count as mutations.
      const asText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
      const bad = invalidValues(p.schema).filter(
        (v) =>
          (typeOf(p.schema) !== 'string' || typeof v === 'string') &&
          (typeOf(p.schema) !== 'integer' || typeof v !== 'string') &&
          (p.in !== 'path' || asText(v) !== '') &&
          (p.in !== 'header' || [...asText(v)].every((c) => c.charCodeAt(0) <= 0xff)),
      );
      if (bad.length > 0) {
        options.push(() => {
          const value = pick(bad);
          if (p.in === 'path') params[p.name] = value;
          else if (p.in === 'query') query[p.name] = value;
          else headers[p.name] = typeof value === 'string' ? value : JSON.stringify(value);
          return `${p.in} ${p.name} = ${JSON.stringify(value).slice(0, 40)}`;
        });
      }
      if (p.required && p.in !== 'path') {
        options.push(() => {
          if (p.in === 'query') delete query[p.name];
          else delete headers[p.name];
          return `${p.in} ${p.name} missing`;
        });
      }
    }
    if (op.parameters.some((p) => p.in === 'query')) {
      options.push(() => {
        query.unexpected = 'x';
        return 'unknown query parameter';
      });
    }
    for (const p of op.parameters.filter((p) => p.in === 'path')) {
      // Twice: odd path values are what this fuzzer is most asked about.
      for (let n = 0; n < 2; n++) {
        options.push(() => {
          const [kind, value] = pick(ODD_PATH_VALUES)();
          rawParams[p.name] = value;
          return `path ${p.name}: ${kind}`;
        });
      }
    }
    options.push(() => {
      const [method, url, kind] = pick(UNROUTED)();
      unrouted = { method, url };
      return `no route: ${kind}`;
    });
    if (op.body) {
      const bodySchema = op.body;
      const fields = Object.entries(bodySchema.properties ?? {});
      for (const [key, child] of fields) {
        const bad = invalidValues(child);
        if (bad.length > 0) {
          options.push(() => {
            const value = pick(bad);
            (body as Record<string, unknown>)[key] = value;
            return `body.${key} = ${JSON.stringify(value).slice(0, 40)}`;
          });
        }
        if (bodySchema.required?.includes(key)) {
          options.push(() => {
            delete (body as Record<string, unknown>)[key];
            return `body.${key} missing`;
          });
        }
      }
      if (bodySchema.additionalProperties === false) {
        options.push(() => {
          (body as Record<string, unknown>).injected = { $where: '1=1' };
          return 'unknown body field';
        });
      }
      options.push(() => {
        rawBody = '{"broken": ';
        return 'malformed JSON';
      });
      options.push(() => {
        rawBody = JSON.stringify({ padding: 'z'.repeat(70 * 1024) });
        return '70 KiB body';
      });
      options.push(() => {
        headers['content-type'] = 'text/plain';
        rawBody = 'hello';
        return 'text/plain body';
      });
    }
    if (options.length > 0) mutated = pick(options)();
  }

  let url = op.path.replace(
    /\{(\w+)\}/g,
    (_m, name: string) => rawParams[name] ?? encodeURIComponent(String(params[name] ?? 'x')),
  );
  const search = new URLSearchParams(
    Object.entries(query).map(([k, v]): [string, string] => [
      k,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]),
  ).toString();
  if (search) url += `?${search}`;
  if (rawBody === undefined && body !== undefined) rawBody = JSON.stringify(body);
  if (rawBody !== undefined) headers['content-type'] ??= 'application/json';
  if (unrouted) {
    const { method, url: unroutedUrl } = unrouted as { method: string; url: string };
    return { op: { ...op, method }, mutated, url: unroutedUrl, headers, body: undefined, unrouted: true };
  }
  return { op, mutated, url, headers, body: rawBody, unrouted: false };
}

/** Why an error answer is not in the one error shape, or null when it is. */
export function errorShapeProblem(res: { status: number; json: unknown; text: string }): string | null {
  if (res.status < 400 || res.status === 599) return null;
  const body = res.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  if (body === undefined) return `not JSON: ${res.text.slice(0, 80)}`;
  const keys = Object.keys(body).join(',');
  const inner = body.error && typeof body.error === 'object' ? Object.keys(body.error).sort().join(',') : '';
  if (keys !== 'error' || inner !== 'code,message')
    return `not { error: { code, message } }: ${res.text.slice(0, 120)}`;
  if (typeof body.error!.code !== 'string' || typeof body.error!.message !== 'string') {
    return `code or message not a string: ${res.text.slice(0, 120)}`;
  }
  if (body.error!.code.startsWith('FST_')) return `a framework code: ${body.error!.code}`;
  if (body.error!.message.length === 0) return 'an empty message';
  return null;
}
