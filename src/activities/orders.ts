/**
 * Order activities: the order's status on the read model, the audit log, customer
 * notifications and the admin's attention items. All idempotent: rows are keyed by natural
 * ids, notifications and audit entries by a dedupe key. Courier bookings are in ./bookings.ts.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { writeAudit, type AuditEntry } from '../read-model/audit';
import { noticeAttemptFailed, noticeGivenUp, noticeSent, storeNotice } from '../read-model/notices';
import { closeAttention, openAttention } from '../read-model/order-attention';
import { lockOrderStatus, orderRecipient, updateOrderStatus } from '../read-model/orders';
import { FailureType } from '../domain/failures';
import { ShipmentStatus } from '../domain/status';
import type { Logger } from '../logger';
import {
  createLogTransport,
  NotificationRejectedError,
  type NotificationTransport,
} from '../notifications/transport';
import { writeOrderEvent } from '../notifications/outbox';
import { expireTrackingLost, recordedStatus } from '../read-model/shipments';

export interface OrderActivityDeps {
  db: Kysely<Database>;
  log: Logger;
  /** How customer notifications leave; the log transport when omitted. */
  notifications?: NotificationTransport;
}

export function createOrderActivities(deps: OrderActivityDeps) {
  const { db, log } = deps;
  const transport = deps.notifications ?? createLogTransport(log);

  return {
    async setOrderStatus(input: {
      orderId: string;
      status: string;
      failureCode?: string | null;
      failureMessage?: string | null;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // Locked, so a racing second run sees this one's status and writes no second event.
        const before = await lockOrderStatus(trx, input.orderId);
        await updateOrderStatus(trx, {
          orderId: input.orderId,
          status: input.status,
          failureCode: input.failureCode ?? null,
          failureMessage: input.failureMessage ?? null,
        });
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

    /** Who did what to which order, when and why (admin and customer actions). Once per key. */
    async recordAudit(input: Omit<AuditEntry, 'dedupeKey'> & { key: string }): Promise<void> {
      await writeAudit(db, [
        {
          actor: input.actor,
          action: input.action,
          subjectType: input.subjectType,
          subjectId: input.subjectId,
          reason: input.reason,
          details: input.details,
          dedupeKey: input.key,
        },
      ]);
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
      const order = await orderRecipient(db, input.orderId);
      const dedupeKey = `order:${input.orderId}:${input.milestone}`;
      const payload = { orderNumber: order.number, milestone: input.milestone, ...input.details };
      const row = await storeNotice(db, {
        dedupeKey,
        orderId: input.orderId,
        kind: input.milestone,
        channel: transport.channel,
        recipient: order.email,
        payload,
      });
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
        await noticeAttemptFailed(db, dedupeKey, (err as Error).message, rejected);
        if (rejected) {
          throw ApplicationFailure.create({
            type: FailureType.NOTIFICATION_REJECTED,
            message: (err as Error).message,
            nonRetryable: true,
          });
        }
        throw err;
      }
      await noticeSent(db, dedupeKey);
    },

    /** The saga gave up on a notification after its retries: the row says so for admins. */
    async recordNotificationFailed(input: {
      orderId: string;
      milestone: string;
      error: string;
    }): Promise<void> {
      await noticeGivenUp(db, `order:${input.orderId}:${input.milestone}`, input.error);
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
        await openAttention(trx, input);
        await writeAudit(trx, [
          {
            actor: 'system:order-saga',
            action: 'order.needs_attention',
            subjectType: 'order',
            subjectId: input.orderId,
            reason: input.reason,
            details: { itemId: input.itemId, step: input.step },
            dedupeKey: `attention-raised:${input.orderId}:${input.raiseKey}`,
          },
        ]);
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
      /** How a resolved capture was settled (null otherwise). */
      settlement: string | null;
      /** Makes the audit entry once per action, whatever the retries. */
      actionKey: string;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await closeAttention(trx, input);
        await writeAudit(trx, [
          {
            actor: input.by,
            action: input.outcome === 'RETRIED' ? 'order.attention_retried' : 'order.attention_resolved',
            subjectType: 'order',
            subjectId: input.orderId,
            reason: input.resolution,
            details: {
              itemId: input.itemId,
              ...(input.settlement === null ? {} : { settlement: input.settlement }),
            },
            dedupeKey: `attention:${input.orderId}:${input.actionKey}`,
          },
        ]);
      });
    },

    /**
     * The parcel's end as the read model holds it (with its sub-status), when it is one that
     * settles money (DELIVERED, RETURNED: written from the courier's scans or an admin's mark);
     * null otherwise. What the order asks before a last poll: a shipment workflow may have
     * recorded its parcel's end and died before it could tell the order.
     */
    async recordedEnd(input: {
      shipmentId: string;
    }): Promise<{ status: ShipmentStatus; subStatus: string | null } | null> {
      const row = await recordedStatus(db, input.shipmentId);
      if (row?.status !== ShipmentStatus.DELIVERED && row?.status !== ShipmentStatus.RETURNED) return null;
      return { status: row.status, subStatus: row.sub_status };
    },

    /**
     * The order settled a collected parcel as lost: its tracking ended without a final status
     * and was not restarted in time. The row says EXPIRED (TRACKING_LOST) with its event and
     * an audit entry, so the customer's tracking and a driver's late report agree with the
     * refund; a row that finished otherwise keeps its ending, and a repeat changes nothing.
     */
    async settleLostParcel(input: { orderId: string; shipmentId: string; reason: string }): Promise<void> {
      const settled = await db.transaction().execute(async (trx) => {
        const row = await expireTrackingLost(trx, input.shipmentId);
        if (!row) return false;
        await writeAudit(trx, [
          {
            actor: 'system:order-saga',
            action: 'shipment.settle_lost',
            subjectType: 'shipment',
            subjectId: row.id,
            reason: `its tracking ended without a final status and was not restarted: ${input.reason}`,
            details: { orderId: input.orderId },
            dedupeKey: `order:settle-lost:${row.id}`,
          },
        ]);
        return true;
      });
      if (settled) log.warn(input, 'parcel settled as lost: its shipment row is EXPIRED (TRACKING_LOST)');
    },
  };
}

export type OrderActivities = ReturnType<typeof createOrderActivities>;
