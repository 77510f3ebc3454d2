/**
 * Times as the API writes them: ISO 8601 in UTC to the millisecond (`2026-12-06T05:52:14.123Z`,
 * what `Date#toISOString` gives), for the tracking reads, which write several per request.
 * `Date#toISOString` costs ~1 µs a call on this machine and parsing a time text first about as
 * much again; these do the same for a quarter to a half of that (docs/benchmarks.md#read-api).
 */

const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1_000 }, (_, n) => String(n).padStart(3, '0'));
const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00Z: from here on `toISOString` writes a six-digit signed year. */
const YEAR_10000_MS = 253_402_300_800_000;

/** `new Date(ms).toISOString()`, computed by arithmetic for whole ms in 1970–9999. */
export function isoUtc(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  // The civil date of a day count (Howard Hinnant's civil_from_days), in 400-year eras
  // that start on 0000-03-01 so that a leap day ends its year.
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1_460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const marchMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * marchMonth + 2) / 5) + 1;
  const month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1_000);
  rest -= seconds * 1_000;
  return (
    TWO_DIGITS[Math.floor(year / 100)]! +
    TWO_DIGITS[year % 100]! +
    '-' +
    TWO_DIGITS[month]! +
    '-' +
    TWO_DIGITS[day]! +
    'T' +
    TWO_DIGITS[hours]! +
    ':' +
    TWO_DIGITS[minutes]! +
    ':' +
    TWO_DIGITS[seconds]! +
    '.' +
    THREE_DIGITS[rest]! +
    'Z'
  );
}

const API_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * A stored time text in the API's form: as it is when it already is (the read model writes
 * `shipments.recent_events` that way), otherwise parsed and rewritten (the form rows had before
 * 2026-12-06, `…+00:00` with microseconds, should a row have escaped the migration that rewrote them).
 */
export const asIsoUtc = (text: string): string => (API_TIME.test(text) ? text : isoUtc(Date.parse(text)));
