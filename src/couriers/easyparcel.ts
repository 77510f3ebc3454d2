/**
 * The EasyParcel adapter (JSON over HTTPS, OAuth client-credentials; wire format in
 * README.md next to this file). EasyParcel's answers need care: dates come in two formats,
 * status logs in no order, and some statuses exist only in the free text.
 */
import { EventSource, ShipmentStatus } from '../domain/status';
import { eventKey } from './event-key';
import {
  courierRequest,
  DEFAULT_TIMEOUT_MS,
  bodySnippet,
  isObject,
  parseJson,
  cancelRefusal,
  refusalOfStatus,
  rejected,
  statusError,
  unavailable,
  type CourierLog,
  type HttpAnswer,
  type HttpContext,
  type JsonObject,
} from './http';
import { MYT_OFFSET_MINUTES, parseIsoInstant, parseSqlLocal } from './time';
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

/** Settings of {@link createEasyParcelAdapter} (src/config.ts supplies them). */
export interface EasyParcelAdapterOptions {
  /** API root; the README's paths are appended to it. */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  fetch?: typeof fetch;
  /** Time limit of one HTTP call (ms). Default 10 s. */
  timeoutMs?: number;
  /** Wall clock (ms since the epoch), for token expiry and Retry-After dates. */
  now?: () => number;
  log?: CourierLog;
}

/** Most AWB numbers one tracking call accepts; EasyParcel answers 422 above it. */
export const EASYPARCEL_MAX_BATCH = 100;

/** EasyParcel's shipment status codes (`shipment_status_code`). */
export const EasyParcelCode = {
  CANCELLED: 0,
  TO_BE_COLLECTED: 2,
  COLLECTED: 3,
  IN_TRANSIT: 4,
  DELIVERED: 5,
  RETURNED: 6,
  SCHEDULED: 7,
  ON_HOLD: 8,
  DROP_OFF: 11,
} as const;
export type EasyParcelCode = (typeof EasyParcelCode)[keyof typeof EasyParcelCode];

interface Mapped {
  status: ShipmentStatus;
  subStatus: string | null;
}

const S = ShipmentStatus;

/** What each code means when its text says nothing more specific. */
const BY_CODE: Readonly<Record<number, Mapped>> = {
  [EasyParcelCode.CANCELLED]: { status: S.CANCELLED, subStatus: null },
  // Booked; the courier has the details and will come for the parcel.
  [EasyParcelCode.TO_BE_COLLECTED]: { status: S.INFO_RECEIVED, subStatus: 'TO_BE_COLLECTED' },
  [EasyParcelCode.COLLECTED]: { status: S.IN_TRANSIT, subStatus: 'PICKED_UP' },
  [EasyParcelCode.IN_TRANSIT]: { status: S.IN_TRANSIT, subStatus: null },
  [EasyParcelCode.DELIVERED]: { status: S.DELIVERED, subStatus: null },
  [EasyParcelCode.RETURNED]: { status: S.RETURNED, subStatus: null },
  // EasyParcel is still arranging the pickup with the courier: nothing has happened yet.
  [EasyParcelCode.SCHEDULED]: { status: S.PENDING, subStatus: 'SCHEDULED' },
  [EasyParcelCode.ON_HOLD]: { status: S.EXCEPTION, subStatus: 'ON_HOLD' },
  // The shipper handed the parcel in at a drop-off point: the courier has it, like "collected".
  [EasyParcelCode.DROP_OFF]: { status: S.IN_TRANSIT, subStatus: 'DROP_OFF' },
};

// Statuses EasyParcel only tells in its free text (`tracking_status`), on codes 4 and 8.
const RETURN_TEXT = /\breturn/i;
const OUT_FOR_DELIVERY_TEXT = /out for delivery|with courier for delivery/i;
const FAILED_ATTEMPT_TEXT =
  /attempt|not available|unavailable|absent|unsuccessful|unable to deliver|undeliver/i;
const RECIPIENT_ABSENT_TEXT = /not available|unavailable|absent|not at home|nobody|no one/i;

/**
 * A code and its text in taxonomy terms. The code wins, except where EasyParcel has no code
 * of its own: a return in progress (4 or 8 with "return" in the text), out for delivery
 * (4 with "Out for delivery"), a failed attempt (8 with "attempt failed", "not available").
 * Null for a code not in the README.
 */
export function mapEasyParcelStatus(code: number, text: string | null): Mapped | null {
  const t = text ?? '';
  if ((code === EasyParcelCode.IN_TRANSIT || code === EasyParcelCode.ON_HOLD) && RETURN_TEXT.test(t)) {
    return { status: S.RETURNING, subStatus: null };
  }
  if (code === EasyParcelCode.IN_TRANSIT && OUT_FOR_DELIVERY_TEXT.test(t)) {
    return { status: S.OUT_FOR_DELIVERY, subStatus: null };
  }
  if (code === EasyParcelCode.ON_HOLD && FAILED_ATTEMPT_TEXT.test(t)) {
    return { status: S.ATTEMPT_FAIL, subStatus: RECIPIENT_ABSENT_TEXT.test(t) ? 'RECIPIENT_ABSENT' : null };
  }
  return BY_CODE[code] ?? null;
}

/**
 * An EasyParcel date: ISO 8601 with its zone, or `YYYY-MM-DD HH:mm:ss` in Malaysia time
 * (UTC+8, no zone in the payload). Null when it is neither.
 */
export function parseEasyParcelDate(text: string): Date | null {
  return parseIsoInstant(text) ?? parseSqlLocal(text, MYT_OFFSET_MINUTES);
}

/** "Shah Alam, Selangor" → city and state, in Malaysia; null → nothing known. */
export function parseEasyParcelLocation(text: string | null): EventLocation {
  if (text === null || text.trim() === '') return { city: null, state: null, country: null };
  const comma = text.indexOf(',');
  const city = (comma === -1 ? text : text.slice(0, comma)).trim();
  const state = comma === -1 ? '' : text.slice(comma + 1).trim();
  return { city: city || null, state: state || null, country: 'MY' };
}

/** A shape problem in an answer; the adapter turns it into a retryable CourierUnavailableError. */
class ShapeError extends Error {}

/** A status code as a number: EasyParcel sends numbers, sometimes numeric strings. */
function codeOf(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value.trim());
  throw new ShapeError(`${what} is not a status code: ${JSON.stringify(value)}`);
}

function optionalText(value: unknown, what: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new ShapeError(`${what} is not text`);
  return value;
}

// Same-second events (status_log has no order of its own) are ordered by how far along the
// parcel each puts it, so the snapshot never depends on the order EasyParcel happened to use.
const PROGRESS: readonly ShipmentStatus[] = [
  S.PENDING,
  S.INFO_RECEIVED,
  S.IN_TRANSIT,
  S.OUT_FOR_DELIVERY,
  S.ATTEMPT_FAIL,
  S.AVAILABLE_FOR_PICKUP,
  S.EXCEPTION,
  S.DELIVERED,
  S.RETURNING,
  S.RETURNED,
  S.CANCELLED,
  S.EXPIRED,
];

/**
 * The EasyParcel adapter: tracks up to 100 AWBs per call, books and cancels. It keeps one
 * access token, refreshed a little before expiry and once more on a 401. Failures: a network
 * error, timeout, 429, 5xx or unreadable answer is a retryable CourierUnavailableError; any
 * other refusal (bad credentials, invalid booking, cancel after pickup) a CourierRejectedError.
 */
export function createEasyParcelAdapter(opts: EasyParcelAdapterOptions): CourierAdapter {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const now = opts.now ?? Date.now;
  const log = opts.log;
  const ctx: HttpContext = {
    courier: CourierCode.EASYPARCEL,
    label: 'EasyParcel',
    fetch: opts.fetch ?? fetch,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    log,
    now,
  };

  // ---- Access tokens ---------------------------------------------------------------------

  let cached: { token: string; refreshAt: number } | null = null;
  /** One token request at a time: concurrent calls wait for the same answer. */
  let fetching: Promise<string> | null = null;

  async function requestToken(): Promise<string> {
    const answer = await courierRequest(ctx, `${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
      }),
    });
    if (answer.status < 200 || answer.status >= 300) {
      // Any refusal of the token request (401 bad client, 400 bad grant) is about our credentials.
      throw statusError(
        ctx,
        answer,
        'the token request',
        'check EASYPARCEL_CLIENT_ID and EASYPARCEL_CLIENT_SECRET',
        CourierRefusal.CREDENTIALS,
      );
    }
    const body = parseJson(answer.text);
    const token = isObject(body) ? body.access_token : undefined;
    if (typeof token !== 'string' || token === '') {
      throw unavailable(ctx, 'EasyParcel token answer has no access_token', {
        status: answer.status,
        bodySnippet: bodySnippet(ctx, answer.text),
      });
    }
    const expiresIn = isObject(body) ? Number(body.expires_in) : NaN;
    // expires_in is in seconds; without a usable one, assume a short life rather than a long one.
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : 300_000;
    // Refresh shortly before expiry (a minute, or a tenth of a short lifetime), so a call
    // never leaves with a token that dies in flight.
    const marginMs = Math.min(60_000, lifetimeMs / 10);
    cached = { token, refreshAt: now() + lifetimeMs - marginMs };
    return token;
  }

  async function accessToken(): Promise<string> {
    if (cached && now() < cached.refreshAt) return cached.token;
    fetching ??= requestToken().finally(() => {
      fetching = null;
    });
    return fetching;
  }

  /**
   * A bearer call. A 401 means the token died early (revoked, server restarted): fetch a new
   * one and try once more. A second 401 with a fresh token is a real refusal.
   */
  async function authorised(path: string, payload: unknown): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      const token = await accessToken();
      const answer = await courierRequest(ctx, `${base}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(payload),
      });
      if (answer.status !== 401) return answer;
      if (cached?.token === token) cached = null;
      if (attempt >= 2) {
        throw rejected(
          ctx,
          `EasyParcel refused a fresh access token for ${path} (401)`,
          { status: 401, bodySnippet: bodySnippet(ctx, answer.text) },
          CourierRefusal.CREDENTIALS,
        );
      }
    }
  }

  // ---- Answers ---------------------------------------------------------------------------

  /**
   * The JSON body of a 2xx answer; anything else is the error to throw. `cancelling` names
   * the AWB of a cancel: only a cancel's refusal can say the parcel is already collected.
   */
  function jsonBody(
    answer: HttpAnswer,
    what: string,
    refusals: Partial<Record<number, string>> = {},
    cancelling?: string,
  ): JsonObject {
    if (answer.status < 200 || answer.status >= 300) {
      const body = parseJson(answer.text);
      const message = isObject(body) && typeof body.message === 'string' ? body.message : undefined;
      const reason =
        cancelling === undefined ? refusalOfStatus(answer.status) : cancelRefusal(answer.status, message);
      const known =
        reason === CourierRefusal.COLLECTED
          ? `${cancelling} is already picked up and can no longer be cancelled`
          : refusals[answer.status];
      throw statusError(ctx, answer, what, [known, message].filter(Boolean).join(': ') || undefined, reason);
    }
    const body = parseJson(answer.text);
    if (!isObject(body)) {
      throw unavailable(ctx, `EasyParcel answered ${what} with a body that is not a JSON object`, {
        status: answer.status,
        bodySnippet: bodySnippet(ctx, answer.text),
      });
    }
    return body;
  }

  /** Runs a shape check; a broken answer is retryable (the next one is usually fine). */
  function shaped<T>(answer: HttpAnswer, what: string, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      throw unavailable(ctx, `EasyParcel's answer to ${what} has an unexpected shape: ${err.message}`, {
        status: answer.status,
        bodySnippet: bodySnippet(ctx, answer.text),
      });
    }
  }

  function toEvent(entry: unknown, what: string): NormalisedEvent {
    if (!isObject(entry)) throw new ShapeError(`${what} is not an object`);
    const code = codeOf(entry.shipment_status_code, `${what}.shipment_status_code`);
    const text = optionalText(entry.tracking_status, `${what}.tracking_status`);
    const dateText = optionalText(entry.event_date, `${what}.event_date`);
    const date = dateText === null ? null : parseEasyParcelDate(dateText);
    if (dateText === null || date === null)
      throw new ShapeError(`${what}.event_date is not a date: ${dateText}`);
    const location = parseEasyParcelLocation(optionalText(entry.location, `${what}.location`));
    const mapped = mapEasyParcelStatus(code, text) ?? unmapped(code, what);
    const occurredAt = date.toISOString();
    const rawCode = String(code);
    return {
      key: eventKey(CourierCode.EASYPARCEL, rawCode, occurredAt, location),
      status: mapped.status,
      subStatus: mapped.subStatus,
      rawCode,
      rawText: text,
      occurredAt,
      occurredAtRaw: dateText,
      location,
      source: EventSource.POLL,
    };
  }

  /** A code the README does not list: flagged for a person to look at, never guessed. */
  function unmapped(code: number, what: string): Mapped {
    log?.warn(
      { courier: CourierCode.EASYPARCEL, code, where: what },
      'EasyParcel sent an unknown status code',
    );
    return { status: S.EXCEPTION, subStatus: 'UNMAPPED_CODE' };
  }

  function toResult(item: JsonObject, awb: string): TrackResult {
    if (item.status === 'not_found') return { kind: 'not_found', trackingNumber: awb };
    if (item.status !== 'success') throw new ShapeError(`${awb} has status ${JSON.stringify(item.status)}`);
    const statusLog = item.status_log ?? [];
    if (!Array.isArray(statusLog)) throw new ShapeError(`${awb}.status_log is not a list`);

    const seen = new Set<string>();
    const events = statusLog
      .map((entry, i) => toEvent(entry, `${awb}.status_log[${i}]`))
      .sort(
        (a, b) =>
          a.occurredAt.localeCompare(b.occurredAt) ||
          PROGRESS.indexOf(a.status) - PROGRESS.indexOf(b.status) ||
          a.key.localeCompare(b.key),
      )
      // The same scan listed twice would be one row anyway (same key); keep the list honest.
      .filter((event) => {
        if (seen.has(event.key)) return false;
        seen.add(event.key);
        return true;
      });

    let snapshot: Mapped;
    const newest = events[events.length - 1];
    if (newest) {
      snapshot = { status: newest.status, subStatus: newest.subStatus };
    } else if (item.latest_shipment_status_code !== undefined && item.latest_shipment_status_code !== null) {
      const code = codeOf(item.latest_shipment_status_code, `${awb}.latest_shipment_status_code`);
      const text = optionalText(item.latest_tracking_status, `${awb}.latest_tracking_status`);
      snapshot = mapEasyParcelStatus(code, text) ?? unmapped(code, `${awb}.latest_shipment_status_code`);
    } else {
      snapshot = { status: S.PENDING, subStatus: null };
    }
    return {
      kind: 'found',
      trackingNumber: awb,
      ...snapshot,
      // EasyParcel's tracking answer promises no delivery date.
      eta: null,
      skippedScans: 0,
      events,
      // A tracking result names no person: it is kept whole.
      raw: item,
    };
  }

  return {
    code: CourierCode.EASYPARCEL,
    maxBatch: EASYPARCEL_MAX_BATCH,

    async track(trackingNumbers: string[]): Promise<TrackResult[]> {
      if (trackingNumbers.length === 0) return [];
      if (trackingNumbers.length > EASYPARCEL_MAX_BATCH) {
        throw new Error(
          `EasyParcel tracks at most ${EASYPARCEL_MAX_BATCH} numbers per call (got ${trackingNumbers.length}); split the batch`,
        );
      }
      const what = 'the tracking request';
      const answer = await authorised('/shipment/tracking_status', { awb_numbers: trackingNumbers });
      const body = jsonBody(answer, what);
      const byNumber = shaped(answer, what, () => {
        const data = body.data;
        if (!isObject(data) || !Array.isArray(data.results)) throw new ShapeError('no data.results list');
        const found = new Map<string, JsonObject>();
        data.results.forEach((item, i) => {
          if (!isObject(item) || typeof item.awb_number !== 'string') {
            throw new ShapeError(`results[${i}] has no awb_number`);
          }
          found.set(item.awb_number, item);
        });
        return found;
      });
      return shaped(answer, what, () =>
        trackingNumbers.map((awb) => {
          const item = byNumber.get(awb);
          if (item) return toResult(item, awb);
          // The README promises one result per number; a missing one reads as "not known
          // (yet)": the workflow only gives up after several such answers in a row.
          log?.warn(
            { courier: CourierCode.EASYPARCEL, trackingNumber: awb },
            'EasyParcel left a number out of its answer',
          );
          return { kind: 'not_found', trackingNumber: awb };
        }),
      );
    },

    async book(request: BookingRequest): Promise<Booking> {
      const what = `the booking of ${request.reference}`;
      const answer = await authorised('/shipment/create', {
        reference: request.reference,
        sender: request.sender,
        recipient: request.recipient,
        parcel: { weight_grams: request.parcel.weightGrams, description: request.parcel.description },
      });
      const body = jsonBody(answer, what, { 422: 'the booking is invalid' });
      return shaped(answer, what, () => {
        const data = body.data;
        if (!isObject(data) || typeof data.awb_number !== 'string' || data.awb_number === '') {
          throw new ShapeError('no data.awb_number');
        }
        return {
          trackingNumber: data.awb_number,
          courierRef:
            typeof data.order_number === 'string' && data.order_number !== '' ? data.order_number : null,
        };
      });
    },

    /**
     * Refusals come in two shapes. The README's: a 4xx `{"status_code","message"}` (409 with
     * "has already been collected" once the courier has the parcel). EasyParcel's published
     * Open API (github.com/easyparcel/OpenAPI, includes/2026-03/_cancelshipment.md): HTTP 200
     * with one result per shipment, a refused one `{"status":"error","message":"…"}`, e.g.
     * "Shipment Not Found", "Shipment Already Cancelled, Cannot Cancel Again" or "The shipment
     * cancellation period is over (7 days from collection date: …)". Either way only a
     * message that says collected / picked up / in transit is COLLECTED (the last example is
     * not: it names a date, not a pickup); "already cancelled" is the success we wanted.
     */
    async cancel(trackingNumber: string): Promise<void> {
      const what = `the cancellation of ${trackingNumber}`;
      const answer = await authorised('/shipment/cancel', { awb_number: trackingNumber });
      const body = jsonBody(
        answer,
        what,
        { 404: `EasyParcel does not know ${trackingNumber}` },
        trackingNumber,
      );
      const results = Array.isArray(body.data) ? body.data.filter(isObject) : [];
      const ours = results.filter(
        (item) =>
          results.length === 1 ||
          item.awb_number === trackingNumber ||
          item.shipment_number === trackingNumber,
      );
      if (results.length > 0 && ours.length === 0) {
        throw unavailable(ctx, `EasyParcel answered ${what} without a result for ${trackingNumber}`, {
          status: answer.status,
          bodySnippet: bodySnippet(ctx, answer.text),
        });
      }
      const refusal = ours.find((item) => item.status === 'error');
      if (!refusal) return;
      const message = typeof refusal.message === 'string' ? refusal.message : '';
      // A second cancel is harmless: "already cancelled" means the booking is gone, as asked.
      if (/already cancell?ed/i.test(message)) return;
      throw rejected(
        ctx,
        `EasyParcel refused ${what}: ${message || 'no reason given'}`,
        { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) },
        cancelRefusal(answer.status, message),
      );
    },
  };
}
