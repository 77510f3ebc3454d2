/**
 * The poll activity counts the scans a courier's answer has outside its published format, by
 * courier: codes outside the table (kept as UNKNOWN) and scans it could not read (skipped).
 * A real Blue Dart adapter reads a scripted answer (test/fixtures/couriers/bluedart); the
 * activity runs in a mock activity environment whose meter records what it is given.
 */
import { noopMetricMeter, type MetricMeter, type MetricTags } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createShipmentActivities } from '../../src/activities/shipments';
import { createBlueDartAdapter } from '../../src/couriers/bluedart';
import { CourierCode } from '../../src/couriers/types';
import { fakeCourier, fixture } from '../couriers/fake-courier';
import { freshDatabase, type TestDatabase } from '../support/db';
import { testLog } from '../support/env';

/** A meter that keeps every counter increment. */
function recordingMeter(): {
  meter: MetricMeter;
  added: { name: string; value: number; tags: MetricTags }[];
} {
  const added: { name: string; value: number; tags: MetricTags }[] = [];
  const meter: MetricMeter = {
    createCounter: (name) => ({
      name,
      unit: '',
      description: '',
      kind: 'counter',
      valueType: 'int',
      add: (value: number, tags: MetricTags = {}) => added.push({ name, value, tags }),
      withTags: () => {
        throw new Error('not used');
      },
    }),
    createHistogram: (...args) => noopMetricMeter.createHistogram(...args),
    createGauge: (...args) => noopMetricMeter.createGauge(...args),
    withTags: () => meter,
  };
  return { meter, added };
}

describe('the poll activity', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await freshDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  /** One poll of BD1000000001 answered with `body`, and what it counted. */
  async function poll(body: string, shipmentId: string) {
    const fake = fakeCourier(() => ({ body, contentType: 'text/xml' }));
    const adapter = createBlueDartAdapter({
      baseUrl: 'https://bd.example',
      loginId: 'l',
      licenceKey: 'k',
      fetch: fake.fetch,
    });
    const activities = createShipmentActivities({
      db: database.db,
      couriers: { bluedart: adapter },
      dailyBudget: 100,
      log: testLog,
    });
    const { meter, added } = recordingMeter();
    const outcome = await new MockActivityEnvironment(undefined, { metricMeter: meter }).run(
      activities.pollCourier,
      { shipmentId, courier: CourierCode.BLUEDART, trackingNumber: 'BD1000000001' },
    );
    return { outcome, added };
  }

  it('counts codes outside the table and unreadable scans by courier in waybill_courier_unknown_scans', async () => {
    // older-capture.xml: one scan without ScanCode; T-139 turned into a code outside the table.
    const body = fixture('bluedart', 'older-capture.xml').replace(
      '<ScanCode>139</ScanCode>',
      '<ScanCode>999</ScanCode>',
    );
    const { outcome, added } = await poll(body, 'shp_poll_1');

    expect(outcome).toMatchObject({ kind: 'found', status: 'DELIVERED' });
    const counted = added
      .filter((a) => a.name === 'waybill_courier_unknown_scans')
      .map((a) => ({ value: a.value, courier: a.tags.courier, kind: a.tags.kind }));
    expect(counted).toEqual([
      { value: 1, courier: 'bluedart', kind: 'unknown_code' },
      { value: 1, courier: 'bluedart', kind: 'unreadable' },
    ]);
  });

  it("writes the courier's payload to the read model and returns only what the workflow decides on", async () => {
    await database.db
      .insertInto('shipments')
      .values({ id: 'shp_poll_raw', courier: CourierCode.BLUEDART, tracking_number: 'BD1000000001' })
      .execute();
    const { outcome } = await poll(fixture('bluedart', 'delivered.xml'), 'shp_poll_raw');

    expect(outcome).toMatchObject({ kind: 'found', status: 'DELIVERED' });
    expect(outcome).not.toHaveProperty('raw');
    const row = await database.db
      .selectFrom('shipments')
      .select('raw_latest')
      .where('id', '=', 'shp_poll_raw')
      .executeTakeFirstOrThrow();
    expect(row.raw_latest).not.toBeNull();
    expect(JSON.stringify(row.raw_latest)).toContain('BD1000000001');
  });

  it('counts nothing for an answer entirely inside the format', async () => {
    // delivered.xml: every scan readable, every code in the table.
    const { added } = await poll(fixture('bluedart', 'delivered.xml'), 'shp_poll_2');

    expect(added.map((a) => a.name)).not.toContain('waybill_courier_unknown_scans');
    expect(added.map((a) => a.name)).toContain('waybill_courier_calls');
  });
});
