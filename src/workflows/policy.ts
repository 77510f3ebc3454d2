/**
 * Pure timing rules of the shipment workflow: which delay follows which status, how the
 * backoff grows while the courier is down, when a budget window reopens. Unit-tested alone.
 */
import { isTerminal, type ShipmentStatus } from '../domain/status';
import type { PollPolicy, PolledStatus } from './contract';

const DAY_MS = 86_400_000;

/** Delay before the next poll for a status; null when tracking stops (terminal status). */
export function pollDelayMs(status: ShipmentStatus, policy: PollPolicy): number | null {
  if (isTerminal(status)) return null;
  return policy.intervalMs[status as PolledStatus] ?? policy.intervalMs.IN_TRANSIT;
}

/** Backoff after `failures` consecutive failed poll cycles (1 → base, doubling, capped). */
export function backoffDelayMs(failures: number, policy: PollPolicy): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  return Math.min(policy.backoffBaseMs * 2 ** exponent, policy.backoffCapMs);
}

/** Courier budgets are per UTC day: the next window opens at the next UTC midnight. */
export function nextBudgetWindowMs(nowMs: number): number {
  return Math.floor(nowMs / DAY_MS) * DAY_MS + DAY_MS;
}

/** The UTC day a budget counter belongs to, 'YYYY-MM-DD'. */
export function budgetDay(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10);
}

export type ExpiryReason = 'NO_SCAN' | 'MAX_AGE';

/** Whether tracking should end as EXPIRED now. */
export function expiryReason(
  nowMs: number,
  state: { startedAtMs: number; lastScanAtMs: number },
  policy: PollPolicy,
): ExpiryReason | null {
  if (nowMs - state.startedAtMs >= policy.maxAgeMs) return 'MAX_AGE';
  if (nowMs - state.lastScanAtMs >= policy.expireAfterNoScanMs) return 'NO_SCAN';
  return null;
}
