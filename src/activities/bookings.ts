/**
 * Courier booking activities, on the courier task queue (src/worker.ts): book one parcel (one
 * per ship-from place) and record it as a shipment of the order, and cancel a booking. Every
 * courier request they make passes the courier's daily budget (./courier-budget.ts: a
 * booking is refused when it is used up, a cancel never). Both are idempotent: the booking
 * reference is our shipment id (the courier answers the same number for the same reference;
 * EasyParcel, which does not promise that, keeps what it answered in Postgres and never submits
 * a reference twice: src/couriers/easyparcel-bookings.ts), the shipment row is keyed by it,
 * and cancelling twice is harmless.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import { getOrder, parcelLines } from '../read-model/orders';
import type { Database } from '../../db/database';
import {
  CourierOutcomeUnknownError,
  CourierRefusal,
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type CourierCode,
} from '../couriers/types';
import { gatedRequests } from '../couriers/http';
import { CancelOutcome, FailureType } from '../domain/failures';
import { PICKED_UP_STATUSES, ShipmentStatus } from '../domain/status';
import { writeShipmentEvent } from '../notifications/outbox';
import {
  insertBookedShipment,
  lockShipment,
  markBookingCancelled,
  markCollected,
  markCredentialsRefused,
} from '../read-model/shipments';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import { nextBudgetWindowMs } from '../domain/polling';
import { BudgetExhaustedError, createCourierBudget, type CourierUse } from './courier-budget';
import { activityMeter } from './meter';

export interface BookingActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  /** Courier HTTP requests allowed per courier per UTC day (./courier-budget.ts: what a booking and a cancel may use). */
  dailyBudget: number;
  /** Of the daily budget, the calls polls leave to bookings (default: a tenth). */
  bookingReserve?: number;
  /** Requests per courier started in any second of Postgres's clock, across every worker (./courier-budget.ts); none when not given. */
  requestsPerSecond?: number;
  log: Logger;
  now?: () => number;
}

/**
 * A courier error as the failure the saga matches: credentials refused is retried (an
 * incident, not a parcel's fate), an outage retried with the courier's Retry-After, any other
 * refusal final with `refusedType`; a booking whose outcome the courier cannot tell final
 * too (BOOKING_OUTCOME_UNKNOWN: the saga's compensation meets it again and parks it).
 */
function courierFailure(err: unknown, refusedType: FailureType): unknown {
  if (err instanceof CourierOutcomeUnknownError) {
    return ApplicationFailure.create({
      type: FailureType.BOOKING_OUTCOME_UNKNOWN,
      message: err.message,
      details: [{ reference: err.reference }],
      nonRetryable: true,
    });
  }
  if (err instanceof CourierRejectedError) {
    if (err.reason === CourierRefusal.CREDENTIALS) {
      // Logged and counted by the caller (it knows the courier and the parcel).
      return ApplicationFailure.create({
        type: FailureType.COURIER_CREDENTIALS_REFUSED,
        message: err.message,
      });
    }
    return ApplicationFailure.create({
      type: refusedType,
      message: err.message,
      details: [{ reason: err.reason }],
      nonRetryable: true,
    });
  }
  if (err instanceof CourierUnavailableError) {
    return ApplicationFailure.create({
      type: FailureType.COURIER_UNAVAILABLE,
      message: err.message,
      ...(err.details.retryAfterMs ? { nextRetryDelay: err.details.retryAfterMs } : {}),
    });
  }
  return err;
}

export function createBookingActivities(deps: BookingActivityDeps) {
  const { db, log } = deps;
  const budget = createCourierBudget(deps);

  /**
   * Runs a booking's or a cancel's courier requests (token requests included) through the
   * day's budget. A booking refused by an exhausted budget is retried when the next budget
   * window opens (within the order's booking window); a release is never refused.
   */
  async function withinBudget<T>(courier: CourierCode, use: CourierUse, work: () => Promise<T>): Promise<T> {
    try {
      return await gatedRequests(budget.gate(courier, use), work);
    } catch (err) {
      if (!(err instanceof BudgetExhaustedError)) throw err;
      count(activityMeter(), Metrics.courierBudgetRefusals, { courier });
      throw ApplicationFailure.create({
        type: FailureType.BUDGET_EXHAUSTED,
        message: err.message,
        nextRetryDelay: Math.max(1_000, nextBudgetWindowMs(err.atMs) - err.atMs),
      });
    }
  }

  function adapterFor(courier: CourierCode): CourierAdapter {
    const adapter = deps.couriers[courier];
    if (!adapter) {
      throw ApplicationFailure.create({
        type: FailureType.BOOKING_REJECTED,
        message: `no adapter configured for courier "${courier}"`,
        nonRetryable: true,
      });
    }
    return adapter;
  }

  /**
   * Credentials refused is an incident, not a parcel's fate: an error log, the metric, and the
   * shipment row's sync error (the exceptions queue shows it) until a call goes through.
   */
  async function credentialsIncident(
    err: unknown,
    courier: CourierCode,
    operation: 'book' | 'cancel',
    shipmentId: string,
  ): Promise<void> {
    if (!(err instanceof CourierRejectedError) || err.reason !== CourierRefusal.CREDENTIALS) return;
    log.error({ courier, operation, shipmentId, err: err.message }, 'courier refused our credentials');
    count(activityMeter(), Metrics.courierCredentialsRefused, { courier, operation });
    await markCredentialsRefused(db, shipmentId, `${operation}: ${err.message}`);
  }

  return {
    /** Books one parcel and records it as a shipment of the order; returns its tracking number. */
    async bookShipment(input: {
      orderId: string;
      shipmentId: string;
      courier: CourierCode;
      lineNos: number[];
      /**
       * The saga's compensation looking for a booking whose answer was lost, to cancel it: a
       * release, counted but never refused by the budget (./courier-budget.ts).
       */
      release?: boolean;
    }): Promise<{ trackingNumber: string }> {
      const order = await getOrder(db, input.orderId);
      const lines = await parcelLines(db, input.orderId, input.lineNos);
      const address = order.shipping_address;
      // A cancel of the order reaches a booking retrying through an outage at its next heartbeat.
      // Not on the first attempt: a cancel before it starts never starts it, and a heartbeat is a
      // call to the Temporal server (the first one is sent at once) that every order would pay.
      if (Context.current().info.attempt > 1) Context.current().heartbeat();
      let booking;
      try {
        const adapter = adapterFor(input.courier);
        booking = await withinBudget(input.courier, input.release ? 'release' : 'book', () =>
          adapter.book({
            reference: input.shipmentId,
            sender: { name: 'Waybill shop', city: 'Shah Alam', postcode: '40000', country: 'MY' },
            recipient: {
              name: address.name,
              line1: address.line1,
              city: address.city,
              state: address.state ?? null,
              postcode: address.postcode,
              country: address.country,
              phone: address.phone ?? null,
            },
            ...(input.release ? { lookupOnly: true } : {}),
            parcel: {
              weightGrams: 500 * lines.reduce((n, l) => n + l.quantity, 0),
              description: lines
                .map((l) => `${l.quantity} x ${l.name}`)
                .join(', ')
                .slice(0, 200),
            },
          }),
        );
      } catch (err) {
        await credentialsIncident(err, input.courier, 'book', input.shipmentId);
        throw courierFailure(err, FailureType.BOOKING_REJECTED);
      }
      await db.transaction().execute((trx) =>
        insertBookedShipment(trx, {
          shipmentId: input.shipmentId,
          orderId: input.orderId,
          courier: input.courier,
          trackingNumber: booking.trackingNumber,
          lineNos: input.lineNos,
          destination: { city: address.city, country: address.country },
        }),
      );
      log.info(
        { orderId: input.orderId, shipmentId: input.shipmentId, trackingNumber: booking.trackingNumber },
        'booked',
      );
      return { trackingNumber: booking.trackingNumber };
    },

    /**
     * Compensation of bookShipment: cancels at the courier and on the read model; twice is
     * harmless. The courier's answer is classified, never guessed:
     * - cancelled, or the courier does not know the booking (nothing is live there): the
     *   shipment row is CANCELLED;
     * - "already collected" is believed only when a tracking poll shows the parcel picked up
     *   (otherwise retried as COLLECTED_UNCONFIRMED): the saga then must not cancel the order;
     * - credentials refused and outages are retried; any other refusal is final (CANCEL_REFUSED).
     */
    async cancelBooking(input: {
      shipmentId: string;
      courier: CourierCode;
      trackingNumber: string;
    }): Promise<{ outcome: CancelOutcome }> {
      const adapter = adapterFor(input.courier);
      let outcome: CancelOutcome = CancelOutcome.CANCELLED;
      try {
        await withinBudget(input.courier, 'release', () => adapter.cancel(input.trackingNumber));
      } catch (err) {
        if (err instanceof CourierRejectedError && err.reason === CourierRefusal.UNKNOWN_BOOKING) {
          outcome = CancelOutcome.UNKNOWN_BOOKING;
        } else if (err instanceof CourierRejectedError && err.reason === CourierRefusal.COLLECTED) {
          await withinBudget(input.courier, 'release', () =>
            confirmCollected(adapter, input.trackingNumber, err.message),
          );
          // The read model says so too (a parcel of a failed order may have no tracking to say it).
          await markCollected(db, input.shipmentId);
          log.info({ shipmentId: input.shipmentId }, 'cancel refused: the courier has collected the parcel');
          return { outcome: CancelOutcome.COLLECTED };
        } else {
          await credentialsIncident(err, input.courier, 'cancel', input.shipmentId);
          throw courierFailure(err, FailureType.CANCEL_REFUSED);
        }
      }
      const subStatus = outcome === CancelOutcome.CANCELLED ? 'BOOKING_CANCELLED' : 'UNKNOWN_AT_COURIER';
      await db.transaction().execute(async (trx) => {
        const before = await lockShipment(trx, input.shipmentId);
        // A parcel that ended otherwise (delivered, returned, expired) keeps its own ending.
        if (!before || ['DELIVERED', 'RETURNED', 'EXPIRED'].includes(before.status)) return;
        // The courier answered: a credentials incident an earlier attempt recorded is over.
        await markBookingCancelled(trx, input.shipmentId, subStatus);
        // The event in the same transaction, once: a retried cancel finds the parcel CANCELLED.
        if (before.status !== 'CANCELLED') {
          await writeShipmentEvent(trx, {
            shipmentId: input.shipmentId,
            orderId: before.order_id,
            courier: before.courier,
            trackingNumber: before.tracking_number ?? input.trackingNumber,
            status: ShipmentStatus.CANCELLED,
            subStatus,
            eta: null,
          });
        }
      });
      if (outcome === CancelOutcome.UNKNOWN_BOOKING) {
        log.warn(
          { shipmentId: input.shipmentId, trackingNumber: input.trackingNumber },
          'the courier does not know this booking: nothing to cancel there',
        );
      }
      return { outcome };
    },
  };
}

/**
 * A courier's "collected" answer is believed only when its own tracking agrees: a scripted or
 * mistaken 409 must never lead to a capture. Disagreement is retried (the scan may lag).
 */
async function confirmCollected(
  adapter: CourierAdapter,
  trackingNumber: string,
  claim: string,
): Promise<void> {
  let status: ShipmentStatus | null = null;
  try {
    const [result] = await adapter.track([trackingNumber]);
    status = result?.kind === 'found' ? result.status : null;
  } catch (err) {
    throw courierFailure(err, FailureType.COLLECTED_UNCONFIRMED);
  }
  if (status === null || !PICKED_UP_STATUSES.has(status)) {
    throw ApplicationFailure.create({
      type: FailureType.COLLECTED_UNCONFIRMED,
      message: `${claim}; but its tracking shows ${status ?? 'no such parcel'}, not a pickup`,
    });
  }
}

export type BookingActivities = ReturnType<typeof createBookingActivities>;
