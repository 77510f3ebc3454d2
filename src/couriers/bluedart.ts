/**
 * The Blue Dart adapter (XML tracking, JSON booking; wire format in README.md next to this
 * file). Blue Dart writes Indian wall-clock times without a zone, scan codes in two families
 * (`ScanGroupType` S and T), a waybill it shows nothing about as a root `<Error>` or a
 * `<Shipment>` with `StatusType` NF, an outage as an HTML page, and a return to origin as a
 * second `<Shipment>` (the return leg, `RefNo="074 - <original>"`) that this adapter folds
 * into the original.
 *
 * What the codes, dates and places mean is bluedart-codes.ts; this file is the adapter, one
 * closure over its HTTP context (tracking, booking, cancelling), kept whole at ~460 lines so
 * a reader follows one waybill from the request to the normalised events without jumping.
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
import {
  CourierCode,
  CourierRefusal,
  type Booking,
  type BookingRequest,
  type CourierAdapter,
  type NormalisedEvent,
  type TrackResult,
} from './types';
import { orderWithUnknown, UNKNOWN_SUB_STATUS } from './unknown-codes';
import {
  blueDartCode,
  BlueDartStatusType,
  compareStage,
  isReturnLegCode,
  type Mapped,
  statusOfStatusType,
  mapBlueDartScan,
  parseBlueDartDateTime,
  parseBlueDartEta,
  blueDartLocation,
} from './bluedart-codes';

/** Settings of {@link createBlueDartAdapter} (src/config supplies them). */
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

/** Elements naming the consignee (ToAttention repeats the name) or whoever signed: personal data, never stored. */
const PERSONAL_FIELD = /^(consignee|receivedby|receiver|toattention)/i;

/** `shipment` without its personal fields (a shallow copy; nested scans hold none). */
export function scrubShipment(shipment: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(shipment).filter(([key]) => !PERSONAL_FIELD.test(key)));
}

/** The same, for raw XML text about to be logged (a cut-off body may still name people). */
function redactXml(text: string): string {
  return text.replace(/<((?:Consignee|ReceivedBy|Receiver|ToAttention)\w*)>[^<]*/gi, '<$1>[removed]');
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

/** Blue Dart's words for a waybill it shows nothing about: "Incorrect Waybill number or No Information". */
const NO_INFORMATION = /incorrect waybill|no information/i;
/** The same, or any "not found", as the whole answer's root `<Error>` (never a scan's words there). */
const NOTHING_SHOWN = /incorrect waybill|no information|invalid waybill|not found/i;
/** A tracking call refused for its login or licence key ("License Mismatch"). */
const LICENCE_REFUSED = /licen[cs]e|login/i;
/** A return leg's `RefNo`: the code that cut it, then the original waybill (`074 - 59638108526`). */
const RETURN_REF = /^\s*(\d{3})\s*-\s*(\S+)\s*$/;

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

  /** A scan as an event; null (with the reason logged) when it cannot be read. */
  function toEvent(scan: JsonObject, what: string, leg: 'outbound' | 'return'): NormalisedEvent | null {
    const digits = textOf(scan, 'ScanCode');
    const group = textOf(scan, 'ScanGroupType');
    const text = textOf(scan, 'Scan');
    const date = textOf(scan, 'ScanDate');
    const time = textOf(scan, 'ScanTime');
    const at = date !== null && time !== null ? parseBlueDartDateTime(date, time) : null;
    if (digits === null || at === null) {
      log?.warn(
        { courier: CourierCode.BLUEDART, where: what, scan: text, code: digits, date, time },
        digits === null
          ? 'Blue Dart sent a scan without ScanCode: skipped'
          : 'Blue Dart sent a scan with an unreadable time: skipped',
      );
      return null;
    }
    // Without its family the code is ambiguous (S-002 is not T-002): kept bare, as unknown.
    const code = group === null ? digits : blueDartCode(group, digits);
    const location = blueDartLocation(textOf(scan, 'ScannedLocation'));
    const mapped = mapBlueDartScan(code, leg);
    if (!mapped) {
      log?.warn(
        { courier: CourierCode.BLUEDART, code, type: textOf(scan, 'ScanType'), where: what },
        'Blue Dart sent a scan code outside its table: kept as UNKNOWN',
      );
    }
    const occurredAt = at.toISOString();
    return {
      key: eventKey(CourierCode.BLUEDART, code, occurredAt, location),
      // An unknown code holds the status the scans before it gave (set once they are ordered).
      status: mapped?.status ?? ShipmentStatus.PENDING,
      subStatus: mapped ? mapped.subStatus : UNKNOWN_SUB_STATUS,
      rawCode: code,
      rawText: text,
      occurredAt,
      occurredAtRaw: `${date} ${time}`,
      location,
      source: EventSource.POLL,
    };
  }

  /** Whether a shipment says Blue Dart does not know the waybill (or no longer shows it). */
  function notFound(shipment: JsonObject): boolean {
    const status = textOf(shipment, 'Status');
    return (
      status === null ||
      textOf(shipment, 'StatusType') === BlueDartStatusType.NOT_FOUND ||
      textOf(shipment, 'Error') !== null ||
      NO_INFORMATION.test(status)
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
    // Blue Dart's tracking shows neither an unknown nor a cancelled waybill: the two read alike.
    if (notFound(shipment)) return { kind: 'not_found', trackingNumber: awb };

    // `order` puts scans of one minute in the courier's own order, whichever way round it
    // lists them, and the return leg after the outbound scans. Within one minute a later
    // stage never comes first: the original's "returned" scan can share a minute with the
    // return leg's scans, and must not precede them.
    const collected: { event: NormalisedEvent; order: number }[] = [];
    let skippedScans = 0;
    const add = (source: JsonObject, label: string, leg: 'outbound' | 'return') => {
      const scans = scansOf(source);
      const read = scans
        .map((scan, i) => toEvent(scan, `${label}.Scans[${i}]`, leg))
        .filter((event): event is NormalisedEvent => event !== null);
      skippedScans += scans.length - read.length;
      // Newest first is Blue Dart's usual order, but some answers list scans oldest first.
      const oldestFirst = read.length > 1 && read[0]!.occurredAt < read[read.length - 1]!.occurredAt;
      const start = collected.length;
      read.forEach((event, i) => {
        collected.push({ event, order: start + (oldestFirst ? i : read.length - 1 - i) });
      });
    };
    add(shipment, awb, 'outbound');
    for (const leg of legs) add(leg, `${awb}/return ${String(leg['@WaybillNo'])}`, 'return');

    const seen = new Set<string>();
    const events = orderWithUnknown(
      collected,
      (item) => item.event,
      (a, b) =>
        a.event.occurredAt.localeCompare(b.event.occurredAt) ||
        compareStage(a.event.status, b.event.status) ||
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
      : statusOfStatusType(statusType);

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
      skippedScans,
      raw,
    };
  }

  /**
   * The return legs of `awb` in the answer: shipments whose `RefNo` reads `074 - <awb>` (a
   * return-to-origin code, then the original waybill), or the one the original names in
   * `<NewWaybillNo>` when the original itself says it is returning (`StatusType` RT). A new
   * waybill for a redirect (to another address) is no return leg.
   */
  function returnLegs(awb: string, original: JsonObject | undefined, shipments: JsonObject[]): JsonObject[] {
    const renumbered =
      original && textOf(original, 'StatusType') === BlueDartStatusType.RETURNED
        ? textOf(original, 'NewWaybillNo')
        : null;
    return shipments.filter((s) => {
      const waybill = s['@WaybillNo'];
      if (waybill === awb) return false;
      const ref = typeof s['@RefNo'] === 'string' ? RETURN_REF.exec(s['@RefNo']) : null;
      if (ref && isReturnLegCode(ref[1]!) && ref[2]!.trim() === awb) return true;
      return renumbered !== null && waybill === renumbered;
    });
  }

  function parseTracking(answer: HttpAnswer, trackingNumbers: string[]): TrackResult[] {
    if (XMLValidator.validate(answer.text) !== true) {
      throw broken(answer, `Blue Dart answered tracking with a body that is not XML (${answer.status})`);
    }
    const document: unknown = xml.parse(answer.text);
    const root = isObject(document) ? document.ShipmentData : undefined;
    if (root === undefined) throw broken(answer, 'Blue Dart answered tracking without <ShipmentData>');
    const shipments = isObject(root) && Array.isArray(root.Shipment) ? root.Shipment.filter(isObject) : [];
    const error = isObject(root) ? textOf(root, 'Error') : null;
    if (shipments.length === 0 && error !== null) {
      // A root <Error>: Blue Dart's answer when it shows none of the numbers (unknown, not yet
      // scanned or cancelled: it says the same for all three), or a refusal of the call.
      if (NOTHING_SHOWN.test(error)) {
        return trackingNumbers.map((awb) => ({ kind: 'not_found', trackingNumber: awb }));
      }
      if (LICENCE_REFUSED.test(error)) {
        throw rejected(
          ctx,
          `Blue Dart refused the tracking call: ${error} (check BLUEDART_LOGIN_ID and BLUEDART_LICENCE_KEY)`,
          { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) },
          CourierRefusal.CREDENTIALS,
        );
      }
      // Anything else (e.g. "service unavailable"): worth another try, not a verdict.
      throw broken(answer, `Blue Dart answered tracking with an error: ${error}`);
    }

    const byWaybill = new Map<string, JsonObject>();
    for (const shipment of shipments) {
      const waybill = shipment['@WaybillNo'];
      if (typeof waybill === 'string' && !byWaybill.has(waybill)) byWaybill.set(waybill, shipment);
    }
    return trackingNumbers.map((awb) => {
      const shipment = byWaybill.get(awb);
      return toResult(awb, shipment, returnLegs(awb, shipment, shipments));
    });
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
