/**
 * How the courier HTTP edge reads a refusal: which statuses and which words make a refused
 * cancel "collected" (the one refusal that may lead to a capture), an unknown booking, a
 * credentials incident or an invalid request.
 */
import { cancelRefusal, refusalOfStatus, saysCollected } from '../../src/couriers/http';

describe('a refusal by its status alone', () => {
  it.each([
    [400, 'invalid'],
    [401, 'credentials'],
    [403, 'credentials'],
    [404, 'unknown_booking'],
    [409, 'invalid'],
    [410, 'invalid'],
    [422, 'invalid'],
  ])('%i is %s', (status, reason) => {
    expect(refusalOfStatus(status)).toBe(reason);
  });
});

describe('a refusal that says the parcel is collected', () => {
  it.each([
    'AWB EP2000000001 has already been collected and cannot be cancelled',
    'AWB BD3000000001 is already picked up',
    'Shipment already picked-up by courier',
    'Parcel is in transit',
    'Shipment has been collected by the courier, cannot cancel',
  ])('"%s" says so', (text) => {
    expect(saysCollected(text)).toBe(true);
  });

  it.each([
    'The shipment cancellation period is over (7 days from collection date: 2025-05-19)',
    'Parcel not yet collected, cancellation pending review',
    'Parcel has not been picked up',
    'To be collected tomorrow',
    'Awaiting pickup',
    'Shipment is locked for manifesting',
    'Conflict',
    '',
  ])('"%s" does not', (text) => {
    expect(saysCollected(text)).toBe(false);
  });

  it('nor does a refusal without words', () => {
    expect(saysCollected(undefined)).toBe(false);
    expect(saysCollected(null)).toBe(false);
  });
});

describe('a refused cancel', () => {
  it.each([
    [409, 'AWB X has already been collected and cannot be cancelled', 'collected'],
    [400, 'AWB X is already picked up', 'collected'],
    [409, 'Conflict', 'invalid'],
    [404, 'AWB X has already been collected', 'unknown_booking'],
    [400, 'Invalid Waybill No.', 'unknown_booking'],
    [422, 'Shipment Not Found', 'unknown_booking'],
    [401, 'AWB X is already picked up', 'credentials'],
    [403, 'Forbidden', 'credentials'],
    [422, 'awb_number is required', 'invalid'],
  ])('answered %i "%s" is %s', (status, text, reason) => {
    expect(cancelRefusal(status, text)).toBe(reason);
  });
});
