/**
 * Courier timestamps that carry no zone. Couriers write local wall-clock time (Malaysia for
 * EasyParcel, India for Blue Dart) and leave the zone implicit; these helpers turn such text
 * into an instant, and back (the simulator's renderers write the same formats).
 *
 * Offsets are fixed: neither Malaysia nor India observes daylight saving time.
 */

/** Malaysia Time, UTC+08:00, in minutes east of UTC. */
export const MYT_OFFSET_MINUTES = 8 * 60;
/** India Standard Time, UTC+05:30, in minutes east of UTC. */
export const IST_OFFSET_MINUTES = 5 * 60 + 30;

const MINUTE_MS = 60_000;

/** A wall-clock date and time in some zone. Months are 1 to 12. */
export interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

/** English month names, full ("June"), for writing dates. */
export const MONTH_NAMES = MONTHS.map((name) => name[0]!.toUpperCase() + name.slice(1));
/** English month abbreviations ("Jun"), for writing dates. */
export const MONTH_ABBREVIATIONS = MONTH_NAMES.map((name) => name.slice(0, 3));

/**
 * The instant a wall-clock time names in a zone `offsetMinutes` east of UTC; null when the
 * fields do not name a real moment (month 13, 31 June, 24:00, …).
 */
export function localToUtc(local: LocalDateTime, offsetMinutes: number): Date | null {
  const { year, month, day, hour, minute, second } = local;
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(asUtc);
  // Date.UTC rolls overflowing fields over (31 June → 1 July); a real date survives unchanged.
  if (
    Number.isNaN(asUtc) ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    return null;
  }
  return new Date(asUtc - offsetMinutes * MINUTE_MS);
}

/** The wall-clock fields of `instant` in a zone `offsetMinutes` east of UTC (milliseconds dropped). */
export function utcToLocal(instant: Date, offsetMinutes: number): LocalDateTime {
  const shifted = new Date(instant.getTime() + offsetMinutes * MINUTE_MS);
  return {
    year: shifted.getUTCFullYear(),
    month: shifted.getUTCMonth() + 1,
    day: shifted.getUTCDate(),
    hour: shifted.getUTCHours(),
    minute: shifted.getUTCMinutes(),
    second: shifted.getUTCSeconds(),
  };
}

/** Month number (1 to 12) of an English month name or its 3-letter abbreviation; null otherwise. */
export function monthNumber(name: string): number | null {
  const lower = name.toLowerCase();
  if (lower.length < 3) return null;
  const index = MONTHS.findIndex(
    (month) => month === lower || (lower.length === 3 && month.startsWith(lower)),
  );
  return index === -1 ? null : index + 1;
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * An ISO 8601 timestamp that states its zone (`Z` or `±hh:mm`); null for anything else,
 * including an ISO timestamp without a zone (its zone would be a guess).
 */
export function parseIsoInstant(text: string): Date | null {
  const trimmed = text.trim();
  if (!ISO_WITH_ZONE.test(trimmed)) return null;
  const ms = Date.parse(trimmed);
  return Number.isNaN(ms) ? null : new Date(ms);
}

const SQL_LOCAL = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** `YYYY-MM-DD HH:mm:ss` read as wall-clock time `offsetMinutes` east of UTC; null if it is not one. */
export function parseSqlLocal(text: string, offsetMinutes: number): Date | null {
  const match = SQL_LOCAL.exec(text.trim());
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return localToUtc({ year, month, day, hour, minute, second }, offsetMinutes);
}

/** `instant` written as `YYYY-MM-DD HH:mm:ss` in a zone `offsetMinutes` east of UTC. */
export function formatSqlLocal(instant: Date, offsetMinutes: number): string {
  const l = utcToLocal(instant, offsetMinutes);
  return `${l.year}-${pad(l.month)}-${pad(l.day)} ${pad(l.hour)}:${pad(l.minute)}:${pad(l.second)}`;
}

/** `instant` as ISO 8601 UTC to the second, without milliseconds: `2024-05-01T03:04:05Z`. */
export function formatIsoSeconds(instant: Date): string {
  return instant.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const DAY_MONTH_YEAR = /^(\d{1,2})[ -]([A-Za-z]{3,9})[ -](\d{4})$/;
const CLOCK = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;

/**
 * A calendar date written day, month name, year: `07 June 2012` or `07-Jun-2012`
 * (space or dash, full or 3-letter month, any case). Null when it is not one.
 */
export function parseDayMonthYear(text: string): { year: number; month: number; day: number } | null {
  const match = DAY_MONTH_YEAR.exec(text.trim());
  if (!match) return null;
  const month = monthNumber(match[2]!);
  if (month === null) return null;
  return { year: Number(match[3]), month, day: Number(match[1]) };
}

/** A time of day `HH:mm` or `HH:mm:ss`; null when it is not one (ranges are checked by {@link localToUtc}). */
export function parseClock(text: string): { hour: number; minute: number; second: number } | null {
  const match = CLOCK.exec(text.trim());
  if (!match) return null;
  return { hour: Number(match[1]), minute: Number(match[2]), second: Number(match[3] ?? 0) };
}

/** `value` with leading zeros to `width` digits. */
export function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}
