/**
 * What Blue Dart's answers mean: its scan codes in their two families and the status each
 * stands for (on the outbound leg and on a return), its `StatusType` values, its Indian
 * wall-clock dates and its places. Pure: the adapter (bluedart.ts) reads the XML and asks here.
 */
import { ShipmentStatus } from '../domain/status';
import { IST_OFFSET_MINUTES, localToUtc, parseClock, parseDayMonthYear } from './time';
import { type EventLocation } from './types';

/**
 * Blue Dart's scan families (`<ScanGroupType>`): S, movement scans (the parcel scanned in,
 * out, on to the network), and T, status scans (delivered, undelivered and why, returned).
 * The same three digits mean different things in each: S-002 is "out for delivery", T-002
 * "out of delivery area". A code is therefore always read with its family: `S-002`.
 */
export const BlueDartScanGroup = { MOVEMENT: 'S', STATUS: 'T' } as const;
export type BlueDartScanGroup = (typeof BlueDartScanGroup)[keyof typeof BlueDartScanGroup];

/** A scan's code as this adapter keeps it (`rawCode`): family and code, `T-013`. */
export function blueDartCode(group: string, code: string): string {
  return `${group}-${code}`;
}

/** Codes the simulator's renderer writes, by what they mean (the whole table is below). */
export const BlueDartCode = {
  /** S-001 "SHIPMENT ARRIVED" (inscan at a service centre). */
  ARRIVED: 'S-001',
  /** S-002 "SHIPMENT OUT FOR DELIVERY" (outscan to the delivery run). */
  OUT_FOR_DELIVERY: 'S-002',
  /** S-003 "SHIPMENT FURTHER CONNECTED" (outscanned to the network). */
  FURTHER_CONNECTED: 'S-003',
  /** S-015 "PICK UP SCAN ON FIELD": the courier has the parcel. */
  PICKED_UP: 'S-015',
  /** S-020 "SHIPMENT ARRIVED AT HUB". */
  ARRIVED_AT_HUB: 'S-020',
  /** T-000 "SHIPMENT DELIVERED" (on a return leg: delivered back to the shipper). */
  DELIVERED: 'T-000',
  /** T-013 "CONSIGNEE NOT AVAILABLE;CANT DELIVER". */
  CONSIGNEE_NOT_AVAILABLE: 'T-013',
  /** T-074 "RETURNED TO ORIGIN AT SHIPPER'S REQUEST": a return leg is cut (`RefNo="074 - <original>"`). */
  RETURN_TO_ORIGIN: 'T-074',
  /** T-130 "SHPT/PACKAGE RECD.IN DAMAGED CONDITION". */
  DAMAGED: 'T-130',
  /** T-188 "DELIVERED BACK TO SHIPPER". */
  DELIVERED_BACK_TO_SHIPPER: 'T-188',
  /** T-208 "SHIPMENT KEPT IN PARCEL SHOP FOR COLLECT". */
  PARCEL_SHOP: 'T-208',
} as const;

/** Blue Dart's status letters (`<StatusType>`, and `<ScanType>` per scan). */
export const BlueDartStatusType = {
  /** The pickup stage: "Online shipment booked" and "pickup registered" carry it too, so never a pickup by itself. */
  PICKUP: 'PU',
  UNDELIVERED: 'UD',
  DELIVERED: 'DL',
  RETURNED: 'RT',
  CANCELLED: 'CN',
  /** Not found: "Incorrect Waybill number or No Information". */
  NOT_FOUND: 'NF',
} as const;
export type BlueDartStatusType = (typeof BlueDartStatusType)[keyof typeof BlueDartStatusType];

/** A scan or status read as Waybill's status and sub-status. */
export interface Mapped {
  status: ShipmentStatus;
  subStatus: string | null;
}

const S = ShipmentStatus;
const m = (status: ShipmentStatus, subStatus: string | null = null): Mapped => ({ status, subStatus });

/**
 * Blue Dart's code table, by family and code. Blue Dart publishes no table of its own; this one
 * is read from public integrations of its tracking API (a status map keyed by ScanGroupType
 * then ScanCode, with Blue Dart's words for each) and from captured answers; the words are in
 * the comments. Every S code is a physical scan of the parcel, so the courier has it. Codes
 * not listed are UNKNOWN, never guessed.
 */
const BY_CODE: Readonly<Record<string, Mapped>> = {
  // S: movement scans.
  'S-001': m(S.IN_TRANSIT), // SHIPMENT INSCAN ("SHIPMENT ARRIVED")
  'S-002': m(S.OUT_FOR_DELIVERY), // SHIPMENT OUTSCAN ("SHIPMENT OUT FOR DELIVERY")
  'S-003': m(S.IN_TRANSIT, 'DEPARTED_FACILITY'), // OUTSCANNED TO NETWORK ("SHIPMENT FURTHER CONNECTED")
  'S-004': m(S.IN_TRANSIT), // PLASTIC BAG INSCAN
  'S-005': m(S.IN_TRANSIT), // POD SLIP INSCAN
  'S-006': m(S.IN_TRANSIT), // UNDELIVERED INSCAN
  'S-007': m(S.IN_TRANSIT), // CANVAS BAG CONSOLIDATED SCAN ("SHIPMENT ARRIVED")
  'S-008': m(S.IN_TRANSIT), // OVERAGE DELETED
  'S-009': m(S.IN_TRANSIT), // SHIPMENT-AUTOSCAN ("SHIPMENT ARRIVED")
  'S-010': m(S.IN_TRANSIT), // SHIPMENT SHORTAGE
  'S-011': m(S.IN_TRANSIT), // TRANSIT CONNECTION SCAN
  'S-012': m(S.IN_TRANSIT), // PLASTIC BAG - AUTO TALLY
  'S-013': m(S.IN_TRANSIT), // SHIPMENT CONNECTED THRU SCL APPLICATION
  'S-014': m(S.IN_TRANSIT), // PAPER WORK INSCAN
  'S-015': m(S.IN_TRANSIT, 'PICKED_UP'), // PICK UP SCAN ON FIELD
  'S-020': m(S.IN_TRANSIT, 'ARRIVED_AT_HUB'), // DIRECT CANVAS BAG SCANNED ("SHIPMENT ARRIVED AT HUB")
  'S-021': m(S.IN_TRANSIT), // MIXED CANVAS BAG SCANNED
  'S-022': m(S.IN_TRANSIT), // CANVAS BAG IN SCAN AT DESTINATION LOC
  'S-023': m(S.IN_TRANSIT), // CLUBBED CANVAS BAG SCAN
  'S-024': m(S.IN_TRANSIT), // UNDELIVERED SHIPMENT HELD AT LOCATION
  'S-025': m(S.IN_TRANSIT), // SHIPMENT SCAN TALLIED
  'S-026': m(S.IN_TRANSIT), // TRANSIT SCAN
  'S-027': m(S.IN_TRANSIT), // LOAD/VEHICLE ARRIVED AT DELIVERY LOC
  // T: status scans.
  'T-000': m(S.DELIVERED), // SHIPMENT DELIVERED
  'T-001': m(S.IN_TRANSIT, 'RESCHEDULED_BY_RECIPIENT'), // CUSTOMER ASKED FUTURE DELIVERY
  'T-002': m(S.EXCEPTION, 'OUT_OF_DELIVERY_AREA'), // OUT OF DELIVERY AREA
  'T-003': m(S.ATTEMPT_FAIL, 'PREMISES_CLOSED'), // RESIDENCE/OFFICE CLOSED;CANT DELIVER
  // A holiday is no delivery attempt: the parcel waits for the next working day.
  'T-005': m(S.IN_TRANSIT, 'HOLIDAY'), // HOLIDAY:DELIVERY ON NEXT WORKING DAY
  'T-008': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // ADDRESS UNLOCATABLE; CANNOT DELIVER
  'T-009': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // ADDRESS INCOMPLETE, CANNOT DELIVER
  'T-010': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // ADDRESS INCORRECT; CANNOT DELIVER
  'T-011': m(S.ATTEMPT_FAIL, 'REFUSED'), // CONSIGNEE REFUSED TO ACCEPT
  'T-012': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // NO SUCH CO./CNEE AT GIVEN ADDRESS
  'T-013': m(S.ATTEMPT_FAIL, 'RECIPIENT_ABSENT'), // CONSIGNEE NOT AVAILABLE;CANT DELIVER
  'T-014': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // CNEE SHIFTED FROM THE GIVEN ADDRESS
  'T-016': m(S.RETURNING, 'RETURN_TO_ORIGIN'), // RTO FROM ORIGIN S.C. ON SAME AWB
  'T-019': m(S.ATTEMPT_FAIL, 'RECIPIENT_ABSENT'), // CONSIGNEE NOT YET CHECKED IN
  'T-020': m(S.ATTEMPT_FAIL, 'RECIPIENT_ABSENT'), // CONSIGNEE OUT OF STATION
  'T-021': m(S.EXCEPTION, 'LOST'), // LOST SHIPMENT
  'T-025': m(S.EXCEPTION, 'DESTROYED'), // SHIPMENT DESTROYED/ABANDONED
  'T-029': m(S.IN_TRANSIT, 'DELAYED'), // DELIVERY SCHEDULED FOR NEXT WORKING DAY
  'T-036': m(S.IN_TRANSIT, 'DELAYED'), // LATE ARRIVAL/SCHED. FOR NEXT WORKING DAY
  'T-062': m(S.ATTEMPT_FAIL, 'CHARGES_PENDING'), // "NECESSARY CHARGES PENDING FROM CONSIGNEE"
  'T-065': m(S.IN_TRANSIT), // IN TRANSIT
  'T-069': m(S.ATTEMPT_FAIL, 'PREMISES_CLOSED'), // CNEE OFFICE CLOSED;UNABLE TO DELIVER
  'T-074': m(S.RETURNING, 'RETURN_TO_ORIGIN'), // RETURNED TO ORIGIN AT SHIPPER'S REQUEST
  'T-083': m(S.IN_TRANSIT, 'DELAYED'), // SHIPMENT HELD IN NETWORK
  'T-087': m(S.IN_TRANSIT), // SHPT PROCESSED AT LOCATION
  'T-092': m(S.OUT_FOR_DELIVERY), // SHIPMENT OUT FOR DELIVERY
  'T-098': m(S.CANCELLED, 'PICKUP_CANCELLED'), // TCL PICKUP CANCELLED
  'T-104': m(S.RETURNING, 'RETURN_TO_ORIGIN'), // RETURN TO SHIPPER
  'T-118': m(S.RETURNED), // DELIVERED BACK TO SHIPPER
  'T-123': m(S.RETURNING, 'RETURN_TO_ORIGIN'), // RTO FROM HUB ON FRESH AWB
  'T-129': m(S.EXCEPTION, 'DAMAGED'), // DAMAGED SHIPMENT, CASE CLOSED
  'T-130': m(S.EXCEPTION, 'DAMAGED'), // SHPT/PACKAGE RECD.IN DAMAGED CONDITION
  'T-135': m(S.EXCEPTION, 'CONFISCATED'), // SHPT.CONFISCATED,CASE CLOSED
  'T-137': m(S.ATTEMPT_FAIL, 'AREA_NOT_ACCESSIBLE'), // DELIVERY AREA NOT ACCESSIBLE
  'T-139': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // NEED DEPT NAME/EXTN.NO:UNABLE TO DELIVER
  'T-175': m(S.ATTEMPT_FAIL, 'RECIPIENT_ABSENT'), // CONSIGNEE NOT AVAILABLE; CANT DELIVER
  'T-188': m(S.RETURNED), // DELIVERED BACK TO SHIPPER
  'T-201': m(S.ATTEMPT_FAIL, 'REFUSED'), // E-TAIL; REFUSED TO ACCEPT SHIPMENT
  'T-203': m(S.ATTEMPT_FAIL, 'REFUSED'), // E-TAIL; REFUSED-OPEN DELIVERY REQUEST
  'T-204': m(S.ATTEMPT_FAIL, 'REFUSED'), // E-TAIL; REFUSED-WRONG PROD DESP/NOT ORDERED
  'T-206': m(S.AVAILABLE_FOR_PICKUP, 'PARCEL_LOCKER'), // SHIPMENT KEPT IN PARCEL LOCKER
  'T-208': m(S.AVAILABLE_FOR_PICKUP, 'PARCEL_SHOP'), // SHIPMENT KEPT IN PARCEL SHOP FOR COLLECT
  'T-217': m(S.ATTEMPT_FAIL, 'ADDRESS_PROBLEM'), // CONSIGNEE HAS GIVEN BDE HAL ADDRESS
  'T-221': m(S.IN_TRANSIT), // SHPT RCD IN TRANSIT LOC; BEING CONNECTED
  'T-222': m(S.IN_TRANSIT, 'ARRIVED_AT_HUB'), // SHPT RCVD AT DESTN LOC FOR DLVRY ATTEMPT
};

/** Codes that cut a return leg: its `RefNo` reads `<code> - <original waybill>`. */
const RETURN_LEG_CODES: ReadonlySet<string> = new Set(
  Object.entries(BY_CODE)
    .filter(([code, meaning]) => code.startsWith('T-') && meaning.status === S.RETURNING)
    .map(([code]) => code.slice(2)),
);

/** On a return leg, these mean the parcel is back with the shipper. */
const BACK_WITH_SHIPPER: ReadonlySet<string> = new Set(['T-000', 'T-118', 'T-188']);

/**
 * How far along its life each status puts a parcel, for scans in the same minute (Blue Dart
 * times have no seconds). The taxonomy's order, with two adjustments: out for delivery, a
 * failed attempt, held for collection and an exception form one stage (a parcel goes back
 * and forth between them, so the courier's order decides), and that stage comes before
 * delivered (a delivered parcel only moves on into a return).
 */
const STAGE: Readonly<Record<ShipmentStatus, number>> = {
  [S.PENDING]: 0,
  [S.INFO_RECEIVED]: 1,
  [S.IN_TRANSIT]: 2,
  [S.OUT_FOR_DELIVERY]: 3,
  [S.AVAILABLE_FOR_PICKUP]: 3,
  [S.ATTEMPT_FAIL]: 3,
  [S.EXCEPTION]: 3,
  [S.DELIVERED]: 4,
  [S.RETURNING]: 5,
  [S.RETURNED]: 6,
  [S.CANCELLED]: 7,
  [S.EXPIRED]: 7,
};

/**
 * For a shipment without one readable scan: its status letters, read cautiously. Only a scan
 * can be a pickup, so PU ("Online shipment booked", "pickup registered") and UD stay PENDING.
 */
const BY_STATUS_TYPE: Readonly<Record<string, Mapped>> = {
  [BlueDartStatusType.DELIVERED]: m(S.DELIVERED),
  [BlueDartStatusType.RETURNED]: m(S.RETURNING, 'RETURN_TO_ORIGIN'),
  [BlueDartStatusType.CANCELLED]: m(S.CANCELLED),
};

/**
 * A scan in taxonomy terms, by its family and code (`T-013`, see {@link blueDartCode}). On a
 * return leg every known scan means the parcel is on its way back (RETURNING) until its
 * delivered scan, which means it is back with the shipper (RETURNED). Null for a code the
 * table does not have: the caller keeps it as UNKNOWN.
 */
export function mapBlueDartScan(code: string, leg: 'outbound' | 'return' = 'outbound'): Mapped | null {
  const mapped = BY_CODE[code];
  if (!mapped) return null;
  if (leg === 'return')
    return BACK_WITH_SHIPPER.has(code) ? m(S.RETURNED) : m(S.RETURNING, 'RETURN_TO_ORIGIN');
  return mapped;
}

/**
 * A Blue Dart date and time as an instant: `07-Jun-2012` or `07 June 2012` with `13:05`,
 * Indian Standard Time (UTC+05:30, no zone in the payload). Null when unreadable.
 */
export function parseBlueDartDateTime(date: string, time: string): Date | null {
  const day = parseDayMonthYear(date);
  const clock = parseClock(time);
  if (!day || !clock) return null;
  return localToUtc({ ...day, ...clock }, IST_OFFSET_MINUTES);
}

/**
 * The promised delivery day as an instant: the end of that day in India (23:59:59 IST),
 * since Blue Dart promises a day, not a time, and the parcel is on time until it is over.
 */
export function parseBlueDartEta(date: string): Date | null {
  const day = parseDayMonthYear(date);
  return day ? localToUtc({ ...day, hour: 23, minute: 59, second: 59 }, IST_OFFSET_MINUTES) : null;
}

/** A scan's `<ScannedLocation>` (a city name, in India); null or blank: nothing known. */
export function blueDartLocation(text: string | null): EventLocation {
  const city = text?.trim() ?? '';
  return city === '' ? { city: null, state: null, country: null } : { city, state: null, country: 'IN' };
}

/** Is this `RefNo` prefix one Blue Dart gives a return leg (`"074 - <original>"`)? */
export function isReturnLegCode(prefix: string): boolean {
  return RETURN_LEG_CODES.has(prefix);
}

/** Orders two statuses seen in the same minute by how far along a parcel they come. */
export function compareStage(a: ShipmentStatus, b: ShipmentStatus): number {
  return STAGE[a] - STAGE[b];
}

/** The status Blue Dart's own `StatusType` stands for, when a shipment carries no scan. */
export function statusOfStatusType(statusType: string | null): Mapped {
  return (statusType !== null ? BY_STATUS_TYPE[statusType] : undefined) ?? m(S.PENDING);
}
