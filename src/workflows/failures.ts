/**
 * How a workflow reads an activity's failure: the ApplicationFailure the activity threw (its
 * type, message and details) from under Temporal's ActivityFailure wrapper. Shared by the
 * order and shipment workflows. Deterministic code only.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

export interface FailureInfo {
  type: string | null;
  message: string;
  details: unknown[];
}

export function activityFailure(err: unknown): FailureInfo {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    return { type: cause.type ?? null, message: cause.message, details: cause.details ?? [] };
  }
  return { type: null, message: cause instanceof Error ? cause.message : String(cause), details: [] };
}
