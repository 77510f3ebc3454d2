/**
 * Schemas and helpers shared by the admin route files: ids in paths, the audited reason,
 * and the error responses each route declares.
 */
import { Type } from 'typebox';
import { ApiError } from '../errors';

export const Id = (what: string) =>
  Type.String({
    pattern: '^[A-Za-z0-9_.:-]{1,128}$',
    maxLength: 128,
    description: `${what} (letters, digits, '_', '.', ':', '-'; at most 128 characters)`,
  });
export const OrderParams = Type.Object({ orderId: Id('Order id') });

export const Reason = Type.String({
  minLength: 3,
  maxLength: 500,
  description: 'Why (3 to 500 characters, not counting spaces around it); recorded in the audit log',
});
export const ReasonBody = Type.Object({ reason: Reason }, { additionalProperties: false });

export const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, { $ref: 'Error#' }])) as Record<number, { $ref: string }>;
export const AUTH_ERRORS = [401, 403] as const;

export function trimmedReason(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed.length < 3) {
    throw new ApiError(
      400,
      'VALIDATION_FAILED',
      'body: reason must have at least 3 characters besides leading and trailing spaces',
    );
  }
  return trimmed;
}
