/**
 * A parcel tracked by its own shipment workflow on a test stack's worker, as the saga starts
 * one after booking: the parcel registered at the courier simulator (native format), its
 * shipments row, and the workflow, handed to the stack, which terminates it when the test
 * ends. Plus the read-model rows tests look at afterwards.
 */
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { CourierCode, type NormalisedEvent } from '../../src/couriers/types';
import type { PollPolicy } from '../../src/domain/polling';
import type { Stack } from './stack';
import { startShipmentWorkflow, uniqueId } from './temporal';

export interface TrackParcelOptions {
  policy: PollPolicy;
  /** The lifecycle the simulator plays (omitted: chosen from the number's hash). */
  scenario?: ScenarioName;
  /** The courier-time age the parcel has when tracking starts. */
  ageMs?: number;
  /** A number the test registered itself (or never did): nothing is registered. */
  trackingNumber?: string;
  /** The order the parcel belongs to: its first parcel (`<orderId>-p1`). */
  orderId?: string;
}

/**
 * A parcel as tracking starts from, with no workflow yet: registered at the courier simulator
 * (native format; unless the test brings its own number) and its shipments row.
 */
export async function parcelRow(stack: Stack, opts: Omit<TrackParcelOptions, 'policy'> = {}) {
  const shipmentId = opts.orderId ? `${opts.orderId}-p1` : uniqueId('shp');
  const trackingNumber =
    opts.trackingNumber ??
    stack.couriers.backend.register({
      format: 'native',
      ...(opts.scenario === undefined ? {} : { scenario: opts.scenario }),
      ...(opts.ageMs === undefined ? {} : { ageMs: opts.ageMs }),
    }).trackingNumber;
  await stack.database.db
    .insertInto('shipments')
    .values({
      id: shipmentId,
      order_id: opts.orderId ?? null,
      courier: CourierCode.SIMULATOR,
      tracking_number: trackingNumber,
    })
    .execute();
  return { shipmentId, trackingNumber };
}

export async function trackParcel(stack: Stack, opts: TrackParcelOptions) {
  const { shipmentId, trackingNumber } = await parcelRow(stack, opts);
  const handle = stack.started(
    await startShipmentWorkflow(stack.worker, {
      shipmentId,
      orderId: opts.orderId ?? null,
      trackingNumber,
      policy: opts.policy,
    }),
  );
  return { shipmentId, trackingNumber, handle };
}

/** The parcel's shipments row (throws when there is none). */
export const shipmentRow = (stack: Stack, id: string) =>
  stack.database.db.selectFrom('shipments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** The parcel's tracking events, oldest first. */
export const trackingEventsOf = (stack: Stack, id: string) =>
  stack.database.db
    .selectFrom('tracking_events')
    .selectAll()
    .where('shipment_id', '=', id)
    .orderBy('occurred_at')
    .execute();

/**
 * A scan as a courier's push brings it (the `courierEvents` signal's payload): `status` at
 * `at` (ISO, also its raw text), its raw code the status, in Petaling Jaya; `more` overrides.
 */
export function pushedEvent(
  key: string,
  status: NormalisedEvent['status'],
  at: string,
  more: Partial<NormalisedEvent> = {},
): NormalisedEvent {
  return {
    key,
    status,
    subStatus: null,
    rawCode: status,
    rawText: null,
    occurredAt: at,
    occurredAtRaw: at,
    location: { city: 'Petaling Jaya', state: 'Selangor', country: 'MY' },
    source: 'push',
    ...more,
  };
}
