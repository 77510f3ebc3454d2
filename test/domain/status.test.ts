import { canTransition, isTerminal, SHIPMENT_STATUSES, ShipmentStatus } from '../../src/domain/status';

describe('shipment status taxonomy', () => {
  it('never moves a delivered parcel back, except into a return', () => {
    const allowed = SHIPMENT_STATUSES.filter((to) => canTransition(ShipmentStatus.DELIVERED, to));
    expect(allowed.sort()).toEqual(['DELIVERED', 'RETURNED', 'RETURNING']);
  });

  it('never moves a returned or cancelled shipment at all', () => {
    for (const from of [ShipmentStatus.RETURNED, ShipmentStatus.CANCELLED]) {
      expect(SHIPMENT_STATUSES.filter((to) => to !== from && canTransition(from, to))).toEqual([]);
    }
  });

  it('lets a parcel in transit move anywhere, including back to out-for-delivery after a failed attempt', () => {
    expect(canTransition(ShipmentStatus.ATTEMPT_FAIL, ShipmentStatus.OUT_FOR_DELIVERY)).toBe(true);
    expect(canTransition(ShipmentStatus.IN_TRANSIT, ShipmentStatus.DELIVERED)).toBe(true);
  });

  it('stops tracking at delivered, returned, cancelled and expired only', () => {
    expect(SHIPMENT_STATUSES.filter(isTerminal).sort()).toEqual([
      'CANCELLED',
      'DELIVERED',
      'EXPIRED',
      'RETURNED',
    ]);
  });
});
