/**
 * OpenAPI-driven fuzzing of the running API: requests generated from `/openapi.json` for
 * every documented route, half valid (with real ids and skus mixed in, so handlers run
 * deep) and half mutated (a required field dropped, an unknown field added, a wrong type,
 * a value outside its pattern, range or length, SQL and markup in strings, broken JSON,
 * a wrong content type, a 70 KiB body, odd path parameters: very long, unicode,
 * percent-encoded slashes and dots, null bytes, broken percent-encoding; and URLs no route
 * matches).
 *
 *   npm run fuzz -- [requests=10000] [--url http://127.0.0.1:3000 --database-url postgres://…]
 *
 * Without --url it starts its own fresh stack (`devstack/start.ts`, data under .data/fuzz, its
 * own ports, rate limits lifted) and stops it at the end. Checks, each PASS/FAIL:
 * - no response is 5xx;
 * - every JSON response matches the schema its route declares for that status;
 * - every mutated request is refused with a 4xx;
 * - every 4xx and 5xx answers in the one error shape `{ error: { code, message } }`, with
 *   our codes (never Fastify's FST_ ones), router and framework refusals included;
 * - mutated requests write nothing (row counts of every table before and after they run).
 * Prints figures and writes bench/results/fuzz.json; exits 1 when a check fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { sql, type Kysely } from 'kysely';
import { createDb } from '../db/client';
import type { Database } from '../db/database';
import { customerToken, staffToken } from '../src/api/tokens';
import { DEV_ADMIN_API_KEY, loadConfig, type Config } from '../src/config';

// --- A small random source (seeded: a failing run can be repeated) ---------------------

let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const firstSeed = seed;
function random(): number {
  seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
  return seed / 2 ** 32;
}
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const chance = (p: number) => random() < p;

// --- Values from JSON Schema -------------------------------------------------------------

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  default?: unknown;
  $ref?: string;
}

/** Strings for the anchored, class-and-quantifier patterns the API uses (`^[A-Z0-9-]{4,40}$`, `^\+?…`). */
function fromPattern(pattern: string): string {
  const body = pattern.replace(/^\^/, '').replace(/\$$/, '');
  let out = '';
  let i = 0;
  while (i < body.length) {
    let chars: string[];
    if (body[i] === '[') {
      const end = body.indexOf(']', i + 1);
      chars = expandClass(body.slice(i + 1, end));
      i = end + 1;
    } else if (body[i] === '\\') {
      chars = [body[i + 1]!];
      i += 2;
    } else if (body[i] === '(') {
      // A literal group like (sha256=): take it as written.
      const end = body.indexOf(')', i);
      out += body.slice(i + 1, end);
      i = end + 1;
      continue;
    } else {
      chars = [body[i]!];
      i += 1;
    }
    let min = 1;
    let max = 1;
    const quantifier = /^(\{(\d+)(?:,(\d*))?\}|\?|\+|\*)/.exec(body.slice(i));
    if (quantifier) {
      i += quantifier[0].length;
      if (quantifier[0] === '?') [min, max] = [0, 1];
      else if (quantifier[0] === '+') [min, max] = [1, 8];
      else if (quantifier[0] === '*') [min, max] = [0, 8];
      else {
        min = Number(quantifier[2]);
        max = quantifier[3] === undefined ? min : quantifier[3] === '' ? min + 8 : Number(quantifier[3]);
      }
    }
    const count = int(min, Math.min(max, min + 12));
    for (let n = 0; n < count; n++) out += pick(chars);
  }
  return out;
}

function expandClass(spec: string): string[] {
  const chars: string[] = [];
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i] === '\\' ? spec[++i]! : spec[i]!;
    if (spec[i + 1] === '-' && i + 2 < spec.length) {
      const end = spec[i + 2]!;
      for (let code = c.charCodeAt(0); code <= end.charCodeAt(0); code++)
        chars.push(String.fromCharCode(code));
      i += 2;
    } else {
      chars.push(c);
    }
  }
  return chars;
}

function typeOf(schema: Schema): string | undefined {
  return Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
}

function valid(schema: Schema, name: string, facts: Facts): unknown {
  const known = facts.forField(name);
  if (known !== undefined && chance(0.8)) return known;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return pick(schema.enum);
  const choices = schema.anyOf ?? schema.oneOf;
  if (choices) return valid(pick(choices.filter((c) => c.type !== 'null')), name, facts);
  switch (typeOf(schema)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || chance(0.5)) out[key] = valid(child, key, facts);
      }
      return out;
    }
    case 'array': {
      const count = int(schema.minItems ?? 0, Math.min(schema.maxItems ?? 3, (schema.minItems ?? 0) + 3));
      const items = Array.from({ length: count }, () => valid(schema.items ?? {}, name, facts));
      // Arrays of skus must not repeat one (a documented 400 rather than a schema rule).
      return name === 'lines'
        ? items.filter((l, i) => items.findIndex((o) => JSON.stringify(o) === JSON.stringify(l)) === i)
        : items;
    }
    case 'integer':
      return int(schema.minimum ?? 0, Math.min(schema.maximum ?? 1000, (schema.minimum ?? 0) + 1000));
    case 'number':
      return schema.minimum ?? 0 + random() * 100;
    case 'boolean':
      return chance(0.5);
    case 'string': {
      if (schema.format === 'email') return `fuzz${int(1, 9999)}@example.com`;
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.pattern) return fromPattern(schema.pattern);
      const length = int(Math.max(schema.minLength ?? 1, 1), Math.min(schema.maxLength ?? 20, 20));
      return (
        Array.from({ length }, () => pick([...'abcdefghijklmnop qrstuvwxyz']))
          .join('')
          .trim() || 'x'
      );
    }
    default:
      return 'x';
  }
}

/** Values that break a field's schema; empty when nothing can. */
function invalidValues(schema: Schema): unknown[] {
  const out: unknown[] = [];
  const type = typeOf(schema);
  if (schema.enum) out.push('pigeon', 42);
  if (type === 'string') {
    out.push(42, { nested: true }, ['a']);
    if (schema.pattern || schema.format)
      out.push("x'; DROP TABLE orders;--", '<script>alert(1)</script>', '𝕏𝕏𝕏𝕏');
    if (schema.maxLength !== undefined) out.push('y'.repeat(schema.maxLength + 1));
    if ((schema.minLength ?? 0) > 0) out.push('');
  }
  if (type === 'integer') {
    out.push('12', 1.5, null);
    if (schema.minimum !== undefined) out.push(schema.minimum - 1);
    if (schema.maximum !== undefined) out.push(schema.maximum + 1);
  }
  if (type === 'boolean') out.push('maybe', 2);
  if (type === 'array') {
    out.push('not-a-list');
    if ((schema.minItems ?? 0) > 0) out.push([]);
    if (schema.maxItems !== undefined) out.push(Array.from({ length: schema.maxItems + 1 }, () => ({})));
  }
  if (type === 'object') out.push('not-an-object', [1]);
  return out;
}

// --- The document ------------------------------------------------------------------------

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}

interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body: Schema | null;
  responses: Map<number, ValidateFunction | null>;
}

function resolve(doc: { components?: { schemas?: Record<string, Schema> } }, node: unknown): unknown {
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

function operations(rawDoc: Record<string, unknown>): Operation[] {
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

class Facts {
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

interface FuzzRequest {
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
const ODD_PATH_VALUES: readonly (() => [string, string])[] = [
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
const UNROUTED: readonly (() => [string, string, string])[] = [
  () => ['GET', `/v1/${encodeURIComponent(pick(['nope', 'ORDERS', 'orders.json']))}`, 'unknown path'],
  () => ['GET', '/v1/tracking/', 'empty path parameter'],
  () => ['PATCH', '/v1/orders/ord_x', 'method no route has'],
  () => ['GET', `/${'x/'.repeat(int(10, 200))}`, 'deep unknown path'],
  () => ['GET', '//v1//orders', 'doubled slashes'],
  () => ['DELETE', '/v1/admin/shipments', 'method no route has'],
];

function credentials(config: Config): Record<string, string> {
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

function build(op: Operation, facts: Facts, config: Config, mutate: boolean): FuzzRequest {
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
function errorShapeProblem(res: { status: number; json: unknown; text: string }): string | null {
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

// --- The stack ---------------------------------------------------------------------------

const FUZZ_ENV = {
  WAYBILL_DATA_DIR: '.data/fuzz',
  WAYBILL_PORT: '3190',
  TEMPORAL_DEV_PORT: '7290',
  TEMPORAL_UI_PORT: '8290',
  WAYBILL_PG_PORT: '54390',
  COURIER_SIMULATOR_PORT: '4190',
  PAYMENT_SIMULATOR_PORT: '4290',
  WAYBILL_WORKER_METRICS_PORT: '9490',
  WAYBILL_RATE_LIMIT_PER_MINUTE: '10000000',
  WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '100000',
  LOG_LEVEL: 'warn',
};

async function startStack(): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  // A fresh stack each run: earlier runs' workflows would keep writing rows meanwhile.
  fs.rmSync(FUZZ_ENV.WAYBILL_DATA_DIR, { recursive: true, force: true });
  fs.mkdirSync(FUZZ_ENV.WAYBILL_DATA_DIR, { recursive: true });
  const logFile = fs.openSync(path.join(FUZZ_ENV.WAYBILL_DATA_DIR, 'stack.log'), 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/start.ts'], {
    env: { ...process.env, ...FUZZ_ENV, DATABASE_URL: '', TEMPORAL_ADDRESS: '' },
    stdio: ['ignore', 'pipe', logFile],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the stack did not come up in 10 minutes')), 600_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      fs.writeSync(logFile, chunk);
      seen += chunk.toString();
      if (seen.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited with ${code}; see ${FUZZ_ENV.WAYBILL_DATA_DIR}/stack.log`));
    });
  });
  return {
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

const TABLES = [
  'orders',
  'order_items',
  'payments',
  'shipments',
  'tracking_events',
  'inventory_reservations',
  'notifications',
  'audit_log',
  'api_idempotency_keys',
  'courier_webhook_events',
] as const;

async function rowCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
    out[table] = Number(rows[0]!.n);
  }
  return out;
}

// --- Run ---------------------------------------------------------------------------------

interface Finding {
  request: string;
  mutated: string | null;
  status: number;
  problem: string;
}

async function send(
  base: string,
  req: FuzzRequest,
): Promise<{ status: number; json: unknown; text: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const res = await fetch(`${base}${req.url}`, {
      method: req.op.method,
      headers: req.headers,
      body: req.body,
      signal: controller.signal,
    });
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream')) {
      controller.abort();
      return { status: res.status, json: undefined, text: '' };
    }
    const text = await res.text();
    return {
      status: res.status,
      json: type.includes('application/json') ? JSON.parse(text) : undefined,
      text,
    };
  } finally {
    clearTimeout(timer);
  }
}

async function runBatch(
  base: string,
  requests: FuzzRequest[],
  concurrency: number,
  onResult: (req: FuzzRequest, res: { status: number; json: unknown; text: string }) => void,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const req = requests[next++]!;
        try {
          onResult(req, await send(base, req));
        } catch (err) {
          onResult(req, { status: 599, json: undefined, text: `no response: ${(err as Error).message}` });
        }
      }
    }),
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const total = Number(args.find((a) => /^\d+$/.test(a)) ?? 10_000);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const started = Date.now();
  let base = flag('--url');
  let databaseUrl = flag('--database-url');
  let stack: Awaited<ReturnType<typeof startStack>> | null = null;
  if (!base) {
    process.stdout.write('starting a stack for fuzzing (data in .data/fuzz)…\n');
    stack = await startStack();
    base = `http://127.0.0.1:${FUZZ_ENV.WAYBILL_PORT}`;
    databaseUrl = `postgres://waybill:waybill@127.0.0.1:${FUZZ_ENV.WAYBILL_PG_PORT}/waybill`;
  }
  const config = loadConfig({ ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) });
  const db = createDb({ url: config.database.url });
  try {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Record<string, unknown>;
    const ops = operations(doc);
    const facts = new Facts();
    await facts.load(db);

    // A few real orders first, so reads, cancels and refreshes find something.
    const orderOp = ops.find((o) => o.method === 'POST' && o.path === '/v1/orders');
    if (orderOp && facts.skus.length > 0) {
      for (let i = 0; i < 5; i++) {
        const req = build(orderOp, facts, config, false);
        req.headers = {
          ...req.headers,
          authorization: `Bearer ${customerToken(config, 'cus_fuzz')}`,
        };
        delete req.headers['x-api-key'];
        await send(base, req);
      }
      await new Promise((r) => setTimeout(r, 3_000));
      await facts.load(db);
    }

    const findings: Finding[] = [];
    const byStatus: Record<string, number> = {};
    const byRoute: Record<string, number> = {};
    let mutatedAccepted = 0;
    let badShapes = 0;
    /** Requests per odd kind (path values, unrouted URLs) and the statuses they got. */
    const oddKinds: Record<string, Record<string, number>> = {};
    const check = (req: FuzzRequest, res: { status: number; json: unknown; text: string }) => {
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const route = req.unrouted ? 'no route' : `${req.op.method} ${req.op.path}`;
      byRoute[route] = (byRoute[route] ?? 0) + 1;
      const where = `${req.op.method} ${req.url.slice(0, 120)}`;
      const odd = /^(path \w+|no route): (.*)$/.exec(req.mutated ?? '');
      if (odd) {
        const kind = odd[1]!.startsWith('path')
          ? `path: ${odd[2]!.replace(/^\d+ /, 'N ')}`
          : `no route: ${odd[2]}`;
        const statuses = (oddKinds[kind] ??= {});
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
      const shape = errorShapeProblem(res);
      if (shape) {
        badShapes++;
        findings.push({ request: where, mutated: req.mutated, status: res.status, problem: shape });
      }
      if (res.status >= 500) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: res.text.slice(0, 300),
        });
        return;
      }
      if (req.mutated && res.status < 400) {
        mutatedAccepted++;
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: 'invalid input accepted',
        });
      }
      if (req.unrouted) return;
      if (!req.op.responses.has(res.status)) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: 'status not declared',
        });
        return;
      }
      const validate = req.op.responses.get(res.status);
      if (validate && res.json !== undefined && !validate(res.json)) {
        findings.push({
          request: where,
          mutated: req.mutated,
          status: res.status,
          problem: `response does not match its schema: ${JSON.stringify(validate.errors?.[0])}`,
        });
      }
    };

    // Phase 1: mutated requests only, with row counts around them. The seeded orders'
    // sagas write rows of their own for a while: start once the counts hold still.
    const mutatedCount = Math.floor(total / 2);
    let before = await rowCounts(db);
    for (let stable = 0, i = 0; stable < 3 && i < 60; i++) {
      await new Promise((r) => setTimeout(r, 2_000));
      const now = await rowCounts(db);
      stable = JSON.stringify(now) === JSON.stringify(before) ? stable + 1 : 0;
      before = now;
    }
    await runBatch(
      base,
      Array.from({ length: mutatedCount }, () => build(pick(ops), facts, config, true)),
      16,
      check,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await rowCounts(db);
    const written = Object.entries(after)
      .filter(([table, n]) => n !== before[table])
      .map(([table, n]) => `${table} ${before[table]} → ${n}`);

    // Phase 2: valid requests.
    await runBatch(
      base,
      Array.from({ length: total - mutatedCount }, () => build(pick(ops), facts, config, false)),
      16,
      check,
    );

    const fives = Object.entries(byStatus)
      .filter(([s]) => Number(s) >= 500)
      .reduce((n, [, c]) => n + c, 0);
    const schemaProblems = findings.filter(
      (f) => f.problem.startsWith('response does not match') || f.problem === 'status not declared',
    ).length;
    const checks = {
      no5xx: { value: fives, pass: fives === 0 },
      responsesMatchSchemas: { value: schemaProblems, pass: schemaProblems === 0 },
      mutatedRequestsRefused: { value: mutatedAccepted, pass: mutatedAccepted === 0 },
      errorsInOneShape: { value: badShapes, pass: badShapes === 0 },
      mutatedRequestsWriteNothing: {
        value: written.length === 0 ? 'no table changed' : written.join(', '),
        pass: written.length === 0,
      },
    };
    const lines = [
      '',
      `fuzz: ${total} requests over ${ops.length} operations (${mutatedCount} mutated), seed ${firstSeed}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
      `statuses: ${Object.entries(byStatus)
        .map(([s, n]) => `${s}×${n}`)
        .join('  ')}`,
      'odd path parameters and unrouted URLs (statuses):',
      ...Object.entries(oddKinds)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(
          ([kind, statuses]) =>
            `  ${kind}: ${Object.entries(statuses)
              .map(([st, n]) => `${st}×${n}`)
              .join('  ')}`,
        ),
      ...Object.entries(checks).map(([name, c]) => `${c.pass ? 'PASS' : 'FAIL'}  ${name}: ${c.value}`),
      ...findings
        .slice(0, 15)
        .map((f) => `  ${f.status} ${f.request}${f.mutated ? ` [${f.mutated}]` : ''}: ${f.problem}`),
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const out = path.join(__dirname, 'results', 'fuzz.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(
      out,
      `${JSON.stringify({ at: new Date().toISOString(), seed: firstSeed, total, mutated: mutatedCount, byStatus, byRoute, oddKinds, checks, findings: findings.slice(0, 200) }, null, 2)}\n`,
    );
    process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
    process.exitCode = Object.values(checks).every((c) => c.pass) ? 0 : 1;
  } finally {
    await db.destroy();
    await stack?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
