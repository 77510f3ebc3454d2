import { checkImportLine } from '../../src/activities/imports';

const line = (courier: string, trackingNumber: string) => ({
  courier,
  tracking_number: trackingNumber,
  email: null,
  postcode: null,
});
const everyCourier = () => true;

describe('checkImportLine', () => {
  it('refuses the own fleet: nothing would ever report on an imported fleet parcel', () => {
    expect(checkImportLine(line('fleet', 'FL000000000001'), everyCourier)).toEqual({
      problem: 'courier "fleet" is the shop\'s own fleet: its parcels are booked by orders, not imported',
    });
    expect(checkImportLine(line('FLEET', 'FL000000000001'), everyCourier)).toHaveProperty('problem');
  });

  it('takes a polled courier’s number, normalised', () => {
    expect(checkImportLine(line('Simulator', ' sim000123 '), everyCourier)).toEqual({
      courier: 'simulator',
      trackingNumber: 'SIM000123',
    });
  });
});
