/**
 * Pure timing rules of the shipment workflow: which delay follows which status, how the
 * backoff grows while the courier is down, when a budget window reopens. Unit-tested alone.
 */
import { isTerminal, type ShipmentStatus } from '../domain/status';
import type { CourierCode } from '../couriers/types';
import type { PollPolicy, PolledStatus } from './contract';

const DAY_MS = 86_400_000;

/**
 * Delay before the next poll for a status; null when tracking stops (terminal status). With a
 * courier, its own intervals apply, and after `quietForMs` without a new scan its quiet rule.
 */
export function pollDelayMs(
  status: ShipmentStatus,
  policy: PollPolicy,
  courier?: CourierCode,
  quietForMs = 0,
): number | null {
  if (isTerminal(status)) return null;
  const own = courier === undefined ? undefined : policy.couriers?.[courier];
  const interval =
    own?.intervalMs?.[status as PolledStatus] ??
    policy.intervalMs[status as PolledStatus] ??
    policy.intervalMs.IN_TRANSIT;
  const quiet = own?.quiet;
  return quiet && quietForMs >= quiet.afterMs ? Math.max(interval, quiet.intervalMs) : interval;
}

/**
 * When a poll wanted at `atMs` is scheduled: the courier's next slot boundary (multiples of its
 * `slotMs` since the epoch), so that the polls of every parcel of that courier falling due in
 * one slot reach the worker together and go out as one bulk call. Unaligned without a slot.
 */
export function alignToSlot(atMs: number, policy: PollPolicy, courier?: CourierCode): number {
  const slot = courier === undefined ? 0 : (policy.couriers?.[courier]?.slotMs ?? 0);
  return slot > 0 ? Math.ceil(atMs / slot) * slot : atMs;
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

/** What the expiry rules read of a shipment's state. */
export interface ExpiryClock {
  startedAtMs: number;
  /** Answered silence counts from here (see `ShipmentState.quietSinceMs`). */
  quietSinceMs: number;
  /** Non-null while the courier is not answering: the no-scan clock stands still. */
  unansweredSinceMs: number | null;
}

/**
 * When the no-scan expiry falls due; null while the courier is not answering (a courier
 * outage or an exhausted budget says nothing about the parcel, so that time does not count).
 */
export function noScanDeadlineMs(clock: ExpiryClock, policy: PollPolicy): number | null {
  return clock.unansweredSinceMs === null ? clock.quietSinceMs + policy.expireAfterNoScanMs : null;
}

/** Whether tracking should end as EXPIRED now. */
export function expiryReason(nowMs: number, clock: ExpiryClock, policy: PollPolicy): ExpiryReason | null {
  if (nowMs - clock.startedAtMs >= policy.maxAgeMs) return 'MAX_AGE';
  const deadline = noScanDeadlineMs(clock, policy);
  if (deadline !== null && nowMs >= deadline) return 'NO_SCAN';
  return null;
}

/**
 * The no-scan clock after the courier answered at `nowMs`: a stretch without answers
 * (from `unansweredSinceMs`) is added to the quiet start, so it is not counted as silence.
 */
export function afterAnswer(
  clock: ExpiryClock,
  nowMs: number,
): Pick<ExpiryClock, 'quietSinceMs' | 'unansweredSinceMs'> {
  if (clock.unansweredSinceMs === null) return { quietSinceMs: clock.quietSinceMs, unansweredSinceMs: null };
  const unanswered = Math.max(0, nowMs - clock.unansweredSinceMs);
  return { quietSinceMs: Math.min(nowMs, clock.quietSinceMs + unanswered), unansweredSinceMs: null };
}

/** When a refresh may next poll the courier; null when it may now (or there is no cooldown). */
export function refreshAvailableAtMs(
  lastPolledAtMs: number | null,
  nowMs: number,
  policy: PollPolicy,
): number | null {
  if (lastPolledAtMs === null || policy.refreshCooldownMs <= 0) return null;
  const at = lastPolledAtMs + policy.refreshCooldownMs;
  return at > nowMs ? at : null;
}
