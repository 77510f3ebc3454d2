/**
 * The simulated payment provider's state and rules, without HTTP: payments, the
 * idempotency store, money rules and counters; the test cards are cards.ts, the faults
 * faults.ts, the shapes it answers in wire.ts. Every method is
 * synchronous, so one call sees one instant and two calls never interleave. The HTTP
 * server (server.ts) wraps it; tests may also steer it directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { passesLuhn } from '../../src/domain/card-data';
import { PaymentRejection, PaymentStatus, type PaymentOperation } from '../../src/payments/types';
import { CARD_OUTCOMES, TEST_TOKENS, type CardOutcome } from './cards';
import { PAYMENT_FAULT_KINDS, PaymentFaults, type PaymentFaultKind } from './faults';
import {
  refusal,
  simError,
  zeroPerOperation,
  type AuthoriseBody,
  type PaymentSimStats,
  type SimAnswer,
  type SimPaymentView,
} from './wire';

interface SimPayment {
  id: string;
  orderId: string;
  currency: string;
  amountAuthorised: number;
  amountCaptured: number;
  captured: boolean;
  /** The Idempotency-Key the capture came with (the merchant's own API calls carry theirs). */
  captureKey: string | null;
  voided: boolean;
  /** Set once the simulator saw the authorisation lapse: a fact from then on, whatever the TTL. */
  expired: boolean;
  createdAt: number;
  refunds: { id: string; amount: number; createdAt: number; metadata: Record<string, string> }[];
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
      captureKey: null,
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
  capture(ref: string, amount: number, idempotencyKey: string): SimAnswer {
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
    payment.captureKey = idempotencyKey;
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

  /** The payment as the books hold it now (a GET: nothing moves, no idempotency key). */
  retrieve(ref: string): SimAnswer {
    const payment = this.payments.get(ref);
    return payment ? { status: 200, body: this.view(payment) } : this.notFound(ref);
  }

  /** Refunds add up to at most the amount captured. */
  refund(ref: string, amount: number, metadata: Record<string, string> = {}): SimAnswer {
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
    const refund = { id: `re_${randomBytes(12).toString('hex')}`, amount, createdAt: this.now(), metadata };
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

  /**
   * Forgets every idempotency key and its stored answer, as Stripe prunes keys once they are
   * 24 hours old: a request sent again afterwards runs afresh. The payments stay.
   */
  forgetIdempotencyKeys(): void {
    this.answers.clear();
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
      captureKey: payment.captureKey,
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
