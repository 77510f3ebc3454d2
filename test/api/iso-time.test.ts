/** The tracking reads' time formatting matches Date#toISOString exactly, everywhere it is used. */
import { asIsoUtc, isoUtc } from '../../src/api/iso-time';

const iso = (ms: number) => new Date(ms).toISOString();

test('isoUtc writes what toISOString writes at the edges of days, months, leap years and its range', () => {
  const edges = [
    0,
    1,
    86_399_999,
    Date.UTC(2000, 1, 29, 23, 59, 59, 999), // a leap day of a 400-year
    Date.UTC(2000, 2, 1),
    Date.UTC(2100, 1, 28, 12), // 2100 is not a leap year
    Date.UTC(2100, 2, 1),
    Date.UTC(2024, 11, 31, 23, 59, 59, 999),
    Date.UTC(2025, 0, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(10000, 0, 1), // six-digit year: left to toISOString
    -1, // before 1970: left to toISOString
    1.5, // not whole ms: left to toISOString
  ];
  for (const ms of edges) expect(isoUtc(ms)).toBe(iso(ms));
});

test('isoUtc agrees with toISOString on 200,000 random instants between 1970 and 9999', () => {
  const wrong: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const ms = Math.floor(Math.random() * Date.UTC(10000, 0, 1));
    if (isoUtc(ms) !== iso(ms)) wrong.push(ms);
  }
  expect(wrong).toEqual([]);
});

test('isoUtc of a time that is not one throws as toISOString does', () => {
  expect(() => isoUtc(Number.NaN)).toThrow(RangeError);
});

test('asIsoUtc passes the API form through and rewrites the forms Postgres writes', () => {
  expect(asIsoUtc('2026-12-01T09:30:00.123Z')).toBe('2026-12-01T09:30:00.123Z');
  // Postgres's JSON text of a timestamptz: microseconds, an offset, whatever the session's zone.
  expect(asIsoUtc('2026-12-01T09:30:00.25+00:00')).toBe('2026-12-01T09:30:00.250Z');
  expect(asIsoUtc('2026-12-01T09:30:00+00:00')).toBe('2026-12-01T09:30:00.000Z');
  expect(asIsoUtc('2026-12-01T09:30:00.123456+08:00')).toBe('2026-12-01T01:30:00.123Z');
});
