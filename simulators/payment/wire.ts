/**
 * The simulated payment provider's wire shapes, shared by the state (state.ts) and the HTTP
 * server: the payment and refund views, the error body and each refusal's HTTP status, and
 * the counters the control API's `/stats` answers.
 */
import {
  PAYMENT_OPERATIONS,
  PaymentRejection,
  type PaymentCard,
  type PaymentOperation,
  type PaymentStatus,
} from '../../src/payments/types';
import type { PaymentFaultKind } from './faults';

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
  /** What the caller sent with it (Waybill: `reference`, the refund's idempotency key). */
  metadata: Record<string, string>;
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
  /** The Idempotency-Key the capture came with (Waybill's, or another's: a dashboard, a script); null while nothing is captured. */
  captureKey: string | null;
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
// Counters

export type PerOperation = Record<PaymentOperation, number>;

export function zeroPerOperation(): PerOperation {
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
