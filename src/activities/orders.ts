/**
 * Order activities: the order's status on the read model, courier bookings (one parcel
 * per ship-from place) and customer notifications. All idempotent: the booking reference
 * is our shipment id (the courier answers the same number for the same reference), rows
 * are keyed by natural ids, notifications by a dedupe key.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import {
  CourierRefusal,
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type CourierCode,
} from '../couriers/types';
import { CancelOutcome, FailureType } from '../domain/failures';
import { PICKED_UP_STATUSES, type ShipmentStatus } from '../domain/status';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import {
  createLogTransport,
  NotificationRejectedError,
  type NotificationTransport,
} from '../notifications/transport';
import { writeOrderEvent } from '../notifications/outbox';
import { activityMeter } from './meter';

export interface OrderActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  log: Logger;
  /** How customer notifications leave; the log transport when omitted. */
  notifications?: NotificationTransport;
}

/**
 * A courier error as the failure the saga matches: credentials refused is retried (an
 * incident, not a parcel's fate), an outage retried with the courier's Retry-After, any other
 * refusal final with `refusedType`.
 */
function courierFailure(err: unknown, refusedType: FailureType): unknown {
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

export function createOrderActivities(deps: OrderActivityDeps) {
  const { db, log } = deps;
  const transport = deps.notifications ?? createLogTransport(log);

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
    await db
      .updateTable('shipments')
      .set({
        sync_error: `${operation}: ${err.message}`,
        sync_failing_since: sql<Date>`coalesce(sync_failing_since, now())`,
      })
      .where('id', '=', shipmentId)
      .execute();
  }

  return {
    async setOrderStatus(input: {
      orderId: string;
      status: string;
      failureCode?: string | null;
      failureMessage?: string | null;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // Locked, so a racing second run sees this one's status and writes no second event.
        const before = await trx
          .selectFrom('orders')
          .select(['status', 'number'])
          .where('id', '=', input.orderId)
          .forUpdate()
          .executeTakeFirst();
        await trx
          .updateTable('orders')
          .set({
            status: input.status,
            failure_code: input.failureCode ?? null,
            failure_message: input.failureMessage ?? null,
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', input.orderId)
          .execute();
        if (before && before.status !== input.status) {
          await writeOrderEvent(trx, {
            orderId: input.orderId,
            orderNumber: before.number,
            status: input.status,
            failureCode: input.failureCode ?? null,
            failureMessage: input.failureMessage ?? null,
          });
        }
      });
    },

    /** Books one parcel and records it as a shipment of the order; returns its tracking number. */
    async bookShipment(input: {
      orderId: string;
      shipmentId: string;
      courier: CourierCode;
      lineNos: number[];
    }): Promise<{ trackingNumber: string }> {
      const order = await db
        .selectFrom('orders')
        .selectAll()
        .where('id', '=', input.orderId)
        .executeTakeFirstOrThrow();
      const lines = await db
        .selectFrom('order_items')
        .select(['name', 'quantity'])
        .where('order_id', '=', input.orderId)
        .where('line_no', 'in', input.lineNos)
        .execute();
      const address = order.shipping_address;
      // A cancel of the order reaches a booking retrying through an outage at its next heartbeat.
      Context.current().heartbeat();
      let booking;
      try {
        booking = await adapterFor(input.courier).book({
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
          parcel: {
            weightGrams: 500 * lines.reduce((n, l) => n + l.quantity, 0),
            description: lines
              .map((l) => `${l.quantity} x ${l.name}`)
              .join(', ')
              .slice(0, 200),
          },
        });
      } catch (err) {
        await credentialsIncident(err, input.courier, 'book', input.shipmentId);
        throw courierFailure(err, FailureType.BOOKING_REJECTED);
      }
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('shipments')
          .values({
            id: input.shipmentId,
            order_id: input.orderId,
            courier: input.courier,
            tracking_number: booking.trackingNumber,
            destination_city: address.city,
            destination_country: address.country,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        await trx
          .updateTable('order_items')
          .set({ shipment_id: input.shipmentId })
          .where('order_id', '=', input.orderId)
          .where('line_no', 'in', input.lineNos)
          .execute();
      });
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
        await adapter.cancel(input.trackingNumber);
      } catch (err) {
        if (err instanceof CourierRejectedError && err.reason === CourierRefusal.UNKNOWN_BOOKING) {
          outcome = CancelOutcome.UNKNOWN_BOOKING;
        } else if (err instanceof CourierRejectedError && err.reason === CourierRefusal.COLLECTED) {
          await confirmCollected(adapter, input.trackingNumber, err.message);
          log.info({ shipmentId: input.shipmentId }, 'cancel refused: the courier has collected the parcel');
          return { outcome: CancelOutcome.COLLECTED };
        } else {
          await credentialsIncident(err, input.courier, 'cancel', input.shipmentId);
          throw courierFailure(err, FailureType.CANCEL_REFUSED);
        }
      }
      await db
        .updateTable('shipments')
        .set({
          status: 'CANCELLED',
          sub_status: outcome === CancelOutcome.CANCELLED ? 'BOOKING_CANCELLED' : 'UNKNOWN_AT_COURIER',
          next_poll_at: null,
          // The courier answered: a credentials incident an earlier attempt recorded is over.
          sync_error: null,
          sync_failing_since: null,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', input.shipmentId)
        // A parcel that ended otherwise (delivered, returned, expired) keeps its own ending.
        .where('status', 'not in', ['DELIVERED', 'RETURNED', 'EXPIRED'])
        .execute();
      if (outcome === CancelOutcome.UNKNOWN_BOOKING) {
        log.warn(
          { shipmentId: input.shipmentId, trackingNumber: input.trackingNumber },
          'the courier does not know this booking: nothing to cancel there',
        );
      }
      return { outcome };
    },

    /** Who did what to which order, when and why (admin and customer actions). Once per key. */
    async recordAudit(input: {
      key: string;
      actor: string;
      action: string;
      subjectType: string;
      subjectId: string;
      reason: string | null;
      details?: Record<string, unknown>;
    }): Promise<void> {
      await db
        .insertInto('audit_log')
        .values({
          actor: input.actor,
          action: input.action,
          subject_type: input.subjectType,
          subject_id: input.subjectId,
          reason: input.reason,
          details: JSON.stringify(input.details ?? {}),
          dedupe_key: input.key,
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .execute();
    },

    /**
     * One notification per order and milestone (dedupe key), then its delivery. A retry finds
     * the row and delivers only if it is not SENT yet; a failed delivery is recorded on the
     * row (attempts, last error) and retried by Temporal.
     */
    async notifyCustomer(input: {
      orderId: string;
      milestone: string;
      details?: Record<string, unknown>;
    }): Promise<void> {
      const order = await db
        .selectFrom('orders')
        .select(['email', 'number'])
        .where('id', '=', input.orderId)
        .executeTakeFirstOrThrow();
      const dedupeKey = `order:${input.orderId}:${input.milestone}`;
      const payload = { orderNumber: order.number, milestone: input.milestone, ...input.details };
      await db
        .insertInto('notifications')
        .values({
          dedupe_key: dedupeKey,
          order_id: input.orderId,
          kind: input.milestone,
          channel: transport.channel,
          recipient: order.email,
          payload: JSON.stringify(payload),
          status: 'PENDING',
          attempts: 0,
          sent_at: null,
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .execute();
      const row = await db
        .selectFrom('notifications')
        .select(['status', 'payload', 'recipient'])
        .where('dedupe_key', '=', dedupeKey)
        .executeTakeFirstOrThrow();
      // Sent, or refused for good by the shop's endpoint: either way there is nothing to resend.
      if (row.status !== 'PENDING') return;
      try {
        await transport.send({
          eventId: dedupeKey,
          kind: input.milestone,
          recipient: row.recipient,
          payload: row.payload,
        });
      } catch (err) {
        const rejected = err instanceof NotificationRejectedError;
        await db
          .updateTable('notifications')
          .set({
            attempts: sql<number>`attempts + 1`,
            last_error: (err as Error).message,
            ...(rejected ? { status: 'FAILED' } : {}),
          })
          .where('dedupe_key', '=', dedupeKey)
          .execute();
        if (rejected) {
          throw ApplicationFailure.create({
            type: FailureType.NOTIFICATION_REJECTED,
            message: (err as Error).message,
            nonRetryable: true,
          });
        }
        throw err;
      }
      await db
        .updateTable('notifications')
        .set({ status: 'SENT', attempts: sql<number>`attempts + 1`, last_error: null, sent_at: new Date() })
        .where('dedupe_key', '=', dedupeKey)
        .execute();
    },

    /** The saga gave up on a notification after its retries: the row says so for admins. */
    async recordNotificationFailed(input: {
      orderId: string;
      milestone: string;
      error: string;
    }): Promise<void> {
      await db
        .updateTable('notifications')
        .set({ status: 'FAILED', last_error: input.error })
        .where('dedupe_key', '=', `order:${input.orderId}:${input.milestone}`)
        .where('status', '=', 'PENDING')
        .execute();
      log.warn(
        { orderId: input.orderId, milestone: input.milestone, error: input.error },
        'notification given up',
      );
    },

    /**
     * Parks a saga step for an admin: one row per order and item (a second raise of an open
     * item keeps the first, a raise after it was closed opens it again), plus an audit entry.
     */
    async raiseAttention(input: {
      orderId: string;
      itemId: string;
      step: string;
      reason: string;
      /** Makes the audit entry once per raise, whatever the retries. */
      raiseKey: string;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('order_attention')
          .values({ order_id: input.orderId, item_id: input.itemId, step: input.step, reason: input.reason })
          .onConflict((oc) =>
            oc.columns(['order_id', 'item_id']).doUpdateSet({
              status: 'OPEN',
              reason: input.reason,
              opened_at: sql<Date>`case when order_attention.status = 'OPEN' then order_attention.opened_at else now() end`,
              closed_at: null,
              closed_by: null,
              resolution: null,
            }),
          )
          .execute();
        await trx
          .insertInto('audit_log')
          .values({
            actor: 'system:order-saga',
            action: 'order.needs_attention',
            subject_type: 'order',
            subject_id: input.orderId,
            reason: input.reason,
            details: JSON.stringify({ itemId: input.itemId, step: input.step }),
            dedupe_key: `attention-raised:${input.orderId}:${input.raiseKey}`,
          })
          .onConflict((oc) => oc.column('dedupe_key').doNothing())
          .execute();
      });
      log.error(input, 'order needs attention');
    },

    /** Closes a parked step: retried successfully, or resolved by an admin with a reason (audited). */
    async closeAttention(input: {
      orderId: string;
      itemId: string;
      outcome: 'RETRIED' | 'RESOLVED';
      by: string;
      resolution: string;
      /** Makes the audit entry once per action, whatever the retries. */
      actionKey: string;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('order_attention')
          .set({
            status: input.outcome,
            closed_at: sql<Date>`now()`,
            closed_by: input.by,
            resolution: input.resolution,
          })
          .where('order_id', '=', input.orderId)
          .where('item_id', '=', input.itemId)
          .where('status', '=', 'OPEN')
          .execute();
        await trx
          .insertInto('audit_log')
          .values({
            actor: input.by,
            action: input.outcome === 'RETRIED' ? 'order.attention_retried' : 'order.attention_resolved',
            subject_type: 'order',
            subject_id: input.orderId,
            reason: input.resolution,
            details: JSON.stringify({ itemId: input.itemId }),
            dedupe_key: `attention:${input.orderId}:${input.actionKey}`,
          })
          .onConflict((oc) => oc.column('dedupe_key').doNothing())
          .execute();
      });
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

export type OrderActivities = ReturnType<typeof createOrderActivities>;
