/**
 * Zone-less courier timestamps (src/couriers/time.ts) and the HTTP helpers' small rules
 * (src/couriers/http.ts). Expected values are worked out by hand, not by the code under test.
 */
import { parseRetryAfter, truncate } from '../../src/couriers/http';
import {
  formatIsoSeconds,
  formatSqlLocal,
  IST_OFFSET_MINUTES,
  localToUtc,
  MYT_OFFSET_MINUTES,
  parseClock,
  parseDayMonthYear,
  parseIsoInstant,
  parseSqlLocal,
} from '../../src/couriers/time';

describe('courier time parsing', () => {
  it('reads Malaysia wall-clock time as eight hours ahead of UTC', () => {
    expect(parseSqlLocal('2025-03-06 12:02:33', MYT_OFFSET_MINUTES)?.toISOString()).toBe(
      '2025-03-06T04:02:33.000Z',
    );
    expect(parseSqlLocal('2025-01-01 03:00:00', MYT_OFFSET_MINUTES)?.toISOString()).toBe(
      '2024-12-31T19:00:00.000Z',
    );
  });

  it('reads India wall-clock time as five and a half hours ahead of UTC', () => {
    const day = parseDayMonthYear('07-Jun-2012')!;
    const clock = parseClock('13:05')!;
    expect(localToUtc({ ...day, ...clock }, IST_OFFSET_MINUTES)?.toISOString()).toBe(
      '2012-06-07T07:35:00.000Z',
    );
    expect(
      localToUtc(
        { year: 2025, month: 1, day: 1, hour: 3, minute: 0, second: 0 },
        IST_OFFSET_MINUTES,
      )?.toISOString(),
    ).toBe('2024-12-31T21:30:00.000Z');
  });

  it('reads both Blue Dart date styles, full and short month names', () => {
    expect(parseDayMonthYear('07 June 2012')).toEqual({ year: 2012, month: 6, day: 7 });
    expect(parseDayMonthYear('07-Jun-2012')).toEqual({ year: 2012, month: 6, day: 7 });
    expect(parseDayMonthYear('7 SEPTEMBER 2024')).toEqual({ year: 2024, month: 9, day: 7 });
    expect(parseDayMonthYear('07-Jux-2012')).toBeNull();
    expect(parseDayMonthYear('2012-06-07')).toBeNull();
  });

  it('refuses dates and times that do not exist', () => {
    expect(parseSqlLocal('2025-02-30 10:00:00', MYT_OFFSET_MINUTES)).toBeNull();
    expect(parseSqlLocal('2025-03-06 24:00:00', MYT_OFFSET_MINUTES)).toBeNull();
    expect(parseSqlLocal('2025-03-06T12:00:00', MYT_OFFSET_MINUTES)).toBeNull();
    expect(
      localToUtc({ year: 2025, month: 6, day: 31, hour: 0, minute: 0, second: 0 }, IST_OFFSET_MINUTES),
    ).toBeNull();
    expect(parseClock('1305')).toBeNull();
  });

  it('reads ISO timestamps only when they state their zone', () => {
    expect(parseIsoInstant('2025-03-03T01:05:00Z')?.toISOString()).toBe('2025-03-03T01:05:00.000Z');
    expect(parseIsoInstant('2025-03-03T09:05:00+08:00')?.toISOString()).toBe('2025-03-03T01:05:00.000Z');
    expect(parseIsoInstant('2025-03-03T01:05:00.250Z')?.toISOString()).toBe('2025-03-03T01:05:00.250Z');
    expect(parseIsoInstant('2025-03-03T01:05:00')).toBeNull();
    expect(parseIsoInstant('yesterday')).toBeNull();
  });

  it('writes Malaysia wall-clock time and ISO seconds the way EasyParcel does', () => {
    const at = new Date('2025-03-05T16:30:45.678Z');
    expect(formatSqlLocal(at, MYT_OFFSET_MINUTES)).toBe('2025-03-06 00:30:45');
    expect(formatIsoSeconds(at)).toBe('2025-03-05T16:30:45Z');
  });
});

describe('courier HTTP helpers', () => {
  it('cuts long bodies to 500 characters, marking the cut', () => {
    const cut = truncate('x'.repeat(2000));
    expect(cut).toHaveLength(500);
    expect(cut.endsWith('…')).toBe(true);
    expect(truncate('short')).toBe('short');
  });

  it('reads Retry-After as seconds or as a date, and ignores nonsense', () => {
    const now = Date.parse('2025-03-06T04:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 06 Mar 2025 04:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Thu, 06 Mar 2025 03:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
