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
