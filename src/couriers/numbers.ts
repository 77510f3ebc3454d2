/**
 * What a tracking number of each courier looks like, checked before Waybill tracks a number
 * it did not book itself (imports): a number in the wrong shape would only ever answer "not
 * found" and cost courier calls until it expired.
 */
import { COURIER_CODES, CourierCode } from './types';

const NUMBER_FORMATS: Readonly<Record<CourierCode, { pattern: RegExp; description: string }>> = {
  // EasyParcel tracks the AWBs of the couriers it resells (City-Link, J&T, Pos Laju, …):
  // letters and digits, their lengths vary by courier.
  [CourierCode.EASYPARCEL]: { pattern: /^[A-Z0-9]{6,30}$/, description: '6 to 30 letters and digits' },
  // Blue Dart waybills are 11 digits; `BD` + digits are the numbers its sandbox (and the
  // courier simulator's Blue Dart format) issues.
  [CourierCode.BLUEDART]: {
    pattern: /^(\d{11}|BD\d{4,20})$/,
    description: '11 digits, or BD and 4 to 20 digits',
  },
  [CourierCode.SIMULATOR]: { pattern: /^SIM\d{4,20}$/, description: 'SIM and 4 to 20 digits' },
  // Numbers Waybill gives the shop's own fleet parcels when it books them (./fleet.ts).
  [CourierCode.FLEET]: { pattern: /^FL\d{12}$/, description: 'FL and 12 digits' },
};

export function isCourierCode(value: string): value is CourierCode {
  return (COURIER_CODES as readonly string[]).includes(value);
}

/** A tracking number as Waybill stores it: no spaces around it, upper case. */
export const normaliseTrackingNumber = (number: string): string => number.trim().toUpperCase();

/** Null when `number` (normalised) has the courier's shape; else why not, as a sentence. */
export function trackingNumberProblem(courier: CourierCode, number: string): string | null {
  const format = NUMBER_FORMATS[courier];
  return format.pattern.test(number)
    ? null
    : `tracking number ${JSON.stringify(number)} is not a ${courier} number (${format.description})`;
}
