/**
 * The push format read with each courier's own rules: a scan pushed as the courier's
 * tracking API writes it gives the same event (key, status, time) as the adapter's poll
 * of that scan, so the read model keeps one row whichever arrives first.
 */
import { createBlueDartAdapter } from '../../src/couriers/bluedart';
import { createEasyParcelAdapter } from '../../src/couriers/easyparcel';
import { InvalidPushError, normalisePush, type PushedScan } from '../../src/couriers/push';
import type { NormalisedEvent, TrackResult } from '../../src/couriers/types';
import { formatSqlLocal, MYT_OFFSET_MINUTES } from '../../src/couriers/time';
import { captureLog, fakeCourier, fixture } from './fake-courier';

type Found = Extract<TrackResult, { kind: 'found' }>;

const comparable = (events: NormalisedEvent[]) =>
  events.map((e) => ({
    key: e.key,
    status: e.status,
    subStatus: e.subStatus,
    rawCode: e.rawCode,
    occurredAt: e.occurredAt,
    location: e.location,
  }));

async function polledEasyParcel(): Promise<Found> {
  const fake = fakeCourier((request) =>
    request.url.pathname.endsWith('/oauth/token')
      ? { body: JSON.stringify({ access_token: 't', expires_in: 3600 }) }
      : { body: fixture('easyparcel', 'tracking-mixed.json') },
  );
  const adapter = createEasyParcelAdapter({
    baseUrl: 'https://ep.example/api',
    apiVersion: '2026-06',
    clientId: 'c',
    clientSecret: 's',
    refreshToken: 'r',
    fetch: fake.fetch,
  });
  const [result] = await adapter.track(['EP1000000001']);
  return result as Found;
}

async function polledBlueDart(): Promise<Found> {
  const fake = fakeCourier(() => ({ body: fixture('bluedart', 'delivered.xml'), contentType: 'text/xml' }));
  const adapter = createBlueDartAdapter({
    baseUrl: 'https://bd.example/bd',
    loginId: 'l',
    licenceKey: 'k',
    fetch: fake.fetch,
  });
  const [result] = await adapter.track(['BD1000000001']);
  return result as Found;
}

describe('pushed scans', () => {
  it('EasyParcel: the status log pushed as sent (codes, UTC and Malaysia-time dates, "Place, State, MY") equals the poll', async () => {
    const polled = await polledEasyParcel();
    const log = JSON.parse(fixture('easyparcel', 'tracking-mixed.json')).data.results[0].status_log as {
      event_date: string;
      shipment_status_code: number;
      tracking_status: string;
      location: string | null;
    }[];
    const pushed = normalisePush(
      'easyparcel',
      log.map((entry) => ({
        code: String(entry.shipment_status_code),
        text: entry.tracking_status,
        occurredAt: entry.event_date,
        location: entry.location,
      })),
    );
    expect(comparable(pushed)).toEqual(comparable(polled.events));
    expect(pushed.every((e) => e.source === 'push')).toBe(true);
    // Statuses that exist only in EasyParcel's text are read the same way.
    expect(pushed.map((e) => e.status)).toEqual(expect.arrayContaining(['OUT_FOR_DELIVERY', 'ATTEMPT_FAIL']));
  });

  it("EasyParcel: its webhook's log (no place, every time as YYYY-MM-DD HH:mm:ss) keys each entry as the poll does", async () => {
    const polled = await polledEasyParcel();
    const own = (e: NormalisedEvent) => e.rawText === 'Schedule In Arrangement';
    // As EasyParcel's webhook writes the log: UTC for its own events, Malaysia time for the couriers' scans.
    const pushed = normalisePush(
      'easyparcel',
      polled.events.map((e) => ({
        code: e.rawCode!,
        text: e.rawText,
        occurredAt: formatSqlLocal(new Date(e.occurredAt), own(e) ? 0 : MYT_OFFSET_MINUTES),
      })),
    );
    expect(polled.events.filter((e) => e.location.city !== null).length).toBeGreaterThan(2);
    expect(pushed.map((e) => e.key)).toEqual(polled.events.map((e) => e.key));
    expect(pushed.map((e) => e.occurredAtRaw)).not.toEqual(polled.events.map((e) => e.occurredAtRaw));
    // Two entries of one second and code stay apart by their words (EasyParcel's and the courier's).
    const sameSecond = normalisePush('easyparcel', [
      { code: '7', text: 'Schedule In Arrangement', occurredAt: '2025-03-04 06:00:10' },
      { code: '7', text: 'Data  Submitted ', occurredAt: '2025-03-04 14:00:10' },
      { code: '7', text: 'data submitted', occurredAt: '2025-03-04T06:00:10Z' },
    ]);
    expect(new Set(sameSecond.map((e) => e.occurredAt)).size).toBe(1);
    expect(sameSecond).toHaveLength(2);
  });

  it('Blue Dart: scans pushed with their family and ScanCode (T-013), India-time date and scanned city equal the poll', async () => {
    const polled = await polledBlueDart();
    const pushed = normalisePush(
      'bluedart',
      polled.events.map((e) => ({
        code: e.rawCode!,
        text: e.rawText,
        occurredAt: e.occurredAtRaw!,
        location: e.location.city,
      })),
    );
    expect(polled.events.length).toBeGreaterThan(2);
    expect(comparable(pushed)).toEqual(comparable(polled.events));
  });

  it('reads an ISO time with any zone as the same instant (and so the same key)', () => {
    const scan = (occurredAt: string): PushedScan => ({ code: 'S-002', occurredAt, location: 'NEW DELHI' });
    const [ist] = normalisePush('bluedart', [scan('07-Jun-2025 09:10')]);
    const [utc] = normalisePush('bluedart', [scan('2025-06-07T03:40:00Z')]);
    const [offset] = normalisePush('bluedart', [scan('2025-06-07T09:10:00+05:30')]);
    expect(utc!.key).toBe(ist!.key);
    expect(offset!.key).toBe(ist!.key);
    expect(ist!.occurredAt).toBe('2025-06-07T03:40:00.000Z');
  });

  it('orders scans oldest first and keeps one of a scan sent twice', () => {
    const events = normalisePush('simulator', [
      { code: 'OUT_FOR_DELIVERY', occurredAt: '2026-01-02T10:00:00Z' },
      { code: 'IN_TRANSIT.PICKED_UP', occurredAt: '2026-01-01T10:00:00Z' },
      { code: 'OUT_FOR_DELIVERY', occurredAt: '2026-01-02T10:00:00Z' },
    ]);
    expect(events.map((e) => [e.status, e.subStatus])).toEqual([
      ['IN_TRANSIT', 'PICKED_UP'],
      ['OUT_FOR_DELIVERY', null],
    ]);
  });

  it('keeps a code outside the table as UNKNOWN holding the status of the scan pushed before it, as a poll would', () => {
    const { log, warnings } = captureLog();
    const events = normalisePush(
      'bluedart',
      [
        { code: 'T-555', occurredAt: '2025-06-07T03:40:00Z' },
        { code: 'S-002', occurredAt: '2025-06-07T03:00:00Z' },
      ],
      log,
    );
    expect(events.map((e) => [e.rawCode, e.status, e.subStatus])).toEqual([
      ['S-002', 'OUT_FOR_DELIVERY', null],
      ['T-555', 'OUT_FOR_DELIVERY', 'UNKNOWN'],
    ]);
    expect(warnings.map((w) => w.msg)).toContain('a courier pushed a status code outside its table');
  });

  it('leaves out an unknown code with no known scan before it in the push: never a guessed status', () => {
    const { log, warnings } = captureLog();
    const events = normalisePush('bluedart', [{ code: 'S-030', occurredAt: '2025-06-07T03:40:00Z' }], log);

    expect(events).toEqual([]);
    expect(warnings.map((w) => w.msg)).toContain(
      'pushed scans with codes outside the table and no known scan before them: left for the next poll',
    );
  });

  it.each([
    ['easyparcel', { code: 'delivered', occurredAt: '2025-03-06T01:10:00Z' }, /events\[0\]\.code/],
    ['easyparcel', { code: '5', occurredAt: '06/03/2025 09:10' }, /events\[0\]\.occurredAt/],
    ['bluedart', { code: '4', occurredAt: '2025-06-07T03:40:00Z' }, /3-digit ScanCode/],
    ['bluedart', { code: '004', occurredAt: '2025-06-07T03:40:00Z' }, /ScanGroupType/],
    ['simulator', { code: 'DELIVERED', occurredAt: '2026-01-01 10:00:00' }, /ISO 8601 with a zone/],
    ['simulator', { code: 'TELEPORTED', occurredAt: '2026-01-01T10:00:00Z' }, /known status/],
  ] as const)('refuses a %s scan its format does not allow: %j', (courier, scan, message) => {
    const run = () => normalisePush(courier, [scan]);
    expect(run).toThrow(InvalidPushError);
    expect(run).toThrow(message);
  });

  it('refuses a scan timed further ahead of the clock than the allowance, in any courier format', () => {
    const now = Date.parse('2025-06-07T10:00:00Z');
    const clock = { nowMs: now, maxSkewMs: 5 * 60_000 };
    const at = (iso: string): PushedScan => ({ code: 'IN_TRANSIT', occurredAt: iso });
    expect(normalisePush('simulator', [at('2025-06-07T10:04:59Z')], undefined, clock)).toHaveLength(1);
    expect(() =>
      normalisePush('simulator', [at('2025-06-07T09:00:00Z'), at('2025-06-08T10:00:00Z')], undefined, clock),
    ).toThrow(
      new InvalidPushError(
        "events[1].occurredAt is 86400 s ahead of our clock; at most 300 s is allowed: check the time zone and the sender's clock",
      ),
    );
    // India time written without a zone: 16:00 IST is 10:30 UTC, half an hour ahead.
    expect(() =>
      normalisePush('bluedart', [{ code: 'S-002', occurredAt: '07-Jun-2025 16:00' }], undefined, clock),
    ).toThrow(/1800 s ahead/);
  });
});
