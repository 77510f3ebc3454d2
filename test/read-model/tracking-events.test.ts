/**
 * One row per courier scan across deploys: when a new version of an adapter reads a scan
 * differently (another event key), the next poll's write finds the row the old version wrote by
 * what the courier itself sent (time text and status text) and rewrites it, instead of adding
 * the scan a second time. Real Postgres.
 */
import { eventKey } from '../../src/couriers/event-key';
import type { NormalisedEvent } from '../../src/couriers/types';
import { EventSource, ShipmentStatus } from '../../src/domain/status';
import { insertTrackingEvents } from '../../src/read-model/tracking-events';
import { freshDatabase, type TestDatabase } from '../support/db';

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase();
});
afterAll(async () => {
  await database.drop();
});

/** EasyParcel's "Schedule In Arrangement" as an old version read it: Malaysia time, place split wrongly. */
function oldReading(): NormalisedEvent {
  const location = { city: 'MY', state: null, country: 'MY' };
  const occurredAt = '2026-01-23T04:28:52.000Z';
  return {
    key: eventKey('easyparcel', '7', occurredAt, location),
    status: ShipmentStatus.PENDING,
    subStatus: null,
    rawCode: '7',
    rawText: 'Schedule In Arrangement',
    occurredAt,
    occurredAtRaw: '2026-01-23 12:28:52',
    location,
    source: EventSource.POLL,
  };
}

/** The same scan as this version reads it: UTC, INFO_RECEIVED, no place. */
function newReading(): NormalisedEvent {
  const location = { city: null, state: null, country: null };
  const occurredAt = '2026-01-23T12:28:52.000Z';
  return {
    ...oldReading(),
    key: eventKey('easyparcel', '7', occurredAt, location),
    status: ShipmentStatus.INFO_RECEIVED,
    subStatus: 'SCHEDULED',
    occurredAt,
    location,
  };
}

/** Another scan of the same parcel, which both versions read alike. */
const collected: NormalisedEvent = {
  key: eventKey('easyparcel', '3', '2026-01-24T02:00:00.000Z', {
    city: 'Penang',
    state: null,
    country: 'MY',
  }),
  status: ShipmentStatus.IN_TRANSIT,
  subStatus: 'PICKED_UP',
  rawCode: '3',
  rawText: 'Parcel has been collected at Penang',
  occurredAt: '2026-01-24T02:00:00.000Z',
  occurredAtRaw: '2026-01-24 10:00:00',
  location: { city: 'Penang', state: null, country: 'MY' },
  source: EventSource.POLL,
};

async function shipment(id: string): Promise<string> {
  await database.db
    .insertInto('shipments')
    .values({ id, order_id: null, courier: 'easyparcel', tracking_number: `EP-${id}` })
    .execute();
  return id;
}

const rows = (shipmentId: string) =>
  database.db
    .selectFrom('tracking_events')
    .select(['event_key', 'status', 'sub_status', 'occurred_at', 'location_city'])
    .where('shipment_id', '=', shipmentId)
    .orderBy('occurred_at')
    .execute();

describe('tracking events across a change of event keys', () => {
  it("rewrites the old version's row of a scan to the new key and reading, and writes no second row", async () => {
    const id = await shipment('shp-rekey-1');
    expect(oldReading().key).not.toBe(newReading().key);
    expect(await insertTrackingEvents(database.db, id, [oldReading(), collected])).toEqual({
      inserted: 2,
      rekeyed: 0,
      placed: 0,
    });

    // After the deploy, the next poll sees both scans again.
    expect(await insertTrackingEvents(database.db, id, [newReading(), collected])).toEqual({
      inserted: 0,
      rekeyed: 1,
      placed: 0,
    });
    expect(await rows(id)).toEqual([
      {
        event_key: newReading().key,
        status: 'INFO_RECEIVED',
        sub_status: 'SCHEDULED',
        occurred_at: new Date('2026-01-23T12:28:52.000Z'),
        location_city: null,
      },
      expect.objectContaining({ event_key: collected.key, status: 'IN_TRANSIT' }),
    ]);

    // And again: nothing changes.
    expect(await insertTrackingEvents(database.db, id, [newReading(), collected])).toEqual({
      inserted: 0,
      rekeyed: 0,
      placed: 0,
    });
    expect(await rows(id)).toHaveLength(2);
  });

  it('removes a second row an earlier deploy already wrote, keeping the one under the new key', async () => {
    const id = await shipment('shp-rekey-2');
    // The duplicate as it happened before this fix: both keys recorded.
    await insertTrackingEvents(database.db, id, [oldReading()]);
    await database.db
      .insertInto('tracking_events')
      .values({
        shipment_id: id,
        event_key: newReading().key,
        status: 'INFO_RECEIVED',
        sub_status: 'SCHEDULED',
        raw_code: '7',
        raw_text: 'Schedule In Arrangement',
        occurred_at: newReading().occurredAt,
        occurred_at_raw: '2026-01-23 12:28:52',
        source: 'poll',
      })
      .execute();
    expect(await rows(id)).toHaveLength(2);

    expect(await insertTrackingEvents(database.db, id, [newReading()])).toEqual({
      inserted: 0,
      rekeyed: 0,
      placed: 0,
    });
    expect(await rows(id)).toEqual([expect.objectContaining({ event_key: newReading().key })]);
  });

  it('gives a scan recorded without a place the place a later reading of it brings, and never takes one away', async () => {
    const id = await shipment('shp-place-1');
    const nowhere = { city: null, state: null, country: null };
    // Pushed by EasyParcel's webhook: the same key, the local time text, no place.
    const pushed = { ...collected, location: nowhere, source: EventSource.PUSH };
    expect(await insertTrackingEvents(database.db, id, [pushed])).toEqual({
      inserted: 1,
      rekeyed: 0,
      placed: 0,
    });

    expect(await insertTrackingEvents(database.db, id, [collected])).toEqual({
      inserted: 0,
      rekeyed: 0,
      placed: 1,
    });
    expect(await rows(id)).toEqual([
      expect.objectContaining({ event_key: collected.key, location_city: 'Penang' }),
    ]);

    // Pushed again, and polled again: nothing changes.
    expect(await insertTrackingEvents(database.db, id, [pushed, collected])).toEqual({
      inserted: 0,
      rekeyed: 0,
      placed: 0,
    });
    expect(await rows(id)).toEqual([expect.objectContaining({ location_city: 'Penang' })]);
  });

  it('keeps two scans apart when only their time text or only their words are the same', async () => {
    const id = await shipment('shp-rekey-3');
    const sameTimeOtherWords = { ...collected, key: 'k-other-words', rawText: 'Departed Penang hub' };
    const sameWordsOtherTime = { ...collected, key: 'k-other-time', occurredAtRaw: '2026-01-25 10:00:00' };
    await insertTrackingEvents(database.db, id, [collected]);
    expect(await insertTrackingEvents(database.db, id, [sameTimeOtherWords, sameWordsOtherTime])).toEqual({
      inserted: 2,
      rekeyed: 0,
      placed: 0,
    });
    expect(await rows(id)).toHaveLength(3);
  });
});
