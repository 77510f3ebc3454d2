/**
 * EasyParcel bookings, made at most once per reference. EasyParcel's docs do not say that a
 * repeated `reference` in `shipment/submit_orders` is deduplicated, and its Open API has no
 * look-up by reference (`shipment/details` takes a shipment number; `shipment/list` filters by
 * status and collection date, and its items carry no reference). So what EasyParcel answered is
 * kept in a journal (Postgres in the worker: src/read-model/easyparcel-submissions.ts), written
 * before the next step:
 * - right before the submit goes out, the reference is recorded as sent;
 * - an answer with a shipment number records it (with its AWB, or none yet);
 * - a refusal, or a request that surely never left, drops the record (nothing was booked).
 * A later attempt for the same reference never submits again: with a shipment number it asks
 * `shipment/details` for the AWB (retryable until one exists); with only "sent" (the connection
 * broke after sending, an unreadable 200, a 5xx other than 503) the outcome is unknown, and
 * CourierOutcomeUnknownError parks the order for an admin. See src/couriers/README.md.
 */
import { CourierOutcomeUnknownError, CourierRejectedError } from './types';
import type { Booking, BookingRequest } from './types';
import {
  awbInDetails,
  receiverPhone,
  submitOrderBody,
  submitResult,
  type EasyParcelShipping,
} from './easyparcel-orders';
import {
  bodySnippet,
  rejected,
  unavailable,
  wasNotSent,
  type HttpAnswer,
  type HttpContext,
  type JsonObject,
} from './http';

/** What was recorded of one reference's submit. */
export interface EasyParcelSubmission {
  reference: string;
  /** EasyParcel's shipment number once it answered with one; null: sent, outcome unknown. */
  shipmentNumber: string | null;
  awbNumber: string | null;
}

/** Where submits are recorded; every worker must share it (the worker passes Postgres). */
export interface SubmissionJournal {
  /** What was recorded for `reference`; null when no submit of it may have gone out. */
  find(reference: string): Promise<EasyParcelSubmission | null>;
  /** Records that a submit of `reference` is about to go out; false when one is recorded already. */
  begin(reference: string): Promise<boolean>;
  /** Records EasyParcel's answer: the shipment number, and the AWB once there is one. */
  answered(reference: string, shipmentNumber: string, awbNumber: string | null): Promise<void>;
  /** Drops the record of a submit that booked nothing (refused, or never sent). */
  forget(reference: string): Promise<void>;
}

/** A journal in this process only (tests, and an adapter built without the worker's store). */
export function memorySubmissionJournal(): SubmissionJournal {
  const rows = new Map<string, EasyParcelSubmission>();
  return {
    find: async (reference) => {
      const row = rows.get(reference);
      return row ? { ...row } : null;
    },
    begin: async (reference) => {
      if (rows.has(reference)) return false;
      rows.set(reference, { reference, shipmentNumber: null, awbNumber: null });
      return true;
    },
    answered: async (reference, shipmentNumber, awbNumber) => {
      rows.set(reference, { reference, shipmentNumber, awbNumber });
    },
    forget: async (reference) => {
      rows.delete(reference);
    },
  };
}

export interface EasyParcelBookingDeps {
  ctx: HttpContext;
  authorised: (path: string, payload: unknown, beforeSend?: () => Promise<void>) => Promise<HttpAnswer>;
  /** The adapter's reader of an answer: a non-2xx throws its classified error. */
  jsonBody: (answer: HttpAnswer, what: string, refusals?: Partial<Record<number, string>>) => JsonObject;
  shipping: EasyParcelShipping;
  journal: SubmissionJournal;
  now: () => number;
}

/** The adapter's `book`: submits a reference once, then only asks for its AWB. */
export function easyParcelBooking(
  deps: EasyParcelBookingDeps,
): (request: BookingRequest) => Promise<Booking> {
  const { ctx, authorised, jsonBody, shipping, journal } = deps;
  const snippet = (answer: HttpAnswer) => ({
    status: answer.status,
    bodySnippet: bodySnippet(ctx, answer.text),
  });

  function unknownOutcome(reference: string, why: string): CourierOutcomeUnknownError {
    const message =
      `EasyParcel may hold a booking of ${reference}: ${why}. Waybill does not submit it again ` +
      `(that could book twice); find reference ${reference} in EasyParcel's shipment list, cancel ` +
      'it there if it exists, then resolve this item';
    ctx.log?.warn({ courier: ctx.courier, reference }, message);
    return new CourierOutcomeUnknownError(message, reference);
  }

  /**
   * The AWB of a recorded shipment (`shipment/details`); retryable until EasyParcel has one.
   * `lookingOnly` (the saga's clean-up, which cancels what it finds): a shipment without an AWB
   * cannot be cancelled by Waybill (EasyParcel's tracking, which cancels go through, knows it by
   * its AWB), so when the clean-up runs out of retries and the order is parked, the reason names
   * the shipment and what an admin does about it.
   */
  async function awbOf(reference: string, shipmentNumber: string, lookingOnly = false): Promise<Booking> {
    const what = `the look-up of ${shipmentNumber} (booking ${reference})`;
    const answer = await authorised('/shipment/details', { shipment_number: shipmentNumber });
    if (answer.status === 404) {
      throw unknownOutcome(
        reference,
        `EasyParcel booked it as ${shipmentNumber} but now says it has no such shipment`,
      );
    }
    const awb = awbInDetails(jsonBody(answer, what), shipmentNumber);
    if (awb === undefined) {
      throw unavailable(
        ctx,
        `EasyParcel's answer to ${what} has no shipment_details to read`,
        snippet(answer),
      );
    }
    if (awb === null) {
      const why = `EasyParcel booked ${reference} as shipment ${shipmentNumber} but gives no AWB yet`;
      throw unavailable(
        ctx,
        lookingOnly
          ? `${why}, and a shipment without an AWB cannot be cancelled from Waybill: cancel shipment ` +
              `${shipmentNumber} (reference ${reference}) in EasyParcel's dashboard, then resolve this ` +
              'item; or retry it once EasyParcel shows the AWB, and Waybill cancels it'
          : why,
        snippet(answer),
      );
    }
    await journal.answered(reference, shipmentNumber, awb);
    return { trackingNumber: awb, courierRef: shipmentNumber };
  }

  /** Sends the submit, recording it first; anything after sending that is not an answer is unknown. */
  async function submit(request: BookingRequest, body: JsonObject): Promise<HttpAnswer> {
    const { reference } = request;
    let recorded = false;
    try {
      return await authorised('/shipment/submit_orders', body, async () => {
        if (recorded) return; // the same submit again after a 401: not processed the first time
        if (!(await journal.begin(reference)))
          throw unknownOutcome(reference, 'another attempt is submitting it');
        recorded = true;
      });
    } catch (err) {
      if (!recorded) throw err; // nothing went out
      // Refused (401 with a fresh token), or never sent (refused connection, or stopped by the
      // daily budget before it went out): EasyParcel holds nothing.
      if (err instanceof CourierRejectedError || wasNotSent(err)) {
        await journal.forget(reference);
        throw err;
      }
      throw unknownOutcome(reference, `the submit went out but got no answer (${(err as Error).message})`);
    }
  }

  return async function book(request: BookingRequest): Promise<Booking> {
    const { reference } = request;
    const what = `the booking of ${reference}`;
    const recorded = await journal.find(reference);
    if (recorded?.shipmentNumber && recorded.awbNumber) {
      return { trackingNumber: recorded.awbNumber, courierRef: recorded.shipmentNumber };
    }
    if (recorded?.shipmentNumber) return awbOf(reference, recorded.shipmentNumber, request.lookupOnly);
    if (recorded) throw unknownOutcome(reference, 'an earlier submit of it got no answer that could be read');
    // Only looking for what an earlier attempt booked (the saga's clean-up): nothing was sent.
    if (request.lookupOnly) {
      throw rejected(ctx, `nothing was submitted for ${reference}: EasyParcel holds no booking of it`);
    }
    if (receiverPhone(request, shipping) === null) {
      throw rejected(
        ctx,
        `EasyParcel requires the receiver's phone, and the address of ${reference} has none ` +
          '(EASYPARCEL_RECEIVER_PHONE_FALLBACK is not set): add a phone to the address',
      );
    }
    const today = new Date(deps.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const answer = await submit(request, submitOrderBody(request, shipping, today));

    if (answer.status >= 300) {
      // A 4xx, a 429 or a 503 is a request not carried out; any other 5xx may have booked.
      if (answer.status < 500 || answer.status === 503) {
        await journal.forget(reference);
        jsonBody(answer, what, { 422: 'the booking is invalid' }); // throws the classified error
      }
      throw unknownOutcome(reference, `EasyParcel answered the submit with HTTP ${answer.status}`);
    }
    let result;
    try {
      result = submitResult(jsonBody(answer, what));
    } catch (err) {
      throw unknownOutcome(
        reference,
        `EasyParcel's answer to the submit could not be read (${(err as Error).message})`,
      );
    }
    if (result.kind === 'unreadable') {
      throw unknownOutcome(
        reference,
        `EasyParcel's answer to the submit has an unexpected shape: ${result.why}`,
      );
    }
    if (result.kind === 'refused') {
      await journal.forget(reference);
      throw rejected(
        ctx,
        `EasyParcel refused ${what}: ${result.reasons.join('; ') || 'no reason given'}`,
        snippet(answer),
      );
    }
    await journal.answered(reference, result.shipmentNumber, result.awbNumber);
    if (result.awbNumber === null) {
      throw unavailable(
        ctx,
        `EasyParcel booked ${reference} as ${result.shipmentNumber} but gave no AWB yet; the next attempt asks shipment/details`,
        snippet(answer),
      );
    }
    return { trackingNumber: result.awbNumber, courierRef: result.shipmentNumber };
  };
}
