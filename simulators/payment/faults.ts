/**
 * Faults of the simulated payment provider, per operation: answers held back (timeout),
 * provider errors, outages and injected refusals, each rule seeded so a run repeats.
 */
import { callShare, hash32, removeRules, seededRandom, touches, type CallShare } from '../courier/faults';
import type { PaymentOperation, PaymentRejection } from '../../src/payments/types';
import { PAYMENT_REJECTIONS } from './wire';

export const PaymentFaultKind = {
  TIMEOUT: 'timeout',
  ERROR: 'error',
  OUTAGE: 'outage',
  REJECT: 'reject',
} as const;
export type PaymentFaultKind = (typeof PaymentFaultKind)[keyof typeof PaymentFaultKind];
export const PAYMENT_FAULT_KINDS = Object.values(PaymentFaultKind) as PaymentFaultKind[];

/** What a caller asks for. `operation` absent or null: every operation. */
export type PaymentFaultInput = { operation?: PaymentOperation | null } &
  /** The next `calls` answers (default 1) are sent `ms` late; the operation itself runs first. */
  (
    | { kind: 'timeout'; ms: number; calls?: number }
    /** HTTP 500 before the operation runs: a share of calls (`rate`) or the next `calls` calls. */
    | { kind: 'error'; rate?: number; calls?: number }
    /** HTTP 503 with an HTML page, for `durationMs` of real time starting `startsInMs` from now. */
    | { kind: 'outage'; durationMs: number; startsInMs?: number }
    /**
     * The refusal `code` (its usual status and error shape) before the operation runs, so
     * nothing moves and nothing is stored under the key: a share of calls, the next `calls`,
     * or with neither every call until the rule is removed.
     */
    | { kind: 'reject'; code: PaymentRejection; rate?: number; calls?: number }
  );

/** A rule as stored and listed. Times are real-clock ms since the epoch. */
export type PaymentFaultRule = { operation: PaymentOperation | null } & (
  | { kind: 'timeout'; ms: number; remainingCalls: number }
  | ({ kind: 'error' } & CallShare)
  | { kind: 'outage'; from: number; until: number }
  | ({ kind: 'reject'; code: PaymentRejection } & CallShare)
);

export interface PaymentFaultDecision {
  /** Real ms to hold the answer back. */
  delayMs: number;
  /** Answer with this failure instead of running the operation. */
  failure: 'error' | 'outage' | null;
}

interface StoredRule {
  key: string;
  rule: PaymentFaultRule;
  random: () => number;
}

function wholeAbove0(value: number, name: string): void {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a whole number above 0`);
}

/**
 * At most one rule per kind per scope; a rule scoped to an operation wins over an
 * unscoped one for that operation. Random choices come from a PRNG seeded per rule.
 */
export class PaymentFaults {
  private rules = new Map<string, StoredRule>();

  constructor(
    private readonly seed: number,
    private readonly now: () => number,
  ) {}

  /** Adds a rule, replacing the one of the same kind and scope. Throws RangeError on bad numbers. */
  set(input: PaymentFaultInput): PaymentFaultRule {
    const operation = input.operation ?? null;
    let rule: PaymentFaultRule;
    switch (input.kind) {
      case 'timeout': {
        const calls = input.calls ?? 1;
        if (!(input.ms >= 0)) throw new RangeError('ms must be 0 or more');
        wholeAbove0(calls, 'calls');
        rule = { kind: 'timeout', operation, ms: input.ms, remainingCalls: calls };
        break;
      }
      case 'error':
        rule = { kind: 'error', operation, ...callShare(input, 'error') };
        break;
      case 'reject':
        if (!PAYMENT_REJECTIONS.includes(input.code)) {
          throw new RangeError(`code must be one of ${PAYMENT_REJECTIONS.join(', ')}`);
        }
        // Neither rate nor calls: every call until the rule is removed (as scripted courier answers).
        rule = {
          kind: 'reject',
          operation,
          code: input.code,
          ...callShare(input, 'reject', { rate: 1, remainingCalls: null }),
        };
        break;
      case 'outage': {
        const startsInMs = input.startsInMs ?? 0;
        if (!(input.durationMs > 0) || !(startsInMs >= 0)) {
          throw new RangeError('durationMs must be above 0, startsInMs 0 or more');
        }
        const from = this.now() + startsInMs;
        rule = { kind: 'outage', operation, from, until: from + input.durationMs };
        break;
      }
    }
    const key = `${rule.kind}|${operation ?? '*'}`;
    this.rules.set(key, { key, rule, random: seededRandom(hash32(`${this.seed}|${key}`)) });
    return { ...rule };
  }

  /** Removes rules: all, one kind, one scope, or one kind in one scope. Returns how many. */
  clear(filter: { kind?: PaymentFaultKind; operation?: PaymentOperation } = {}): number {
    return removeRules(this.rules, filter);
  }

  list(): PaymentFaultRule[] {
    return [...this.rules.values()].map(({ rule }) => ({ ...rule }));
  }

  /** What to do with one call of `operation`, now. Consumes "next N calls" budgets. */
  decide(operation: PaymentOperation): PaymentFaultDecision {
    const decision: PaymentFaultDecision = { delayMs: 0, failure: null };

    const timeout = this.ruleFor('timeout', operation);
    if (timeout) {
      decision.delayMs = timeout.rule.ms;
      if (--timeout.rule.remainingCalls <= 0) this.rules.delete(timeout.key);
    }

    const now = this.now();
    const outage = this.ruleFor('outage', operation);
    if (outage && outage.rule.from <= now && now < outage.rule.until) {
      decision.failure = 'outage';
      return decision;
    }

    const error = this.ruleFor('error', operation);
    if (error && this.touches(error)) decision.failure = 'error';
    return decision;
  }

  /**
   * The refusal to answer one call of `operation` with instead of running it, or null.
   * Asked once the call got past the provider's edge (faults, API key, validation).
   */
  rejection(operation: PaymentOperation): PaymentRejection | null {
    const reject = this.ruleFor('reject', operation);
    return reject && this.touches(reject) ? reject.rule.code : null;
  }

  /** Whether a rate-or-calls rule touches this call; a used-up "next N calls" rule goes. */
  private touches(stored: StoredRule & { rule: CallShare }): boolean {
    const touched = touches(stored.rule, stored.random);
    if (stored.rule.remainingCalls === 0) this.rules.delete(stored.key);
    return touched;
  }

  private ruleFor<K extends PaymentFaultKind>(
    kind: K,
    operation: PaymentOperation,
  ): (StoredRule & { rule: Extract<PaymentFaultRule, { kind: K }> }) | null {
    const found = this.rules.get(`${kind}|${operation}`) ?? this.rules.get(`${kind}|*`);
    return (found as (StoredRule & { rule: Extract<PaymentFaultRule, { kind: K }> }) | undefined) ?? null;
  }
}
