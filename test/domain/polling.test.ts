import type { PollPolicy } from '../../src/domain/polling';
import {
  afterAnswer,
  alignToSlot,
  backoffDelayMs,
  budgetDay,
  expiryReason,
  nightEndMs,
  nextBudgetWindowMs,
  noScanDeadlineMs,
  pollDelayMs,
  refreshAvailableAtMs,
  sincePushMs,
} from '../../src/domain/polling';

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
  refreshCooldownMs: 5 * 60_000,
};

describe('poll policy', () => {
  describe('per courier', () => {
    const withEasyParcel: PollPolicy = {
      ...policy,
      couriers: {
        easyparcel: {
          slotMs: 15 * 60_000,
          intervalMs: { IN_TRANSIT: HOUR / 2 },
          quiet: { afterMs: 24 * HOUR, intervalMs: 3 * HOUR },
        },
      },
    };

    it("uses a courier's own interval where it has one, the default elsewhere and for other couriers", () => {
      expect(pollDelayMs('IN_TRANSIT', withEasyParcel, 'easyparcel')).toBe(HOUR / 2);
      expect(pollDelayMs('INFO_RECEIVED', withEasyParcel, 'easyparcel')).toBe(6 * HOUR);
      expect(pollDelayMs('IN_TRANSIT', withEasyParcel, 'bluedart')).toBe(2 * HOUR);
      expect(pollDelayMs('DELIVERED', withEasyParcel, 'easyparcel')).toBeNull();
    });

    it('asks rarely about a parcel without a new scan for the quiet time', () => {
      expect(pollDelayMs('IN_TRANSIT', withEasyParcel, 'easyparcel', 23 * HOUR)).toBe(HOUR / 2);
      expect(pollDelayMs('IN_TRANSIT', withEasyParcel, 'easyparcel', 24 * HOUR)).toBe(3 * HOUR);
      // A longer interval than the quiet one stays.
      expect(pollDelayMs('INFO_RECEIVED', withEasyParcel, 'easyparcel', 48 * HOUR)).toBe(6 * HOUR);
    });

    describe('a courier that pushes', () => {
      const pushing: PollPolicy = {
        ...withEasyParcel,
        couriers: {
          easyparcel: {
            ...withEasyParcel.couriers!.easyparcel,
            push: { fallbackIntervalMs: 6 * HOUR, quietAfterMs: 24 * HOUR },
          },
        },
      };

      it('polls a parcel pushed about recently only at the fallback interval, to catch a lost push', () => {
        expect(pollDelayMs('IN_TRANSIT', pushing, 'easyparcel', 0, 0)).toBe(6 * HOUR);
        expect(pollDelayMs('OUT_FOR_DELIVERY', pushing, 'easyparcel', HOUR, 23 * HOUR)).toBe(6 * HOUR);
        // Never one poll less often than without pushes (a longer interval stays).
        const longer = { ...pushing.couriers!.easyparcel!, intervalMs: { IN_TRANSIT: 8 * HOUR } };
        expect(
          pollDelayMs('IN_TRANSIT', { ...pushing, couriers: { easyparcel: longer } }, 'easyparcel', 0, 0),
        ).toBe(8 * HOUR);
      });

      it('returns to normal polling once pushes have been quiet for quietAfter, and without any push', () => {
        expect(pollDelayMs('IN_TRANSIT', pushing, 'easyparcel', HOUR, 24 * HOUR)).toBe(HOUR / 2);
        expect(pollDelayMs('IN_TRANSIT', pushing, 'easyparcel', HOUR, null)).toBe(HOUR / 2);
        // Quiet parcels keep the quiet rule after the pushes stop.
        expect(pollDelayMs('IN_TRANSIT', pushing, 'easyparcel', 30 * HOUR, 30 * HOUR)).toBe(3 * HOUR);
      });

      it('puts those polls on the quiet slot, and counts the start as a push when subscribed from the start', () => {
        const coarse: PollPolicy = {
          ...pushing,
          couriers: {
            easyparcel: {
              ...pushing.couriers!.easyparcel!,
              quietSlotMs: 3 * HOUR,
              push: { fallbackIntervalMs: 6 * HOUR, quietAfterMs: 24 * HOUR, fromStart: true },
            },
          },
        };
        expect(alignToSlot(HOUR, coarse, 'easyparcel', 'IN_TRANSIT', 0)).toBe(3 * HOUR);
        expect(alignToSlot(HOUR + 1, coarse, 'easyparcel', 'IN_TRANSIT', null)).toBe(HOUR + 15 * 60_000);
        expect(sincePushMs(null, 1_000, 5_000, coarse, 'easyparcel')).toBe(4_000);
        expect(sincePushMs(3_000, 1_000, 5_000, coarse, 'easyparcel')).toBe(2_000);
        expect(sincePushMs(null, 1_000, 5_000, pushing, 'easyparcel')).toBeNull();
        expect(sincePushMs(null, 1_000, 5_000, coarse, 'bluedart')).toBeNull();
      });

      it('applies to its own parcels only, and never polls a finished parcel', () => {
        expect(pollDelayMs('IN_TRANSIT', pushing, 'bluedart', 0, 0)).toBe(2 * HOUR);
        expect(pollDelayMs('IN_TRANSIT', withEasyParcel, 'easyparcel', 0, 0)).toBe(HOUR / 2);
        expect(pollDelayMs('DELIVERED', pushing, 'easyparcel', 0, 0)).toBeNull();
      });
    });

    describe('polls hours apart', () => {
      const slot = 15 * 60_000;
      const night = { fromMinute: 22 * 60, toMinute: 7 * 60, utcOffsetMinutes: 480 };
      const quietSlotted: PollPolicy = {
        ...withEasyParcel,
        couriers: { easyparcel: { ...withEasyParcel.couriers!.easyparcel, quietSlotMs: 3 * HOUR, night } },
      };
      const utc = (text: string) => Date.parse(text);

      it('fall on the quiet slot, so that the shop’s rare polls meet in a few slots a day; others keep the slot', () => {
        // 02:10 UTC (10:10 MYT): a quiet parcel's poll 3 h on goes to 06:00 UTC (a multiple of 3 h),
        // a moving one's (wanted a little sooner) to 05:15.
        const now = utc('2026-12-02T02:10:00Z');
        expect(alignToSlot(now + 3 * HOUR, quietSlotted, 'easyparcel', 'EXCEPTION', null, 3 * HOUR)).toBe(
          utc('2026-12-02T06:00:00Z'),
        );
        expect(
          alignToSlot(now + 3 * HOUR, quietSlotted, 'easyparcel', 'IN_TRANSIT', null, 3 * HOUR - 1),
        ).toBe(utc('2026-12-02T05:15:00Z'));
        // On the grid, a poll every 3 h stays every 3 h.
        const onGrid = utc('2026-12-02T03:00:00Z');
        expect(alignToSlot(onGrid + 3 * HOUR, quietSlotted, 'easyparcel', 'EXCEPTION', null, 3 * HOUR)).toBe(
          onGrid + 3 * HOUR,
        );
        // Without a quiet slot, the courier's own slot.
        expect(alignToSlot(now + 3 * HOUR, withEasyParcel, 'easyparcel', 'EXCEPTION', null, 3 * HOUR)).toBe(
          Math.ceil((now + 3 * HOUR) / slot) * slot,
        );
      });

      it('wanted in the night, happen at its start when it has not begun yet, else at its end', () => {
        // 20:30 MYT (12:30 UTC): the next poll, 3 h on, would be 23:30 MYT: it happens at 22:00 MYT instead.
        const evening = utc('2026-12-02T12:30:00Z');
        expect(
          alignToSlot(evening + 3 * HOUR, quietSlotted, 'easyparcel', 'IN_TRANSIT', null, 3 * HOUR),
        ).toBe(utc('2026-12-02T14:00:00Z'));
        // From 22:00 MYT itself, the next is the morning's first quiet slot (07:00 MYT is 23:00 UTC: 00:00 UTC).
        const ten = utc('2026-12-02T14:00:00Z');
        expect(alignToSlot(ten + 3 * HOUR, quietSlotted, 'easyparcel', 'IN_TRANSIT', null, 3 * HOUR)).toBe(
          utc('2026-12-03T00:00:00Z'),
        );
        // A moving parcel's poll never moves earlier: it waits for the morning.
        expect(
          alignToSlot(evening + 2 * HOUR, quietSlotted, 'easyparcel', 'IN_TRANSIT', null, 2 * HOUR),
        ).toBe(utc('2026-12-02T23:00:00Z'));
        // PENDING waits for the courier's own system, at any hour: the quiet slot alone (02:00 MYT).
        expect(alignToSlot(evening + 3 * HOUR, quietSlotted, 'easyparcel', 'PENDING', null, 3 * HOUR)).toBe(
          utc('2026-12-02T18:00:00Z'),
        );
      });
    });

    it("moves a poll to the courier's next slot boundary, and leaves couriers without a slot alone", () => {
      const slot = 15 * 60_000;
      expect(alignToSlot(10 * slot, withEasyParcel, 'easyparcel')).toBe(10 * slot);
      expect(alignToSlot(10 * slot + 1, withEasyParcel, 'easyparcel')).toBe(11 * slot);
      expect(alignToSlot(10 * slot + 1, withEasyParcel, 'bluedart')).toBe(10 * slot + 1);
      expect(alignToSlot(10 * slot + 1, policy)).toBe(10 * slot + 1);
    });

    it("moves a poll waiting for a door scan out of the courier's night, to its end; PENDING is polled at night", () => {
      const night = { fromMinute: 22 * 60, toMinute: 7 * 60, utcOffsetMinutes: 480 };
      const withNight: PollPolicy = {
        ...withEasyParcel,
        couriers: { easyparcel: { ...withEasyParcel.couriers!.easyparcel, night } },
      };
      // Malaysia time is UTC+8: 22:00 MYT on 2 Dec is 14:00 UTC, 07:00 MYT on 3 Dec is 23:00 UTC.
      const utc = (text: string) => Date.parse(text);
      const morning = utc('2026-12-02T23:00:00Z');
      expect(alignToSlot(utc('2026-12-02T14:00:00Z'), withNight, 'easyparcel', 'IN_TRANSIT')).toBe(
        utc('2026-12-02T14:00:00Z'),
      );
      expect(alignToSlot(utc('2026-12-02T14:00:01Z'), withNight, 'easyparcel', 'IN_TRANSIT')).toBe(morning);
      // Past local midnight (16:30 UTC is 00:30 MYT), and just before the end.
      expect(alignToSlot(utc('2026-12-02T16:30:00Z'), withNight, 'easyparcel', 'OUT_FOR_DELIVERY')).toBe(
        morning,
      );
      expect(alignToSlot(utc('2026-12-02T22:59:00Z'), withNight, 'easyparcel', 'INFO_RECEIVED')).toBe(
        morning,
      );
      // In the day the slot rule alone applies: 07:01 MYT goes to 07:15.
      expect(alignToSlot(utc('2026-12-02T23:01:00Z'), withNight, 'easyparcel', 'IN_TRANSIT')).toBe(
        utc('2026-12-02T23:15:00Z'),
      );
      // PENDING waits for the courier's system, which books at any hour; no status given: no night.
      expect(alignToSlot(utc('2026-12-02T16:30:00Z'), withNight, 'easyparcel', 'PENDING')).toBe(
        utc('2026-12-02T16:30:00Z'),
      );
      expect(alignToSlot(utc('2026-12-02T16:30:00Z'), withNight, 'easyparcel')).toBe(
        utc('2026-12-02T16:30:00Z'),
      );
      expect(alignToSlot(utc('2026-12-02T16:30:00Z'), withNight, 'bluedart', 'IN_TRANSIT')).toBe(
        utc('2026-12-02T16:30:00Z'),
      );
    });

    it('reads a night that does not wrap past midnight too', () => {
      const night = { fromMinute: 60, toMinute: 5 * 60, utcOffsetMinutes: 0 };
      expect(nightEndMs(Date.parse('2026-12-02T03:00:00Z'), night)).toBe(Date.parse('2026-12-02T05:00:00Z'));
      expect(nightEndMs(Date.parse('2026-12-02T06:00:00Z'), night)).toBeNull();
      expect(nightEndMs(Date.parse('2026-12-02T00:30:00Z'), night)).toBeNull();
    });
  });

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
    const answered = { startedAtMs: start, quietSinceMs: start, unansweredSinceMs: null };
    expect(expiryReason(start + 6 * 24 * HOUR, answered, policy)).toBeNull();
    expect(expiryReason(start + 7 * 24 * HOUR, answered, policy)).toBe('NO_SCAN');
    const recentScan = { ...answered, quietSinceMs: start + 59 * 24 * HOUR };
    expect(expiryReason(start + 60 * 24 * HOUR, recentScan, policy)).toBe('MAX_AGE');
  });

  it('does not count time the courier did not answer towards the no-scan expiry', () => {
    const start = Date.parse('2026-11-01T00:00:00Z');
    // Answered for 2 days, then 10 days without an answer (an outage, or the budget used up).
    const down = { startedAtMs: start, quietSinceMs: start, unansweredSinceMs: start + 2 * 24 * HOUR };
    expect(expiryReason(start + 12 * 24 * HOUR, down, policy)).toBeNull();
    expect(noScanDeadlineMs(down, policy)).toBeNull();
    // It answers again: 2 days of silence so far, 5 more before it expires.
    const back = { ...down, ...afterAnswer(down, start + 12 * 24 * HOUR) };
    expect(back).toMatchObject({ quietSinceMs: start + 10 * 24 * HOUR, unansweredSinceMs: null });
    expect(expiryReason(start + 16 * 24 * HOUR, back, policy)).toBeNull();
    expect(expiryReason(start + 17 * 24 * HOUR, back, policy)).toBe('NO_SCAN');
    // Max age counts whatever the courier does.
    expect(expiryReason(start + 60 * 24 * HOUR, down, policy)).toBe('MAX_AGE');
  });

  it('lets a refresh poll at most once per cooldown', () => {
    const polled = Date.parse('2026-11-01T10:00:00Z');
    expect(refreshAvailableAtMs(null, polled, policy)).toBeNull();
    expect(refreshAvailableAtMs(polled, polled + 60_000, policy)).toBe(polled + 5 * 60_000);
    expect(refreshAvailableAtMs(polled, polled + 5 * 60_000, policy)).toBeNull();
    expect(refreshAvailableAtMs(polled, polled + 1, { ...policy, refreshCooldownMs: 0 })).toBeNull();
  });
});
