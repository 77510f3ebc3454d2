/**
 * The HTTP edge shared by the courier adapters: one call with a time limit, the body read
 * as text, and the courier's failures turned into the two errors the workflows understand
 * ({@link CourierUnavailableError}: retry later; {@link CourierRejectedError}: give up).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CourierRefusal, CourierRejectedError, CourierUnavailableError, type CourierCode } from './types';

/** The part of a logger the adapters use (pino's `Logger` fits). */
export interface CourierLog {
  warn(obj: object, msg: string): void;
}

/** Longest body excerpt kept in error details and logs, in characters. */
export const SNIPPET_MAX_CHARS = 500;

/** Default time limit of one courier call, request and body together (ms). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** What an adapter needs to call its courier. */
export interface HttpContext {
  courier: CourierCode;
  /** The courier's name in messages ("EasyParcel"). */
  label: string;
  fetch: typeof fetch;
  timeoutMs: number;
  log: CourierLog | undefined;
  /** Wall clock (ms since the epoch), for Retry-After dates. */
  now: () => number;
  /** Removes personal data from a body before it is logged or kept in an error. */
  redact?: (body: string) => string;
  /** Longest body excerpt in error details and logs, in characters. Default {@link SNIPPET_MAX_CHARS}. */
  snippetMaxChars?: number;
}

/** A courier's answer, whatever its status, with the body read in full. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** Lower-case media type without parameters ('' when absent). */
  contentType: string;
  text: string;
  /** The request path (no query string: Blue Dart puts its licence key there), for messages. */
  path: string;
}

/** `text` cut to at most `max` characters, an ellipsis marking the cut. */
export function truncate(text: string, max = SNIPPET_MAX_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A body excerpt safe to log: personal data redacted, whitespace runs collapsed, at most
 * `ctx.snippetMaxChars` (default 500) characters.
 */
export function bodySnippet(ctx: Pick<HttpContext, 'redact' | 'snippetMaxChars'>, text: string): string {
  const redacted = ctx.redact ? ctx.redact(text) : text;
  return truncate(redacted.replace(/\s+/g, ' ').trim(), ctx.snippetMaxChars);
}

/**
 * Retry-After as milliseconds to wait: either delay-seconds (`120`) or an HTTP date.
 * Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Logs and returns a retryable error. */
export function unavailable(
  ctx: HttpContext,
  message: string,
  details: CourierUnavailableError['details'] = {},
): CourierUnavailableError {
  ctx.log?.warn({ courier: ctx.courier, ...details }, message);
  return new CourierUnavailableError(message, details);
}

/** Logs and returns a final refusal, classified by `reason` (default: invalid). */
export function rejected(
  ctx: HttpContext,
  message: string,
  details: { status?: number; bodySnippet?: string } = {},
  reason: CourierRefusal = CourierRefusal.INVALID,
): CourierRejectedError {
  ctx.log?.warn({ courier: ctx.courier, reason, ...details }, message);
  return new CourierRejectedError(message, reason);
}

/**
 * What a refusal's status alone says: 401/403 our credentials, 404 an unknown booking or
 * number, any other status an invalid request. Never "collected": only the courier's own
 * words say that ({@link saysCollected}).
 */
export function refusalOfStatus(status: number): CourierRefusal {
  if (status === 401 || status === 403) return CourierRefusal.CREDENTIALS;
  if (status === 404) return CourierRefusal.UNKNOWN_BOOKING;
  return CourierRefusal.INVALID;
}

// "Already collected", "has been picked up", "is in transit": the courier says it has the
// parcel. Phrases that only mention a pickup to come ("to be collected", "not yet picked
// up", "awaiting pickup", "collection date") are not that.
const COLLECTED_TEXT = /\b(collected|picked[\s-]?up|in[\s-]transit)\b/i;
const NOT_COLLECTED_TEXT =
  /\b(not|never|yet to be|to be|awaiting|pending|before|until)\s+(yet\s+)?(been\s+)?(collected|picked|in[\s-]transit)\b/i;

/**
 * Whether a courier's refusal text says, in so many words, that the parcel is already with
 * the courier (collected, picked up, in transit). The one refusal that may lead the saga to
 * capture the payment, so anything less explicit is not it.
 */
export function saysCollected(text: string | null | undefined): boolean {
  return text != null && COLLECTED_TEXT.test(text) && !NOT_COLLECTED_TEXT.test(text);
}

/**
 * Why a courier refused a cancel, from its status and its own words: 401/403 credentials,
 * 404 or "not found" / "invalid waybill" an unknown booking, a text that says the parcel is
 * collected / picked up / in transit COLLECTED (whatever the 4xx: 409 is usual), else invalid.
 */
export function cancelRefusal(status: number, text: string | null | undefined): CourierRefusal {
  const byStatus = refusalOfStatus(status);
  if (byStatus !== CourierRefusal.INVALID) return byStatus;
  if (saysUnknownBooking(text)) return CourierRefusal.UNKNOWN_BOOKING;
  if (saysCollected(text)) return CourierRefusal.COLLECTED;
  return CourierRefusal.INVALID;
}

/** Whether a courier's refusal text says it does not know the booking or number. */
export function saysUnknownBooking(text: string | null | undefined): boolean {
  return (
    text != null &&
    /\b(not found|no such|does not exist|unknown (awb|waybill|shipment)|invalid (awb|waybill))\b/i.test(text)
  );
}

/** Asked before every HTTP request made inside {@link gatedRequests}; throwing stops the request. */
export type RequestGate = (path: string) => Promise<void>;

const gates = new AsyncLocalStorage<RequestGate>();

/**
 * Runs `work` with every courier HTTP request it makes — a token request it starts included —
 * passing `gate` first: the poll's daily budget counts real requests this way, not attempts.
 */
export function gatedRequests<T>(gate: RequestGate, work: () => Promise<T>): Promise<T> {
  return gates.run(gate, work);
}

/** Errors a gate threw: the request they stopped never left (e.g. the day's budget is spent). */
const stoppedByGate = new WeakSet<object>();

/** True when `err` stopped a request before any byte of it was sent. */
export function wasNotSent(err: unknown): boolean {
  if (typeof err === 'object' && err !== null && stoppedByGate.has(err)) return true;
  return err instanceof CourierUnavailableError && err.details.notSent === true;
}

/**
 * One HTTP call with a time limit covering the body too. A network error or the time limit
 * is a {@link CourierUnavailableError}; every HTTP status is returned for the caller to judge.
 */
export async function courierRequest(ctx: HttpContext, url: string, init: RequestInit): Promise<HttpAnswer> {
  const path = new URL(url).pathname;
  const method = init.method ?? 'GET';
  try {
    await gates.getStore()?.(path);
  } catch (err) {
    if (typeof err === 'object' && err !== null) stoppedByGate.add(err);
    throw err;
  }
  let response: Response;
  let text: string;
  try {
    response = await ctx.fetch(url, { ...init, signal: AbortSignal.timeout(ctx.timeoutMs) });
    text = await response.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      throw unavailable(ctx, `${ctx.label} did not answer ${method} ${path} within ${ctx.timeoutMs} ms`);
    }
    const reason = e.cause?.code ?? e.cause?.message ?? e.message;
    // Refused or unresolved: no byte of the request reached the courier.
    const notSent = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(e.cause?.code ?? '');
    throw unavailable(ctx, `${ctx.label} unreachable for ${method} ${path}: ${reason}`, {
      ...(notSent ? { notSent } : {}),
    });
  }
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return { status: response.status, headers: response.headers, contentType, text, path };
}

/**
 * The error for an answer the caller cannot use because of its status: 429 and 5xx are
 * retryable (429 with its Retry-After), any other status a refusal, classified by `reason`
 * (default: {@link refusalOfStatus}). `what` names the call, `refusal` says why in words.
 */
export function statusError(
  ctx: HttpContext,
  answer: HttpAnswer,
  what: string,
  refusal?: string,
  reason: CourierRefusal = refusalOfStatus(answer.status),
): Error {
  const details = { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) };
  if (answer.status === 429) {
    const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'), ctx.now());
    return unavailable(ctx, `${ctx.label} rate-limited ${what} (429)`, {
      ...details,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (answer.status >= 500 || answer.status < 200) {
    return unavailable(ctx, `${ctx.label} answered ${answer.status} to ${what}`, details);
  }
  return rejected(
    ctx,
    `${ctx.label} refused ${what} (${answer.status})${refusal ? `: ${refusal}` : ''}`,
    details,
    reason,
  );
}

/** The body parsed as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A parsed JSON object, its fields still unchecked. */
export type JsonObject = Record<string, unknown>;

/** A JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
