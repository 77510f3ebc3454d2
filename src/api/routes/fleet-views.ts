/** Rows of src/read-model/fleet.ts as the fleet routes and the driver API show them. */
import type { findRun, runParcels } from '../../read-model/fleet';

type RunRow = NonNullable<Awaited<ReturnType<typeof findRun>>>;
type ParcelRow = Awaited<ReturnType<typeof runParcels>>[number];

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export function runView(r: RunRow) {
  return {
    runId: r.id,
    driverId: r.driver_id,
    driverName: r.driver_name,
    vehicleId: r.vehicle_id,
    registration: r.registration,
    date: r.run_date,
    status: r.status as 'OPEN' | 'CLOSED',
    createdAt: r.created_at.toISOString(),
    closedAt: iso(r.closed_at),
    lastReportAt: iso(r.last_report_at),
    silentSince: iso(r.silent_since),
    silentAlarms: r.silent_alarms,
    parcels: r.parcels ?? 0,
    inHand: r.in_hand ?? 0,
  };
}

export function parcelView(p: ParcelRow) {
  return {
    trackingNumber: p.tracking_number,
    shipmentId: p.shipment_id,
    runId: p.run_id,
    status: p.status,
    recipient: p.recipient,
    description: p.description,
    proofRef: p.proof_ref,
    lastReason: p.last_reason,
    bookedAt: p.booked_at.toISOString(),
    assignedAt: iso(p.assigned_at),
    pickedUpAt: iso(p.picked_up_at),
  };
}
