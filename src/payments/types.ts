/**
 * The payment-provider contract the order saga uses: authorise, capture, void, refund.
 * Amounts are integers in the currency's minor units (cents, sen, paise). A decline is a
 * result the saga acts on; only the provider failing (retry later) or refusing a request
 * (do not retry) are errors. Adapters are plain objects created by a factory.
 */

/** A payment's state at the provider; the same values as the `payments.status` column. */
export const PaymentStatus = {
  AUTHORISED: 'AUTHORISED',
  DECLINED: 'DECLINED',
  CAPTURED: 'CAPTURED',
  VOIDED: 'VOIDED',
  PARTIALLY_REFUNDED: 'PARTIALLY_REFUNDED',
  REFUNDED: 'REFUNDED',
} as const;
export type PaymentStatus = (typeof PaymentStatus)[keyof typeof PaymentStatus];
export const PAYMENT_STATUSES = Object.values(PaymentStatus) as PaymentStatus[];

export function isPaymentStatus(value: unknown): value is PaymentStatus {
  return typeof value === 'string' && (PAYMENT_STATUSES as string[]).includes(value);
}

export const PaymentOperation = {
  AUTHORISE: 'authorise',
  CAPTURE: 'capture',
  VOID: 'void',
  REFUND: 'refund',
  /** Reads a payment's state (what was captured and refunded, by anyone); moves nothing. */
  RETRIEVE: 'retrieve',
} as const;
export type PaymentOperation = (typeof PaymentOperation)[keyof typeof PaymentOperation];
export const PAYMENT_OPERATIONS = Object.values(PaymentOperation) as PaymentOperation[];

/**
 * Why the provider refused a request ({@link PaymentRejectedError.code}). Providers may
 * send other codes; these are the ones the saga can act on.
 */
export const PaymentRejection = {
  /** The Idempotency-Key was used before with different parameters (a bug in the caller). */
  IDEMPOTENCY_KEY_REUSED: 'idempotency_key_reused',
  /** Capture more than authorised, or refund more than captured (cumulative). */
  AMOUNT_TOO_LARGE: 'amount_too_large',
  /** Capture or void of a payment already captured (refund it instead). */
  ALREADY_CAPTURED: 'payment_already_captured',
  /** Capture of an authorisation the card issuer no longer holds (it lapsed before capture). */
  AUTHORISATION_EXPIRED: 'authorization_expired',
  /** Capture of a voided authorisation. */
  VOIDED: 'payment_voided',
  /** Refund of a payment with nothing captured. */
  NOT_CAPTURED: 'payment_not_captured',
  /** No payment with that reference. */
  NOT_FOUND: 'resource_missing',
  /** A field is missing or malformed (amount, currency, card, token). */
  INVALID_REQUEST: 'parameter_invalid',
  /** The API key is missing or wrong. */
  UNAUTHORISED: 'unauthorised',
} as const;
export type PaymentRejection = (typeof PaymentRejection)[keyof typeof PaymentRejection];

/** Raw card details (test mode only: the simulator's test cards) or a token from the shop's checkout. */
export type PaymentCard =
  | {
      number: string;
      /** 1 to 12. */
      expMonth: number;
      /** Four digits. */
      expYear: number;
      cvc: string;
    }
  | { token: string };

/**
 * Every call carries an idempotency key. The caller derives it from the order and the
 * saga step (`paymentIdempotencyKey(orderId, 'authorise')`), never from the attempt, the
 * activity id or a random value: a retried activity, a worker that died after the
 * provider answered, or a workflow replayed after continue-as-new must send the same key,
 * so the provider answers with the first result instead of charging again. Reusing a key
 * with different parameters is refused ({@link PaymentRejection.IDEMPOTENCY_KEY_REUSED}).
 */
export interface IdempotentRequest {
  idempotencyKey: string;
}

export interface AuthoriseRequest extends IdempotentRequest {
  orderId: string;
  /** Minor units, a positive integer. */
  amount: number;
  /** ISO 4217 code, e.g. `MYR`. */
  currency: string;
  card: PaymentCard;
}

export type AuthoriseResult =
  | { status: typeof PaymentStatus.AUTHORISED; providerRef: string }
  | {
      status: typeof PaymentStatus.DECLINED;
      /** The provider's reason, e.g. `generic_decline`, `insufficient_funds`, `expired_card`. */
      declineCode: string;
      /** Human-readable, safe to show the shopper. */
      message: string;
    };

export interface CaptureRequest extends IdempotentRequest {
  providerRef: string;
  /** Minor units, at most the amount authorised. One capture per payment; the rest is released. */
  amount: number;
}

export interface VoidRequest extends IdempotentRequest {
  providerRef: string;
}

export interface RefundRequest extends IdempotentRequest {
  providerRef: string;
  /** Minor units; all refunds together stay within the amount captured. */
  amount: number;
}

/** A payment's money after an operation, in minor units (the read model's `payments` columns). */
export interface PaymentSummary {
  providerRef: string;
  status: PaymentStatus;
  amountAuthorised: number;
  amountCaptured: number;
  /** All refunds so far. */
  amountRefunded: number;
}

/** One refund in the provider's books, by whoever made it. */
export interface BookedRefund {
  id: string;
  amount: number;
  /**
   * What the refund was sent with (metadata `reference`): the idempotency key of a refund
   * Waybill made; null for one made elsewhere (the provider's dashboard).
   */
  reference: string | null;
}

/** A payment as {@link PaymentProvider.retrieve} reads it: its money and each of its refunds. */
export interface PaymentBooks extends PaymentSummary {
  refunds: BookedRefund[];
}

export interface RefundResult extends PaymentSummary {
  /** The provider's id of this refund. */
  refundId: string;
  /** This refund's amount. */
  amount: number;
}

/**
 * A payment provider. Every method is idempotent per `idempotencyKey` (see
 * {@link IdempotentRequest}): calling it again with the same key and the same request
 * returns the first result and moves no money. Failures are either
 * {@link PaymentUnavailableError} (retry with the same key) or {@link PaymentRejectedError}
 * (do not retry: the request itself is wrong or no longer allowed).
 */
export interface PaymentProvider {
  /** Reserves `amount` on the card. A decline is a result, not an error. */
  authorise(request: AuthoriseRequest): Promise<AuthoriseResult>;
  /** Takes (part of) the authorised amount; at most once per payment. */
  capture(request: CaptureRequest): Promise<PaymentSummary>;
  /** Releases an authorisation that was not captured; voiding a voided payment succeeds. */
  void(request: VoidRequest): Promise<PaymentSummary>;
  /**
   * Gives back (part of) the captured amount; may be called several times with different keys.
   * The refund carries its idempotency key as its `reference` (metadata), so the books show
   * it was made after the provider has forgotten the key (Stripe prunes keys after 24 h).
   */
  refund(request: RefundRequest): Promise<RefundResult>;
  /**
   * The payment as the provider's books hold it now, whoever moved its money (the saga, or
   * someone in the provider's dashboard). Moves nothing, so it needs no idempotency key.
   */
  retrieve(providerRef: string): Promise<PaymentBooks>;
}

/**
 * The idempotency key of one saga step of one order, e.g. `('ord_1', 'authorise')` or
 * `('ord_1', 'refund:shp_2')` for the refund of one returned shipment. The same inputs
 * give the same key in every attempt, run and worker.
 */
export function paymentIdempotencyKey(orderId: string, step: string): string {
  return `order:${orderId}:${step}`;
}

/**
 * The provider could not be used: timeout, network error, 5xx, 429, or an answer that is
 * not what the API promises. Retryable with the same idempotency key: the provider may
 * already have acted, and the key makes the retry return that result.
 */
export class PaymentUnavailableError extends Error {
  override name = 'PaymentUnavailableError';
  constructor(
    message: string,
    readonly details: { status?: number; timedOut?: boolean; bodySnippet?: string } = {},
  ) {
    super(message);
  }
}

/**
 * The provider refused the request for good (see {@link PaymentRejection} for the codes):
 * retrying it unchanged gives the same refusal.
 */
export class PaymentRejectedError extends Error {
  override name = 'PaymentRejectedError';
  constructor(
    message: string,
    /** The provider's error code, e.g. {@link PaymentRejection.AMOUNT_TOO_LARGE}. */
    readonly code: string,
    readonly details: { status?: number } = {},
  ) {
    super(message);
  }
}
