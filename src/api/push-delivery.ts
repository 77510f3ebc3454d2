/**
 * A courier's pushed scans on their way to the parcel's shipment workflow, whatever shape
 * they arrived in (Waybill's signed push: routes/webhooks.ts; EasyParcel's own webhook:
 * routes/easyparcel-webhook.ts): find the parcel, take the push's dedupe row
 * (`courier_webhook_events`), signal the workflow (shipment-signal.ts), give the row back if
 * the signal fails. Every outcome is final for the courier except a thrown error (503: retry).
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { Type } from 'typebox';
import { PUSH_MAX_EVENTS } from '../couriers/push';
import type { FastifyBaseLogger } from 'fastify';
import type { CourierCode, NormalisedEvent } from '../couriers/types';
import { isTerminal, type ShipmentStatus } from '../domain/status';
import { shipmentByCourierNumber } from '../read-model/shipment-lookups';
import { claimWebhookEvent, releaseWebhookEvent } from '../read-model/webhook-events';
import type { ApiDeps } from './app';
import { signalShipmentEvents } from './shipment-signal';
import { temporalBusy, temporalRefusal } from './errors';

/** What every courier push route answers with 200 (registered once: `CourierPushOutcome#`). */
export const PushOutcomeSchema = Type.Object(
  {
    result: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate'), Type.Literal('ignored')], {
      description:
        '`accepted`: handed to the shipment workflow; `duplicate`: this event id was accepted before, nothing done; `ignored`: nothing to do (unknown tracking number, tracking finished). Do not retry any of them.',
    }),
    eventId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 }),
    events: Type.Integer({
      format: 'int32',
      minimum: 0,
      maximum: PUSH_MAX_EVENTS,
      description: 'Scans handed to the shipment workflow (0 unless accepted)',
    }),
    message: Type.String({ maxLength: 500 }),
  },
  { $id: 'CourierPushOutcome', additionalProperties: false },
);

export interface PushOutcome {
  result: 'accepted' | 'duplicate' | 'ignored';
  eventId: string;
  events: number;
  message: string;
}

export interface DeliveredPush {
  courier: CourierCode;
  eventId: string;
  trackingNumber: string;
  events: NormalisedEvent[];
}

export async function deliverPush(
  deps: Pick<ApiDeps, 'db' | 'temporal'>,
  log: FastifyBaseLogger,
  push: DeliveredPush,
): Promise<PushOutcome> {
  const { courier, eventId, trackingNumber, events } = push;
  const ignored = (message: string): PushOutcome => ({ result: 'ignored', eventId, events: 0, message });

  const shipment = await shipmentByCourierNumber(deps.db, courier, trackingNumber);
  // A number we do not track (another shop's parcel, or booked outside Waybill): a courier
  // that got a 4xx would retry it for days, so it is answered as done and logged.
  if (!shipment) {
    log.info({ courier, eventId, trackingNumber }, 'courier push for an unknown tracking number');
    return ignored(`no shipment with ${courier} tracking number ${trackingNumber}`);
  }
  if (isTerminal(shipment.status as ShipmentStatus)) {
    return ignored(`tracking of ${trackingNumber} has finished: the shipment is ${shipment.status}`);
  }

  // The dedupe row is taken before the signal and given back if the signal fails, so a
  // push is either handed over exactly once or refused with 503 for the courier to retry.
  const claimed = await claimWebhookEvent(deps.db, { courier, eventId, trackingNumber });
  if (!claimed) {
    return {
      result: 'duplicate',
      eventId,
      events: 0,
      message: `event ${eventId} was received before; nothing done`,
    };
  }
  try {
    await signalShipmentEvents(deps, shipment.id, events);
  } catch (err) {
    await releaseWebhookEvent(deps.db, courier, eventId).catch((releaseErr: unknown) =>
      log.error(
        { err: releaseErr, courier, eventId },
        'could not release the dedupe row of a push that was not delivered: its retry will be answered duplicate',
      ),
    );
    // No run to take it: the workflow ended between our read and the signal (delivered,
    // cancelled, expired), or the order has not started it yet (its first poll catches up).
    if (err instanceof WorkflowNotFoundError)
      return ignored(
        `no tracking of ${trackingNumber} is running (finished, or not started yet: its first poll asks the courier)`,
      );
    // A courier retries on 503 (its contract says so), also when only this parcel's workflow is busy.
    const refused = temporalRefusal(err);
    if (refused) {
      log.warn({ err, courier, eventId, cause: refused.cause }, 'courier push refused by Temporal');
      throw temporalBusy({ ...refused, oneWorkflow: false });
    }
    throw err;
  }
  log.info(
    { courier, eventId, trackingNumber, shipmentId: shipment.id, events: events.length },
    'courier push handed to the shipment workflow',
  );
  return {
    result: 'accepted',
    eventId,
    events: events.length,
    message: `${events.length} scan${events.length === 1 ? '' : 's'} handed to the tracking of ${trackingNumber}`,
  };
}
