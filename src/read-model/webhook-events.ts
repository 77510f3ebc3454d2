/**
 * Courier pushes received (`courier_webhook_events`): one row per courier and event id, so a
 * push is handed to its shipment workflow once. The webhook route takes the row before the
 * signal and gives it back when the signal fails (src/api/routes/webhooks.ts).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';

/** Takes the event's row; false when it was received before (the row exists). */
export async function claimWebhookEvent(
  db: Kysely<Database>,
  event: { courier: string; eventId: string; trackingNumber: string },
): Promise<boolean> {
  const claimed = await db
    .insertInto('courier_webhook_events')
    .values({ courier: event.courier, event_id: event.eventId, tracking_number: event.trackingNumber })
    .onConflict((oc) => oc.columns(['courier', 'event_id']).doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return claimed !== undefined;
}

/** Gives the event's row back, so the courier's retry is handed over. */
export async function releaseWebhookEvent(
  db: Kysely<Database>,
  courier: string,
  eventId: string,
): Promise<void> {
  await db
    .deleteFrom('courier_webhook_events')
    .where('courier', '=', courier)
    .where('event_id', '=', eventId)
    .execute();
}
