import type { PollPolicy } from '../../src/workflows/contract';
import {
  backoffDelayMs,
  budgetDay,
  expiryReason,
  nextBudgetWindowMs,
  pollDelayMs,
} from '../../src/workflows/policy';

const HOUR = 3_600_000;
const policy: PollPolicy = {
  intervalMs: {
    PENDING: 6 * HOUR,
    INFO_RECEIVED: 6 * HOUR,
    IN_TRANSIT: 2 * HOUR,
    OUT_FOR_DELIVERY: HOUR / 2,
    AVAILABLE_FOR_PICKUP: 6 * HOUR,
    ATTEMPT_FAIL: HOUR,
    EXCEPTION: HOUR,
    RETURNING: 2 * HOUR,
  },
  backoffBaseMs: 60_000,
  backoffCapMs: 6 * HOUR,
  expireAfterNoScanMs: 7 * 24 * HOUR,
  maxAgeMs: 60 * 24 * HOUR,
  notFoundLimit: 5,
  pollAttempts: 4,
  pollRetryInitialMs: 2_000,
  maxCyclesPerRun: 500,
};

describe('poll policy', () => {
  it('polls a parcel out for delivery far more often than one just announced', () => {
    expect(pollDelayMs('OUT_FOR_DELIVERY', policy)).toBe(30 * 60_000);
    expect(pollDelayMs('INFO_RECEIVED', policy)).toBe(6 * HOUR);
    expect(pollDelayMs('IN_TRANSIT', policy)).toBe(2 * HOUR);
  });

  it('stops polling once a shipment is delivered, returned, cancelled or expired', () => {
    for (const status of ['DELIVERED', 'RETURNED', 'CANCELLED', 'EXPIRED'] as const) {
      expect(pollDelayMs(status, policy)).toBeNull();
    }
  });

  it('doubles the backoff per failed cycle up to the cap', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(n, policy))).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(backoffDelayMs(50, policy)).toBe(6 * HOUR);
  });

  it('reopens the courier budget at the next UTC midnight', () => {
    const t = Date.parse('2026-11-23T17:45:00Z');
    expect(new Date(nextBudgetWindowMs(t)).toISOString()).toBe('2026-11-24T00:00:00.000Z');
    expect(budgetDay(t)).toBe('2026-11-23');
  });

  it('expires a parcel with no scan for the limit, and any parcel past the max age', () => {
    const start = Date.parse('2026-11-01T00:00:00Z');
    expect(
      expiryReason(start + 6 * 24 * HOUR, { startedAtMs: start, lastScanAtMs: start }, policy),
    ).toBeNull();
    expect(expiryReason(start + 7 * 24 * HOUR, { startedAtMs: start, lastScanAtMs: start }, policy)).toBe(
      'NO_SCAN',
    );
    const recentScan = start + 59 * 24 * HOUR;
    expect(
      expiryReason(start + 60 * 24 * HOUR, { startedAtMs: start, lastScanAtMs: recentScan }, policy),
    ).toBe('MAX_AGE');
  });
});
