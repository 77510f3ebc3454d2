/**
 * Reading the environment: {@link Reader} (typed variables, every bad value collected as a
 * problem) and the parsers of the values that have a syntax of their own.
 */
import { isIP } from 'node:net';
import { ORDER_COURIERS, type OrderCourier } from './types';

export type Env = Record<string, string | undefined>;

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `500ms`, `90s`, `30m`, `6h`, `7d` (or a bare number of milliseconds). */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return null;
  const value = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  return Number.isFinite(value) && value > 0 ? Math.round(value) : null;
}

export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optional(name: string): string | null {
    return this.raw(name) ?? null;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${text}")`);
      return fallback;
    }
    return value;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, 1, 65_535);
  }

  bool(name: string, fallback: boolean): boolean {
    const text = this.raw(name)?.toLowerCase();
    if (text === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    this.problems.push(`${name} must be true or false (got "${text}")`);
    return fallback;
  }

  duration(name: string, fallback: string): number {
    const text = this.raw(name) ?? fallback;
    const value = parseDuration(text);
    if (value === null) {
      this.problems.push(`${name} must be a duration such as 500ms, 90s, 30m, 6h or 7d (got "${text}")`);
      return parseDuration(fallback)!;
    }
    return value;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${text}")`);
      return fallback;
    }
    return text as T;
  }

  url(name: string, fallback: string, protocols: string[]): string {
    const text = this.raw(name) ?? fallback;
    try {
      const parsed = new URL(text);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
      }
    } catch {
      this.problems.push(`${name} must be a URL (got "${redactUrl(text)}")`);
    }
    return text;
  }
}

/** Hides the password of a connection string so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Parses a UTC time of day `HH:MM` into milliseconds after midnight. */
export function parseTimeOfDay(text: string): number | null {
  const match = /^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$/.exec(text);
  return match ? (Number(match[1]) * 60 + Number(match[2])) * 60_000 : null;
}

/**
 * A nightly window `HH:MM-HH:MM` in minutes after local midnight (the end may be the next
 * morning), or `off`: null. Undefined when the text is neither.
 */
export function parseNightWindow(text: string): { fromMinute: number; toMinute: number } | null | undefined {
  if (text.trim().toLowerCase() === 'off') return null;
  const [from, to, ...rest] = text.split('-').map(parseTimeOfDay);
  if (from == null || to == null || rest.length > 0 || from === to) return undefined;
  return { fromMinute: from / 60_000, toMinute: to / 60_000 };
}

/**
 * WAYBILL_TRUST_PROXY: `false`, `true` (every hop: only when nothing but the proxy can reach
 * the API), a hop count, or comma-separated proxy addresses / CIDR ranges.
 */
export function trustProxy(text: string, problems: string[]): boolean | number | string[] {
  const value = text.trim().toLowerCase();
  if (value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d{1,2}$/.test(value)) return Number(value);
  const entries = value.split(',').map((e) => e.trim());
  const valid = (entry: string) => {
    const [address, bits, ...rest] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || rest.length > 0) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  };
  if (entries.some((entry) => !valid(entry))) {
    problems.push(
      `WAYBILL_TRUST_PROXY must be false, true, a hop count or comma-separated proxy addresses / CIDR ranges (got "${text}")`,
    );
    return false;
  }
  return entries;
}

/** WAYBILL_CODEC_CORS_ORIGINS: comma-separated origins (`scheme://host[:port]`, no path, no `*`). */
export function origins(name: string, text: string, problems: string[]): string[] {
  const list = text
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of list) {
    let valid = false;
    try {
      const url = new URL(origin);
      valid = ['http:', 'https:'].includes(url.protocol) && url.origin === origin;
    } catch {
      valid = false;
    }
    if (!valid) {
      problems.push(
        `${name} must be comma-separated origins such as https://temporal.example.com (got "${origin}")`,
      );
    }
  }
  return list;
}

/** WAYBILL_COURIER_BY_WAREHOUSE: `warehouse:courier` pairs, comma-separated (empty: none). */
export function courierByWarehouse(text: string, problems: string[]): Record<string, OrderCourier> {
  const mapping: Record<string, OrderCourier> = Object.create(null);
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [warehouse, courier, ...rest] = entry.split(':').map((part) => part.trim());
    const known = (ORDER_COURIERS as readonly string[]).includes(courier ?? '');
    if (!warehouse || !/^[A-Za-z0-9_.-]{1,64}$/.test(warehouse) || !known || rest.length > 0) {
      problems.push(
        `WAYBILL_COURIER_BY_WAREHOUSE must be comma-separated warehouse:courier pairs with a courier among ${ORDER_COURIERS.join(', ')} (got "${entry}")`,
      );
      continue;
    }
    if (warehouse in mapping) {
      problems.push(`WAYBILL_COURIER_BY_WAREHOUSE names warehouse "${warehouse}" twice`);
      continue;
    }
    mapping[warehouse] = courier as OrderCourier;
  }
  return { ...mapping };
}
