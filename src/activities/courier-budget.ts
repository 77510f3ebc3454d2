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
 * Before the budget, every request takes one of the `requestsPerSecond` its courier may be sent
 * in the current second, counted in Postgres across every worker (`courier_request_seconds`):
 * a request over it waits for the next second, whatever it is for, and is never refused for
 * it. A courier's rate limit then holds for the account, however many workers call it.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { RequestGate } from '../couriers/http';
import { FailureType } from '../domain/failures';
import { budgetDay, defaultBookingReserve } from '../domain/polling';
import { count, Metrics } from '../metrics';
import { countCourierFailure, takeCourierCall, takeCourierSecond } from '../read-model/courier-usage';
import { activityMeter } from './meter';

/** The failure type of a request the budget refused (polls and bookings). */
export const BUDGET_EXHAUSTED = FailureType.BUDGET_EXHAUSTED;

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
  /** Requests per courier started in any one second across every worker; none when not given. */
  requestsPerSecond?: number;
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

  /** Waits until this request is one of the courier's `requestsPerSecond` in a second. */
  async function secondFor(courier: string, perSecond: number): Promise<void> {
    for (;;) {
      const second = await takeCourierSecond(db, courier, perSecond);
      if (second.taken) return;
      count(activityMeter(), Metrics.courierRequestWaits, { courier });
      // A few ms past the boundary, spread: the waiters of a full second do not all meet at once.
      await new Promise((resolve) => setTimeout(resolve, second.waitMs + Math.floor(Math.random() * 10)));
    }
  }

  return {
    gate(courier, use) {
      return async () => {
        if (requestsPerSecond !== undefined) await secondFor(courier, requestsPerSecond);
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
      };
    },
    async countFailure(courier) {
      await countCourierFailure(db, courier, budgetDay(now()));
    },
  };
}
