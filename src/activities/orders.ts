/**
 * Order activities: the order's status on the read model, courier bookings (one parcel
 * per ship-from place) and customer notifications. All idempotent: the booking reference
 * is our shipment id (the courier answers the same number for the same reference), rows
 * are keyed by natural ids, notifications by a dedupe key.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import {
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type CourierCode,
} from '../couriers/types';
import type { Logger } from '../logger';
import { createLogTransport, type NotificationTransport } from '../notifications/transport';

export interface OrderActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  log: Logger;
  /** How customer notifications leave; the log transport when omitted. */
  notifications?: NotificationTransport;
}

export const BookingFailure = { REJECTED: 'BookingRejected', ALREADY_PICKED_UP: 'AlreadyPickedUp' } as const;

export function createOrderActivities(deps: OrderActivityDeps) {
  const { db, log } = deps;
  const transport = deps.notifications ?? createLogTransport(log);

  function adapterFor(courier: CourierCode): CourierAdapter {
    const adapter = deps.couriers[courier];
    if (!adapter) {
      throw ApplicationFailure.create({
        type: BookingFailure.REJECTED,
        message: `no adapter configured for courier "${courier}"`,
        nonRetryable: true,
      });
    }
    return adapter;
  }

  return {
    async setOrderStatus(input: {
      orderId: string;
      status: string;
      failureCode?: string | null;
      failureMessage?: string | null;
    }): Promise<void> {
      await db
        .updateTable('orders')
        .set({
          status: input.status,
          failure_code: input.failureCode ?? null,
          failure_message: input.failureMessage ?? null,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', input.orderId)
        .execute();
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
        if (err instanceof CourierRejectedError) {
          throw ApplicationFailure.create({
            type: BookingFailure.REJECTED,
            message: err.message,
            nonRetryable: true,
          });
        }
        if (err instanceof CourierUnavailableError) {
          throw ApplicationFailure.create({ type: 'CourierUnavailableError', message: err.message });
        }
        throw err;
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

    /** Compensation of bookShipment: cancels at the courier (twice is harmless) and on the read model. */
    async cancelBooking(input: {
      shipmentId: string;
      courier: CourierCode;
      trackingNumber: string;
    }): Promise<void> {
      try {
        await adapterFor(input.courier).cancel(input.trackingNumber);
      } catch (err) {
        if (err instanceof CourierRejectedError) {
          // The parcel left already: nothing to cancel at the courier; the saga decides what next.
          throw ApplicationFailure.create({
            type: BookingFailure.ALREADY_PICKED_UP,
            message: err.message,
            nonRetryable: true,
          });
        }
        if (err instanceof CourierUnavailableError) {
          throw ApplicationFailure.create({ type: 'CourierUnavailableError', message: err.message });
        }
        throw err;
      }
      await db
        .updateTable('shipments')
        .set({
          status: 'CANCELLED',
          sub_status: 'BOOKING_CANCELLED',
          next_poll_at: null,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', input.shipmentId)
        // A parcel that ended otherwise (delivered, returned, expired) keeps its own ending.
        .where('status', 'not in', ['DELIVERED', 'RETURNED', 'EXPIRED'])
        .execute();
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
      if (row.status === 'SENT') return;
      try {
        await transport.send({
          eventId: dedupeKey,
          kind: input.milestone,
          recipient: row.recipient,
          payload: row.payload,
        });
      } catch (err) {
        await db
          .updateTable('notifications')
          .set({ attempts: sql<number>`attempts + 1`, last_error: (err as Error).message })
          .where('dedupe_key', '=', dedupeKey)
          .execute();
        throw err;
      }
      await db
        .updateTable('notifications')
        .set({ status: 'SENT', attempts: sql<number>`attempts + 1`, last_error: null, sent_at: new Date() })
        .where('dedupe_key', '=', dedupeKey)
        .execute();
    },
  };
}

export type OrderActivities = ReturnType<typeof createOrderActivities>;
