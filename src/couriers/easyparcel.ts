/**
 * The EasyParcel adapter (Open API, JSON; wire format in README.md next to this file): one API
 * version and its code table (easyparcel-versions.ts); codes, texts, dates and places in
 * easyparcel-codes.ts; tokens in easyparcel-auth.ts; booking and cancel bodies in
 * easyparcel-orders.ts; booking at most once per reference in easyparcel-bookings.ts. This file
 * is tracking and cancelling over HTTP.
 */
import { EventSource, ShipmentStatus } from '../domain/status';
import { easyParcelEventKey } from './event-key';
import { textSealer, type TextKeys } from '../codec/sealed-text';
import { easyParcelSession, sealedTokenStore, type TokenStore } from './easyparcel-auth';
import {
  cancelBody,
  cancelResult,
  shipmentNumberIn,
  DEFAULT_SHIPPING,
  type EasyParcelShipping,
} from './easyparcel-orders';
import { easyParcelBooking, memorySubmissionJournal, type SubmissionJournal } from './easyparcel-bookings';
import { easyParcelCodeTable } from './easyparcel-versions';
import {
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
import {
  CourierCode,
  CourierRefusal,
  type CourierAdapter,
  type NormalisedEvent,
  type TrackResult,
} from './types';
import { orderWithUnknown, UNKNOWN_SUB_STATUS } from './unknown-codes';
import {
  codeOf,
  compareProgress,
  mapEasyParcelStatus,
  parseEasyParcelDate,
  parseEasyParcelLocation,
  textOrNull,
  type Mapped,
} from './easyparcel-codes';

/** Settings of {@link createEasyParcelAdapter} (src/config supplies them). */
export interface EasyParcelAdapterOptions {
  /**
   * EasyParcel's root (`https://api.easyparcel.com`): the token endpoint is `/oauth/token`
   * under it, the API `/open_api/<apiVersion>/…`.
   */
  baseUrl: string;
  /** The Open API version spoken, e.g. `2026-06` (see easyparcel-versions.ts). */
  apiVersion: string;
  /** The status code table, `0-11` or `1-11`; required for versions whose docs showed both. */
  statusCodes?: string | null;
  /** The app's client id and secret (EasyParcel's Developer Hub), sent as HTTP Basic to the token endpoint. */
  clientId: string;
  clientSecret: string;
  /** The refresh token from the one-time authorisation of the app on the EasyParcel account. */
  refreshToken: string;
  /** Where the rotating token pair is shared between workers (default: this process only). */
  tokens?: TokenStore;
  /** The payload keys: with `tokens`, the pair is sealed at rest with them (src/codec/sealed-text.ts). */
  tokenKeys?: TextKeys;
  /** The service booked and the shop's sender details (EasyParcel requires them). */
  shipping?: EasyParcelShipping;
  /** Where submitted bookings are recorded, shared by every worker (default: this process only). */
  submissions?: SubmissionJournal;
  /** Most AWB numbers per tracking call. Default 50 (EasyParcel's CLI sends 50; its docs allow 100). */
  maxBatch?: number;
  fetch?: typeof fetch;
  /** Time limit of one HTTP call (ms). Default 10 s. */
  timeoutMs?: number;
  /** Wall clock (ms since the epoch), for token expiry and Retry-After dates. */
  now?: () => number;
  log?: CourierLog;
}

/** Default most AWB numbers per tracking call: what EasyParcel's own CLI sends. */
export const EASYPARCEL_DEFAULT_BATCH = 50;
/** The most EasyParcel's docs allow per tracking call. */
export const EASYPARCEL_MAX_BATCH = 100;

/** A shape problem in an answer; the adapter turns it into a retryable CourierUnavailableError. */
class ShapeError extends Error {}

/**
 * The EasyParcel adapter: tracks up to `maxBatch` AWBs per call, books and cancels. It keeps
 * one access token, refreshed a little before expiry and once more on a 401. Failures: a
 * network error, timeout, 429, 5xx or unreadable answer is a retryable CourierUnavailableError;
 * any other refusal (a refused refresh token, invalid booking, cancel after pickup) a
 * CourierRejectedError. Throws at once for an API version or code table it cannot read.
 */
export function createEasyParcelAdapter(opts: EasyParcelAdapterOptions): CourierAdapter {
  const root = opts.baseUrl.replace(/\/+$/, '');
  const api = `${root}/open_api/${opts.apiVersion}`;
  const table = easyParcelCodeTable(opts.apiVersion, opts.statusCodes ?? null);
  const maxBatch = opts.maxBatch ?? EASYPARCEL_DEFAULT_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > EASYPARCEL_MAX_BATCH) {
    throw new RangeError(`EasyParcel tracks 1 to ${EASYPARCEL_MAX_BATCH} numbers per call (got ${maxBatch})`);
  }
  const now = opts.now ?? Date.now;
  const log = opts.log;
  const shipping = opts.shipping ?? DEFAULT_SHIPPING;
  const ctx: HttpContext = {
    courier: CourierCode.EASYPARCEL,
    label: 'EasyParcel',
    fetch: opts.fetch ?? fetch,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    log,
    now,
  };

  const { authorised } = easyParcelSession({
    ctx,
    root,
    api,
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    refreshToken: opts.refreshToken,
    now,
    ...(opts.tokens
      ? { tokens: opts.tokenKeys ? sealedTokenStore(opts.tokens, textSealer(opts.tokenKeys)) : opts.tokens }
      : {}),
  });

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

  /** A status log entry as an event; null (with the reason logged) when it cannot be read. */
  function toEvent(entry: unknown, what: string): NormalisedEvent | null {
    const skip = (reason: string): null => {
      log?.warn(
        { courier: CourierCode.EASYPARCEL, where: what, entry },
        `EasyParcel sent ${reason}: skipped`,
      );
      return null;
    };
    if (!isObject(entry)) return skip('a status log entry that is not an object');
    const code = codeOf(entry.shipment_status_code);
    const text = textOrNull(entry.tracking_status);
    const dateText = textOrNull(entry.event_date);
    const locationText = textOrNull(entry.location);
    if (code === null) return skip('a status log entry without a status code');
    if (text === undefined || locationText === undefined)
      return skip('a status log entry with unreadable text');
    const date = dateText ? parseEasyParcelDate(dateText, text) : null;
    if (dateText === undefined || date === null) return skip('a status log entry with an unreadable date');
    const location = parseEasyParcelLocation(locationText);
    const mapped = mapEasyParcelStatus(code, text, table) ?? unmapped(code, what);
    const occurredAt = date.toISOString();
    const rawCode = String(code);
    return {
      key: easyParcelEventKey(rawCode, occurredAt, text),
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

  /**
   * A code the version's table does not have: UNKNOWN, never guessed. The status is a
   * placeholder until the events are ordered: it then holds the status of the event before it.
   */
  function unmapped(code: number, what: string): Mapped {
    log?.warn(
      { courier: CourierCode.EASYPARCEL, code, table, where: what },
      'EasyParcel sent a status code outside its table: kept as UNKNOWN',
    );
    return { status: ShipmentStatus.PENDING, subStatus: UNKNOWN_SUB_STATUS };
  }

  function toResult(item: JsonObject, awb: string): TrackResult {
    if (item.status === 'not_found') return { kind: 'not_found', trackingNumber: awb };
    if (item.status !== 'success') throw new ShapeError(`${awb} has status ${JSON.stringify(item.status)}`);
    const statusLog = item.status_log ?? [];
    if (!Array.isArray(statusLog)) throw new ShapeError(`${awb}.status_log is not a list`);

    const read = statusLog
      .map((entry, i) => toEvent(entry, `${awb}.status_log[${i}]`))
      .filter((event): event is NormalisedEvent => event !== null);
    const seen = new Set<string>();
    const events = orderWithUnknown(
      read,
      (event) => event,
      (a, b) =>
        a.occurredAt.localeCompare(b.occurredAt) ||
        compareProgress(a.status, b.status) ||
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
    const latestCode = codeOf(item.latest_shipment_status_code);
    if (newest) {
      snapshot = { status: newest.status, subStatus: newest.subStatus };
    } else if (latestCode !== null) {
      const text = textOrNull(item.latest_tracking_status) ?? null;
      snapshot =
        mapEasyParcelStatus(latestCode, text, table) ??
        unmapped(latestCode, `${awb}.latest_shipment_status_code`);
    } else {
      snapshot = { status: ShipmentStatus.PENDING, subStatus: null };
    }
    return {
      kind: 'found',
      trackingNumber: awb,
      ...snapshot,
      // EasyParcel's tracking answer promises no delivery date.
      eta: null,
      events,
      skippedScans: statusLog.length - read.length,
      // A tracking result names no person: it is kept whole.
      raw: item,
    };
  }

  return {
    code: CourierCode.EASYPARCEL,
    maxBatch,

    async track(trackingNumbers: string[]): Promise<TrackResult[]> {
      if (trackingNumbers.length === 0) return [];
      if (trackingNumbers.length > maxBatch) {
        throw new Error(
          `EasyParcel tracks at most ${maxBatch} numbers per call here (got ${trackingNumbers.length}); split the batch`,
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
          // The docs promise one result per number; a missing one reads as "not known
          // (yet)": the workflow only gives up after several such answers in a row.
          log?.warn(
            { courier: CourierCode.EASYPARCEL, trackingNumber: awb },
            'EasyParcel left a number out of its answer',
          );
          return { kind: 'not_found', trackingNumber: awb };
        }),
      );
    },

    book: easyParcelBooking({
      ctx,
      authorised,
      jsonBody,
      shipping,
      journal: opts.submissions ?? memorySubmissionJournal(),
      now,
    }),

    /**
     * EasyParcel cancels by shipment number, so the AWB's is asked first (its tracking answer
     * has it: one more request, counted). An `error` result of the cancel is classified (see
     * easyparcel-orders.ts): not found, collected, or invalid; "Already Cancelled" is success.
     */
    async cancel(trackingNumber: string): Promise<void> {
      const what = `the cancellation of ${trackingNumber}`;
      const refuse = (message: string, reason: CourierRefusal, answer: HttpAnswer) =>
        rejected(
          ctx,
          `EasyParcel refused ${what}: ${message}`,
          { status: answer.status, bodySnippet: bodySnippet(ctx, answer.text) },
          reason,
        );
      const lookup = await authorised('/shipment/tracking_status', { awb_numbers: [trackingNumber] });
      const looked = jsonBody(lookup, `the look-up of ${trackingNumber} before its cancellation`);
      const shipmentNumber = shipmentNumberIn(looked, trackingNumber);
      if (shipmentNumber === 'not_found') {
        throw refuse(`EasyParcel does not know ${trackingNumber}`, CourierRefusal.UNKNOWN_BOOKING, lookup);
      }
      if (shipmentNumber === null) {
        throw unavailable(ctx, `EasyParcel's tracking answer gave no shipment number for ${trackingNumber}`, {
          status: lookup.status,
          bodySnippet: bodySnippet(ctx, lookup.text),
        });
      }
      const answer = await authorised('/shipment/cancel', cancelBody(shipmentNumber));
      const body = jsonBody(
        answer,
        what,
        { 404: `EasyParcel does not know ${trackingNumber}` },
        trackingNumber,
      );
      const result = cancelResult(body, shipmentNumber);
      if (result === null) {
        throw unavailable(ctx, `EasyParcel answered ${what} without a result for ${shipmentNumber}`, {
          status: answer.status,
          bodySnippet: bodySnippet(ctx, answer.text),
        });
      }
      if (result.refusal === null) return;
      const { message } = result.refusal;
      const reason = /not found/i.test(message)
        ? CourierRefusal.UNKNOWN_BOOKING
        : cancelRefusal(answer.status, message);
      throw refuse(message || 'no reason given', reason, answer);
    },
  };
}
