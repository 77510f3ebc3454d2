import { Type, type Static } from 'typebox';

/** The one error shape every route answers with. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({
        description: 'Machine-readable, e.g. VALIDATION_FAILED, NOT_FOUND, TEMPORAL_UNAVAILABLE',
      }),
      message: Type.String({ description: 'What went wrong and, for 4xx, what to fix' }),
    }),
  },
  { $id: 'Error', description: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** An error decided by a route: answered as-is with its status and code. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

/** Walks an error's cause chain (bounded). */
function* causes(err: unknown): Generator<unknown> {
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 6; depth++) {
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/** True when Temporal could not be reached or did not answer in time. */
export function isTemporalUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) return true;
    const name = (e as { name?: unknown }).name;
    if (name === 'TransportError' || name === 'WorkflowUpdateRPCTimeoutOrCancelledError') return true;
    if (e instanceof Error && /(^|\W)(14 UNAVAILABLE|4 DEADLINE_EXCEEDED)\b/.test(e.message)) return true;
  }
  return false;
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

export const temporalUnavailable = (): ApiError =>
  new ApiError(
    503,
    'TEMPORAL_UNAVAILABLE',
    'the workflow service is unreachable right now; reads still work, retry this in a moment',
  );

export const databaseUnavailable = (): ApiError =>
  new ApiError(503, 'DATABASE_UNAVAILABLE', 'the database is unreachable right now; retry in a moment');
