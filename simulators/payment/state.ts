/**
 * The simulated payment provider's state and rules, without HTTP: payments, the
 * idempotency store, money rules, test cards, faults and counters. Every method is
 * synchronous, so one call sees one instant and two calls never interleave. The HTTP
 * server (server.ts) wraps it; tests may also steer it directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { passesLuhn } from '../../src/domain/card-data';
import { callShare, hash32, removeRules, seededRandom, touches, type CallShare } from '../courier/faults';
import {
  PAYMENT_OPERATIONS,
  PaymentRejection,
  PaymentStatus,
  type PaymentCard,
  type PaymentOperation,
} from '../../src/payments/types';

// ---------------------------------------------------------------------------------------
// Wire shapes shared with the server

/** The error body of every refusal: `{ error: { type, code, message, declineCode? } }`. */
export interface SimErrorBody {
  error: {
    /** `card_error` (a decline), `invalid_request_error`, `idempotency_error`, `authentication_error`, `api_error`. */
    type: string;
    code: string;
    message: string;
    /** Card errors only: why the bank declined. */
    declineCode?: string;
  };
}

export interface SimRefundView {
  id: string;
  /** Minor units. */
  amount: number;
  createdAt: string;
}

/** A payment as the API and the control routes show it. Amounts in minor units. */
export interface SimPaymentView {
  id: string;
  orderId: string;
  /** VOIDED once voided, or once an uncaptured authorisation expired (the hold is released). */
  status: PaymentStatus;
  currency: string;
  amountAuthorised: number;
  amountCaptured: number;
  amountRefunded: number;
  voided: boolean;
  /** The authorisation lapsed before any capture (see `authorisationTtlMs`). */
  expired: boolean;
  createdAt: string;
  refunds: SimRefundView[];
}

/** An answer the server sends as is: status and JSON body. */
export interface SimAnswer {
  status: number;
  body: SimPaymentView | { refund: SimRefundView; payment: SimPaymentView } | SimErrorBody;
}

export interface AuthoriseBody {
  orderId: string;
  amount: number;
  currency: string;
  card: PaymentCard;
}

export function simError(type: string, code: string, message: string, declineCode?: string): SimErrorBody {
  return { error: { type, code, message, ...(declineCode !== undefined ? { declineCode } : {}) } };
}

/** The HTTP status and error type the provider answers each refusal with (Stripe's habits). */
const REFUSALS: Readonly<Record<PaymentRejection, { status: number; type: string }>> = {
  [PaymentRejection.IDEMPOTENCY_KEY_REUSED]: { status: 422, type: 'idempotency_error' },
  [PaymentRejection.AMOUNT_TOO_LARGE]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.ALREADY_CAPTURED]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.AUTHORISATION_EXPIRED]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.VOIDED]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.NOT_CAPTURED]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.NOT_FOUND]: { status: 404, type: 'invalid_request_error' },
  [PaymentRejection.INVALID_REQUEST]: { status: 400, type: 'invalid_request_error' },
  [PaymentRejection.UNAUTHORISED]: { status: 401, type: 'authentication_error' },
};

export const PAYMENT_REJECTIONS = Object.values(PaymentRejection) as PaymentRejection[];

/** The provider's refusal with `code`, in its normal error shape and with its HTTP status. */
export function refusal(code: PaymentRejection, message: string): SimAnswer {
  const { status, type } = REFUSALS[code];
  return { status, body: simError(type, code, message) };
}

// ---------------------------------------------------------------------------------------
// Test cards

type CardOutcome =
  | { kind: 'approve' }
  | { kind: 'decline'; declineCode: string; message: string }
  /** The provider fails while processing: HTTP 500, nothing stored, retryable. */
  | { kind: 'processing_error' };

/** Card numbers with a fixed outcome (Stripe's test numbers). Documented in README.md. */
export const TEST_CARDS = {
  SUCCEEDS: '4242424242424242',
  GENERIC_DECLINE: '4000000000000002',
  INSUFFICIENT_FUNDS: '4000000000009995',
  PROCESSING_ERROR: '4000000000000119',
} as const;

const CARD_OUTCOMES: Readonly<Record<string, CardOutcome>> = {
  [TEST_CARDS.SUCCEEDS]: { kind: 'approve' },
  [TEST_CARDS.GENERIC_DECLINE]: {
    kind: 'decline',
    declineCode: 'generic_decline',
    message: 'Your card was declined.',
  },
  [TEST_CARDS.INSUFFICIENT_FUNDS]: {
    kind: 'decline',
    declineCode: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  [TEST_CARDS.PROCESSING_ERROR]: { kind: 'processing_error' },
};

/** Tokens a checkout would hand over, each standing for one test card. */
export const TEST_TOKENS: Readonly<Record<string, string>> = {
  tok_visa: TEST_CARDS.SUCCEEDS,
  tok_chargeDeclined: TEST_CARDS.GENERIC_DECLINE,
  tok_chargeDeclinedInsufficientFunds: TEST_CARDS.INSUFFICIENT_FUNDS,
  tok_chargeDeclinedProcessingError: TEST_CARDS.PROCESSING_ERROR,
};

// ---------------------------------------------------------------------------------------
// Faults

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

// ---------------------------------------------------------------------------------------
// Counters

type PerOperation = Record<PaymentOperation, number>;

function zeroPerOperation(): PerOperation {
  return Object.fromEntries(PAYMENT_OPERATIONS.map((op) => [op, 0])) as PerOperation;
}

export interface PaymentSimStats {
  /** Real time the counters started (start-up or the last reset). */
  since: string;
  /** Every call received per operation: faulted, refused, replayed and invalid ones too. */
  calls: PerOperation;
  /** Calls that changed a payment (a new authorisation, a capture, a void, a refund). */
  applied: PerOperation;
  /** Calls answered from the idempotency store (the first answer again, nothing moved). */
  replays: PerOperation;
  /** Authorisations the card declined (replays not counted). */
  declines: number;
  /** Calls a fault touched. */
  faults: Record<PaymentFaultKind, number>;
  /** HTTP statuses answered to operation calls. */
  byStatus: Record<string, number>;
  /** Every payment the provider holds (not reset with the counters), by reference. */
  payments: Record<
    string,
    {
      orderId: string;
      authorised: number;
      captured: number;
      refunded: number;
      voided: boolean;
      /** The authorisation lapsed uncaptured: its hold is released like a void's. */
      expired: boolean;
    }
  >;
}

// ---------------------------------------------------------------------------------------
// The state

interface SimPayment {
  id: string;
  orderId: string;
  currency: string;
  amountAuthorised: number;
  amountCaptured: number;
  captured: boolean;
  voided: boolean;
  /** Set once the simulator saw the authorisation lapse: a fact from then on, whatever the TTL. */
  expired: boolean;
  createdAt: number;
  refunds: { id: string; amount: number; createdAt: number }[];
}

interface StoredAnswer {
  fingerprint: string;
  operation: PaymentOperation;
  answer: SimAnswer;
}

/** Object keys sorted at every level, so the same request always hashes the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

function refundedOf(payment: SimPayment): number {
  return payment.refunds.reduce((sum, refund) => sum + refund.amount, 0);
}

function statusOf(payment: SimPayment, expired: boolean): PaymentStatus {
  if (payment.voided || expired) return PaymentStatus.VOIDED;
  if (!payment.captured) return PaymentStatus.AUTHORISED;
  const refunded = refundedOf(payment);
  if (refunded === 0) return PaymentStatus.CAPTURED;
  return refunded >= payment.amountCaptured ? PaymentStatus.REFUNDED : PaymentStatus.PARTIALLY_REFUNDED;
}

/** Simulator settings the control API can change at run time. */
export interface PaymentSimulatorSettings {
  /**
   * How long an uncaptured authorisation holds, in real ms from its creation; null: for ever.
   * After it a capture is refused `authorization_expired` and the hold counts as released (a
   * void still answers 200). Applies to existing authorisations too, so a test can let one
   * lapse by lowering it. Stripe's card authorisations mostly hold 7 days.
   */
  authorisationTtlMs: number | null;
}

function assertTtl(ms: number | null): void {
  if (ms !== null && !(Number.isInteger(ms) && ms > 0)) {
    throw new RangeError('authorisationTtlMs must be a whole number of ms above 0, or null');
  }
}

export class PaymentSimulatorState {
  readonly faults: PaymentFaults;
  private payments = new Map<string, SimPayment>();
  /** Idempotency-Key → the first answer given under it. Keys never expire here. */
  private answers = new Map<string, StoredAnswer>();
  private since = 0;
  private ttlMs: number | null;
  private counters = {
    calls: zeroPerOperation(),
    applied: zeroPerOperation(),
    replays: zeroPerOperation(),
    declines: 0,
    faults: {} as Record<PaymentFaultKind, number>,
    byStatus: {} as Record<string, number>,
  };

  constructor(
    private readonly opts: { now: () => number; seed: number; authorisationTtlMs?: number | null },
  ) {
    assertTtl(opts.authorisationTtlMs ?? null);
    this.ttlMs = opts.authorisationTtlMs ?? null;
    this.faults = new PaymentFaults(opts.seed, opts.now);
    this.resetCounters();
  }

  settings(): PaymentSimulatorSettings {
    return { authorisationTtlMs: this.ttlMs };
  }

  /** Changes settings given; throws RangeError on a bad value. */
  configure(settings: Partial<PaymentSimulatorSettings>): PaymentSimulatorSettings {
    if (settings.authorisationTtlMs !== undefined) {
      assertTtl(settings.authorisationTtlMs);
      this.ttlMs = settings.authorisationTtlMs;
    }
    return this.settings();
  }

  /** Real clock, ms since the epoch. */
  now(): number {
    return this.opts.now();
  }

  // --- Operations ---------------------------------------------------------------------------

  /**
   * Runs `operation` at most once per `key`: the first answer (success, decline or refusal)
   * is stored and given again for the same request; the same key with a different request
   * (other body, other payment, other operation) is refused with 422. A 5xx answer is not
   * stored: the provider did nothing, so a retry with the same key runs afresh.
   */
  idempotent(
    operation: PaymentOperation,
    key: string,
    request: unknown,
    run: () => SimAnswer,
  ): SimAnswer & { replayed: boolean } {
    const fingerprint = createHash('sha256')
      .update(JSON.stringify(canonical({ operation, request })))
      .digest('hex');
    const stored = this.answers.get(key);
    if (stored) {
      if (stored.fingerprint !== fingerprint) {
        return {
          ...refusal(
            PaymentRejection.IDEMPOTENCY_KEY_REUSED,
            `Idempotency-Key "${key}" was already used for a ${stored.operation} with different parameters`,
          ),
          replayed: false,
        };
      }
      this.counters.replays[operation]++;
      return { ...structuredClone(stored.answer), replayed: true };
    }
    const answer = run();
    if (answer.status < 500) {
      this.answers.set(key, { fingerprint, operation, answer: structuredClone(answer) });
    }
    return { ...answer, replayed: false };
  }

  authorise(body: AuthoriseBody): SimAnswer {
    let number: string;
    if ('token' in body.card) {
      const tokenCard = TEST_TOKENS[body.card.token];
      if (!tokenCard) return refusal(PaymentRejection.INVALID_REQUEST, `No such token: '${body.card.token}'`);
      number = tokenCard;
    } else {
      number = body.card.number;
      const today = new Date(this.now());
      const { expYear, expMonth } = body.card;
      // A card is valid to the end of its expiry month (UTC here).
      const expired =
        expYear < today.getUTCFullYear() ||
        (expYear === today.getUTCFullYear() && expMonth < today.getUTCMonth() + 1);
      if (expired) return this.decline('expired_card', 'Your card has expired.');
    }

    const outcome: CardOutcome =
      CARD_OUTCOMES[number] ??
      (passesLuhn(number)
        ? { kind: 'approve' }
        : { kind: 'decline', declineCode: 'incorrect_number', message: 'Your card number is incorrect.' });
    if (outcome.kind === 'decline') return this.decline(outcome.declineCode, outcome.message);
    if (outcome.kind === 'processing_error') {
      return {
        status: 500,
        body: simError(
          'api_error',
          'processing_error',
          'An error occurred while processing your card. Try again.',
        ),
      };
    }

    const payment: SimPayment = {
      id: `pay_${randomBytes(12).toString('hex')}`,
      orderId: body.orderId,
      currency: body.currency.toUpperCase(),
      amountAuthorised: body.amount,
      amountCaptured: 0,
      captured: false,
      voided: false,
      expired: false,
      createdAt: this.now(),
      refunds: [],
    };
    this.payments.set(payment.id, payment);
    this.counters.applied.authorise++;
    return { status: 201, body: this.view(payment) };
  }

  /**
   * One capture per payment, of at most the amount authorised; the rest is released. An
   * authorisation that lapsed (`authorisationTtlMs`) cannot be captured any more.
   */
  capture(ref: string, amount: number): SimAnswer {
    const payment = this.payments.get(ref);
    if (!payment) return this.notFound(ref);
    if (payment.voided) {
      return refusal(PaymentRejection.VOIDED, `payment ${ref} was voided and cannot be captured`);
    }
    if (payment.captured) {
      return refusal(
        PaymentRejection.ALREADY_CAPTURED,
        `payment ${ref} was already captured (${payment.amountCaptured}); a payment is captured once`,
      );
    }
    if (this.expired(payment)) {
      return refusal(
        PaymentRejection.AUTHORISATION_EXPIRED,
        `the authorisation of ${ref} expired ${this.ttlMs} ms after it was made and can no longer be captured`,
      );
    }
    if (amount > payment.amountAuthorised) {
      return refusal(
        PaymentRejection.AMOUNT_TOO_LARGE,
        `capture of ${amount} exceeds the ${payment.amountAuthorised} authorised on ${ref}`,
      );
    }
    payment.captured = true;
    payment.amountCaptured = amount;
    this.counters.applied.capture++;
    return { status: 200, body: this.view(payment) };
  }

  /**
   * Releases an uncaptured authorisation; voiding a voided payment changes nothing and
   * succeeds, and so does voiding a lapsed one (its hold is already released, as Stripe
   * cancels an expired authorisation and a cancel of it is no error to the caller).
   */
  void(ref: string): SimAnswer {
    const payment = this.payments.get(ref);
    if (!payment) return this.notFound(ref);
    if (payment.captured) {
      return refusal(
        PaymentRejection.ALREADY_CAPTURED,
        `payment ${ref} was captured and cannot be voided; refund it instead`,
      );
    }
    // A lapsed authorisation has nothing left to release: the void is a no-op that succeeds.
    if (!payment.voided && !this.expired(payment)) {
      payment.voided = true;
      this.counters.applied.void++;
    }
    return { status: 200, body: this.view(payment) };
  }

  /** Refunds add up to at most the amount captured. */
  refund(ref: string, amount: number): SimAnswer {
    const payment = this.payments.get(ref);
    if (!payment) return this.notFound(ref);
    if (!payment.captured) {
      return refusal(PaymentRejection.NOT_CAPTURED, `payment ${ref} has nothing captured to refund`);
    }
    const refunded = refundedOf(payment);
    if (refunded + amount > payment.amountCaptured) {
      return refusal(
        PaymentRejection.AMOUNT_TOO_LARGE,
        `refund of ${amount} exceeds what is left to refund on ${ref}: ${payment.amountCaptured - refunded} ` +
          `(captured ${payment.amountCaptured}, refunded ${refunded})`,
      );
    }
    const refund = { id: `re_${randomBytes(12).toString('hex')}`, amount, createdAt: this.now() };
    payment.refunds.push(refund);
    this.counters.applied.refund++;
    return {
      status: 201,
      body: {
        refund: { ...refund, createdAt: new Date(refund.createdAt).toISOString() },
        payment: this.view(payment),
      },
    };
  }

  // --- Inspection ---------------------------------------------------------------------------

  payment(ref: string): SimPaymentView | null {
    const payment = this.payments.get(ref);
    return payment ? this.view(payment) : null;
  }

  /** Payments, oldest first; only one order's when `orderId` is given. */
  paymentsOf(orderId?: string): SimPaymentView[] {
    return [...this.payments.values()]
      .filter((payment) => orderId === undefined || payment.orderId === orderId)
      .map((payment) => this.view(payment));
  }

  stats(): PaymentSimStats {
    const payments: PaymentSimStats['payments'] = {};
    for (const payment of this.payments.values()) {
      payments[payment.id] = {
        orderId: payment.orderId,
        authorised: payment.amountAuthorised,
        captured: payment.amountCaptured,
        refunded: refundedOf(payment),
        voided: payment.voided,
        expired: this.expired(payment),
      };
    }
    return {
      since: new Date(this.since).toISOString(),
      ...structuredClone(this.counters),
      payments,
    };
  }

  // --- Counting (the server reports what it saw) ----------------------------------------------

  countCall(operation: PaymentOperation): void {
    this.counters.calls[operation]++;
  }

  countFault(kind: PaymentFaultKind): void {
    this.counters.faults[kind]++;
  }

  countStatus(status: number): void {
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
  }

  /** Clears counters and faults; with `payments`, forgets every payment and idempotency key too. */
  reset(opts: { payments?: boolean } = {}): void {
    this.resetCounters();
    this.faults.clear();
    if (opts.payments) {
      this.payments.clear();
      this.answers.clear();
    }
  }

  paymentCount(): number {
    return this.payments.size;
  }

  // --- Internals ----------------------------------------------------------------------------

  private resetCounters(): void {
    this.since = this.now();
    this.counters = {
      calls: zeroPerOperation(),
      applied: zeroPerOperation(),
      replays: zeroPerOperation(),
      declines: 0,
      faults: Object.fromEntries(PAYMENT_FAULT_KINDS.map((kind) => [kind, 0])) as Record<
        PaymentFaultKind,
        number
      >,
      byStatus: {},
    };
  }

  private decline(declineCode: string, message: string): SimAnswer {
    this.counters.declines++;
    // 402 like Stripe's card errors; the adapter turns it into a DECLINED result.
    return { status: 402, body: simError('card_error', 'card_declined', message, declineCode) };
  }

  private notFound(ref: string): SimAnswer {
    return refusal(PaymentRejection.NOT_FOUND, `No such payment: '${ref}'`);
  }

  /**
   * Whether the authorisation lapsed: uncaptured and unvoided when the TTL ran out. Seen
   * once, it stays lapsed (a TTL raised later does not bring the hold back).
   */
  private expired(payment: SimPayment): boolean {
    if (
      !payment.expired &&
      !payment.captured &&
      !payment.voided &&
      this.ttlMs !== null &&
      this.now() >= payment.createdAt + this.ttlMs
    ) {
      payment.expired = true;
    }
    return payment.expired;
  }

  private view(payment: SimPayment): SimPaymentView {
    const expired = this.expired(payment);
    return {
      id: payment.id,
      orderId: payment.orderId,
      status: statusOf(payment, expired),
      currency: payment.currency,
      amountAuthorised: payment.amountAuthorised,
      amountCaptured: payment.amountCaptured,
      amountRefunded: refundedOf(payment),
      voided: payment.voided,
      expired,
      createdAt: new Date(payment.createdAt).toISOString(),
      refunds: payment.refunds.map((refund) => ({
        ...refund,
        createdAt: new Date(refund.createdAt).toISOString(),
      })),
    };
  }
}
