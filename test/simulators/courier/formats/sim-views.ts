/**
 * Parcels as the simulator core hands them to a wire-format renderer (SimShipmentView),
 * written out by hand so the renderer tests do not depend on scenario timings, plus a
 * small SimBackend serving them and a way to run a format's routes over real HTTP.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ShipmentStatus } from '../../../../src/domain/status';
import type {
  SimBackend,
  SimBookingRequest,
  SimFormat,
  SimLocation,
  SimRecipient,
  SimScan,
  SimShipmentView,
  SimTrackingItem,
} from '../../../../simulators/courier/model';

const MINUTE = 60_000;

export type Role = 'origin' | 'originHub' | 'destinationHub' | 'destination';
export type Region = 'MY' | 'IN';

export const PLACES: Record<Region, Record<Role, SimLocation>> = {
  MY: {
    origin: { city: 'Shah Alam', state: 'Selangor', country: 'MY' },
    originHub: { city: 'Shah Alam', state: 'Selangor', country: 'MY' },
    destinationHub: { city: 'Senai', state: 'Johor', country: 'MY' },
    destination: { city: 'Johor Bahru', state: 'Johor', country: 'MY' },
  },
  IN: {
    origin: { city: 'Mumbai', state: 'Maharashtra', country: 'IN' },
    originHub: { city: 'Bhiwandi', state: 'Maharashtra', country: 'IN' },
    destinationHub: { city: 'Gurugram', state: 'Haryana', country: 'IN' },
    destination: { city: 'New Delhi', state: 'Delhi', country: 'IN' },
  },
};

export const RECIPIENTS: Record<Region, SimRecipient> = {
  MY: {
    name: 'Tan Wei Ming',
    line1: '12 Jalan Wong Ah Fook',
    city: 'Johor Bahru',
    state: 'Johor',
    postcode: '80000',
    country: 'MY',
    phone: '+60121234567',
  },
  IN: {
    name: 'Asha Rao & Sons <Ltd>',
    line1: '12 MG Road',
    city: 'New Delhi',
    state: 'Delhi',
    postcode: '110001',
    country: 'IN',
    phone: '9800000000',
  },
};

/** One scripted scan: minutes after the start, status, sub-status, text, where. */
export type Step = [
  minutes: number,
  status: ShipmentStatus,
  subStatus: string | null,
  text: string,
  role: Role,
];

const firstLeg: Step[] = [
  [5, 'INFO_RECEIVED', null, 'Shipment information received', 'origin'],
  [6 * 60, 'IN_TRANSIT', 'PICKED_UP', 'Parcel picked up from shipper', 'origin'],
  [14 * 60, 'IN_TRANSIT', 'DEPARTED_FACILITY', 'Departed sorting facility', 'originHub'],
  [44 * 60, 'IN_TRANSIT', 'ARRIVED_AT_HUB', 'Arrived at destination hub', 'destinationHub'],
];

export const FAILED_ATTEMPT_THEN_DELIVERED: Step[] = [
  ...firstLeg,
  [57 * 60, 'OUT_FOR_DELIVERY', null, 'Out for delivery', 'destination'],
  [
    61 * 60,
    'ATTEMPT_FAIL',
    'RECIPIENT_ABSENT',
    'Delivery attempt failed: consignee not available',
    'destination',
  ],
  [81 * 60, 'OUT_FOR_DELIVERY', null, 'Out for delivery', 'destination'],
  [84 * 60, 'DELIVERED', null, 'Delivered', 'destination'],
];

export const RETURN_TO_ORIGIN: { steps: Step[]; returnSteps: Step[] } = {
  steps: [
    ...firstLeg,
    [57 * 60, 'OUT_FOR_DELIVERY', null, 'Out for delivery', 'destination'],
    [
      61 * 60,
      'ATTEMPT_FAIL',
      'RECIPIENT_ABSENT',
      'Delivery attempt failed: consignee not available',
      'destination',
    ],
    [90 * 60, 'RETURNING', 'RETURN_TO_ORIGIN', 'Return to origin initiated', 'destinationHub'],
    [134 * 60, 'RETURNED', 'RETURNED_TO_SHIPPER', 'Returned to shipper', 'origin'],
  ],
  returnSteps: [
    [90 * 60, 'INFO_RECEIVED', null, 'Return shipment created', 'destinationHub'],
    [98 * 60, 'IN_TRANSIT', 'DEPARTED_FACILITY', 'Departed sorting facility', 'destinationHub'],
    [126 * 60, 'IN_TRANSIT', 'ARRIVED_AT_HUB', 'Arrived at origin hub', 'originHub'],
    [129 * 60, 'OUT_FOR_DELIVERY', null, 'Out for delivery to shipper', 'origin'],
    [134 * 60, 'DELIVERED', null, 'Delivered to shipper', 'origin'],
  ],
};

function scans(steps: Step[], start: Date, region: Region): SimScan[] {
  return steps.map(([minutes, status, subStatus, text, role]) => ({
    status,
    subStatus,
    text,
    at: new Date(start.getTime() + minutes * MINUTE),
    location: { ...PLACES[region][role] },
  }));
}

/** A parcel `steps` into its life; times carry milliseconds, as the simulator's real-time scans do. */
export function view(opts: {
  trackingNumber: string;
  region: Region;
  start: Date;
  steps: Step[];
  returnSteps?: Step[];
  eta?: Date | null;
  reference?: string | null;
}): SimShipmentView {
  const returnSteps = opts.returnSteps ?? [];
  return {
    trackingNumber: opts.trackingNumber,
    reference: opts.reference ?? null,
    recipient: { ...RECIPIENTS[opts.region] },
    scans: scans(opts.steps, opts.start, opts.region),
    eta: opts.eta ?? null,
    returnTrackingNumber: returnSteps.length > 0 ? `${opts.trackingNumber}R` : null,
    returnScans: scans(returnSteps, opts.start, opts.region),
  };
}

/** A backend serving fixed views; bookings are recorded, cancels answer as told. */
export function stubBackend(
  views: SimShipmentView[],
  cancels: Record<string, 'cancelled' | 'already_picked_up'> = {},
): SimBackend & { bookings: { format: SimFormat; request: SimBookingRequest }[]; tracked: string[][] } {
  const bookings: { format: SimFormat; request: SimBookingRequest }[] = [];
  const tracked: string[][] = [];
  return {
    bookings,
    tracked,
    track(_format, numbers): SimTrackingItem[] {
      tracked.push(numbers);
      return numbers.map((n) => {
        const found = views.find((v) => v.trackingNumber === n);
        return found ? { found: true, view: found } : { found: false, trackingNumber: n };
      });
    },
    book(format, request) {
      bookings.push({ format, request });
      const digits =
        BigInt(`0x${createHash('sha256').update(request.reference).digest('hex').slice(0, 12)}`) %
        10_000_000_000n;
      return {
        trackingNumber: `${format === 'bluedart' ? 'BD' : 'EP'}${digits.toString().padStart(10, '0')}`,
      };
    },
    cancel(_format, trackingNumber) {
      return cancels[trackingNumber] ?? 'not_found';
    },
  };
}

/** Serves `register` under `prefix` on a free local port; close it after the test. */
export async function serve(
  prefix: string,
  register: (scope: FastifyInstance) => void,
): Promise<{ url: string; app: FastifyInstance }> {
  const app = Fastify({ logger: false });
  await app.register(async (scope) => register(scope), { prefix });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}${prefix}`, app };
}

/** `date` cut to whole seconds (EasyParcel) or whole minutes (Blue Dart), as ISO UTC. */
export function truncatedIso(date: Date, unitMs: 1000 | 60_000): string {
  return new Date(Math.floor(date.getTime() / unitMs) * unitMs).toISOString();
}
