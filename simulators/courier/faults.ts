/**
 * Fault injection for every wire format at once: the server asks {@link Faults.decide} on
 * each courier call (before the format's route runs) and applies the answer. Rules hold at
 * most one per kind per scope; a rule scoped to one format wins over an unscoped one for
 * that format. Every random choice comes from a PRNG seeded per rule, so a test that sets
 * the same rules and makes the same calls sees the same faults.
 */
import { gzipSync } from 'node:zlib';
import type { SimFormat } from './model';

export const FaultKind = {
  LATENCY: 'latency',
  ERROR: 'error',
  RATE_LIMIT: 'rate_limit',
  OUTAGE: 'outage',
  MALFORMED: 'malformed',
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];
export const FAULT_KINDS = Object.values(FaultKind) as FaultKind[];

/** truncated: the body cut short; gzipped: compressed bytes sent without Content-Encoding. */
export type MalformedMode = 'truncated' | 'gzipped' | 'mixed';

/** What a caller asks for (the control API's body). `format` absent or null: every format. */
export type FaultInput = { format?: SimFormat | null } & (
  | { kind: 'latency'; ms: number; jitterMs?: number }
  | { kind: 'error'; rate: number }
  | { kind: 'rate_limit'; rate?: number; calls?: number; retryAfterSeconds?: number }
  | { kind: 'outage'; durationMs: number; startsInMs?: number; status?: 200 | 503 }
  | { kind: 'malformed'; rate: number; mode?: MalformedMode }
);

/** A rule as stored and listed. Times are real-clock ms since the epoch. */
export type FaultRule = { format: SimFormat | null } & (
  | { kind: 'latency'; ms: number; jitterMs: number }
  | { kind: 'error'; rate: number }
  | { kind: 'rate_limit'; rate: number | null; remainingCalls: number | null; retryAfterSeconds: number }
  /** `status` 200: the outage page comes with 200, as some couriers' front ends send it. */
  | { kind: 'outage'; from: number; until: number; status: 200 | 503 }
  | { kind: 'malformed'; rate: number; mode: MalformedMode }
);

export interface FaultAnswer {
  fault: 'error' | 'rate_limit' | 'outage';
  status: number;
  headers: Record<string, string>;
  contentType: string;
  body: string;
}

export interface FaultDecision {
  /** Real ms to wait before answering. */
  delayMs: number;
  /** Answer this instead of running the route. */
  answer: FaultAnswer | null;
  /** Let the route answer, then spoil its body (sent with 200). */
  malformed: 'truncated' | 'gzipped' | null;
}

export const OUTAGE_PAGE = `<!DOCTYPE html>
<html>
<head><title>503 Service Temporarily Unavailable</title></head>
<body>
<h1>Service Temporarily Unavailable</h1>
<p>The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.</p>
<hr><address>nginx</address>
</body>
</html>
`;

/** mulberry32: a small, fast, seedable PRNG; numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** FNV-1a, to derive one rule's seed from the server's seed and the rule's identity. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Which calls a rule touches: the next `remainingCalls` calls, or a `rate` share of calls
 * (drawn from the rule's seeded PRNG). Shared by the courier faults, the courier simulator's
 * scripted answers and the payment simulator's faults.
 */
export interface CallShare {
  rate: number | null;
  remainingCalls: number | null;
}

/**
 * The share a caller asked for with `rate` or `calls`. Both at once is refused; neither is
 * `whenNeither`, or refused when that is null. Throws RangeError naming `what`.
 */
export function callShare(
  input: { rate?: number | null; calls?: number | null },
  what: string,
  whenNeither: CallShare | null = null,
): CallShare {
  const rate = input.rate ?? null;
  const calls = input.calls ?? null;
  if (rate !== null && calls !== null) throw new RangeError(`${what} takes rate or calls, not both`);
  if (rate === null && calls === null) {
    if (whenNeither) return { ...whenNeither };
    throw new RangeError(`${what} needs exactly one of rate or calls`);
  }
  if (rate !== null) assertRate(rate);
  if (calls !== null && !(Number.isInteger(calls) && calls > 0))
    throw new RangeError('calls must be a whole number above 0');
  return { rate, remainingCalls: calls };
}

/**
 * Whether a rule touches this call. A "next N calls" rule always does and counts down
 * (the caller drops it when `remainingCalls` reaches 0); a rate rule draws from `random`.
 */
export function touches(share: CallShare, random: () => number): boolean {
  if (share.remainingCalls !== null) {
    share.remainingCalls--;
    return true;
  }
  return random() < (share.rate ?? 0);
}

/**
 * Removes the rules whose fields equal every field `filter` sets (an empty filter: all of
 * them) and says how many went. Shared by every rule store of the simulators.
 */
export function removeRules(
  rules: Map<string, { rule: object }>,
  filter: Readonly<Record<string, string | undefined>>,
): number {
  let removed = 0;
  for (const [key, { rule }] of rules) {
    const fields = rule as Record<string, unknown>;
    if (Object.entries(filter).some(([field, value]) => value !== undefined && fields[field] !== value)) {
      continue;
    }
    rules.delete(key);
    removed++;
  }
  return removed;
}

interface StoredRule {
  key: string;
  rule: FaultRule;
  random: () => number;
}

function assertRate(rate: number, name = 'rate'): void {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be from 0 to 1 (got ${rate})`);
}

export class Faults {
  private rules = new Map<string, StoredRule>();

  constructor(
    private readonly seed: number,
    private readonly now: () => number,
  ) {}

  /** Adds a rule, replacing the one of the same kind and scope. Throws RangeError on bad numbers. */
  set(input: FaultInput): FaultRule {
    const format = input.format ?? null;
    let rule: FaultRule;
    switch (input.kind) {
      case 'latency':
        if (!(input.ms >= 0) || !((input.jitterMs ?? 0) >= 0))
          throw new RangeError('ms and jitterMs must be 0 or more');
        rule = { kind: 'latency', format, ms: input.ms, jitterMs: input.jitterMs ?? 0 };
        break;
      case 'error':
        assertRate(input.rate);
        rule = { kind: 'error', format, rate: input.rate };
        break;
      case 'rate_limit': {
        const { rate, remainingCalls } = callShare(input, 'rate_limit');
        const retryAfterSeconds = input.retryAfterSeconds ?? 30;
        if (!(Number.isInteger(retryAfterSeconds) && retryAfterSeconds >= 0)) {
          throw new RangeError('retryAfterSeconds must be a whole number, 0 or more');
        }
        rule = { kind: 'rate_limit', format, rate, remainingCalls, retryAfterSeconds };
        break;
      }
      case 'outage': {
        const startsInMs = input.startsInMs ?? 0;
        if (!(input.durationMs > 0) || !(startsInMs >= 0))
          throw new RangeError('durationMs must be above 0, startsInMs 0 or more');
        const from = this.now() + startsInMs;
        rule = { kind: 'outage', format, from, until: from + input.durationMs, status: input.status ?? 503 };
        break;
      }
      case 'malformed':
        assertRate(input.rate);
        rule = { kind: 'malformed', format, rate: input.rate, mode: input.mode ?? 'mixed' };
        break;
    }
    const key = `${rule.kind}|${format ?? '*'}`;
    this.rules.set(key, { key, rule, random: seededRandom(hash32(`${this.seed}|${key}`)) });
    return { ...rule };
  }

  /** Removes rules: all of them, one kind, one scope (`format`), or one kind in one scope. */
  clear(filter: { kind?: FaultKind; format?: SimFormat } = {}): number {
    return removeRules(this.rules, filter);
  }

  list(): FaultRule[] {
    return [...this.rules.values()].map(({ rule }) => ({ ...rule }));
  }

  private ruleFor<K extends FaultKind>(
    kind: K,
    format: SimFormat,
  ): (StoredRule & { rule: Extract<FaultRule, { kind: K }> }) | null {
    const found = this.rules.get(`${kind}|${format}`) ?? this.rules.get(`${kind}|*`);
    return (found as (StoredRule & { rule: Extract<FaultRule, { kind: K }> }) | undefined) ?? null;
  }

  /** What to do with one courier call of `format`, now. Consumes "next N calls" budgets. */
  decide(format: SimFormat): FaultDecision {
    const decision: FaultDecision = { delayMs: 0, answer: null, malformed: null };

    const latency = this.ruleFor('latency', format);
    if (latency) {
      decision.delayMs = latency.rule.ms + Math.round(latency.random() * latency.rule.jitterMs);
    }

    const now = this.now();
    const outage = this.ruleFor('outage', format);
    if (outage && outage.rule.from <= now && now < outage.rule.until) {
      decision.answer = {
        fault: 'outage',
        status: outage.rule.status,
        headers: {},
        contentType: 'text/html; charset=utf-8',
        body: OUTAGE_PAGE,
      };
      return decision;
    }

    const limit = this.ruleFor('rate_limit', format);
    if (limit) {
      const limited = touches(limit.rule, limit.random);
      if (limit.rule.remainingCalls === 0) this.rules.delete(limit.key);
      if (limited) {
        decision.answer = {
          fault: 'rate_limit',
          status: 429,
          headers: { 'retry-after': String(limit.rule.retryAfterSeconds) },
          contentType: 'text/plain; charset=utf-8',
          body: 'Too Many Requests',
        };
        return decision;
      }
    }

    const error = this.ruleFor('error', format);
    if (error && error.random() < error.rule.rate) {
      decision.answer = {
        fault: 'error',
        status: 500,
        headers: {},
        contentType: 'text/plain; charset=utf-8',
        body: 'Internal Server Error',
      };
      return decision;
    }

    const malformed = this.ruleFor('malformed', format);
    if (malformed && malformed.random() < malformed.rule.rate) {
      const { mode } = malformed.rule;
      decision.malformed = mode === 'mixed' ? (malformed.random() < 0.5 ? 'truncated' : 'gzipped') : mode;
    }
    return decision;
  }
}

/** Spoils a body the way broken proxies and half-written responses do. Never valid JSON or XML. */
export function spoilBody(payload: string | Buffer, mode: 'truncated' | 'gzipped'): string | Buffer {
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  if (mode === 'gzipped') return gzipSync(bytes);
  // Cut inside the document: any JSON or XML document loses its closing bracket or tag.
  return bytes.subarray(0, Math.floor(bytes.length / 2));
}
