import { freshnessOf, type FreshnessFacts } from '../../src/domain/freshness';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const now = Date.parse('2026-11-23T12:00:00Z');
const at = (offsetMs: number) => new Date(now + offsetMs);
const rule = { graceMs: 15 * MINUTE, expiredAfterMs: 24 * HOUR };
const parcel = (facts: Partial<FreshnessFacts>): FreshnessFacts => ({
  status: 'IN_TRANSIT',
  lastSyncedAt: at(-HOUR),
  nextPollAt: at(HOUR),
  syncFailingSince: null,
  createdAt: at(-3 * 24 * HOUR),
  ...facts,
});
const freshness = (facts: Partial<FreshnessFacts>) => freshnessOf(parcel(facts), rule, now);

describe('freshness', () => {
  it('follows the next poll its workflow planned, whatever the interval: a 3 h quiet interval reads fresh', () => {
    expect(freshness({ lastSyncedAt: at(-HOUR), nextPollAt: at(2 * HOUR) })).toBe('fresh');
    expect(freshness({ lastSyncedAt: at(-10 * HOUR), nextPollAt: at(2 * HOUR) })).toBe('fresh');
  });

  it('is fresh up to the grace past the planned poll, stale after it, expired once the data is a day old', () => {
    expect(freshness({ nextPollAt: at(-15 * MINUTE) })).toBe('fresh');
    expect(freshness({ nextPollAt: at(-16 * MINUTE) })).toBe('stale');
    expect(freshness({ lastSyncedAt: at(-25 * HOUR), nextPollAt: at(-23 * HOUR) })).toBe('expired');
  });

  it('while polls fail, counts from the first failed poll, not from the backoff’s next try', () => {
    expect(freshness({ syncFailingSince: at(-10 * MINUTE), nextPollAt: at(HOUR) })).toBe('fresh');
    expect(freshness({ syncFailingSince: at(-2 * HOUR), nextPollAt: at(HOUR) })).toBe('stale');
    expect(
      freshness({ lastSyncedAt: at(-30 * HOUR), syncFailingSince: at(-28 * HOUR), nextPollAt: at(HOUR) }),
    ).toBe('expired');
  });

  it('gives a parcel waiting for its first poll the grace from its creation, then stale (never expired: no data)', () => {
    const unsynced = { lastSyncedAt: null, nextPollAt: null };
    expect(freshness({ ...unsynced, createdAt: at(-MINUTE) })).toBe('fresh');
    expect(freshness({ ...unsynced, createdAt: at(-HOUR) })).toBe('stale');
    expect(freshness({ ...unsynced, createdAt: at(-30 * 24 * HOUR) })).toBe('stale');
    // Its first poll aligned to a later slot: the workflow stored when.
    expect(freshness({ lastSyncedAt: null, nextPollAt: at(10 * MINUTE), createdAt: at(-HOUR) })).toBe(
      'fresh',
    );
  });

  it('reads a synced open parcel with no poll planned as stale: nothing keeps it current', () => {
    expect(freshness({ lastSyncedAt: at(-MINUTE), nextPollAt: null })).toBe('stale');
  });

  it('treats a finished parcel as fresh once synced, and one finished before its first sync as stale', () => {
    expect(freshness({ status: 'DELIVERED', lastSyncedAt: at(-30 * 24 * HOUR), nextPollAt: null })).toBe(
      'fresh',
    );
    expect(freshness({ status: 'CANCELLED', lastSyncedAt: null, nextPollAt: null })).toBe('stale');
  });
});
