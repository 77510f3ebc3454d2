/**
 * The shop's own fleet as a courier (docs/fleet.md). Booking puts the parcel in the dispatch
 * queue (ops then put it on a driver's run), so a booking never fails because no run is open
 * yet; cancelling takes it off any run and is refused as `collected` once the driver has
 * picked it up. There is no courier to ask: these are rows in Postgres (src/read-model/fleet.ts),
 * and no HTTP request means nothing is taken from a daily budget. The drivers' reports reach
 * the shipment workflow as pushed events (the driver API, src/api/routes/fleet-driver.ts),
 * which never polls this courier; `track` answers from the reports for the booking
 * activity's check of a `collected` refusal.
 */
import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { EventSource, ShipmentStatus } from '../domain/status';
import { bookFleetParcel, cancelFleetParcel, fleetParcelView } from '../read-model/fleet';
import { reportEventKey } from './event-key';
import {
  CourierCode,
  CourierRefusal,
  CourierRejectedError,
  type CourierAdapter,
  type EventLocation,
  type NormalisedEvent,
  type TrackResult,
} from './types';

/** What a driver reports about a parcel on their run. */
export const DriverReportKind = {
  PICKED_UP: 'PICKED_UP',
  OUT_FOR_DELIVERY: 'OUT_FOR_DELIVERY',
  DELIVERED: 'DELIVERED',
  FAILED_ATTEMPT: 'FAILED_ATTEMPT',
  RETURNED: 'RETURNED',
} as const;
export type DriverReportKind = (typeof DriverReportKind)[keyof typeof DriverReportKind];
export const DRIVER_REPORT_KINDS = Object.values(DriverReportKind) as DriverReportKind[];

/** Why a delivery attempt failed: the ATTEMPT_FAIL sub-statuses the other couriers use too. */
export const FAILED_ATTEMPT_REASONS = [
  'RECIPIENT_ABSENT',
  'ADDRESS_PROBLEM',
  'REFUSED',
  'PREMISES_CLOSED',
  'OTHER',
] as const;
export type FailedAttemptReason = (typeof FAILED_ATTEMPT_REASONS)[number];

/** The status each report puts the parcel in, and the statuses it may come from. */
export const REPORT_RULES: Readonly<
  Record<
    DriverReportKind,
    { status: ShipmentStatus; subStatus: string | null; from: readonly ShipmentStatus[] }
  >
> = {
  PICKED_UP: {
    status: ShipmentStatus.IN_TRANSIT,
    subStatus: 'PICKED_UP',
    from: [ShipmentStatus.INFO_RECEIVED, ShipmentStatus.IN_TRANSIT],
  },
  OUT_FOR_DELIVERY: {
    status: ShipmentStatus.OUT_FOR_DELIVERY,
    subStatus: null,
    from: [ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY, ShipmentStatus.ATTEMPT_FAIL],
  },
  DELIVERED: {
    status: ShipmentStatus.DELIVERED,
    subStatus: null,
    from: [ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY, ShipmentStatus.ATTEMPT_FAIL],
  },
  FAILED_ATTEMPT: {
    status: ShipmentStatus.ATTEMPT_FAIL,
    subStatus: null,
    from: [ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY],
  },
  RETURNED: {
    status: ShipmentStatus.RETURNED,
    subStatus: 'RETURNED_TO_DEPOT',
    from: [ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY, ShipmentStatus.ATTEMPT_FAIL],
  },
};

const NOWHERE: EventLocation = { city: null, state: null, country: null };

/** A driver's report, as the driver API records it and the shipment workflow hears it. */
export interface FleetReport {
  driverId: string;
  reportId: string;
  kind: DriverReportKind;
  occurredAt: string;
  reason: string | null;
  proofRef: string | null;
  note: string | null;
}

/**
 * A driver's report as a tracking event (source `push`), keyed by the driver's report id: the
 * same report handed over again (a retried request, the whole log sent with a later report)
 * is the same event, whatever time the phone put on it.
 */
export function reportEvent(report: FleetReport): NormalisedEvent {
  const rule = REPORT_RULES[report.kind];
  const text = [
    report.kind.toLowerCase().replace(/_/g, ' '),
    report.proofRef ? `proof ${report.proofRef}` : null,
    report.note,
  ]
    .filter((part) => part !== null && part !== '')
    .join(' · ');
  return {
    key: reportEventKey(CourierCode.FLEET, report.driverId, report.reportId),
    status: rule.status,
    subStatus: report.kind === DriverReportKind.FAILED_ATTEMPT ? report.reason : rule.subStatus,
    rawCode: report.kind,
    rawText: text,
    occurredAt: report.occurredAt,
    occurredAtRaw: report.occurredAt,
    location: NOWHERE,
    source: EventSource.PUSH,
  };
}

/**
 * A parcel's whole report log as tracking events, newest first as couriers list their scans:
 * of two reports made at the same instant the one received later comes first, so it is the
 * one the shipment workflow takes as the newest (its first of equals).
 */
export const parcelEvents = (
  view: NonNullable<Awaited<ReturnType<typeof fleetParcelView>>>,
): NormalisedEvent[] =>
  [...view.reports].reverse().map((r) =>
    reportEvent({
      driverId: r.driver_id,
      reportId: r.report_id,
      kind: r.kind as DriverReportKind,
      occurredAt: r.occurred_at.toISOString(),
      reason: r.reason,
      proofRef: r.proof_ref,
      note: r.note,
    }),
  );

const newTrackingNumber = () =>
  `FL${String(randomInt(0, 1e6)).padStart(6, '0')}${String(randomInt(0, 1e6)).padStart(6, '0')}`;

export function createFleetAdapter(db: Kysely<Database>): CourierAdapter {
  return {
    code: CourierCode.FLEET,
    maxBatch: 100,
    async track(trackingNumbers): Promise<TrackResult[]> {
      const results: TrackResult[] = [];
      for (const trackingNumber of trackingNumbers) {
        const view = await fleetParcelView(db, trackingNumber);
        if (!view) {
          results.push({ kind: 'not_found', trackingNumber });
          continue;
        }
        results.push({
          kind: 'found',
          trackingNumber,
          status: view.status as ShipmentStatus,
          subStatus: null,
          eta: null,
          events: parcelEvents(view),
          skippedScans: 0,
          raw: { status: view.status, reports: view.reports.length },
        });
      }
      return results;
    },
    async book(request) {
      const { recipient } = request;
      const trackingNumber = await bookFleetParcel(db, {
        shipmentId: request.reference,
        trackingNumber: newTrackingNumber(),
        recipient: {
          name: recipient.name,
          line1: recipient.line1,
          city: recipient.city,
          postcode: recipient.postcode,
          phone: recipient.phone,
        },
        description: request.parcel.description,
      });
      return { trackingNumber, courierRef: null };
    },
    async cancel(trackingNumber) {
      const outcome = await cancelFleetParcel(db, trackingNumber);
      if (outcome === 'unknown') {
        throw new CourierRejectedError(
          `fleet parcel ${trackingNumber} not found`,
          CourierRefusal.UNKNOWN_BOOKING,
        );
      }
      if (outcome === 'collected') {
        throw new CourierRejectedError(
          `fleet parcel ${trackingNumber} has already been picked up by its driver`,
          CourierRefusal.COLLECTED,
        );
      }
    },
  };
}
