/**
 * The Blue Dart adapter (XML tracking, JSON booking; wire format in README.md next to this
 * file). Blue Dart writes Indian wall-clock times without a zone, answers an unknown
 * waybill with an empty `<Shipment>`, an outage with an HTML page, and a return to origin
 * with a second `<Shipment>` (the return leg) that this adapter folds into the original.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { EventSource, ShipmentStatus } from '../domain/status';
import { eventKey } from './event-key';
import {
  bodySnippet,
  cancelRefusal,
  courierRequest,
  DEFAULT_TIMEOUT_MS,
  isObject,
  parseJson,
  rejected,
  statusError,
  unavailable,
  type CourierLog,
  type HttpAnswer,
  type HttpContext,
  type JsonObject,
} from './http';
import { IST_OFFSET_MINUTES, localToUtc, parseClock, parseDayMonthYear } from './time';
import {
  CourierCode,
  CourierRefusal,
  type Booking,
  type BookingRequest,
  type CourierAdapter,
  type EventLocation,
  type NormalisedEvent,
  type TrackResult,
} from './types';

/** Settings of {@link createBlueDartAdapter} (src/config.ts supplies them). */
export interface BlueDartAdapterOptions {
  /** API root; the README's paths are appended to it. */
  baseUrl: string;
  loginId: string;
  licenceKey: string;
  fetch?: typeof fetch;
  /** Time limit of one HTTP call (ms). Default 10 s. */
  timeoutMs?: number;
  /** Wall clock (ms since the epoch), for Retry-After dates. */
  now?: () => number;
  log?: CourierLog;
}

/** Most waybills one tracking call carries. */
export const BLUEDART_MAX_BATCH = 25;

/** Blue Dart's per-scan codes (`<ScanCode>`), shared with the simulator's renderer. */
export const BlueDartScanCode = {
  DELIVERED: '000',
  MANIFESTED: '001',
  IN_TRANSIT: '002',
  ARRIVED_AT_HUB: '003',
  OUT_FOR_DELIVERY: '004',
  UNDELIVERED: '005',
  HELD_FOR_COLLECTION: '006',
  EXCEPTION: '007',
  PICKED_UP: '015',
  RETURN_INITIATED: '074',
  CANCELLED: '099',
  RETURNED_TO_SHIPPER: '188',
} as const;
export type BlueDartScanCode = (typeof BlueDartScanCode)[keyof typeof BlueDartScanCode];

/** Blue Dart's status letters (`<StatusType>`, and `<ScanType>` per scan). */
export const BlueDartStatusType = {
  PICKED_UP: 'PU',
  UNDELIVERED: 'UD',
  DELIVERED: 'DL',
  RETURNED: 'RT',
  CANCELLED: 'CN',
} as const;
export type BlueDartStatusType = (typeof BlueDartStatusType)[keyof typeof BlueDartStatusType];

interface Mapped {
  status: ShipmentStatus;
  subStatus: string | null;
}

const S = ShipmentStatus;
const C = BlueDartScanCode;

const BY_SCAN_CODE: Readonly<Record<string, Mapped>> = {
  [C.MANIFESTED]: { status: S.INFO_RECEIVED, subStatus: null },
  [C.PICKED_UP]: { status: S.IN_TRANSIT, subStatus: 'PICKED_UP' },
  [C.IN_TRANSIT]: { status: S.IN_TRANSIT, subStatus: null },
  [C.ARRIVED_AT_HUB]: { status: S.IN_TRANSIT, subStatus: null },
  [C.OUT_FOR_DELIVERY]: { status: S.OUT_FOR_DELIVERY, subStatus: null },
  [C.UNDELIVERED]: { status: S.ATTEMPT_FAIL, subStatus: 'RECIPIENT_ABSENT' },
  [C.HELD_FOR_COLLECTION]: { status: S.AVAILABLE_FOR_PICKUP, subStatus: null },
  [C.EXCEPTION]: { status: S.EXCEPTION, subStatus: null },
  [C.DELIVERED]: { status: S.DELIVERED, subStatus: null },
  [C.RETURN_INITIATED]: { status: S.RETURNING, subStatus: 'RETURN_TO_ORIGIN' },
  [C.RETURNED_TO_SHIPPER]: { status: S.RETURNED, subStatus: null },
  [C.CANCELLED]: { status: S.CANCELLED, subStatus: null },
};

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

/** For a scan code we do not know, and for a shipment without scans: the status letters. */
const BY_STATUS_TYPE: Readonly<Record<string, Mapped>> = {
  [BlueDartStatusType.PICKED_UP]: { status: S.IN_TRANSIT, subStatus: null },
  [BlueDartStatusType.UNDELIVERED]: { status: S.IN_TRANSIT, subStatus: null },
  [BlueDartStatusType.DELIVERED]: { status: S.DELIVERED, subStatus: null },
  [BlueDartStatusType.RETURNED]: { status: S.RETURNING, subStatus: 'RETURN_TO_ORIGIN' },
  [BlueDartStatusType.CANCELLED]: { status: S.CANCELLED, subStatus: null },
};

/** Code 007 covers several troubles; its text tells which. */
function exceptionDetail(text: string | null): string | null {
  const t = text ?? '';
  if (/damage/i.test(t)) return 'DAMAGED';
  if (/\blost\b|missing/i.test(t)) return 'LOST';
  if (/address/i.test(t)) return 'ADDRESS_PROBLEM';
  return null;
}

/**
 * A scan in taxonomy terms, by its 3-digit code (README table). On a return leg every scan
 * means the parcel is on its way back (RETURNING) until its delivered scan, which means it
 * is back with the shipper (RETURNED). Null for a code the README does not list.
 */
export function mapBlueDartScan(
  code: string,
  text: string | null,
  leg: 'outbound' | 'return' = 'outbound',
): Mapped | null {
  if (leg === 'return') {
    if (code === C.DELIVERED || code === C.RETURNED_TO_SHIPPER)
      return { status: S.RETURNED, subStatus: null };
    return { status: S.RETURNING, subStatus: 'RETURN_TO_ORIGIN' };
  }
  const mapped = BY_SCAN_CODE[code];
  if (!mapped) return null;
  return code === C.EXCEPTION ? { ...mapped, subStatus: exceptionDetail(text) } : mapped;
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

/** Elements naming the consignee or whoever signed: personal data, never stored. */
const PERSONAL_FIELD = /^(consignee|receivedby|receiver)/i;

/** `shipment` without its personal fields (a shallow copy; nested scans hold none). */
export function scrubShipment(shipment: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(shipment).filter(([key]) => !PERSONAL_FIELD.test(key)));
}

/** The same, for raw XML text about to be logged (a cut-off body may still name people). */
function redactXml(text: string): string {
  return text.replace(/<((?:Consignee|ReceivedBy|Receiver)\w*)>[^<]*/gi, '<$1>[removed]');
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  // Keep every value as text: "000" is a code and "110001" a pincode, not numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => name === 'Shipment' || name === 'ScanDetail',
});

/** A shape problem in an answer; the adapter turns it into a retryable CourierUnavailableError. */
class ShapeError extends Error {}

/** The text of a child element ('' and absent both read as null). */
function textOf(node: JsonObject, name: string): string | null {
  const value = node[name];
  const text = isObject(value) ? value['#text'] : value;
  if (typeof text !== 'string' && typeof text !== 'number') return null;
  const trimmed = String(text).trim();
  return trimmed === '' ? null : trimmed;
}

function scansOf(shipment: JsonObject): JsonObject[] {
  const scans = shipment.Scans;
  if (!isObject(scans)) return [];
  const details = scans.ScanDetail;
  return Array.isArray(details) ? details.filter(isObject) : [];
}

function isHtml(answer: HttpAnswer): boolean {
  return answer.contentType === 'text/html' || /^\s*(<!doctype html|<html)/i.test(answer.text);
}

/**
 * The Blue Dart adapter: tracks up to 25 waybills per call (one TrackResult per number, in
 * the order asked, return legs folded in), books and cancels. Failures: a network error,
 * timeout, 429, 5xx, HTML page or unreadable XML is a retryable CourierUnavailableError; any
 * other refusal (bad licence key, invalid booking, cancel after pickup) a CourierRejectedError.
 */
export function createBlueDartAdapter(opts: BlueDartAdapterOptions): CourierAdapter {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const log = opts.log;
  const ctx: HttpContext = {
    courier: CourierCode.BLUEDART,
    label: 'Blue Dart',
    fetch: opts.fetch ?? fetch,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    log,
    now: opts.now ?? Date.now,
    redact: redactXml,
  };
  const credentials = { loginid: opts.loginId, lickey: opts.licenceKey };

  function broken(answer: HttpAnswer, message: string): Error {
    return unavailable(ctx, message, { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) });
  }

  function toEvent(scan: JsonObject, what: string, leg: 'outbound' | 'return'): NormalisedEvent {
    const code = textOf(scan, 'ScanCode');
    const text = textOf(scan, 'Scan');
    const date = textOf(scan, 'ScanDate');
    const time = textOf(scan, 'ScanTime');
    if (code === null) throw new ShapeError(`${what} has no ScanCode`);
    const at = date !== null && time !== null ? parseBlueDartDateTime(date, time) : null;
    if (at === null) throw new ShapeError(`${what} has no readable ScanDate/ScanTime: ${date} ${time}`);
    const location = blueDartLocation(textOf(scan, 'ScannedLocation'));
    const mapped = mapBlueDartScan(code, text, leg) ?? unmapped(code, textOf(scan, 'ScanType'), what);
    const occurredAt = at.toISOString();
    return {
      key: eventKey(CourierCode.BLUEDART, code, occurredAt, location),
      status: mapped.status,
      subStatus: mapped.subStatus,
      rawCode: code,
      rawText: text,
      occurredAt,
      occurredAtRaw: `${date} ${time}`,
      location,
      source: EventSource.POLL,
    };
  }

  /** A code not in the README: read its status letters, and say so in the log. */
  function unmapped(code: string, type: string | null, what: string): Mapped {
    log?.warn(
      { courier: CourierCode.BLUEDART, code, type, where: what },
      'Blue Dart sent an unknown scan code',
    );
    return (
      (type !== null ? BY_STATUS_TYPE[type] : undefined) ?? {
        status: S.EXCEPTION,
        subStatus: 'UNMAPPED_CODE',
      }
    );
  }

  function toResult(awb: string, shipment: JsonObject | undefined, legs: JsonObject[]): TrackResult {
    if (!shipment) {
      // One result per number whatever the answer holds; the workflow only gives up after
      // several "not found" answers in a row.
      log?.warn(
        { courier: CourierCode.BLUEDART, trackingNumber: awb },
        'Blue Dart left a waybill out of its answer',
      );
      return { kind: 'not_found', trackingNumber: awb };
    }
    // An unknown waybill: a <Shipment> without <Status> (sometimes with an <Error>).
    if (textOf(shipment, 'Status') === null || textOf(shipment, 'Error') !== null) {
      return { kind: 'not_found', trackingNumber: awb };
    }

    // Scans come newest first; `order` restores oldest first for scans in the same minute,
    // and puts the return leg after the outbound scans. Within one minute a later stage never
    // comes first: at high simulator time scales the original's "returned to shipper" scan
    // shares a minute with the return leg's last scans, and must not precede them.
    const collected: { event: NormalisedEvent; order: number }[] = [];
    const add = (source: JsonObject, label: string, leg: 'outbound' | 'return') => {
      const scans = scansOf(source);
      const start = collected.length;
      scans.forEach((scan, i) => {
        collected.push({
          event: toEvent(scan, `${label}.Scans[${i}]`, leg),
          order: start + scans.length - 1 - i,
        });
      });
    };
    add(shipment, awb, 'outbound');
    for (const leg of legs) add(leg, `${awb}/return ${String(leg['@WaybillNo'])}`, 'return');

    const seen = new Set<string>();
    const events = collected
      .sort(
        (a, b) =>
          a.event.occurredAt.localeCompare(b.event.occurredAt) ||
          STAGE[a.event.status] - STAGE[b.event.status] ||
          a.order - b.order,
      )
      .map(({ event }) => event)
      // The same scan listed twice would be one row anyway (same key); keep the list honest.
      .filter((event) => {
        if (seen.has(event.key)) return false;
        seen.add(event.key);
        return true;
      });

    // The snapshot is the last event in this order (Blue Dart's own status only without scans).
    const newest = events[events.length - 1];
    const statusType = textOf(shipment, 'StatusType');
    const snapshot: Mapped = newest
      ? { status: newest.status, subStatus: newest.subStatus }
      : ((statusType !== null ? BY_STATUS_TYPE[statusType] : undefined) ?? {
          status: S.PENDING,
          subStatus: null,
        });

    const etaText = textOf(shipment, 'ExpectedDeliveryDate');
    const eta = etaText === null ? null : parseBlueDartEta(etaText);
    if (etaText !== null && eta === null) {
      log?.warn(
        { courier: CourierCode.BLUEDART, trackingNumber: awb, etaText },
        'Blue Dart sent an unreadable delivery date',
      );
    }

    const raw: JsonObject = scrubShipment(shipment);
    if (legs.length > 0) raw.ReturnLegs = legs.map(scrubShipment);
    return {
      kind: 'found',
      trackingNumber: awb,
      ...snapshot,
      eta: eta?.toISOString() ?? null,
      events,
      raw,
    };
  }

  function parseTracking(answer: HttpAnswer, trackingNumbers: string[]): TrackResult[] {
    if (XMLValidator.validate(answer.text) !== true) {
      throw broken(answer, `Blue Dart answered tracking with a body that is not XML (${answer.status})`);
    }
    const document: unknown = xml.parse(answer.text);
    const root = isObject(document) ? document.ShipmentData : undefined;
    if (root === undefined) throw broken(answer, 'Blue Dart answered tracking without <ShipmentData>');
    const shipments = isObject(root) && Array.isArray(root.Shipment) ? root.Shipment.filter(isObject) : [];
    if (shipments.length === 0 && isObject(root) && textOf(root, 'Error') !== null) {
      // The whole call failed (e.g. "service unavailable"): worth another try, not a verdict.
      throw broken(answer, `Blue Dart answered tracking with an error: ${textOf(root, 'Error')}`);
    }

    const byWaybill = new Map<string, JsonObject>();
    for (const shipment of shipments) {
      const waybill = shipment['@WaybillNo'];
      if (typeof waybill === 'string' && !byWaybill.has(waybill)) byWaybill.set(waybill, shipment);
    }
    try {
      return trackingNumbers.map((awb) => {
        // Return legs point at the original waybill through RefNo.
        const legs = shipments.filter((s) => s['@RefNo'] === awb && s['@WaybillNo'] !== awb);
        return toResult(awb, byWaybill.get(awb), legs);
      });
    } catch (err) {
      if (err instanceof ShapeError)
        throw broken(answer, `Blue Dart's tracking answer has an unexpected shape: ${err.message}`);
      throw err;
    }
  }

  /**
   * The JSON body of a 2xx booking or cancel answer; anything else is the error to throw.
   * `cancelling` names the waybill of a cancel: only a cancel's refusal can say the parcel
   * is already picked up.
   */
  function jsonBody(
    answer: HttpAnswer,
    what: string,
    refusals: Partial<Record<number, string>> = {},
    cancelling?: string,
  ): JsonObject {
    if (answer.status === 429 || answer.status >= 500) throw statusError(ctx, answer, what);
    if (isHtml(answer))
      throw broken(answer, `Blue Dart answered ${what} with an HTML page (${answer.status})`);
    if (answer.status < 200 || answer.status >= 300) {
      const refusal = parseJson(answer.text);
      const message = isObject(refusal) && typeof refusal.Message === 'string' ? refusal.Message : undefined;
      if (cancelling === undefined) {
        throw statusError(ctx, answer, what, [refusals[answer.status], message].filter(Boolean).join(': '));
      }
      const reason = cancelRefusal(answer.status, message);
      const known =
        reason === CourierRefusal.COLLECTED
          ? `${cancelling} is already picked up and can no longer be cancelled`
          : refusals[answer.status];
      throw statusError(ctx, answer, what, [known, message].filter(Boolean).join(': '), reason);
    }
    const body = parseJson(answer.text);
    if (!isObject(body))
      throw broken(answer, `Blue Dart answered ${what} with a body that is not a JSON object`);
    return body;
  }

  function jsonCall(path: string, payload: unknown): Promise<HttpAnswer> {
    return courierRequest(ctx, `${base}${path}?${new URLSearchParams(credentials).toString()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(payload),
    });
  }

  return {
    code: CourierCode.BLUEDART,
    maxBatch: BLUEDART_MAX_BATCH,

    async track(trackingNumbers: string[]): Promise<TrackResult[]> {
      if (trackingNumbers.length === 0) return [];
      if (trackingNumbers.length > BLUEDART_MAX_BATCH) {
        throw new Error(
          `Blue Dart tracks at most ${BLUEDART_MAX_BATCH} waybills per call (got ${trackingNumbers.length}); split the batch`,
        );
      }
      const query = new URLSearchParams({
        handler: 'tnt',
        action: 'custawbquery',
        ...credentials,
        awb: 'awb',
        format: 'xml',
        numbers: trackingNumbers.join(','),
        verno: '1.3',
        scan: '1',
      });
      const answer = await courierRequest(ctx, `${base}/servlet/RoutingServlet?${query.toString()}`, {
        method: 'GET',
        headers: { accept: 'text/xml' },
      });
      if (answer.status === 429 || answer.status >= 500)
        throw statusError(ctx, answer, 'the tracking request');
      // An outage is an HTML page, sometimes with a 200.
      if (isHtml(answer))
        throw broken(answer, `Blue Dart answered tracking with an HTML page (${answer.status})`);
      if (answer.status < 200 || answer.status >= 300) throw statusError(ctx, answer, 'the tracking request');
      return parseTracking(answer, trackingNumbers);
    },

    async book(request: BookingRequest): Promise<Booking> {
      const what = `the booking of ${request.reference}`;
      const { recipient } = request;
      const answer = await jsonCall('/waybill/generate', {
        reference: request.reference,
        consignee: {
          name: recipient.name,
          address1: recipient.line1,
          city: recipient.city,
          state: recipient.state,
          pincode: recipient.postcode,
          country: recipient.country,
          mobile: recipient.phone,
        },
        weight_grams: request.parcel.weightGrams,
      });
      const body = jsonBody(answer, what);
      if (body.Status !== 'Valid') {
        throw rejected(ctx, `Blue Dart refused ${what}: status ${String(body.Status)}`, {
          status: answer.status,
          bodySnippet: bodySnippet(ctx, answer.text),
        });
      }
      if (typeof body.AWBNo !== 'string' || body.AWBNo === '') {
        throw broken(answer, `Blue Dart answered ${what} as valid but without an AWBNo`);
      }
      return { trackingNumber: body.AWBNo, courierRef: null };
    },

    /**
     * A refusal is a 4xx `{"Status":"Rejected"|"Invalid","Message":"…"}` (README). Only a
     * Message that says picked up / collected / in transit is COLLECTED (409 "AWB … is
     * already picked up" is the usual one); 404 or "Invalid Waybill No." (Blue Dart's own
     * words for an unknown number, as in its tracking answers) an unknown booking. Blue
     * Dart's API gateway words its cancel refusals the same way, as prose: its
     * `CancelWaybillResult` carries `IsError` and a `Status[].StatusInformation` text (seen in
     * public integrations of /in/transportation/waybill/v1/CancelWaybill), never a code that
     * means "picked up"; a 200 in that shape is not "Cancelled", so it stays retryable here.
     */
    async cancel(trackingNumber: string): Promise<void> {
      const what = `the cancellation of ${trackingNumber}`;
      const answer = await jsonCall('/waybill/cancel', { AWBNo: trackingNumber });
      const body = jsonBody(
        answer,
        what,
        { 404: `Blue Dart does not know ${trackingNumber}` },
        trackingNumber,
      );
      // A second cancel answers "Cancelled" again, so a retried cancel is harmless.
      if (body.Status !== 'Cancelled')
        throw broken(answer, `Blue Dart answered ${what} with status ${String(body.Status)}`);
    },
  };
}
