/**
 * Waybill's push format: what a courier POSTs to `/v1/webhooks/couriers/:courier` when a
 * parcel is scanned, instead of waiting to be polled. Each scan carries the courier's own
 * status code, text, time and location, as its tracking API would show them, and is read
 * with that courier's own rules (the same functions its adapter uses for polled scans), so
 * a pushed scan and a later poll of the same scan get the same event key and are one row.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { EventSource, isShipmentStatus, ShipmentStatus } from '../domain/status';
import { blueDartCode, blueDartLocation, mapBlueDartScan, parseBlueDartDateTime } from './bluedart-codes';
import { mapEasyParcelStatus, parseEasyParcelDate, parseEasyParcelLocation } from './easyparcel-codes';
import { easyParcelEventKey, eventKey } from './event-key';
import type { CourierLog } from './http';
import { parseIsoInstant } from './time';
import { CourierCode, type EventLocation, type NormalisedEvent } from './types';
import { holdStatusThroughUnknown, isUnknownCode, UNKNOWN_SUB_STATUS } from './unknown-codes';

/** Most scans one push may carry (a courier batching a day's scans splits them). */
export const PUSH_MAX_EVENTS = 50;

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const PushedLocation = Type.Union(
  [
    Type.String({
      maxLength: 200,
      description:
        "The courier's own location text, read as its tracking API's: EasyParcel `Place, State, MY` (read from the right), Blue Dart the scanned location (India)",
    }),
    Type.Object(
      {
        city: Nullable(Type.String({ maxLength: 100 })),
        state: Nullable(Type.String({ maxLength: 100 })),
        country: Nullable(
          Type.String({ pattern: '^[A-Z]{2}$', maxLength: 2, description: 'ISO 3166-1 alpha-2' }),
        ),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'Where the scan happened; null or absent when the courier does not say' },
);

export const PushedScan = Type.Object(
  {
    code: Type.String({
      minLength: 1,
      maxLength: 64,
      description:
        "The courier's status code as its tracking API writes it: EasyParcel `shipment_status_code` of its 0-11 table, as its webhooks send it (e.g. `4`), Blue Dart `ScanGroupType`-`ScanCode` (e.g. `T-013`, `S-002`), simulator `STATUS` or `STATUS.SUB_STATUS`",
    }),
    text: Type.Optional(
      Nullable(
        Type.String({
          maxLength: 500,
          description:
            "The courier's status text; some statuses exist only in it (EasyParcel's out for delivery)",
        }),
      ),
    ),
    occurredAt: Type.String({
      minLength: 1,
      maxLength: 64,
      description:
        'When the scan happened: ISO 8601 with a zone, or the courier\'s own local format (EasyParcel `YYYY-MM-DD HH:mm:ss`: UTC for its own "Schedule In Arrangement", Malaysia time for the couriers\' scans; Blue Dart `07-Jun-2025 13:05` India time)',
    }),
    location: Type.Optional(PushedLocation),
  },
  { additionalProperties: false },
);
export type PushedScan = Static<typeof PushedScan>;

export const CourierPush = Type.Object(
  {
    eventId: Type.String({
      pattern: '^[A-Za-z0-9._:-]{1,128}$',
      maxLength: 128,
      description:
        "The courier's id of this push: a retry of the same push must carry the same id (it is answered `duplicate` and changes nothing)",
    }),
    trackingNumber: Type.String({
      pattern: '^[A-Za-z0-9-]{4,40}$',
      maxLength: 40,
      description: 'The tracking number the scans belong to',
    }),
    events: Type.Array(PushedScan, { minItems: 1, maxItems: PUSH_MAX_EVENTS }),
  },
  { $id: 'CourierPush', additionalProperties: false, description: 'Scans a courier pushes' },
);
export type CourierPush = Static<typeof CourierPush>;

/** A push the courier has to fix: a code or time its own format does not allow. */
export class InvalidPushError extends Error {
  override name = 'InvalidPushError';
}

interface Reading {
  status: ShipmentStatus;
  subStatus: string | null;
  rawCode: string;
  at: Date;
  location: EventLocation;
  /** The event key, when the courier's adapter keys its scans otherwise than by place (EasyParcel). */
  key?: string;
}

type Reader = (scan: PushedScan, what: string, log: CourierLog | undefined) => Reading;

/** A location object as given (absent fields are unknown); text and null go to `fromText`. */
function locationOf(
  location: PushedScan['location'],
  fromText: (text: string | null) => EventLocation,
): EventLocation {
  if (location === undefined || location === null) return fromText(null);
  if (typeof location === 'string') return fromText(location);
  return { city: location.city ?? null, state: location.state ?? null, country: location.country ?? null };
}

/**
 * A code the courier's table does not have: kept as UNKNOWN with its raw code, holding the
 * status of the pushed scan before it (as when polled; see {@link normalisePush}).
 */
function unmapped(courier: CourierCode, code: string, what: string, log: CourierLog | undefined) {
  log?.warn({ courier, code, where: what }, 'a courier pushed a status code outside its table');
  return { status: ShipmentStatus.PENDING, subStatus: UNKNOWN_SUB_STATUS };
}

const readEasyParcel: Reader = (scan, what, log) => {
  if (!/^\d{1,3}$/.test(scan.code.trim())) {
    throw new InvalidPushError(`${what}.code must be an EasyParcel shipment_status_code such as 4`);
  }
  const code = Number(scan.code.trim());
  const at = parseEasyParcelDate(scan.occurredAt, scan.text ?? null);
  if (at === null) {
    throw new InvalidPushError(
      `${what}.occurredAt must be ISO 8601 with a zone or YYYY-MM-DD HH:mm:ss (Malaysia time, UTC for EasyParcel's own events)`,
    );
  }
  const mapped =
    mapEasyParcelStatus(code, scan.text ?? null) ?? unmapped(CourierCode.EASYPARCEL, String(code), what, log);
  return {
    ...mapped,
    rawCode: String(code),
    at,
    location: locationOf(scan.location, parseEasyParcelLocation),
    // As its adapter keys a polled scan: the webhook's log has no place (event-key.ts).
    key: easyParcelEventKey(String(code), at.toISOString(), scan.text ?? null),
  };
};

/** Blue Dart writes `07-Jun-2025 13:05` (or `07 June 2025 13:05`) in India time. */
function blueDartTime(text: string): Date | null {
  const iso = parseIsoInstant(text);
  if (iso) return iso;
  const match = /^(.+?)\s+(\d{1,2}:\d{2}(?::\d{2})?)$/.exec(text.trim());
  return match ? parseBlueDartDateTime(match[1]!, match[2]!) : null;
}

/** A Blue Dart scan code with its family, as the tracking answer gives them: `T-013`, `S-002`. */
const BLUEDART_CODE = /^([ST])-(\d{3})$/;

const readBlueDart: Reader = (scan, what, log) => {
  const match = BLUEDART_CODE.exec(scan.code.trim());
  if (!match) {
    throw new InvalidPushError(
      `${what}.code must be a Blue Dart ScanGroupType and 3-digit ScanCode such as T-013 or S-002`,
    );
  }
  const code = blueDartCode(match[1]!, match[2]!);
  const at = blueDartTime(scan.occurredAt);
  if (at === null) {
    throw new InvalidPushError(
      `${what}.occurredAt must be ISO 8601 with a zone or DD-Mon-YYYY HH:mm (India time)`,
    );
  }
  const mapped = mapBlueDartScan(code) ?? unmapped(CourierCode.BLUEDART, code, what, log);
  return { ...mapped, rawCode: code, at, location: locationOf(scan.location, blueDartLocation) };
};

const SIMULATOR_CODE = /^([A-Z_]+)(?:\.([A-Z_]+))?$/;

/** The simulator's native codes name the taxonomy directly: `STATUS` or `STATUS.SUB_STATUS`. */
const readSimulator: Reader = (scan, what) => {
  const match = SIMULATOR_CODE.exec(scan.code);
  if (!match || !isShipmentStatus(match[1])) {
    throw new InvalidPushError(`${what}.code must be STATUS or STATUS.SUB_STATUS with a known status`);
  }
  const at = parseIsoInstant(scan.occurredAt);
  if (at === null) throw new InvalidPushError(`${what}.occurredAt must be ISO 8601 with a zone`);
  return {
    status: match[1],
    subStatus: match[2] ?? null,
    rawCode: scan.code,
    at,
    location: locationOf(scan.location, (text) => ({ city: text, state: null, country: null })),
  };
};

/** The shop's own drivers report through the driver API (docs/fleet.md), never by webhook. */
const readFleet: Reader = () => {
  throw new InvalidPushError('fleet parcels are reported by their drivers through POST /v1/driver/reports');
};

const READERS: Readonly<Record<CourierCode, Reader>> = {
  [CourierCode.EASYPARCEL]: readEasyParcel,
  [CourierCode.BLUEDART]: readBlueDart,
  [CourierCode.SIMULATOR]: readSimulator,
  [CourierCode.FLEET]: readFleet,
};

/** How far ahead of our clock a pushed scan may be timed by default (ms): couriers' clocks drift a little. */
export const PUSH_MAX_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The pushed scans as tracking events (source `push`), oldest first, one per event key.
 * A scan with a code outside the courier's table holds the status of the pushed scan before
 * it; one with no known scan before it in the push is left out (logged): the push does not
 * say where the parcel is, and the next poll, which sees the whole history, records it.
 * Throws {@link InvalidPushError} naming the first scan the courier's format does not allow,
 * or timed more than `clock.maxSkewMs` ahead of `clock.nowMs`: the shipment workflow takes
 * the newest scan's time as the last scan, so one in the future would hold off no-scan
 * expiry for as long as it is ahead.
 */
export function normalisePush(
  courier: CourierCode,
  scans: readonly PushedScan[],
  log?: CourierLog,
  clock: { nowMs: number; maxSkewMs: number } = { nowMs: Date.now(), maxSkewMs: PUSH_MAX_CLOCK_SKEW_MS },
): NormalisedEvent[] {
  const read = READERS[courier];
  const seen = new Set<string>();
  const ordered = scans
    .map((scan, i): NormalisedEvent => {
      const r = read(scan, `events[${i}]`, log);
      const aheadMs = r.at.getTime() - clock.nowMs;
      if (aheadMs > clock.maxSkewMs) {
        throw new InvalidPushError(
          `events[${i}].occurredAt is ${Math.round(aheadMs / 1000)} s ahead of our clock; at most ${Math.round(clock.maxSkewMs / 1000)} s is allowed: check the time zone and the sender's clock`,
        );
      }
      const occurredAt = r.at.toISOString();
      return {
        key: r.key ?? eventKey(courier, r.rawCode, occurredAt, r.location),
        status: r.status,
        subStatus: r.subStatus,
        rawCode: r.rawCode,
        rawText: scan.text ?? null,
        occurredAt,
        occurredAtRaw: scan.occurredAt,
        location: r.location,
        source: EventSource.PUSH,
      };
    })
    .map((event, i) => ({ event, i }))
    .sort((a, b) => a.event.occurredAt.localeCompare(b.event.occurredAt) || a.i - b.i)
    .map(({ event }) => event);
  const firstKnown = ordered.findIndex((event) => !isUnknownCode(event));
  const unplaced = firstKnown === -1 ? ordered.length : firstKnown;
  if (unplaced > 0) {
    log?.warn(
      { courier, codes: ordered.slice(0, unplaced).map((e) => e.rawCode) },
      'pushed scans with codes outside the table and no known scan before them: left for the next poll',
    );
  }
  return (
    holdStatusThroughUnknown(ordered.slice(unplaced))
      // The same scan twice in one push is one event (the read model would keep one row anyway).
      .filter((event) => {
        if (seen.has(event.key)) return false;
        seen.add(event.key);
        return true;
      })
  );
}
