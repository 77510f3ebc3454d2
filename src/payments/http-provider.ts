/**
 * The {@link PaymentProvider} for a Stripe-like JSON API (the wire format in README.md; the
 * simulator in simulators/payment/server.ts speaks it). Every call that moves money is a POST
 * carrying the caller's Idempotency-Key; reading a payment is a GET. A 402 card error on authorise is a decline (a result); a timeout, a
 * network error, 429, 5xx or an answer of the wrong shape is a retryable
 * {@link PaymentUnavailableError}; any other refusal a {@link PaymentRejectedError}.
 */
import {
  isPaymentStatus,
  PaymentRejectedError,
  PaymentStatus,
  PaymentUnavailableError,
  type AuthoriseRequest,
  type BookedRefund,
  type AuthoriseResult,
  type PaymentBooks,
  type PaymentOperation,
  type PaymentProvider,
  type PaymentSummary,
  type RefundResult,
} from './types';
import { bodySnippet, isObject, parseJson } from '../couriers/http';

/** The part of a logger the adapter uses (pino's `Logger` fits). Card data is never logged. */
export interface PaymentLog {
  warn(obj: object, msg: string): void;
}

/** Default time limit of one provider call, request and body together (ms). */
export const DEFAULT_PAYMENT_TIMEOUT_MS = 10_000;

/** Longest body excerpt kept in error details and logs, in characters. */
const SNIPPET_MAX_CHARS = 300;

export interface HttpPaymentProviderOptions {
  /** The provider's root URL; paths like `/v1/payments` are appended. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** One call gives up after this long (ms). Default 10 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  log?: PaymentLog;
}

/** Log excerpts of provider answers: whitespace collapsed, at most SNIPPET_MAX_CHARS. */
const snippet = (text: string): string => bodySnippet({ snippetMaxChars: SNIPPET_MAX_CHARS }, text);

function isAmount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** A 2xx body that is not what the API promises: the caller makes it a PaymentUnavailableError. */
class ShapeError extends Error {}

function toSummary(json: unknown): PaymentSummary {
  if (!isObject(json)) throw new ShapeError('the payment is not an object');
  const { id, status, amountAuthorised, amountCaptured, amountRefunded } = json;
  if (typeof id !== 'string' || id === '') throw new ShapeError('the payment has no id');
  if (!isPaymentStatus(status)) throw new ShapeError(`unknown payment status ${String(status)}`);
  if (!isAmount(amountAuthorised) || !isAmount(amountCaptured) || !isAmount(amountRefunded)) {
    throw new ShapeError('the payment amounts are not whole numbers');
  }
  return { providerRef: id, status, amountAuthorised, amountCaptured, amountRefunded };
}

/** A payment with its refunds; a refund's `reference` is its metadata's, when a string. */
function toBooks(json: unknown): PaymentBooks {
  const summary = toSummary(json);
  const listed = (json as { refunds?: unknown }).refunds;
  if (listed !== undefined && !Array.isArray(listed))
    throw new ShapeError('the payment’s refunds are not a list');
  const refunds = (listed ?? []).map((refund: unknown): BookedRefund => {
    if (!isObject(refund) || typeof refund.id !== 'string' || !isAmount(refund.amount)) {
      throw new ShapeError('a refund lacks an id or a whole amount');
    }
    const reference = isObject(refund.metadata) ? refund.metadata.reference : undefined;
    return {
      id: refund.id,
      amount: refund.amount,
      reference: typeof reference === 'string' ? reference : null,
    };
  });
  return { ...summary, refunds };
}

export function createHttpPaymentProvider(opts: HttpPaymentProviderOptions): PaymentProvider {
  const root = opts.baseUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PAYMENT_TIMEOUT_MS;
  const doFetch = opts.fetch ?? fetch;

  function unavailable(
    operation: PaymentOperation,
    idempotencyKey: string,
    message: string,
    details: PaymentUnavailableError['details'] = {},
  ): PaymentUnavailableError {
    opts.log?.warn({ operation, idempotencyKey, ...details }, message);
    return new PaymentUnavailableError(message, details);
  }

  /**
   * One POST (with `body`) or GET (without; `idempotencyKey` then only names the call in
   * errors and logs). Returns the status and parsed JSON body of any answer that is JSON and
   * not 429/5xx; everything else is a PaymentUnavailableError (retry with the same key).
   */
  async function post(
    operation: PaymentOperation,
    path: string,
    idempotencyKey: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['idempotency-key'] = idempotencyKey;
    }
    if (opts.apiKey !== undefined) headers.authorization = `Bearer ${opts.apiKey}`;

    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${root}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        // The provider may have acted: only a retry with the same key tells.
        throw unavailable(
          operation,
          idempotencyKey,
          `payment provider did not answer ${operation} within ${timeoutMs} ms`,
          { timedOut: true },
        );
      }
      const reason = e.cause?.code ?? e.cause?.message ?? e.message;
      throw unavailable(
        operation,
        idempotencyKey,
        `payment provider unreachable for ${operation}: ${reason}`,
      );
    }

    const details = { status: response.status, bodySnippet: snippet(text) };
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      throw unavailable(
        operation,
        idempotencyKey,
        `payment provider answered ${response.status} to ${operation}`,
        details,
      );
    }
    const json = parseJson(text);
    if (json === undefined) {
      throw unavailable(
        operation,
        idempotencyKey,
        `payment provider answered ${operation} with a body that is not JSON (${response.status})`,
        details,
      );
    }
    return { status: response.status, json, text };
  }

  /** The PaymentRejectedError for a 4xx answer, with the provider's code and message. */
  function rejected(
    operation: PaymentOperation,
    idempotencyKey: string,
    answer: { status: number; json: unknown; text: string },
  ): PaymentRejectedError {
    const error = isObject(answer.json) && isObject(answer.json.error) ? answer.json.error : null;
    const code = typeof error?.code === 'string' ? error.code : String(answer.status);
    const reason = typeof error?.message === 'string' ? error.message : snippet(answer.text);
    const message = `payment provider refused ${operation} (${answer.status} ${code}): ${reason}`;
    opts.log?.warn({ operation, idempotencyKey, status: answer.status, code }, message);
    return new PaymentRejectedError(message, code, { status: answer.status });
  }

  /** The parsed result of a 2xx answer; any other status is a refusal (5xx never gets here). */
  function result<T>(
    operation: PaymentOperation,
    idempotencyKey: string,
    answer: { status: number; json: unknown; text: string },
    parse: (json: unknown) => T,
  ): T {
    if (answer.status < 200 || answer.status >= 300) throw rejected(operation, idempotencyKey, answer);
    try {
      return parse(answer.json);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      throw unavailable(
        operation,
        idempotencyKey,
        `payment provider answer to ${operation} has an unexpected shape: ${err.message}`,
        { status: answer.status, bodySnippet: snippet(answer.text) },
      );
    }
  }

  const paymentPath = (providerRef: string, action: string) =>
    `/v1/payments/${encodeURIComponent(providerRef)}/${action}`;

  return {
    async authorise(request: AuthoriseRequest): Promise<AuthoriseResult> {
      const { idempotencyKey, orderId, amount, currency, card } = request;
      const answer = await post('authorise', '/v1/payments', idempotencyKey, {
        orderId,
        amount,
        currency,
        card,
      });
      if (answer.status === 402) {
        const error = isObject(answer.json) && isObject(answer.json.error) ? answer.json.error : null;
        if (error?.type === 'card_error') {
          const declineCode =
            typeof error.declineCode === 'string'
              ? error.declineCode
              : typeof error.code === 'string'
                ? error.code
                : 'card_declined';
          const message = typeof error.message === 'string' ? error.message : 'The card was declined.';
          return { status: PaymentStatus.DECLINED, declineCode, message };
        }
      }
      return result('authorise', idempotencyKey, answer, (json) => {
        const summary = toSummary(json);
        if (summary.status !== PaymentStatus.AUTHORISED) {
          throw new ShapeError(`a new authorisation has status ${summary.status}`);
        }
        return { status: PaymentStatus.AUTHORISED, providerRef: summary.providerRef };
      });
    },

    async capture({ idempotencyKey, providerRef, amount }): Promise<PaymentSummary> {
      const answer = await post('capture', paymentPath(providerRef, 'capture'), idempotencyKey, { amount });
      return result('capture', idempotencyKey, answer, toSummary);
    },

    async void({ idempotencyKey, providerRef }): Promise<PaymentSummary> {
      const answer = await post('void', paymentPath(providerRef, 'void'), idempotencyKey, {});
      return result('void', idempotencyKey, answer, toSummary);
    },

    async refund({ idempotencyKey, providerRef, amount }): Promise<RefundResult> {
      const answer = await post('refund', paymentPath(providerRef, 'refunds'), idempotencyKey, {
        amount,
        metadata: { reference: idempotencyKey },
      });
      return result('refund', idempotencyKey, answer, (json) => {
        if (!isObject(json) || !isObject(json.refund)) throw new ShapeError('the answer has no refund');
        const { id, amount: refunded } = json.refund;
        if (typeof id !== 'string' || id === '' || !isAmount(refunded)) {
          throw new ShapeError('the refund lacks an id or a whole amount');
        }
        return { ...toSummary(json.payment), refundId: id, amount: refunded };
      });
    },

    async retrieve(providerRef: string): Promise<PaymentBooks> {
      const what = `retrieve ${providerRef}`;
      const answer = await post('retrieve', `/v1/payments/${encodeURIComponent(providerRef)}`, what);
      return result('retrieve', what, answer, toBooks);
    },
  };
}
