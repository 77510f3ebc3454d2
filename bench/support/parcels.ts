/**
 * Open parcels for the scale and sizing benchmarks: shipments rows inserted as bookShipment
 * does, each parcel registered in the courier simulator as a `delivered` parcel 7 courier hours
 * old (IN_TRANSIT until 14 h, so every poll is the same cycle: timer → courier call →
 * read-model write → timer), and `shipmentWorkflow` started on the main task queue with no
 * parent order, with its search attributes, as the order workflow's startChild does.
 */
import { sql } from 'kysely';
import { ShipmentStatus } from '../../src/domain/status';
import { SHIPMENT_WORKFLOW_TASK_TIMEOUT, shipmentWorkflowId } from '../../src/workflows/contract';
import { shipmentSearchAttributes } from '../../src/workflows/search-attributes';
import type { PollPolicy } from '../../src/domain/polling';
import type { shipmentWorkflow } from '../../src/workflows/shipment';
import type { ProcessStack } from './stack';

const PARCEL_AGE_MS = 7 * 3_600_000;
export const PARCELS_DESCRIBED = 'delivered scenario, 7 courier hours old (IN_TRANSIT)';

export const parcelShipmentId = (i: number) => `shp_scale_${i}`;

/** A parcel's workflow task timeout: the product's, or BENCH_WFT_TIMEOUT (e.g. 10s) to measure another. */
export const parcelTaskTimeout = (): string =>
  process.env.BENCH_WFT_TIMEOUT || SHIPMENT_WORKFLOW_TASK_TIMEOUT;
const trackingNumber = (i: number) => `SIM7${String(i).padStart(9, '0')}`;

/** Inserts the shipments rows of parcels [from, to) and registers them in the courier simulator. */
export async function addParcels(stack: ProcessStack, from: number, to: number): Promise<void> {
  await sql`
    insert into shipments (id, courier, tracking_number, destination_city, destination_country)
    select 'shp_scale_' || i, 'simulator', 'SIM7' || lpad(i::text, 9, '0'), 'Shah Alam', 'MY'
    from generate_series(${from}::int, ${to - 1}::int) as i`.execute(stack.db);
  for (let i = from; i < to; i++) {
    stack.courier.backend.register({
      trackingNumber: trackingNumber(i),
      scenario: 'delivered',
      ageMs: PARCEL_AGE_MS,
    });
  }
}

/** Starts parcel i's shipment workflow; its first poll at `nextPollAtMs` (epoch ms). */
export async function startParcel(
  stack: ProcessStack,
  i: number,
  policy: PollPolicy,
  nextPollAtMs: number,
): Promise<void> {
  await stack.temporal.client.workflow.start<typeof shipmentWorkflow>('shipmentWorkflow', {
    workflowId: shipmentWorkflowId(parcelShipmentId(i)),
    taskQueue: stack.config.temporal.taskQueue,
    workflowTaskTimeout: parcelTaskTimeout(),
    typedSearchAttributes: shipmentSearchAttributes(
      { courier: 'simulator', trackingNumber: trackingNumber(i) },
      ShipmentStatus.PENDING,
    ),
    args: [
      {
        shipmentId: parcelShipmentId(i),
        orderId: null,
        courier: 'simulator',
        trackingNumber: trackingNumber(i),
        policy,
        nextPollAtMs,
      },
    ],
  });
}

/** Runs `work(i)` for every i in [from, to), `inFlight` at a time. */
export async function eachParallel(
  from: number,
  to: number,
  inFlight: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = from;
  const lane = async () => {
    while (next < to) await work(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}
