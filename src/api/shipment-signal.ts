/**
 * Hands pushed tracking events to a parcel's shipment workflow (the `courierEvents` signal):
 * the one path by which a courier's webhook (routes/webhooks.ts) and a fleet driver's report
 * (routes/fleet-driver.ts) reach the tracking, recorded like a polled scan.
 */
import type { NormalisedEvent } from '../couriers/types';
import { courierEventsSignal, shipmentWorkflowId } from '../workflows/contract';
import type { ApiDeps } from './app';

/** How long the signal may take before the caller is told to retry (ms). */
const SIGNAL_DEADLINE_MS = 5_000;

/** Throws WorkflowNotFoundError when the parcel's tracking has finished. */
export async function signalShipmentEvents(
  deps: Pick<ApiDeps, 'temporal'>,
  shipmentId: string,
  events: NormalisedEvent[],
): Promise<void> {
  const handle = deps.temporal.client.workflow.getHandle(shipmentWorkflowId(shipmentId));
  await deps.temporal.connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
    handle.signal(courierEventsSignal, { events }),
  );
}
