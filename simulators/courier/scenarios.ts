/**
 * Parcel lifecycles as data. A scenario is a list of scans, each `after` a courier-time
 * duration from the moment the parcel's lifecycle started (booked, registered, or first
 * tracked). Which scans a tracking call sees depends only on the parcel's courier-time age,
 * so the same age always shows the same scans.
 *
 * Locations are roles (origin, hubs, destination) resolved against a route: Malaysian
 * cities for EasyParcel and the native format, Indian ones for Blue Dart.
 */
import { createHash } from 'node:crypto';
import { ShipmentStatus } from '../../src/domain/status';
import type { SimFormat, SimLocation, SimRecipient, SimScan } from './model';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Courier-time offset from the parcel's start. */
function at(days: number, hours = 0, minutes = 0): number {
  return days * DAY + hours * HOUR + minutes * MINUTE;
}

export const ScenarioName = {
  DELIVERED: 'delivered',
  FAILED_ATTEMPT_THEN_DELIVERED: 'failed_attempt_then_delivered',
  AVAILABLE_FOR_PICKUP: 'available_for_pickup',
  EXCEPTION: 'exception',
  RETURN_TO_ORIGIN: 'return_to_origin',
  NEVER_PICKED_UP: 'never_picked_up',
  LOST: 'lost',
} as const;
export type ScenarioName = (typeof ScenarioName)[keyof typeof ScenarioName];
export const SCENARIO_NAMES = Object.values(ScenarioName) as ScenarioName[];

export function isScenarioName(value: unknown): value is ScenarioName {
  return typeof value === 'string' && (SCENARIO_NAMES as string[]).includes(value);
}

export type LocationRole = 'origin' | 'originHub' | 'destinationHub' | 'destination';

export interface ScenarioStep {
  /** Courier-time ms from the parcel's start. */
  after: number;
  status: ShipmentStatus;
  subStatus: string | null;
  text: string;
  location: LocationRole;
  /** 'return': a scan of the return leg (its own tracking number), not of the parcel itself. */
  leg?: 'return';
}

export interface Scenario {
  name: ScenarioName;
  description: string;
  /** Share of tracking numbers that get this scenario when none is set (out of {@link TOTAL_WEIGHT}). */
  weight: number;
  /** Courier-time offset of the delivery date the courier promises; null when it promises none. */
  etaAfter: number | null;
  /** Oldest first. */
  steps: readonly ScenarioStep[];
}

const S = ShipmentStatus;

const infoReceived: ScenarioStep = {
  after: at(0, 0, 5),
  status: S.INFO_RECEIVED,
  subStatus: null,
  text: 'Shipment information received',
  location: 'origin',
};
const pickedUp: ScenarioStep = {
  after: at(0, 6),
  status: S.IN_TRANSIT,
  subStatus: 'PICKED_UP',
  text: 'Parcel picked up from shipper',
  location: 'origin',
};
const departed: ScenarioStep = {
  after: at(0, 14),
  status: S.IN_TRANSIT,
  subStatus: 'DEPARTED_FACILITY',
  text: 'Departed sorting facility',
  location: 'originHub',
};
const arrived: ScenarioStep = {
  after: at(1, 20),
  status: S.IN_TRANSIT,
  subStatus: 'ARRIVED_AT_HUB',
  text: 'Arrived at destination hub',
  location: 'destinationHub',
};
const outForDelivery = (after: number): ScenarioStep => ({
  after,
  status: S.OUT_FOR_DELIVERY,
  subStatus: null,
  text: 'Out for delivery',
  location: 'destination',
});
const attemptFailed = (after: number): ScenarioStep => ({
  after,
  status: S.ATTEMPT_FAIL,
  subStatus: 'RECIPIENT_ABSENT',
  text: 'Delivery attempt failed: consignee not available',
  location: 'destination',
});
const delivered = (after: number): ScenarioStep => ({
  after,
  status: S.DELIVERED,
  subStatus: null,
  text: 'Delivered',
  location: 'destination',
});

const firstLeg = [infoReceived, pickedUp, departed, arrived];

/** Every scenario, in the order the hash rule walks their weights. */
export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  delivered: {
    name: 'delivered',
    description:
      'Info received, picked up, through two hubs, out for delivery on day 3, delivered that afternoon.',
    weight: 55,
    etaAfter: at(2, 20),
    steps: [...firstLeg, outForDelivery(at(2, 9)), delivered(at(2, 15))],
  },
  failed_attempt_then_delivered: {
    name: 'failed_attempt_then_delivered',
    description: 'As delivered, but the first attempt fails (recipient absent); delivered on the next day.',
    weight: 15,
    etaAfter: at(2, 20),
    steps: [
      ...firstLeg,
      outForDelivery(at(2, 9)),
      attemptFailed(at(2, 13)),
      outForDelivery(at(3, 9)),
      delivered(at(3, 12)),
    ],
  },
  available_for_pickup: {
    name: 'available_for_pickup',
    description:
      'One failed attempt, then held at the courier counter; the recipient collects it two days later.',
    weight: 8,
    etaAfter: at(2, 20),
    steps: [
      ...firstLeg,
      outForDelivery(at(2, 9)),
      attemptFailed(at(2, 13)),
      {
        after: at(2, 18),
        status: S.AVAILABLE_FOR_PICKUP,
        subStatus: 'HELD_AT_COUNTER',
        text: 'Held at facility for collection by consignee',
        location: 'destinationHub',
      },
      {
        after: at(4, 11),
        status: S.DELIVERED,
        subStatus: 'COLLECTED',
        text: 'Collected by consignee',
        location: 'destinationHub',
      },
    ],
  },
  exception: {
    name: 'exception',
    description: 'Found damaged at the destination hub; stays in EXCEPTION for ever.',
    weight: 6,
    etaAfter: null,
    steps: [
      ...firstLeg,
      {
        after: at(1, 23),
        status: S.EXCEPTION,
        subStatus: 'DAMAGED',
        text: 'Shipment damaged in transit; under investigation',
        location: 'destinationHub',
      },
    ],
  },
  return_to_origin: {
    name: 'return_to_origin',
    description:
      'Two failed attempts, return to origin on day 4 (a return leg with its own number), back with the shipper on day 6.',
    weight: 6,
    etaAfter: at(2, 20),
    steps: [
      ...firstLeg,
      outForDelivery(at(2, 9)),
      attemptFailed(at(2, 13)),
      outForDelivery(at(3, 9)),
      attemptFailed(at(3, 13)),
      {
        after: at(3, 18),
        status: S.RETURNING,
        subStatus: 'RETURN_TO_ORIGIN',
        text: 'Return to origin initiated',
        location: 'destinationHub',
      },
      {
        after: at(3, 18),
        status: S.INFO_RECEIVED,
        subStatus: null,
        text: 'Return shipment created',
        location: 'destinationHub',
        leg: 'return',
      },
      {
        after: at(4, 2),
        status: S.IN_TRANSIT,
        subStatus: 'DEPARTED_FACILITY',
        text: 'Departed sorting facility',
        location: 'destinationHub',
        leg: 'return',
      },
      {
        after: at(5, 6),
        status: S.IN_TRANSIT,
        subStatus: 'ARRIVED_AT_HUB',
        text: 'Arrived at origin hub',
        location: 'originHub',
        leg: 'return',
      },
      {
        after: at(5, 9),
        status: S.OUT_FOR_DELIVERY,
        subStatus: null,
        text: 'Out for delivery to shipper',
        location: 'origin',
        leg: 'return',
      },
      {
        after: at(5, 14),
        status: S.DELIVERED,
        subStatus: null,
        text: 'Delivered to shipper',
        location: 'origin',
        leg: 'return',
      },
      {
        after: at(5, 14),
        status: S.RETURNED,
        subStatus: 'RETURNED_TO_SHIPPER',
        text: 'Returned to shipper',
        location: 'origin',
      },
    ],
  },
  never_picked_up: {
    name: 'never_picked_up',
    description:
      'The shop manifests it, the courier never collects it: info received and nothing else, ever.',
    weight: 5,
    etaAfter: null,
    steps: [infoReceived],
  },
  lost: {
    name: 'lost',
    description: 'The courier knows the number but never scans it: found, with no scans at all, ever.',
    weight: 5,
    etaAfter: null,
    steps: [],
  },
};

export const TOTAL_WEIGHT = SCENARIO_NAMES.reduce((sum, name) => sum + SCENARIOS[name].weight, 0);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * The scenario a tracking number plays when none was set: the first 4 bytes of
 * SHA-256(trackingNumber), as an unsigned big-endian integer, modulo {@link TOTAL_WEIGHT},
 * walked through the weights in {@link SCENARIO_NAMES} order. Stable across runs and machines.
 */
export function scenarioFor(trackingNumber: string): ScenarioName {
  let bucket = digest(trackingNumber).readUInt32BE(0) % TOTAL_WEIGHT;
  for (const name of SCENARIO_NAMES) {
    bucket -= SCENARIOS[name].weight;
    if (bucket < 0) return name;
  }
  return ScenarioName.DELIVERED;
}

// ---------------------------------------------------------------------------------------
// Places

export type Region = 'MY' | 'IN';

interface Place {
  city: string;
  state: string;
  postcode: string;
  /** The courier's sorting hub serving this city. */
  hub: { city: string; state: string };
}

const PLACES: Record<Region, { origins: number; places: Place[] }> = {
  // The first `origins` places are where shops ship from (Klang Valley, Penang).
  MY: {
    origins: 4,
    places: [
      {
        city: 'Shah Alam',
        state: 'Selangor',
        postcode: '40150',
        hub: { city: 'Shah Alam', state: 'Selangor' },
      },
      {
        city: 'Petaling Jaya',
        state: 'Selangor',
        postcode: '46200',
        hub: { city: 'Shah Alam', state: 'Selangor' },
      },
      {
        city: 'Kuala Lumpur',
        state: 'Kuala Lumpur',
        postcode: '50450',
        hub: { city: 'Shah Alam', state: 'Selangor' },
      },
      {
        city: 'George Town',
        state: 'Pulau Pinang',
        postcode: '10200',
        hub: { city: 'Bayan Lepas', state: 'Pulau Pinang' },
      },
      { city: 'Johor Bahru', state: 'Johor', postcode: '80000', hub: { city: 'Senai', state: 'Johor' } },
      { city: 'Ipoh', state: 'Perak', postcode: '30000', hub: { city: 'Ipoh', state: 'Perak' } },
      { city: 'Melaka', state: 'Melaka', postcode: '75000', hub: { city: 'Ayer Keroh', state: 'Melaka' } },
      {
        city: 'Seremban',
        state: 'Negeri Sembilan',
        postcode: '70000',
        hub: { city: 'Nilai', state: 'Negeri Sembilan' },
      },
      { city: 'Kuantan', state: 'Pahang', postcode: '25000', hub: { city: 'Kuantan', state: 'Pahang' } },
      {
        city: 'Kota Kinabalu',
        state: 'Sabah',
        postcode: '88000',
        hub: { city: 'Kota Kinabalu', state: 'Sabah' },
      },
      { city: 'Kuching', state: 'Sarawak', postcode: '93000', hub: { city: 'Kuching', state: 'Sarawak' } },
    ],
  },
  IN: {
    origins: 3,
    places: [
      {
        city: 'Mumbai',
        state: 'Maharashtra',
        postcode: '400001',
        hub: { city: 'Bhiwandi', state: 'Maharashtra' },
      },
      { city: 'New Delhi', state: 'Delhi', postcode: '110001', hub: { city: 'Gurugram', state: 'Haryana' } },
      {
        city: 'Bengaluru',
        state: 'Karnataka',
        postcode: '560001',
        hub: { city: 'Bengaluru', state: 'Karnataka' },
      },
      {
        city: 'Chennai',
        state: 'Tamil Nadu',
        postcode: '600001',
        hub: { city: 'Chennai', state: 'Tamil Nadu' },
      },
      {
        city: 'Hyderabad',
        state: 'Telangana',
        postcode: '500001',
        hub: { city: 'Hyderabad', state: 'Telangana' },
      },
      { city: 'Pune', state: 'Maharashtra', postcode: '411001', hub: { city: 'Pune', state: 'Maharashtra' } },
      {
        city: 'Kolkata',
        state: 'West Bengal',
        postcode: '700001',
        hub: { city: 'Kolkata', state: 'West Bengal' },
      },
      {
        city: 'Ahmedabad',
        state: 'Gujarat',
        postcode: '380001',
        hub: { city: 'Ahmedabad', state: 'Gujarat' },
      },
    ],
  },
};

const NAMES: Record<Region, string[]> = {
  MY: [
    'Nur Aisyah Ahmad',
    'Tan Wei Ming',
    'Muthu Krishnan',
    'Siti Rahmah Ismail',
    'Lim Mei Ling',
    'Ahmad Faizal Hassan',
  ],
  IN: ['Asha Rao', 'Rahul Sharma', 'Priya Nair', 'Vikram Singh', 'Meera Iyer', 'Arjun Mehta'],
};

const STREETS: Record<Region, string[]> = {
  MY: ['Jalan Ampang', 'Jalan Tun Razak', 'Jalan SS2/24', 'Lorong Kulit', 'Jalan Wong Ah Fook'],
  IN: ['MG Road', 'Linking Road', 'Park Street', 'Anna Salai', 'FC Road'],
};

/** Where a format's parcels travel: EasyParcel in Malaysia, Blue Dart in India, native by recipient. */
export function regionFor(format: SimFormat, recipientCountry: string | null): Region {
  if (format === 'bluedart') return 'IN';
  if (format === 'easyparcel') return 'MY';
  return recipientCountry?.toUpperCase() === 'IN' ? 'IN' : 'MY';
}

export type Route = Record<LocationRole, SimLocation>;

function pick<T>(items: readonly T[], n: number): T {
  return items[n % items.length]!;
}

/**
 * The route and, for numbers nobody booked, a made-up recipient: both derived from the
 * tracking number's hash, so a number always travels the same way. A booked parcel's
 * destination is its recipient's city.
 */
export function routeFor(
  trackingNumber: string,
  region: Region,
  recipient: SimRecipient | null,
): { route: Route; recipient: SimRecipient } {
  const hash = digest(`route|${trackingNumber}`);
  const { origins, places } = PLACES[region];
  const origin = pick(places.slice(0, origins), hash.readUInt16BE(0));
  // Never a local delivery: the destination is served by another hub than the origin.
  const destination = pick(
    places.filter((place) => place.hub.city !== origin.hub.city),
    hash.readUInt16BE(2),
  );

  const toLocation = (place: { city: string; state: string }): SimLocation => ({
    city: place.city,
    state: place.state,
    country: region,
  });
  const chosen: SimRecipient = recipient ?? {
    name: pick(NAMES[region], hash.readUInt8(4)),
    line1: `${(hash.readUInt8(5) % 98) + 1} ${pick(STREETS[region], hash.readUInt8(6))}`,
    city: destination.city,
    state: destination.state,
    postcode: destination.postcode,
    country: region,
    phone:
      region === 'IN'
        ? `98${String(hash.readUInt32BE(8) % 1e8).padStart(8, '0')}`
        : `+6012${String(hash.readUInt32BE(8) % 1e7).padStart(7, '0')}`,
  };
  const known = places.find((place) => place.city.toLowerCase() === chosen.city.toLowerCase());
  const destinationLocation: SimLocation = {
    city: chosen.city,
    state: chosen.state,
    country: chosen.country,
  };
  return {
    route: {
      origin: toLocation(origin),
      originHub: toLocation(origin.hub),
      destinationHub: known ? { ...toLocation(known.hub), country: chosen.country } : destinationLocation,
      destination: destinationLocation,
    },
    recipient: chosen,
  };
}

// ---------------------------------------------------------------------------------------
// Playing a scenario

export interface PlayedScenario {
  /** The parcel's own scans, oldest first. */
  scans: SimScan[];
  /** Scans of the return leg, oldest first (empty until a return starts). */
  returnScans: SimScan[];
}

/**
 * The scans visible at a courier-time age. `scanDate` turns a step's offset into the
 * timestamp the courier recorded (the server maps courier time back onto the real clock).
 */
export function playScenario(
  scenario: Scenario,
  opts: { ageMs: number; route: Route; scanDate: (afterMs: number) => Date },
): PlayedScenario {
  const played: PlayedScenario = { scans: [], returnScans: [] };
  for (const step of scenario.steps) {
    if (step.after > opts.ageMs) break;
    const scan: SimScan = {
      status: step.status,
      subStatus: step.subStatus,
      text: step.text,
      at: opts.scanDate(step.after),
      location: { ...opts.route[step.location] },
    };
    (step.leg === 'return' ? played.returnScans : played.scans).push(scan);
  }
  return played;
}
