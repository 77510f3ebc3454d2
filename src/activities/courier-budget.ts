/**
 * The courier's daily budget, shared by every activity that calls a courier: polls, bookings
 * and cancels. Every HTTP request (token requests included) takes a unit of
 * `courier_api_usage` for its courier and UTC day before it is sent, atomically.
 *
 * What happens when the day's budget is used up depends on what the request is for:
 * - `poll`: refused once the day's calls reach the budget less its booking reserve
 *   (`WAYBILL_COURIER_BOOKING_RESERVE`, a tenth by default): the rest is kept for bookings, so
 *   polls and refreshes never leave the day's orders without a booking. A refused poll waits
 *   for the next budget window (its workflow sleeps).
 * - `book`: refused (the request is not sent) at the whole budget. A refused booking is retried
 *   at the next window within the order's booking window, and past it the order fails and gives
 *   everything back.
 * - `release` (cancelling a booking, and the compensation's look-up of a booking whose answer
 *   was lost): never refused, only counted. A cancel gives back a booking the shop would pay
 *   for and lets the order's money go back, so polls and bookings, which together can use the
 *   whole budget, must never starve it: past the budget the counter goes on counting these
 *   requests, so the day's `calls` can exceed the budget only by releases, and the admin stats
 *   show it.
 *
 * Once its budget unit is taken, every request reserves its courier's next request slot on
 * Postgres's clock, across every worker (`courier_request_slots`): slots are
 * 1 / `requestsPerSecond` s apart, so no sliding second holds more than that many requests to
 * the courier, whatever they are for, however many workers send them. A request whose slot is
 * ahead waits for it. A slot further away than what is left of its gate's
 * {@link SECOND_WAIT_LIMIT_MS} (the waits of one bulk call, or of one booking or cancel attempt,
 * together) is not reserved: the request gives its budget unit back and fails at once as not
 * sent ({@link CourierRateWaitError}, retried like an outage), so an attempt never outlives its
 * activity's deadlines waiting here, only to send later what its retry thinks it sent.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { RequestGate } from '../couriers/http';
import { CourierUnavailableError } from '../couriers/types';
import { FailureType } from '../domain/failures';
import { budgetDay, defaultBookingReserve } from '../domain/polling';
import { count, Metrics } from '../metrics';
import {
  countCourierFailure,
  giveBackCourierCall,
  requestSpacingUs,
  reserveCourierSlot,
  takeCourierCall,
} from '../read-model/courier-usage';
import { activityMeter } from './meter';

/** The failure type of a request the budget refused (polls and bookings). */
export const BUDGET_EXHAUSTED = FailureType.BUDGET_EXHAUSTED;

/**
 * The longest the requests of one gate (one bulk call, one booking or cancel attempt) wait in
 * all for their courier's slots (ms). A booking attempt must end within its 30 s
 * heartbeat timeout: 4 s of waits, a token request and the booking (10 s each at most, by
 * default) fit, and so does an EasyParcel token refresh within the 15 s statement timeout of
 * the workers waiting on its row lock.
 */
export const SECOND_WAIT_LIMIT_MS = 4_000;

/** A request whose courier's next free slot was further away than its gate's wait limit allows: it was not sent. */
export class CourierRateWaitError extends CourierUnavailableError {
  override name = 'CourierRateWaitError';
  constructor(message: string) {
    super(message, { notSent: true });
  }
}

/** What a courier request is for, which decides whether an exhausted budget refuses it. */
export type CourierUse = 'poll' | 'book' | 'release';

/** The day's courier budget is used up; `atMs` is when the refused request was asked for. */
export class BudgetExhaustedError extends Error {
  override name = 'BudgetExhaustedError';
  constructor(
    message: string,
    readonly atMs: number,
  ) {
    super(message);
  }
}

export interface CourierBudget {
  /** The gate every request for `use` passes before it is sent (see `gatedRequests`). */
  gate(courier: string, use: CourierUse): RequestGate;
  /** Counts a failed call on today's row (shown in the admin stats). */
  countFailure(courier: string): Promise<void>;
}

/** The calls of a courier's day that polls may make: the budget less its booking reserve. */
export function pollBudget(deps: { dailyBudget: number; bookingReserve?: number }): number {
  return deps.dailyBudget - (deps.bookingReserve ?? defaultBookingReserve(deps.dailyBudget));
}

export function createCourierBudget(deps: {
  db: Kysely<Database>;
  /** Courier HTTP requests allowed per courier per UTC day for polls and bookings. */
  dailyBudget: number;
  /** Of those, the calls polls leave to bookings; `defaultBookingReserve` when not given. */
  bookingReserve?: number;
  /** Requests per courier started in any second (Postgres's clock) across every worker; none when not given. */
  requestsPerSecond?: number;
  /** How long one gate's requests may wait in all for their slots (ms); {@link SECOND_WAIT_LIMIT_MS} when not given. */
  secondWaitLimitMs?: number;
  now?: () => number;
}): CourierBudget {
  const { db, dailyBudget } = deps;
  const reserve = dailyBudget - pollBudget(deps);
  const limits: Record<CourierUse, number | null> = {
    poll: pollBudget(deps),
    book: dailyBudget,
    release: null,
  };
  const now = deps.now ?? Date.now;
  const { requestsPerSecond } = deps;
  const waitLimitMs = deps.secondWaitLimitMs ?? SECOND_WAIT_LIMIT_MS;
  const spacingUs = requestsPerSecond === undefined ? 0 : requestSpacingUs(requestsPerSecond);

  /**
   * Waits for this request's slot of the courier's, if it can start within `waitLeftMs`
   * (reserving it included); gives up as not sent otherwise. A reservation that lands but is
   * given up on (it took too long, or its slot is too far off once it has) leaves its slot
   * unused: later requests start a little later, never sooner.
   */
  async function slotFor(courier: string, perSecond: number, waitLeftMs: number): Promise<void> {
    const giveUp = () =>
      new CourierRateWaitError(
        `${courier}: no free request slot within ${waitLimitMs / 1000} s (WAYBILL_COURIER_REQUESTS_PER_SECOND ${perSecond}, across every worker); the request was not sent`,
      );
    // The gate's earlier requests waited its whole limit: this one is not asked for.
    if (waitLeftMs <= 0) throw giveUp();
    const askedAt = Date.now();
    const reserving = reserveCourierSlot(db, courier, spacingUs, waitLeftMs);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, waitLeftMs, 'late')));
    const slot = await Promise.race([reserving, late]).finally(() => clearTimeout(timer));
    if (slot === 'late') {
      // Still waiting on Postgres (a held row): its answer, whatever it is, is not waited for.
      reserving.catch(() => undefined);
      throw giveUp();
    }
    if (!slot.reserved || Date.now() - askedAt + slot.waitMs > waitLeftMs) throw giveUp();
    if (slot.waitMs === 0) return;
    count(activityMeter(), Metrics.courierRequestWaits, { courier });
    await new Promise((resolve) => setTimeout(resolve, slot.waitMs));
  }

  return {
    gate(courier, use) {
      // The wait limit is the gate's, for the waits of all its requests together (a token
      // request's and the booking's); the time they spend with the courier does not count.
      let waitLeftMs = waitLimitMs;
      return async () => {
        const atMs = now();
        const day = budgetDay(atMs);
        if (!(await takeCourierCall(db, courier, day, limits[use]))) {
          throw new BudgetExhaustedError(
            use === 'poll' && reserve > 0
              ? `daily budget of ${dailyBudget} ${courier} calls used up for ${day} for polls (the last ${reserve} are kept for bookings)`
              : `daily budget of ${dailyBudget} ${courier} calls used up for ${day}`,
            atMs,
          );
        }
        if (requestsPerSecond === undefined) return;
        const waitFrom = Date.now();
        try {
          await slotFor(courier, requestsPerSecond, waitLeftMs);
        } catch (err) {
          // Not sent: the unit goes back (a failed give-back leaves it counted, and the error stands).
          await giveBackCourierCall(db, courier, day).catch(() => undefined);
          throw err;
        } finally {
          waitLeftMs -= Date.now() - waitFrom;
        }
      };
    },
    async countFailure(courier) {
      await countCourierFailure(db, courier, budgetDay(now()));
    },
  };
}
