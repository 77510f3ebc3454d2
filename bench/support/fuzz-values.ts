/**
 * The fuzzer's values (bench/fuzz.ts): a small seeded random source, so a failing run can be
 * repeated with FUZZ_SEED, and valid and invalid values drawn from a JSON Schema.
 */
import type { Facts } from './fuzz-requests';

export let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
export const firstSeed = seed;
export function random(): number {
  seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
  return seed / 2 ** 32;
}
export const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
export const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
export const chance = (p: number) => random() < p;

// --- Values from JSON Schema -------------------------------------------------------------

export interface Schema {
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
export function fromPattern(pattern: string): string {
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

export function expandClass(spec: string): string[] {
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

export function typeOf(schema: Schema): string | undefined {
  return Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
}

export function valid(schema: Schema, name: string, facts: Facts): unknown {
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
export function invalidValues(schema: Schema): unknown[] {
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
