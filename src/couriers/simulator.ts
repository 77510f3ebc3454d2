/**
 * The adapter for the courier simulator's native JSON format (`<baseUrl>/native`, see
 * simulators/courier/README.md). The format already speaks the status taxonomy, so this adapter
 * checks every answer's shape and converts it; anything it cannot use (network error,
 * timeout, 5xx, 429, an HTML page, a malformed body) is a retryable
 * {@link CourierUnavailableError}, and a 4xx refusal a {@link CourierRejectedError}.
 */
import { isShipmentStatus, EventSource, type ShipmentStatus } from '../domain/status';
import { eventKey } from './event-key';
import {
  bodySnippet,
  courierRequest,
  DEFAULT_TIMEOUT_MS,
  isObject,
  parseJson,
  refusalOfStatus,
  rejected,
  statusError,
  unavailable,
  type CourierLog,
  type HttpContext,
} from './http';
import {
  CourierCode,
  CourierRefusal,
  CourierRejectedError,
  type Booking,
  type BookingRequest,
  type CourierAdapter,
  type EventLocation,
  type NormalisedEvent,
  type TrackResult,
} from './types';

export interface SimulatorAdapterOptions {
  /** The simulator's root URL; the adapter appends `/native`. */
  baseUrl: string;
  fetch?: typeof fetch;
  /** One HTTP call gives up after this long (ms). Default 10 s. */
  timeoutMs?: number;
  log?: CourierLog;
}

const MAX_BATCH = 100;
/** Body excerpts in error details and logs: up to 200 characters, then an ellipsis. */
const SNIPPET_MAX_CHARS = 201;

function nullableString(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

/** A shape problem in an answer: the caller turns it into CourierUnavailableError. */
class ShapeError extends Error {}

function isoTime(value: unknown, what: string): { iso: string; raw: string } {
  if (typeof value !== 'string') throw new ShapeError(`${what} is not a string`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new ShapeError(`${what} is not a date: ${value}`);
  return { iso: new Date(ms).toISOString(), raw: value };
}

function statusOf(value: unknown, what: string): ShipmentStatus {
  if (!isShipmentStatus(value)) throw new ShapeError(`${what} is not a known status: ${String(value)}`);
  return value;
}

function toEvent(value: unknown, what: string): NormalisedEvent {
  if (!isObject(value)) throw new ShapeError(`${what} is not an object`);
  const { code, subStatus, description, location } = value;
  if (
    typeof code !== 'string' ||
    !nullableString(subStatus) ||
    typeof description !== 'string' ||
    !isObject(location)
  ) {
    throw new ShapeError(`${what} lacks code, subStatus, description or location`);
  }
  const { city, state, country } = location;
  if (!nullableString(city) || !nullableString(state) || !nullableString(country)) {
    throw new ShapeError(`${what}.location has a non-string field`);
  }
  const where: EventLocation = { city, state, country };
  const time = isoTime(value.occurredAt, `${what}.occurredAt`);
  return {
    key: eventKey(CourierCode.SIMULATOR, code, time.iso, where),
    status: statusOf(value.status, `${what}.status`),
    subStatus,
    rawCode: code,
    rawText: description,
    occurredAt: time.iso,
    occurredAtRaw: time.raw,
    location: where,
    source: EventSource.POLL,
  };
}

function toTrackResult(value: unknown, asked: string, index: number): TrackResult {
  const what = `results[${index}]`;
  if (!isObject(value)) throw new ShapeError(`${what} is not an object`);
  if (value.trackingNumber !== asked) {
    throw new ShapeError(`${what} answers ${String(value.trackingNumber)}, asked ${asked}`);
  }
  if (value.found === false) return { kind: 'not_found', trackingNumber: asked };
  if (value.found !== true) throw new ShapeError(`${what}.found is not a boolean`);
  if (!Array.isArray(value.events)) throw new ShapeError(`${what}.events is not an array`);
  if (!nullableString(value.subStatus) || !nullableString(value.eta ?? null)) {
    throw new ShapeError(`${what}.subStatus or eta is not a string or null`);
  }
  const events = value.events
    .map((event, i) => toEvent(event, `${what}.events[${i}]`))
    // Oldest first whatever order the answer used; equal times keep the answer's order.
    .map((event, i) => ({ event, i }))
    .sort((a, b) => a.event.occurredAt.localeCompare(b.event.occurredAt) || a.i - b.i)
    .map(({ event }) => event);
  const eta = typeof value.eta === 'string' ? isoTime(value.eta, `${what}.eta`).iso : null;
  return {
    kind: 'found',
    trackingNumber: asked,
    status: statusOf(value.status, `${what}.status`),
    subStatus: value.subStatus,
    eta,
    events,
    // The native format is the simulator's own: a scan it cannot read fails the answer.
    skippedScans: 0,
    // The native answer holds no personal data (no recipient), so it is kept whole.
    raw: value,
  };
}

/** The native error code that says, explicitly, the courier has the parcel (cancel refused). */
export const ALREADY_PICKED_UP = 'ALREADY_PICKED_UP';

function nativeRefusal(status: number, code: string, operation: 'track' | 'book' | 'cancel'): CourierRefusal {
  const byStatus = refusalOfStatus(status);
  if (byStatus !== CourierRefusal.INVALID) return byStatus;
  if (code === 'NOT_FOUND') return CourierRefusal.UNKNOWN_BOOKING;
  if (operation === 'cancel' && code === ALREADY_PICKED_UP) return CourierRefusal.COLLECTED;
  return CourierRefusal.INVALID;
}

export function createSimulatorAdapter(opts: SimulatorAdapterOptions): CourierAdapter {
  const root = `${opts.baseUrl.replace(/\/+$/, '')}/native`;
  const ctx: HttpContext = {
    courier: CourierCode.SIMULATOR,
    label: 'simulator',
    fetch: opts.fetch ?? fetch,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    log: opts.log,
    now: Date.now,
    snippetMaxChars: SNIPPET_MAX_CHARS,
  };

  /**
   * One POST: the parsed JSON body of a 2xx answer; anything else is the error to throw. A
   * refusal's reason comes from its status and the native error code: 401/403 credentials,
   * 404 or `NOT_FOUND` an unknown booking, and, for a cancel only, `ALREADY_PICKED_UP` (the
   * simulator's explicit "the courier has the parcel") collected; anything else invalid.
   */
  async function call(path: string, body: unknown, operation: 'track' | 'book' | 'cancel'): Promise<unknown> {
    const answer = await courierRequest(ctx, `${root}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (answer.status === 429 || answer.status >= 500) throw statusError(ctx, answer, path);

    const details = { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) };
    // An outage page: labelled HTML (the header as sent) or anything that starts like markup.
    if ((answer.headers.get('content-type') ?? '').includes('html') || /^\s*</.test(answer.text)) {
      throw unavailable(ctx, `simulator answered an HTML page to ${path} (${answer.status})`, details);
    }
    const json = parseJson(answer.text);
    if (json === undefined) {
      throw unavailable(ctx, `simulator answered malformed JSON to ${path} (${answer.status})`, details);
    }
    if (answer.status >= 400) {
      const error = isObject(json) && isObject(json.error) ? json.error : null;
      const message = typeof error?.message === 'string' ? error.message : details.bodySnippet;
      const code = typeof error?.code === 'string' ? error.code : String(answer.status);
      throw rejected(
        ctx,
        `simulator refused ${path} (${answer.status} ${code}): ${message}`,
        details,
        nativeRefusal(answer.status, code, operation),
      );
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw unavailable(ctx, `simulator answered unexpected ${answer.status} to ${path}`, details);
    }
    return json;
  }

  /** Runs `parse` on a 2xx body; a shape it does not expect means a broken answer, retryable. */
  function parsed<T>(path: string, json: unknown, parse: (json: unknown) => T): T {
    try {
      return parse(json);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      // Only 2xx bodies get here; the excerpt is of the parsed body, re-serialised.
      throw unavailable(ctx, `simulator answer to ${path} has an unexpected shape: ${err.message}`, {
        status: 200,
        bodySnippet: bodySnippet(ctx, JSON.stringify(json) ?? ''),
      });
    }
  }

  return {
    code: CourierCode.SIMULATOR,
    maxBatch: MAX_BATCH,

    async track(trackingNumbers: string[]): Promise<TrackResult[]> {
      if (trackingNumbers.length === 0) return [];
      if (trackingNumbers.length > MAX_BATCH) {
        throw new CourierRejectedError(
          `the simulator tracks at most ${MAX_BATCH} numbers per call (got ${trackingNumbers.length})`,
        );
      }
      const json = await call('/track', { trackingNumbers }, 'track');
      return parsed('/track', json, (body) => {
        if (!isObject(body) || !Array.isArray(body.results)) throw new ShapeError('no results array');
        if (body.results.length !== trackingNumbers.length) {
          throw new ShapeError(`${body.results.length} results for ${trackingNumbers.length} numbers`);
        }
        return body.results.map((result, i) => toTrackResult(result, trackingNumbers[i]!, i));
      });
    },

    async book(request: BookingRequest): Promise<Booking> {
      const json = await call(
        '/shipments',
        {
          reference: request.reference,
          recipient: request.recipient,
          weightGrams: request.parcel.weightGrams,
          description: request.parcel.description,
        },
        'book',
      );
      return parsed('/shipments', json, (body) => {
        if (!isObject(body) || typeof body.trackingNumber !== 'string' || body.trackingNumber === '') {
          throw new ShapeError('no trackingNumber');
        }
        return { trackingNumber: body.trackingNumber, courierRef: null };
      });
    },

    async cancel(trackingNumber: string): Promise<void> {
      const path = `/shipments/${encodeURIComponent(trackingNumber)}/cancel`;
      const json = await call(path, {}, 'cancel');
      parsed(path, json, (body) => {
        if (!isObject(body) || body.status !== 'CANCELLED') throw new ShapeError('status is not CANCELLED');
      });
    },
  };
}
