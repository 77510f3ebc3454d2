/**
 * Pure timing rules of the shipment workflow: the poll policy's shape, which delay follows
 * which status, how the backoff grows while the courier is down, when a budget window
 * reopens, when tracking expires. No I/O and no configuration reading (the worker builds its
 * policy from its config in src/poll-policy.ts): imported by the workflows, the activities,
 * the API and the benchmarks alike. Unit-tested alone (test/domain/polling.test.ts).
 */
import type { CourierCode } from '../couriers/types';
import { isTerminal, type ShipmentStatus } from './status';

/** Statuses that have a poll interval; terminal ones stop the loop. */
export type PolledStatus =
  | 'PENDING'
  | 'INFO_RECEIVED'
  | 'IN_TRANSIT'
  | 'OUT_FOR_DELIVERY'
  | 'AVAILABLE_FOR_PICKUP'
  | 'ATTEMPT_FAIL'
  | 'EXCEPTION'
  | 'RETURNING';

/**
 * How a shipment workflow spends courier calls. All durations are milliseconds.
 */
export interface PollPolicy {
  intervalMs: Record<PolledStatus, number>;
  /** First backoff after the poll activity gave up; doubles per failed cycle up to the cap. */
  backoffBaseMs: number;
  backoffCapMs: number;
  /**
   * No new scan for this long → EXPIRED. Only time the courier answered counts: while its
   * polls fail (unreachable, retries exhausted, daily budget used up) the clock stands still.
   */
  expireAfterNoScanMs: number;
  /** Tracking stops after this age whatever the status. */
  maxAgeMs: number;
  /** Consecutive "not found" answers before the shipment becomes EXCEPTION / NOT_FOUND_AT_COURIER. */
  notFoundLimit: number;
  /** Activity attempts per poll before the workflow backs off itself. */
  pollAttempts: number;
  /** First activity retry interval (doubles per attempt). */
  pollRetryInitialMs: number;
  /** Continue-as-new after this many poll cycles even if the server has not suggested it. */
  maxCyclesPerRun: number;
  /**
   * A refresh (customer `refreshNow`, admin `refresh` signal) polls the courier only when the
   * last poll ended at least this long ago; sooner, it is answered from the current snapshot
   * (refreshNow) or the poll is moved to the end of the cooldown (refresh signal). 0: no cooldown.
   */
  refreshCooldownMs: number;
  /** Per courier: what differs from the defaults above for that courier's parcels. */
  couriers?: Partial<Record<CourierCode, CourierPollPolicy>>;
}

/**
 * A courier's own polling: its intervals (statuses left out keep the defaults) and the slot its
 * scheduled polls are aligned to. Aligned polls of many parcels fall due together, so a courier
 * with a bulk tracking API answers them in one call (see docs/couriers.md).
 */
export interface CourierPollPolicy {
  intervalMs?: Partial<Record<PolledStatus, number>>;
  /** Scheduled polls fall on multiples of this since the epoch (ms); 0 or absent: not aligned. */
  slotMs?: number;
  /**
   * A parcel without a new scan for `afterMs` is polled at most every `intervalMs`: one stuck,
   * lost or never collected is asked about rarely, while a moving one keeps its interval.
   */
  quiet?: { afterMs: number; intervalMs: number };
  /**
   * The courier's night, in its local time: a scheduled poll of a parcel waiting for a door
   * scan (every status but PENDING: pickups, deliveries, attempts and counter scans are made by
   * people in working hours) that would fall inside it moves to its end, where the polls of
   * every parcel meet. PENDING waits for the courier's own system (EasyParcel records a booking
   * at any hour) and is polled round the clock. See docs/couriers.md#when-couriers-scan.
   */
  night?: CourierNight;
  /**
   * Polls hours apart share few slots: a poll wanted at least `quietSlotMs` after the one before
   * (a quiet parcel's, one at a counter or under investigation, a pushed parcel's fallback) falls
   * on multiples of `quietSlotMs` instead of `slotMs`, so the shop's rare polls meet in a few
   * slots a day and fill bulk calls. A parcel polled at that interval polls on the grid exactly as
   * often as before; only the first poll of a stretch can wait up to one slot more.
   */
  quietSlotMs?: number;
  /**
   * The courier pushes its scans (EasyParcel's webhooks): a parcel it pushed about less than
   * `quietAfterMs` ago is polled at most every `fallbackIntervalMs`, only to catch a lost push,
   * on the quiet slot; once its pushes have been quiet that long, its normal intervals apply again.
   */
  push?: { fallbackIntervalMs: number; quietAfterMs: number; fromStart?: boolean };
}

/** A nightly window in the courier's local time: minutes after local midnight, `from` > `to` wraps. */
export interface CourierNight {
  fromMinute: number;
  toMinute: number;
  /** The courier's local time minus UTC (Malaysia: +480). */
  utcOffsetMinutes: number;
}

const DAY_MS = 86_400_000;

/**
 * Couriers whose parcels are never polled: every change reaches the shipment workflow as a
 * pushed event (the shop's own fleet: its drivers report through the driver API). Their
 * workflow waits for events, a cancel or its expiry deadline, and a refresh answers with the
 * snapshot it holds, which is as fresh as the last report.
 */
const UNPOLLED_COURIERS: ReadonlySet<string> = new Set<CourierCode>(['fleet']);

export function isPolledCourier(courier: CourierCode): boolean {
  return !UNPOLLED_COURIERS.has(courier);
}

/**
 * Delay before the next poll for a status; null when tracking stops (terminal status). With a
 * courier, its own intervals apply, after `quietForMs` without a new scan its quiet rule, and
 * `sincePushMs` after the courier last pushed about the parcel (null: never) its push rule.
 */
export function pollDelayMs(
  status: ShipmentStatus,
  policy: PollPolicy,
  courier?: CourierCode,
  quietForMs = 0,
  sincePushMs: number | null = null,
): number | null {
  if (isTerminal(status)) return null;
  const own = courier === undefined ? undefined : policy.couriers?.[courier];
  const interval =
    own?.intervalMs?.[status as PolledStatus] ??
    policy.intervalMs[status as PolledStatus] ??
    policy.intervalMs.IN_TRANSIT;
  const quiet = own?.quiet;
  const polled = quiet && quietForMs >= quiet.afterMs ? Math.max(interval, quiet.intervalMs) : interval;
  return pushedRecently(own, sincePushMs) ? Math.max(polled, own!.push!.fallbackIntervalMs) : polled;
}

/**
 * Ms since the courier last pushed about a parcel at `nowMs`; null when it never has. With
 * `push.fromStart` (Waybill is subscribed to the courier's webhooks), the start of tracking
 * counts as a push: a new parcel waits for its first push, polled as a pushed one is.
 */
export function sincePushMs(
  lastPushAtMs: number | null,
  startedAtMs: number,
  nowMs: number,
  policy: PollPolicy,
  courier: CourierCode,
): number | null {
  const from = lastPushAtMs ?? (policy.couriers?.[courier]?.push?.fromStart ? startedAtMs : null);
  return from === null ? null : nowMs - from;
}

/** Whether the courier's pushes about a parcel still stand in for polling (see `CourierPollPolicy.push`). */
export function pushedRecently(own: CourierPollPolicy | undefined, sincePushMs: number | null): boolean {
  return own?.push !== undefined && sincePushMs !== null && sincePushMs < own.push.quietAfterMs;
}

/**
 * When a poll wanted at `atMs`, `delayMs` after now, is scheduled: the courier's next slot
 * boundary (multiples of its `slotMs` since the epoch), so that the polls of every parcel of that
 * courier falling due in one slot reach the worker together and go out as one bulk call; a poll
 * wanted hours later, or of a parcel the courier pushed about recently, on its quiet slot.
 * Unaligned without a slot.
 */
export function alignToSlot(
  atMs: number,
  policy: PollPolicy,
  courier?: CourierCode,
  status?: ShipmentStatus,
  sincePushMs: number | null = null,
  delayMs = 0,
): number {
  const own = courier === undefined ? undefined : policy.couriers?.[courier];
  const quietSlot = own?.quietSlotMs ?? 0;
  const quiet = quietSlot > 0 && (delayMs >= quietSlot || pushedRecently(own, sincePushMs));
  const slot = (quiet ? quietSlot : own?.slotMs) ?? 0;
  const aligned = slot > 0 ? Math.ceil(atMs / slot) * slot : atMs;
  if (!own?.night || status === undefined || status === 'PENDING') return aligned;
  const night = nightAround(aligned, own.night);
  if (night === null) return aligned;
  // A poll hours apart scheduled before the night began (now is `atMs - delayMs`) happens at its
  // start: the day's last door scans are seen that evening, not the next morning.
  if (quiet && night.startMs > atMs - delayMs) return night.startMs;
  return slot > 0 ? Math.ceil(night.endMs / slot) * slot : night.endMs;
}

const MINUTE_MS = 60_000;

/**
 * The end of the courier's night when `atMs` falls strictly inside it (after its start,
 * before its end); null in the day. A poll at the night's first minute still happens.
 */
export function nightEndMs(atMs: number, night: CourierNight): number | null {
  return nightAround(atMs, night)?.endMs ?? null;
}

/** The start and end of the courier's night `atMs` falls strictly inside; null in the day. */
function nightAround(atMs: number, night: CourierNight): { startMs: number; endMs: number } | null {
  const offsetMs = night.utcOffsetMinutes * MINUTE_MS;
  const localMs = atMs + offsetMs;
  const dayStart = Math.floor(localMs / DAY_MS) * DAY_MS;
  const minute = (localMs - dayStart) / MINUTE_MS;
  const wraps = night.fromMinute > night.toMinute;
  const inside = wraps
    ? minute > night.fromMinute || minute < night.toMinute
    : minute > night.fromMinute && minute < night.toMinute;
  if (!inside) return null;
  // A night that wraps began the day before when `atMs` is past local midnight.
  const startDay = wraps && minute < night.toMinute ? dayStart - DAY_MS : dayStart;
  const endDay = wraps && minute > night.fromMinute ? dayStart + DAY_MS : dayStart;
  return {
    startMs: startDay + night.fromMinute * MINUTE_MS - offsetMs,
    endMs: endDay + night.toMinute * MINUTE_MS - offsetMs,
  };
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

/**
 * When the courier's budget reopens, as a BudgetExhausted failure's details name it (the
 * activity's clock decided the day is used up); the next UTC midnight by `nowMs` when they name
 * none.
 */
export function budgetWindowFrom(details: readonly unknown[], nowMs: number): number {
  const named = Date.parse(String((details[0] as { nextWindowAt?: string } | undefined)?.nextWindowAt));
  return Number.isFinite(named) ? named : nextBudgetWindowMs(nowMs);
}

/** Polls waiting for the same budget window are spread over this much (ms), so they do not all call when it opens. */
export const BUDGET_WINDOW_SPREAD_MS = 15 * 60_000;

/**
 * The calls of a courier's daily budget that polls leave to bookings by default: a tenth. Polls
 * (and shoppers' refreshes) could otherwise use the whole day, and every order after that would
 * fail its booking, when a poll can wait for the next window and a sale cannot.
 */
export function defaultBookingReserve(dailyBudget: number): number {
  return Math.floor(dailyBudget / 10);
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
