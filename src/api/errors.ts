import { Type, type Static } from 'typebox';
import {
  GRPC,
  grpcCode,
  oneWorkflowLimit,
  resourceExhaustedCause,
  resourceExhaustedCauseName,
} from '../temporal';

/** The one error shape every route answers with. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({
        pattern: '^[A-Z][A-Z0-9_]*$',
        maxLength: 64,
        description: 'Machine-readable, e.g. VALIDATION_FAILED, NOT_FOUND, TEMPORAL_UNAVAILABLE',
      }),
      // Bounded by what a request can carry: a message may quote the request line (16 KiB at most).
      message: Type.String({ maxLength: 16_384, description: 'What went wrong and, for 4xx, what to fix' }),
    }),
  },
  { $id: 'Error', description: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBody>;

/**
 * An error decided by a route: answered as-is with its status and code, and a Retry-After of
 * `retryAfterSeconds` (a 503's default: 5).
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Longest path parameter the router matches (characters); ids and tracking numbers are far shorter. */
export const MAX_PARAM_LENGTH = 100;

/**
 * Errors of the router itself (before any route, hook or error handler runs), in our shape:
 * a URL whose percent-encoding does not decode, a path parameter over {@link MAX_PARAM_LENGTH}.
 */
export function routerError(err: { code?: string }): ApiError {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new ApiError(
        400,
        'BAD_URL',
        'the URL path is not valid: a percent-encoded part does not decode',
      );
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(
        414,
        'URI_TOO_LONG',
        `a path parameter is longer than ${MAX_PARAM_LENGTH} characters; no id in this API is that long`,
      );
    default:
      return new ApiError(500, 'INTERNAL', 'Internal error; the request id identifies it in the logs');
  }
}

/** The largest request body the API reads (bytes): an order with 100 lines is under 10 KiB. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Fastify's own refusals of a request body (raised before any handler runs), as our codes
 * and sentences that say what to send instead; Fastify's FST_ names and texts mean nothing
 * to a caller. Null for any other error.
 */
export function bodyError(err: { code?: string; statusCode?: number }): ApiError | null {
  const status = err.statusCode ?? 400;
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(
        status,
        'INVALID_JSON',
        'the body is not valid JSON (keys named __proto__ or constructor.prototype are refused too); send one JSON object',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(
        status,
        'EMPTY_BODY',
        'the body is empty but Content-Type says application/json; send a JSON object, or no Content-Type with no body',
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(
        status,
        'PAYLOAD_TOO_LARGE',
        `the body is larger than ${BODY_LIMIT_BYTES / 1024} KiB, the most any route reads`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        status,
        'UNSUPPORTED_MEDIA_TYPE',
        'the body must be JSON with Content-Type: application/json',
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(
        status,
        'INVALID_CONTENT_LENGTH',
        'the body is not as long as its Content-Length header says; send the header that matches the body, or none',
      );
    default:
      return null;
  }
}

/**
 * The raw HTTP answer to a request Node's parser refused (it never became a request: no
 * route, no hooks), in our shape. Null when there is no one to answer (connection reset).
 */
export function clientErrorResponse(err: { code?: string }): string | null {
  if (err.code === 'ECONNRESET') return null;
  const [status, reason, error] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ([
          408,
          'Request Timeout',
          errorBody('REQUEST_TIMEOUT', 'the request took too long to arrive'),
        ] as const)
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ([
            431,
            'Request Header Fields Too Large',
            errorBody('HEADERS_TOO_LARGE', 'the request headers (or the URL) are too large'),
          ] as const)
        : ([400, 'Bad Request', errorBody('BAD_REQUEST', 'the request is not valid HTTP/1.1')] as const);
  const body = JSON.stringify(error);
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** Walks an error's cause chain (bounded). */
function* causes(err: unknown): Generator<unknown> {
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 6; depth++) {
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/** The gRPC status codes a visibility store answers a page token it cannot read with. */
const GRPC_UNREADABLE_TOKEN = new Set<number>([
  GRPC.UNKNOWN, // the SQL stores
  GRPC.INVALID_ARGUMENT, // Elasticsearch
  GRPC.INTERNAL,
]);

/**
 * True when Temporal's answer is one it gives a list call whose page token it cannot read.
 * Anything else (rate limited, RESOURCE_EXHAUSTED; no permission; unavailable) says nothing
 * about the token.
 */
export function mayBeUnreadableToken(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = grpcCode(e);
    if (code !== null) return GRPC_UNREADABLE_TOKEN.has(code);
  }
  return false;
}

/** True when Temporal could not be reached or did not answer in time. */
export function isTemporalUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = grpcCode(e);
    if (code === GRPC.UNAVAILABLE || code === GRPC.DEADLINE_EXCEEDED) return true;
    const name = (e as { name?: unknown }).name;
    if (name === 'TransportError' || name === 'WorkflowUpdateRPCTimeoutOrCancelledError') return true;
    if (e instanceof Error && /(^|\W)(14 UNAVAILABLE|4 DEADLINE_EXCEEDED)\b/.test(e.message)) return true;
  }
  return false;
}

/**
 * What Temporal answers a start whose search attribute the namespace lacks: SQL visibility
 * (Postgres, MySQL, SQLite) names the namespace's mapping, Elasticsearch says "not defined";
 * an attribute of another type refuses the value.
 */
const SEARCH_ATTRIBUTE_REFUSALS: { pattern: RegExp; problem: SearchAttributeProblem['problem'] }[] = [
  { pattern: /no mapping defined for search attribute (\w+)/, problem: 'missing' },
  { pattern: /search attribute (\w+) is not defined/, problem: 'missing' },
  { pattern: /invalid value for search attribute (\w+) of type (\w+)/, problem: 'wrong type' },
];

export interface SearchAttributeProblem {
  attribute: string;
  problem: 'missing' | 'wrong type';
}

/** Which search attribute Temporal refused a workflow start for, if that is why it failed. */
export function searchAttributeProblem(err: unknown): SearchAttributeProblem | null {
  for (const e of causes(err)) {
    if (grpcCode(e) !== GRPC.INVALID_ARGUMENT || !(e instanceof Error)) continue;
    for (const { pattern, problem } of SEARCH_ATTRIBUTE_REFUSALS) {
      const match = pattern.exec(e.message);
      if (match) return { attribute: match[1]!, problem };
    }
  }
  return null;
}

/** Postgres error classes that mean "the database is not there", not "the query is wrong". */
const PG_UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'ENOTFOUND']);

/** True when Postgres could not be reached, dropped the connection or refused new ones. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (NET_CODES.has(code) || PG_UNAVAILABLE_CODES.has(code) || code.startsWith('08')) return true;
    }
    if (
      e instanceof Error &&
      /timeout exceeded when trying to connect|Connection terminated|connection timeout/i.test(e.message)
    ) {
      return true;
    }
  }
  return false;
}

/** Why Temporal answered RESOURCE_EXHAUSTED, as its error details say. */
export interface TemporalRefusal {
  /** The server's cause without its prefix (RPS_LIMIT, CONCURRENT_LIMIT, BUSY_WORKFLOW, …); UNSPECIFIED when it gave none. */
  cause: string;
  /** A limit of the one workflow addressed, an order's or a parcel's: other orders are not held up. */
  oneWorkflow: boolean;
}

/**
 * Why Temporal refused a call with RESOURCE_EXHAUSTED (a rate limit, one workflow's updates in
 * flight or busy history, an overloaded server, its persistence's storage guardrail); null for
 * any other error.
 */
export function temporalRefusal(err: unknown): TemporalRefusal | null {
  for (const e of causes(err)) {
    if (grpcCode(e) !== GRPC.RESOURCE_EXHAUSTED) continue;
    return {
      cause: resourceExhaustedCauseName(resourceExhaustedCause(e)),
      oneWorkflow: oneWorkflowLimit(e),
    };
  }
  return null;
}

/**
 * The answer to a refusal: one workflow's limit is the caller's to slow down on (429, that
 * order or parcel only); anything else is the service's load or a limit (503), which reads do
 * not meet. A storage guardrail lasts until an operator acts, so the message says so.
 */
export function temporalBusy(refusal: TemporalRefusal): ApiError {
  // The cause's name only: the server's own words stay in the log (they may name its internals).
  const cause = refusal.cause === 'UNSPECIFIED' ? '' : `, ${refusal.cause}`;
  if (refusal.oneWorkflow)
    return new ApiError(
      429,
      'WORKFLOW_BUSY',
      `this order or parcel has as many requests in progress as the workflow service takes at once (RESOURCE_EXHAUSTED${cause}); other orders are not affected: retry once those requests have finished`,
      5,
    );
  if (refusal.cause === 'PERSISTENCE_STORAGE_LIMIT')
    return new ApiError(
      503,
      'TEMPORAL_BUSY',
      `the workflow service refuses new work until its storage is freed (RESOURCE_EXHAUSTED${cause}): this lasts until an operator acts; reads still work`,
      // Lasts until an operator acts: no point in retrying within seconds.
      60,
    );
  return new ApiError(
    503,
    'TEMPORAL_BUSY',
    `the workflow service refused this for load or a limit (RESOURCE_EXHAUSTED${cause}); reads still work, retry this in a moment`,
  );
}

export const temporalUnavailable = (): ApiError =>
  new ApiError(
    503,
    'TEMPORAL_UNAVAILABLE',
    'the workflow service is unreachable right now; reads still work, retry this in a moment',
  );

/** The namespace is not set up for Waybill yet: the worker adds the search attributes at its start. */
export const temporalNotReady = (
  { attribute, problem }: SearchAttributeProblem,
  namespace: string,
): ApiError =>
  new ApiError(
    503,
    'TEMPORAL_NOT_READY',
    problem === 'missing'
      ? `the Temporal namespace ${namespace} has no search attribute ${attribute} yet; the Waybill worker registers its search attributes when it starts (where it may not, its start-up line says what to run): start it, then retry`
      : `the search attribute ${attribute} in the Temporal namespace ${namespace} has another type than Waybill needs; the Waybill worker names it and the fix when it starts: fix it, then retry`,
  );

export const databaseUnavailable = (): ApiError =>
  new ApiError(503, 'DATABASE_UNAVAILABLE', 'the database is unreachable right now; retry in a moment');
