/**
 * Temporal Schedules on the real dev server, with a real worker and Postgres: created once
 * and kept in step with the configuration, and what each does when triggered, checked in
 * the read model — the rows it must change, and the rows it must leave alone.
 */
import { randomBytes } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type WorkflowHandle } from '@temporalio/client';
import type { NewShipment } from '../db/database';
import type { DailyReportFigures } from '../src/activities/reports';
import { REMOVED } from '../src/domain/personal-data';
import { DAILY_REPORT_SCHEDULE_ID, ensureSchedules, HOUSEKEEPING_SCHEDULE_ID } from '../src/schedules';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  orderWorkflowId,
  shipmentWorkflowId,
  type HousekeepingInput,
  type HousekeepingResult,
  type ShipmentMilestone,
} from '../src/workflows/contract';
import { writeOrderEvent } from '../src/notifications/outbox';
import { freshDatabase, insertOrderRow, type TestDatabase } from './support/db';
import { testConfig } from './support/env';
import { eventually } from './support/eventually';
import { openedHistory } from './support/histories';
import { fastPolicy, startTestWorker, uniqueId, type TestWorker } from './support/temporal';

jest.setTimeout(90_000);

const DAY = 86_400_000;
const HOUR = 3_600_000;
const BUDGET = 1200;

describe('schedules', () => {
  let database: TestDatabase;
  let worker: TestWorker;
  const parked: WorkflowHandle[] = [];

  const config = () => testConfig({ WAYBILL_TASK_QUEUE: worker.taskQueue });
  const ids = [DAILY_REPORT_SCHEDULE_ID, HOUSEKEEPING_SCHEDULE_ID];

  async function deleteSchedules(): Promise<void> {
    for (const id of ids) {
      await worker.client.schedule
        .getHandle(id)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
  }

  beforeAll(async () => {
    database = await freshDatabase();
    worker = await startTestWorker({ db: database.db, couriers: {}, dailyBudget: BUDGET });
    await deleteSchedules();
  });

  afterAll(async () => {
    for (const handle of parked) await handle.terminate('test over').catch(() => undefined);
    if (worker) await deleteSchedules();
    await worker?.stop();
    await database?.drop();
  });

  /** Triggers a schedule now and returns the workflow it started. */
  async function trigger(scheduleId: string): Promise<WorkflowHandle> {
    const handle = worker.client.schedule.getHandle(scheduleId);
    // Runs started in the same second share a workflow id; run ids tell them apart.
    const runOf = (a: { action: { workflow: { firstExecutionRunId: string } } }) =>
      a.action.workflow.firstExecutionRunId;
    const before = new Set((await handle.describe()).info.recentActions.map(runOf));
    await handle.trigger();
    const described = await eventually(
      () => handle.describe(),
      (d) => d.info.recentActions.some((a) => !before.has(runOf(a))),
    );
    const started = described.info.recentActions.find((a) => !before.has(runOf(a)))!;
    return worker.client.workflow.getHandle(started.action.workflow.workflowId, runOf(started));
  }

  describe('ensureSchedules', () => {
    afterAll(async () => {
      // The tests after these trigger the schedules by hand. Paused, neither can also fire on its
      // own in the middle of one (an hourly housekeeping run at the top of the hour pruned a later
      // test's rows before the test's own run).
      for (const id of ids) await worker.client.schedule.getHandle(id).pause('the tests trigger it by hand');
    });

    it('creates the daily report and housekeeping schedules, and a second start changes nothing', async () => {
      // Two workers starting at the same moment.
      const [first, second] = await Promise.all([
        ensureSchedules(worker.client, config()),
        ensureSchedules(worker.client, config()),
      ]);
      for (const id of ids) {
        const outcomes = [...first, ...second].filter((r) => r.scheduleId === id).map((r) => r.outcome);
        expect([id, outcomes.sort()]).toEqual([id, ['created', 'unchanged']]);
      }

      const again = await ensureSchedules(worker.client, config());
      expect(again.map((r) => [r.scheduleId, r.outcome])).toEqual([
        [DAILY_REPORT_SCHEDULE_ID, 'unchanged'],
        [HOUSEKEEPING_SCHEDULE_ID, 'unchanged'],
      ]);

      const listed: string[] = [];
      for await (const schedule of worker.client.schedule.list()) listed.push(schedule.scheduleId);
      expect(listed.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());

      const report = await worker.client.schedule.getHandle(DAILY_REPORT_SCHEDULE_ID).describe();
      expect(report.spec.intervals).toEqual([{ every: DAY, offset: 15 * 60_000 }]);
      expect(report.action).toMatchObject({
        workflowType: 'dailyReportWorkflow',
        taskQueue: worker.taskQueue,
        args: [{}],
      });
      expect(report.action.staticSummary).toMatch(/Daily report/);
      expect(report.policies.overlap).toBe('SKIP');
      expect(report.state.paused).toBe(false);
      expect(report.state.note).toMatch(/deliveries, exceptions/);
      expect(report.memo?.description).toMatch(/deliveries, exceptions/);
      // The next run is at 00:15 UTC.
      expect(report.info.nextActionTimes[0]!.toISOString()).toMatch(/T00:15:00\.000Z$/);

      const housekeeping = await worker.client.schedule.getHandle(HOUSEKEEPING_SCHEDULE_ID).describe();
      expect(housekeeping.spec.intervals).toEqual([{ every: HOUR, offset: 0 }]);
      expect(housekeeping.action).toMatchObject({
        workflowType: 'housekeepingWorkflow',
        taskQueue: worker.taskQueue,
        args: [
          {
            expireAfterNoScanMs: 7 * DAY,
            archiveAfterMs: 90 * DAY,
            scrubPersonalDataAfterMs: 30 * DAY,
            batchSize: 200,
            maxBatches: 10,
          },
        ],
      });
      expect(housekeeping.policies.overlap).toBe('SKIP');
      expect(housekeeping.memo?.description).toMatch(/Expires unfinished shipments/);
    });

    it('updates a schedule whose configuration changed, and leaves a paused one paused with its note', async () => {
      await ensureSchedules(worker.client, config());
      const handle = worker.client.schedule.getHandle(HOUSEKEEPING_SCHEDULE_ID);
      await handle.pause('paused by ops: database migration tonight');
      try {
        const changed = testConfig({
          WAYBILL_TASK_QUEUE: worker.taskQueue,
          WAYBILL_HOUSEKEEPING_EVERY: '30m',
          WAYBILL_ARCHIVE_AFTER: '60d',
        });
        const results = await ensureSchedules(worker.client, changed);
        expect(results).toEqual([
          { scheduleId: DAILY_REPORT_SCHEDULE_ID, outcome: 'unchanged', changed: [] },
          { scheduleId: HOUSEKEEPING_SCHEDULE_ID, outcome: 'updated', changed: ['spec', 'input'] },
        ]);
        const described = await handle.describe();
        expect(described.spec.intervals).toEqual([{ every: 30 * 60_000, offset: 0 }]);
        expect(described.action.args).toEqual([expect.objectContaining({ archiveAfterMs: 60 * DAY })]);
        expect(described.state.paused).toBe(true);
        expect(described.state.note).toBe('paused by ops: database migration tonight');

        // Back to the configuration the other tests use; still paused.
        expect((await ensureSchedules(worker.client, config()))[1]!.outcome).toBe('updated');
        expect((await handle.describe()).state.paused).toBe(true);
      } finally {
        await handle.unpause();
      }
    });
  });

  describe('the daily report', () => {
    const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    let yesterday: string;
    let twoDaysAgo: string;

    async function shipment(values: Partial<NewShipment> & { courier: string }): Promise<string> {
      const id = uniqueId('shp');
      await database.db
        .insertInto('shipments')
        .values({ id, tracking_number: `T${randomBytes(5).toString('hex')}`, ...values })
        .execute();
      return id;
    }

    async function scan(
      shipmentId: string,
      status: string,
      at: Date,
      said: { sub_status?: string; raw_code?: string } = {},
    ): Promise<void> {
      await database.db
        .insertInto('tracking_events')
        .values({
          shipment_id: shipmentId,
          event_key: randomBytes(6).toString('hex'),
          status,
          occurred_at: at,
          source: 'poll',
          sub_status: said.sub_status ?? null,
          raw_code: said.raw_code ?? null,
        })
        .execute();
    }
    const exceptionScan = (
      shipmentId: string,
      at: Date,
      said: { sub_status?: string; raw_code?: string } = {},
    ) => scan(shipmentId, 'EXCEPTION', at, said);

    beforeAll(async () => {
      // Seeded rows are placed in "yesterday"; make sure the run sees the same day.
      const sinceMidnight = Date.now() % DAY;
      if (sinceMidnight > DAY - 60_000) await new Promise((r) => setTimeout(r, DAY - sinceMidnight + 1_000));
      const midnight = Date.now() - (Date.now() % DAY);
      yesterday = dayOf(midnight - DAY);
      twoDaysAgo = dayOf(midnight - 2 * DAY);
      const y = (hours: number) => new Date(midnight - DAY + hours * HOUR);

      // Delivered yesterday: easyparcel took 2 days (an hour after its ETA), 3 days (pickup
      // never seen: from creation; no ETA, so never late) and 1 hour (before its ETA);
      // bluedart 5 hours (an hour late).
      await shipment({
        courier: 'easyparcel',
        status: 'DELIVERED',
        picked_up_at: new Date(y(10).getTime() - 2 * DAY),
        delivered_at: y(10),
        eta: y(9),
      });
      await shipment({
        courier: 'easyparcel',
        status: 'DELIVERED',
        created_at: new Date(y(12).getTime() - 3 * DAY),
        delivered_at: y(12),
      });
      const epQuick = await shipment({
        courier: 'easyparcel',
        status: 'DELIVERED',
        picked_up_at: y(13),
        delivered_at: y(14),
        eta: y(20),
      });
      const bd = await shipment({
        courier: 'bluedart',
        status: 'DELIVERED',
        picked_up_at: y(1),
        delivered_at: y(6),
        eta: y(5),
      });
      // Their scans: bluedart 1 h INFO_RECEIVED, 4 h IN_TRANSIT (two scans), 1 h OUT_FOR_DELIVERY;
      // easyparcel 30 min IN_TRANSIT, 30 min OUT_FOR_DELIVERY.
      await scan(bd, 'INFO_RECEIVED', y(0));
      await scan(bd, 'IN_TRANSIT', y(1));
      await scan(bd, 'IN_TRANSIT', y(3));
      await scan(bd, 'OUT_FOR_DELIVERY', y(5));
      await scan(bd, 'DELIVERED', y(6));
      await scan(epQuick, 'IN_TRANSIT', y(13));
      await scan(epQuick, 'OUT_FOR_DELIVERY', y(13.5));
      await scan(epQuick, 'DELIVERED', y(14));
      // Delivered today (late, but another day) and two days ago: other days.
      const today = await shipment({
        courier: 'easyparcel',
        status: 'DELIVERED',
        picked_up_at: new Date(midnight - HOUR),
        delivered_at: new Date(midnight + 60_000),
        eta: new Date(midnight - 2 * HOUR),
      });
      await scan(today, 'INFO_RECEIVED', y(20));
      await scan(today, 'DELIVERED', new Date(midnight + 60_000));
      await shipment({
        courier: 'bluedart',
        status: 'DELIVERED',
        picked_up_at: y(-30),
        delivered_at: y(-20),
      });

      // Exceptions yesterday: two scans of one easyparcel parcel count once; one bluedart
      // (a raw code and no sub-status: the code is its reason).
      const ep = await shipment({ courier: 'easyparcel', status: 'EXCEPTION' });
      await exceptionScan(ep, y(8), { sub_status: 'ADDRESS_ISSUE' });
      await exceptionScan(ep, y(9), { sub_status: 'ADDRESS_ISSUE' });
      await exceptionScan(await shipment({ courier: 'bluedart', status: 'EXCEPTION' }), y(23.5), {
        raw_code: 'UD-014',
      });
      // …and one two days ago.
      await exceptionScan(await shipment({ courier: 'easyparcel', status: 'IN_TRANSIT' }), y(-3));

      // Expired yesterday.
      await shipment({ courier: 'bluedart', status: 'EXPIRED', finished_at: y(4) });

      await database.db
        .insertInto('courier_api_usage')
        .values([
          { courier: 'easyparcel', day: yesterday, calls: 412, failures: 3 },
          { courier: 'bluedart', day: yesterday, calls: 1200, failures: 0 },
          { courier: 'easyparcel', day: dayOf(midnight), calls: 50, failures: 0 },
        ])
        .execute();
    });

    it('reports the day before when the schedule triggers: one row, the same after a second run', async () => {
      await ensureSchedules(worker.client, config());
      const run = await trigger(DAILY_REPORT_SCHEDULE_ID);
      const result: DailyReportFigures = await run.result();
      expect(result.day).toBe(yesterday);

      const rows = await database.db
        .selectFrom('daily_reports')
        .selectAll()
        .where('day', '=', yesterday)
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        day: yesterday,
        deliveries: 4,
        exceptions: 2,
        expired: 1,
        // Median of 1 h, 5 h, 2 d, 3 d: halfway between 5 h and 2 d.
        median_delivery_seconds: (5 * 3600 + 2 * 86_400) / 2,
        courier_calls: 1612,
        courier_failures: 3,
        courier_budget: BUDGET,
        late_deliveries: 2,
      });
      expect(rows[0]!.status_seconds).toEqual([
        { status: 'INFO_RECEIVED', parcels: 1, averageSeconds: 3600 },
        { status: 'IN_TRANSIT', parcels: 2, averageSeconds: (4 * 3600 + 1800) / 2 },
        { status: 'OUT_FOR_DELIVERY', parcels: 2, averageSeconds: (3600 + 1800) / 2 },
      ]);
      expect(rows[0]!.exceptions_by_reason).toEqual([
        { courier: 'bluedart', reason: 'UD-014', parcels: 1 },
        { courier: 'easyparcel', reason: 'ADDRESS_ISSUE', parcels: 1 },
      ]);
      expect(result).toMatchObject({
        lateDeliveries: 2,
        statusSeconds: rows[0]!.status_seconds,
        exceptionsByReason: rows[0]!.exceptions_by_reason,
      });
      expect(rows[0]!.by_courier).toEqual([
        {
          courier: 'bluedart',
          deliveries: 1,
          exceptions: 1,
          expired: 1,
          medianDeliverySeconds: 5 * 3600,
          calls: 1200,
          failures: 0,
          budget: BUDGET,
          late: 1,
        },
        {
          courier: 'easyparcel',
          deliveries: 3,
          exceptions: 1,
          expired: 0,
          medianDeliverySeconds: 2 * 86_400,
          calls: 412,
          failures: 3,
          budget: BUDGET,
          late: 1,
        },
      ]);

      const rerun = await trigger(DAILY_REPORT_SCHEDULE_ID);
      expect(await rerun.result()).toEqual(result);
      const after = await database.db
        .selectFrom('daily_reports')
        .selectAll()
        .where('day', '=', yesterday)
        .execute();
      expect(after).toHaveLength(1);
      expect(after[0]!.generated_at.getTime()).toBeGreaterThan(rows[0]!.generated_at.getTime());
    });

    it('reports the day before its scheduled time when backfilled for a missed day', async () => {
      await ensureSchedules(worker.client, config());
      const handle = worker.client.schedule.getHandle(DAILY_REPORT_SCHEDULE_ID);
      const before = new Set(
        (await handle.describe()).info.recentActions.map((a) => a.scheduledAt.getTime()),
      );
      // The 00:15 run of yesterday, as if the server had been down then.
      const scheduledAt = Date.parse(`${yesterday}T00:15:00.000Z`);
      await handle.backfill({
        start: new Date(scheduledAt - 60_000),
        end: new Date(scheduledAt + 60_000),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      const described = await eventually(
        () => handle.describe(),
        (d) =>
          d.info.recentActions.some(
            (a) => a.scheduledAt.getTime() === scheduledAt && !before.has(scheduledAt),
          ),
      );
      const action = described.info.recentActions.find((a) => a.scheduledAt.getTime() === scheduledAt)!;
      const result: DailyReportFigures = await worker.client.workflow
        .getHandle(action.action.workflow.workflowId, action.action.workflow.firstExecutionRunId)
        .result();
      expect(result).toMatchObject({ day: twoDaysAgo, deliveries: 1, exceptions: 1 });
    });

    it('reports the day it is given, and refuses a day that is not one', async () => {
      const result: DailyReportFigures = await worker.client.workflow.execute('dailyReportWorkflow', {
        workflowId: uniqueId('report'),
        taskQueue: worker.taskQueue,
        args: [{ day: twoDaysAgo }],
      });
      expect(result).toMatchObject({
        day: twoDaysAgo,
        deliveries: 1,
        exceptions: 1,
        expired: 0,
        courierCalls: 0,
      });
      const row = await database.db
        .selectFrom('daily_reports')
        .selectAll()
        .where('day', '=', twoDaysAgo)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ deliveries: 1, exceptions: 1, median_delivery_seconds: 10 * 3600 });

      await expect(
        worker.client.workflow.execute('dailyReportWorkflow', {
          workflowId: uniqueId('report'),
          taskQueue: worker.taskQueue,
          args: [{ day: '2026-02-30' }],
        }),
      ).rejects.toMatchObject({ cause: { type: 'InvalidInput' } });
    });
  });

  describe('housekeeping', () => {
    const rowOf = (id: string) =>
      database.db.selectFrom('shipments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const ago = (ms: number) => new Date(Date.now() - ms);

    async function shipment(values: Partial<NewShipment>): Promise<string> {
      const id = uniqueId('hk');
      await database.db
        .insertInto('shipments')
        .values({
          id,
          courier: 'easyparcel',
          tracking_number: `H${randomBytes(5).toString('hex')}`,
          ...values,
        })
        .execute();
      return id;
    }

    /** A shipment workflow that exists but that no worker runs (its queue has no poller). */
    async function parkedWorkflow(shipmentId: string): Promise<WorkflowHandle> {
      const handle = await worker.client.workflow.start('shipmentWorkflow', {
        workflowId: shipmentWorkflowId(shipmentId),
        taskQueue: `nobody-polls-${randomBytes(4).toString('hex')}`,
        args: [
          {
            shipmentId,
            orderId: null,
            courier: 'easyparcel',
            trackingNumber: 'X',
            courierTaskQueue: 'nobody',
            policy: fastPolicy(),
          },
        ],
      });
      parked.push(handle);
      return handle;
    }

    const personalPayload = {
      awb_number: 'EP1000000001',
      receiver: { name: 'Asha Rao', phone: '9800000000' },
      latest_tracking_status: 'Delivered to Asha Rao (self)',
    };

    it('expires untracked unscanned shipments, archives and scrubs old finished ones, and touches nothing else', async () => {
      const s = {
        staleUntracked: await shipment({
          status: 'IN_TRANSIT',
          last_event_at: ago(8 * DAY),
          created_at: ago(10 * DAY),
        }),
        neverScanned: await shipment({ status: 'PENDING', created_at: ago(8 * DAY) }),
        // Its tracking died moments ago: inside the orders' restart window, left to its order.
        staleTrackingDied: await shipment({ status: 'OUT_FOR_DELIVERY', last_event_at: ago(9 * DAY) }),
        staleWorkflowRunning: await shipment({ status: 'IN_TRANSIT', last_event_at: ago(8 * DAY) }),
        recentScan: await shipment({
          status: 'IN_TRANSIT',
          last_event_at: ago(DAY),
          created_at: ago(100 * DAY),
        }),
        recentlyCreated: await shipment({ status: 'PENDING', created_at: ago(DAY) }),
        finishedLongAgo: await shipment({
          status: 'DELIVERED',
          last_event_at: ago(100 * DAY),
          delivered_at: ago(100 * DAY),
          finished_at: ago(100 * DAY),
          raw_latest: JSON.stringify(personalPayload),
        }),
        finished40Days: await shipment({
          status: 'RETURNED',
          last_event_at: ago(40 * DAY),
          finished_at: ago(40 * DAY),
          raw_latest: JSON.stringify(personalPayload),
        }),
        finishedRecently: await shipment({
          status: 'DELIVERED',
          last_event_at: ago(20 * DAY),
          finished_at: ago(20 * DAY),
          raw_latest: JSON.stringify(personalPayload),
        }),
      };
      await parkedWorkflow(s.staleWorkflowRunning);
      await (await parkedWorkflow(s.staleTrackingDied)).terminate('worker crashed');
      for (const id of [s.finishedLongAgo, s.finishedRecently]) {
        await database.db
          .insertInto('tracking_events')
          .values([
            {
              shipment_id: id,
              event_key: `${id}-1`,
              status: 'IN_TRANSIT',
              raw_text: 'Departed sorting facility',
              occurred_at: ago(101 * DAY),
              source: 'poll',
            },
            {
              shipment_id: id,
              event_key: `${id}-2`,
              status: 'DELIVERED',
              raw_text: 'Received by: ASHA RAO, 9800000000',
              occurred_at: ago(100 * DAY),
              source: 'poll',
            },
          ])
          .execute();
      }
      // Both finished parcels went by the shop's own fleet: the driver's address card is personal data too.
      const recipient = {
        name: 'Asha Rao',
        line1: '12 Jalan Ampang',
        city: 'Kuala Lumpur',
        postcode: '50450',
        phone: '+60123456789',
      };
      await database.db
        .insertInto('fleet_parcels')
        .values(
          [s.finishedLongAgo, s.finishedRecently].map((id) => ({
            shipment_id: id,
            tracking_number: `FL${id}`,
            status: 'DELIVERED',
            recipient: JSON.stringify(recipient),
            description: 'one parcel',
          })),
        )
        .execute();
      const untouched = [
        s.staleWorkflowRunning,
        s.staleTrackingDied,
        s.recentScan,
        s.recentlyCreated,
        s.finishedRecently,
      ];
      const before = await database.db
        .selectFrom('shipments')
        .selectAll()
        .where('id', 'in', untouched)
        .orderBy('id')
        .execute();

      await ensureSchedules(worker.client, config());
      const run = await trigger(HOUSEKEEPING_SCHEDULE_ID);
      const result: HousekeepingResult = await run.result();
      expect(result).toEqual({
        expired: 2,
        skippedRunning: 2,
        archived: 1,
        scrubbed: 2,
        scrubbedImportLines: 0,
        ordersNotStarted: 0,
        prunedIdempotencyKeys: 0,
        prunedWebhookEvents: 0,
        prunedNotifications: 0,
        prunedEvents: 0,
        prunedEasyParcelSubmissions: 0,
        caughtUp: true,
      });

      for (const id of [s.staleUntracked, s.neverScanned]) {
        const row = await rowOf(id);
        expect([id, row.status, row.sub_status, row.next_poll_at]).toEqual([id, 'EXPIRED', 'NO_SCAN', null]);
        expect(row.finished_at).toBeInstanceOf(Date);
      }
      const audit = await database.db
        .selectFrom('audit_log')
        .select(['subject_id', 'actor', 'action'])
        .where('action', '=', 'shipment.expire')
        .orderBy('subject_id')
        .execute();
      expect(audit).toEqual(
        [s.staleUntracked, s.neverScanned].sort().map((id) => ({
          subject_id: id,
          actor: 'system:housekeeping',
          action: 'shipment.expire',
        })),
      );
      // Each expiry has its domain event, written with it (one per parcel, none for the others).
      const events = await database.db
        .selectFrom('event_outbox')
        .select(['shipment_id', 'type'])
        .where('shipment_id', 'in', [
          s.staleUntracked,
          s.neverScanned,
          s.staleTrackingDied,
          s.finishedLongAgo,
        ])
        .orderBy('shipment_id')
        .execute();
      expect(events).toEqual(
        [s.staleUntracked, s.neverScanned].sort().map((id) => ({
          shipment_id: id,
          type: 'shipment.exception',
        })),
      );

      const longAgo = await rowOf(s.finishedLongAgo);
      expect(longAgo.archived_at).toBeInstanceOf(Date);
      expect(longAgo.pii_scrubbed_at).toBeInstanceOf(Date);
      expect(longAgo.raw_latest).toEqual({
        awb_number: 'EP1000000001',
        latest_tracking_status: `Delivered to ${REMOVED} (self)`,
      });
      const texts = await database.db
        .selectFrom('tracking_events')
        .select(['shipment_id', 'raw_text'])
        .where('shipment_id', 'in', [s.finishedLongAgo, s.finishedRecently])
        .orderBy('shipment_id')
        .orderBy('event_key')
        .execute();
      expect(texts.filter((t) => t.shipment_id === s.finishedLongAgo).map((t) => t.raw_text)).toEqual([
        'Departed sorting facility',
        `Received by: ${REMOVED}, ${REMOVED}`,
      ]);
      // Finished 20 days ago: inside the 30-day window, raw texts kept.
      expect(texts.filter((t) => t.shipment_id === s.finishedRecently).map((t) => t.raw_text)).toEqual([
        'Departed sorting facility',
        'Received by: ASHA RAO, 9800000000',
      ]);

      const cards = await database.db
        .selectFrom('fleet_parcels')
        .select(['shipment_id', 'recipient'])
        .where('shipment_id', 'in', [s.finishedLongAgo, s.finishedRecently])
        .execute();
      const cardOf = (id: string) => cards.find((c) => c.shipment_id === id)!.recipient;
      expect(cardOf(s.finishedLongAgo)).toEqual({
        name: REMOVED,
        line1: REMOVED,
        city: 'Kuala Lumpur',
        postcode: REMOVED,
        phone: null,
      });
      expect(cardOf(s.finishedRecently)).toEqual(recipient);

      const forty = await rowOf(s.finished40Days);
      expect(forty.archived_at).toBeNull();
      expect(forty.pii_scrubbed_at).toBeInstanceOf(Date);
      expect(forty.raw_latest).toEqual({
        awb_number: 'EP1000000001',
        latest_tracking_status: `Delivered to ${REMOVED} (self)`,
      });

      const after = await database.db
        .selectFrom('shipments')
        .selectAll()
        .where('id', 'in', untouched)
        .orderBy('id')
        .execute();
      expect(after).toEqual(before);

      // A second run finds nothing left to do.
      const again: HousekeepingResult = await (await trigger(HOUSEKEEPING_SCHEDULE_ID)).result();
      expect(again).toEqual({
        expired: 0,
        skippedRunning: 2,
        archived: 0,
        scrubbed: 0,
        scrubbedImportLines: 0,
        ordersNotStarted: 0,
        prunedIdempotencyKeys: 0,
        prunedWebhookEvents: 0,
        prunedNotifications: 0,
        prunedEvents: 0,
        prunedEasyParcelSubmissions: 0,
        caughtUp: true,
      });
      expect((await rowOf(s.staleWorkflowRunning)).status).toBe('IN_TRANSIT');
    });

    const MINUTE = 60_000;
    const housekeepingInput: HousekeepingInput = {
      expireAfterNoScanMs: 7 * DAY,
      archiveAfterMs: 90 * DAY,
      scrubPersonalDataAfterMs: 30 * DAY,
      batchSize: 50,
      maxBatches: 5,
      orderStartGraceMs: 15 * MINUTE,
      pruneIdempotencyKeysAfterMs: 7 * DAY,
      pruneWebhookEventsAfterMs: 30 * DAY,
      pruneNotificationsAfterMs: 90 * DAY,
      pruneEventsAfterMs: 30 * DAY,
    };
    const run = (input: HousekeepingInput): Promise<HousekeepingResult> =>
      worker.client.workflow.execute('housekeepingWorkflow', {
        workflowId: uniqueId('housekeeping'),
        taskQueue: worker.taskQueue,
        args: [input],
      });
    const housekeep = () => run(housekeepingInput);

    const order = (values: { createdAt?: Date } = {}) =>
      insertOrderRow(database.db, { customerId: 'cus_hk', ...values });

    /** An order workflow that exists but that no worker runs: what is sent to it stays in its history. */
    async function parkedOrder(orderId: string): Promise<WorkflowHandle> {
      const handle = await worker.client.workflow.start('orderWorkflow', {
        workflowId: orderWorkflowId(orderId),
        taskQueue: `nobody-polls-${randomBytes(4).toString('hex')}`,
        args: [{ orderId }],
      });
      parked.push(handle);
      return handle;
    }

    async function milestonesOf(handle: WorkflowHandle): Promise<ShipmentMilestone[]> {
      const history = await openedHistory(handle);
      return history
        .events!.map((e) => e.workflowExecutionSignaledEventAttributes)
        .filter((a) => a?.signalName === 'shipmentMilestone')
        .map((a) => defaultPayloadConverter.fromPayload<ShipmentMilestone>(a!.input!.payloads![0]!));
    }

    it('removes e-mail, postcode and order reference from lines of parcel imports finished past the retention, keeps newer ones', async () => {
      async function parcelImport(status: 'DONE' | 'RUNNING', createdAgoMs: number, finishedAgoMs?: number) {
        const id = uniqueId('imp');
        await database.db
          .insertInto('parcel_imports')
          .values({
            id,
            status,
            total: 2,
            source: 'json',
            created_by: 'admin:hk',
            created_at: ago(createdAgoMs),
            finished_at: finishedAgoMs === undefined ? null : ago(finishedAgoMs),
          })
          .execute();
        await database.db
          .insertInto('parcel_import_lines')
          .values(
            [1, 2].map((line_no) => ({
              import_id: id,
              line_no,
              courier: 'easyparcel',
              tracking_number: `EP${line_no}${randomBytes(4).toString('hex')}`,
              order_reference: `SHOP-${line_no}`,
              email: `asha${line_no}@example.com`,
              postcode: '560001',
              result: status === 'DONE' ? ('STARTED' as const) : null,
            })),
          )
          .execute();
        return id;
      }
      const old = await parcelImport('DONE', 32 * DAY, 31 * DAY);
      const recent = await parcelImport('DONE', 21 * DAY, 20 * DAY);
      // Still running (stuck or not): its lines are the workflow's input, left alone.
      const running = await parcelImport('RUNNING', 40 * DAY);
      const linesOf = (id: string) =>
        database.db
          .selectFrom('parcel_import_lines')
          .select(['courier', 'result', 'order_reference', 'email', 'postcode'])
          .where('import_id', '=', id)
          .orderBy('line_no')
          .execute();
      const kept = [1, 2].map((n) => ({
        order_reference: `SHOP-${n}`,
        email: `asha${n}@example.com`,
        postcode: '560001',
      }));

      expect(await housekeep()).toMatchObject({ scrubbedImportLines: 2 });
      expect(await linesOf(old)).toEqual(
        [1, 2].map(() => ({
          courier: 'easyparcel',
          result: 'STARTED',
          order_reference: null,
          email: null,
          postcode: null,
        })),
      );
      expect(await linesOf(recent)).toMatchObject(kept);
      expect(await linesOf(running)).toMatchObject(kept);
      expect(await housekeep()).toMatchObject({ scrubbedImportLines: 0 });
    });

    it('tells the order of a shipment it expires, and expires one whose order has finished all the same', async () => {
      const orderId = await order();
      const orderHandle = await parkedOrder(orderId);
      const finishedOrderId = await order();
      const tracked = await shipment({
        order_id: orderId,
        status: 'IN_TRANSIT',
        last_event_at: ago(8 * DAY),
      });
      const orphaned = await shipment({
        order_id: finishedOrderId,
        status: 'IN_TRANSIT',
        last_event_at: ago(8 * DAY),
      });

      const result = await housekeep();
      expect(result.expired).toBeGreaterThanOrEqual(2);
      for (const id of [tracked, orphaned]) expect((await rowOf(id)).status).toBe('EXPIRED');
      const milestones = await milestonesOf(orderHandle);
      expect(milestones).toEqual([
        { shipmentId: tracked, status: 'EXPIRED', subStatus: 'NO_SCAN', at: expect.any(String) },
      ]);
    });

    it("leaves a parcel whose tracking died within the orders' restart window to its order; past it, expires it and tells the order", async () => {
      const orderId = await order();
      const orderHandle = await parkedOrder(orderId);
      const id = await shipment({ order_id: orderId, status: 'IN_TRANSIT', last_event_at: ago(8 * DAY) });
      await (await parkedWorkflow(id)).terminate('worker crashed');

      // The default window (the orders' 8 h): ops may still restart its tracking.
      const within = await housekeep();
      expect(within.skippedRunning).toBeGreaterThanOrEqual(1);
      expect((await rowOf(id)).status).toBe('IN_TRANSIT');
      expect(await milestonesOf(orderHandle)).toEqual([]);

      // Once the window has passed, it is expired and its order told.
      await run({ ...housekeepingInput, trackingRestartWindowMs: 1 });
      expect((await rowOf(id)).status).toBe('EXPIRED');
      expect(await milestonesOf(orderHandle)).toEqual([
        { shipmentId: id, status: 'EXPIRED', subStatus: 'NO_SCAN', at: expect.any(String) },
      ]);
    });

    it('closes PENDING orders whose workflow never started as FAILED / NOT_STARTED, and leaves every other alone', async () => {
      const keyFor = async (orderId: string, lockedFor: number | null) =>
        database.db
          .insertInto('api_idempotency_keys')
          .values({
            scope: 'orders:customer:cus_hk',
            key: uniqueId('key'),
            request_hash: 'h',
            state: 'IN_PROGRESS',
            response_status: null,
            response_body: null,
            resource_id: orderId,
            locked_until: lockedFor === null ? null : new Date(Date.now() + lockedFor),
          })
          .execute();
      const old = ago(20 * MINUTE);
      const o = {
        neverStarted: await order({ createdAt: old }),
        recent: await order({ createdAt: ago(5 * MINUTE) }),
        requestInFlight: await order({ createdAt: old }),
        workflowRunning: await order({ createdAt: old }),
        workflowEnded: await order({ createdAt: old }),
        paymentHeld: await order({ createdAt: old }),
      };
      await keyFor(o.neverStarted, null);
      await keyFor(o.requestInFlight, 30_000);
      await parkedOrder(o.workflowRunning);
      await (await parkedOrder(o.workflowEnded)).terminate('ended without a word to the read model');
      await database.db
        .insertInto('payments')
        .values({
          id: uniqueId('pay'),
          order_id: o.paymentHeld,
          idempotency_key: uniqueId('idem'),
          provider: 'simulator',
          provider_ref: 'ch_1',
          status: 'AUTHORISED',
          currency: 'MYR',
          amount_authorised: 4_990,
          decline_code: null,
        })
        .execute();

      const result = await housekeep();
      expect(result.ordersNotStarted).toBe(1);
      const rows = await database.db
        .selectFrom('orders')
        .select(['id', 'status', 'failure_code', 'failure_message'])
        .where('id', 'in', Object.values(o))
        .execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(o.neverStarted)).toMatchObject({ status: 'FAILED', failure_code: 'NOT_STARTED' });
      expect(byId.get(o.neverStarted)!.failure_message).toMatch(/nothing was reserved or charged/);
      for (const id of [o.recent, o.requestInFlight, o.workflowRunning, o.workflowEnded, o.paymentHeld]) {
        expect([id, byId.get(id)!.status]).toEqual([id, 'PENDING']);
      }
      const audit = await database.db
        .selectFrom('audit_log')
        .select(['subject_id', 'actor', 'action'])
        .where('action', '=', 'order.fail_not_started')
        .execute();
      expect(audit).toEqual([
        { subject_id: o.neverStarted, actor: 'system:housekeeping', action: 'order.fail_not_started' },
      ]);
      // Closing it started nothing.
      await expect(
        worker.client.workflow.getHandle(orderWorkflowId(o.neverStarted)).describe(),
      ).rejects.toThrow(/not found/i);
      expect((await housekeep()).ordersNotStarted).toBe(0);
      // Out of the next test's way (its runs count whether housekeeping caught up).
      await database.db.deleteFrom('orders').where('id', 'in', Object.values(o)).execute();
    });

    it('deletes idempotency keys, push dedupe rows and notifications past their ages in bounded batches, and keeps the rest', async () => {
      const pendingOrder = await order();
      const failedOrder = await order({ createdAt: ago(8 * DAY) });
      await database.db
        .updateTable('orders')
        .set({ status: 'FAILED' })
        .where('id', '=', failedOrder)
        .execute();
      const key = (
        name: string,
        values: { age: number; done: boolean; lockedFor?: number; orderId?: string },
      ) =>
        database.db
          .insertInto('api_idempotency_keys')
          .values({
            scope: 'orders:customer:cus_prune',
            key: name,
            request_hash: 'h',
            state: values.done ? 'DONE' : 'IN_PROGRESS',
            response_status: values.done ? 202 : null,
            response_body: values.done ? JSON.stringify({ orderId: 'ord_x' }) : null,
            resource_id: values.orderId ?? null,
            locked_until: values.lockedFor === undefined ? null : new Date(Date.now() + values.lockedFor),
            created_at: ago(values.age),
          })
          .execute();
      await key('old-done-1', { age: 8 * DAY, done: true });
      await key('old-done-2', { age: 9 * DAY, done: true });
      await key('old-abandoned-order-failed', {
        age: 8 * DAY,
        done: false,
        lockedFor: -DAY,
        orderId: failedOrder,
      });
      await key('young-done', { age: DAY, done: true });
      // Its order is still PENDING: the key is what lets a retry take that order over.
      await key('old-abandoned-order-pending', {
        age: 8 * DAY,
        done: false,
        lockedFor: -DAY,
        orderId: pendingOrder,
      });
      await key('old-still-locked', { age: 8 * DAY, done: false, lockedFor: MINUTE });

      const push = (eventId: string, age: number) =>
        database.db
          .insertInto('courier_webhook_events')
          .values({ courier: 'easyparcel', event_id: eventId, tracking_number: 'EP1', received_at: ago(age) })
          .execute();
      await push('old-push', 31 * DAY);
      await push('young-push', DAY);

      const notification = (name: string, status: 'PENDING' | 'SENT' | 'FAILED', age: number) =>
        database.db
          .insertInto('notifications')
          .values({
            dedupe_key: name,
            order_id: null,
            kind: 'DELIVERED',
            channel: 'log',
            recipient: 'a@example.com',
            payload: JSON.stringify({}),
            status,
            last_error: null,
            created_at: ago(age),
            sent_at: status === 'SENT' ? ago(age) : null,
          })
          .execute();
      await notification('old-sent', 'SENT', 91 * DAY);
      await notification('old-failed', 'FAILED', 91 * DAY);
      await notification('old-pending', 'PENDING', 91 * DAY);
      await notification('young-sent', 'SENT', DAY);

      // Two rows per batch, one batch per step: the first run stops short and says so.
      const bounded = { ...housekeepingInput, batchSize: 2, maxBatches: 1 };
      expect(await run(bounded)).toMatchObject({
        prunedIdempotencyKeys: 2,
        prunedWebhookEvents: 1,
        prunedNotifications: 2,
        caughtUp: false,
      });
      expect(await run(bounded)).toMatchObject({
        prunedIdempotencyKeys: 1,
        prunedWebhookEvents: 0,
        prunedNotifications: 0,
        prunedEvents: 0,
        prunedEasyParcelSubmissions: 0,
        caughtUp: true,
      });
      // Idempotent: nothing left to delete.
      expect(await run(housekeepingInput)).toMatchObject({
        prunedIdempotencyKeys: 0,
        prunedWebhookEvents: 0,
        prunedNotifications: 0,
      });

      const keys = await database.db
        .selectFrom('api_idempotency_keys')
        .select('key')
        .where('scope', '=', 'orders:customer:cus_prune')
        .orderBy('key')
        .execute();
      expect(keys.map((k) => k.key)).toEqual([
        'old-abandoned-order-pending',
        'old-still-locked',
        'young-done',
      ]);
      const pushes = await database.db.selectFrom('courier_webhook_events').select('event_id').execute();
      expect(pushes.map((p) => p.event_id)).toEqual(['young-push']);
      const notifications = await database.db
        .selectFrom('notifications')
        .select('dedupe_key')
        .orderBy('dedupe_key')
        .execute();
      expect(notifications.map((n) => n.dedupe_key)).toEqual(['old-pending', 'young-sent']);
      await database.db.deleteFrom('orders').where('id', 'in', [pendingOrder, failedOrder]).execute();
    });

    it('deletes domain events no enabled endpoint waits for after their age, with deliveries and attempts, in bounded batches', async () => {
      const endpoint = (id: string, status: 'ENABLED' | 'DISABLED') =>
        database.db
          .insertInto('event_endpoints')
          .values({
            id,
            url: 'http://127.0.0.1:1/hook',
            description: null,
            // Nobody subscribes to order.cancelled: those events have no deliveries at all.
            event_types: ['order.created', 'order.confirmed', 'order.shipped', 'order.delivered'],
            secret: 'whsec_test',
            status,
            disabled_reason: status === 'DISABLED' ? 'test' : null,
          })
          .execute();
      const enabled = uniqueId('wep_on');
      const disabled = uniqueId('wep_off');
      await endpoint(enabled, 'ENABLED');
      await endpoint(disabled, 'DISABLED');
      const [a, b, c] = [await order(), await order(), await order()];
      const event = async (orderId: string, status: string, age: number, deliveredTo: string[]) => {
        const id = await database.db.transaction().execute((trx) =>
          writeOrderEvent(trx, {
            orderId,
            orderNumber: orderId,
            status,
            failureCode: null,
            failureMessage: null,
          }),
        );
        await database.db
          .updateTable('event_outbox')
          .set({ occurred_at: ago(age) })
          .where('id', '=', id!)
          .execute();
        for (const endpointId of deliveredTo) {
          await database.db
            .updateTable('event_deliveries')
            .set({ status: 'DELIVERED', delivered_at: ago(age) })
            .where('event_id', '=', id!)
            .where('endpoint_id', '=', endpointId)
            .execute();
          await database.db
            .insertInto('event_delivery_attempts')
            .values({
              endpoint_id: endpointId,
              event_id: id!,
              status_code: 200,
              ok: true,
              error: null,
              duration_ms: 5,
            })
            .execute();
        }
        return id!;
      };
      // Delivered at the enabled endpoint, still pending at the disabled one: abandoned.
      const abandoned = await event(a, 'PENDING', 31 * DAY, [enabled]);
      // Still pending at the enabled endpoint: kept however old.
      const pending = await event(a, 'CONFIRMED', 31 * DAY, []);
      const delivered = await event(b, 'SHIPPED', 31 * DAY, [enabled, disabled]);
      const recent = await event(b, 'DELIVERED', DAY, [enabled, disabled]);
      const unsubscribed = await event(c, 'CANCELLED', 31 * DAY, []);

      const bounded = { ...housekeepingInput, batchSize: 2, maxBatches: 1 };
      expect(await run(bounded)).toMatchObject({ prunedEvents: 2, caughtUp: false });
      expect(await run(bounded)).toMatchObject({ prunedEvents: 1, caughtUp: true });
      expect(await run(housekeepingInput)).toMatchObject({ prunedEvents: 0 });

      const ids = [abandoned, pending, delivered, recent, unsubscribed];
      const left = await database.db
        .selectFrom('event_outbox')
        .select('id')
        .where('id', 'in', ids)
        .orderBy('id')
        .execute();
      expect(left.map((r) => r.id)).toEqual([pending, recent]);
      const deliveries = await database.db
        .selectFrom('event_deliveries')
        .select(['event_id', 'endpoint_id', 'status'])
        .where('event_id', 'in', ids)
        .orderBy('event_id')
        .orderBy('endpoint_id')
        .execute();
      expect(deliveries).toEqual(
        [
          { event_id: pending, endpoint_id: disabled, status: 'PENDING' },
          { event_id: pending, endpoint_id: enabled, status: 'PENDING' },
          { event_id: recent, endpoint_id: disabled, status: 'DELIVERED' },
          { event_id: recent, endpoint_id: enabled, status: 'DELIVERED' },
        ].sort((x, y) => x.event_id - y.event_id || x.endpoint_id.localeCompare(y.endpoint_id)),
      );
      const attempts = await database.db
        .selectFrom('event_delivery_attempts')
        .select('event_id')
        .where('event_id', 'in', ids)
        .execute();
      expect(attempts.map((r) => r.event_id).sort()).toEqual([recent, recent]);

      // The order entering CANCELLED again gets the next key, not the pruned event's.
      const again = await database.db.transaction().execute((trx) =>
        writeOrderEvent(trx, {
          orderId: c,
          orderNumber: c,
          status: 'CANCELLED',
          failureCode: null,
          failureMessage: null,
        }),
      );
      const key = await database.db
        .selectFrom('event_outbox')
        .select('event_key')
        .where('id', '=', again!)
        .executeTakeFirstOrThrow();
      expect(key.event_key).toBe(`order:${c}:CANCELLED:2`);
      await database.db.deleteFrom('event_endpoints').where('id', 'in', [enabled, disabled]).execute();
      await database.db.deleteFrom('event_outbox').where('order_id', 'in', [a, b, c]).execute();
      await database.db.deleteFrom('orders').where('id', 'in', [a, b, c]).execute();
    });

    it('deletes settled EasyParcel submissions past the prune age in bounded batches, never one still needed', async () => {
      const orderIn = async (status: 'DELIVERED' | 'FAILED' | 'NEEDS_ATTENTION' | 'SHIPPED') => {
        const id = await order();
        await database.db.updateTable('orders').set({ status }).where('id', '=', id).execute();
        return id;
      };
      const submission = async (
        orderId: string | null,
        values: { age: number; shipmentNumber: string | null; awb: string | null },
      ) => {
        const reference = await shipment({ order_id: orderId });
        await database.db
          .insertInto('easyparcel_submissions')
          .values({
            reference,
            shipment_number: values.shipmentNumber,
            awb_number: values.awb,
            submitted_at: ago(values.age),
            answered_at: values.shipmentNumber === null ? null : ago(values.age),
          })
          .execute();
        return reference;
      };
      const [delivered, failed, parked, shipped] = [
        await orderIn('DELIVERED'),
        await orderIn('FAILED'),
        await orderIn('NEEDS_ATTENTION'),
        await orderIn('SHIPPED'),
      ];
      const settled = [
        await submission(delivered, { age: 31 * DAY, shipmentNumber: 'ES-1', awb: 'EP1' }),
        await submission(failed, { age: 40 * DAY, shipmentNumber: 'ES-2', awb: 'EP2' }),
        await submission(delivered, { age: 35 * DAY, shipmentNumber: 'ES-3', awb: 'EP3' }),
      ];
      const kept = [
        // Too young.
        await submission(delivered, { age: DAY, shipmentNumber: 'ES-4', awb: 'EP4' }),
        // Sent, no answer read: its outcome is unknown, and the row is what stops a second submit.
        await submission(failed, { age: 60 * DAY, shipmentNumber: null, awb: null }),
        // Booked, still without an AWB.
        await submission(failed, { age: 60 * DAY, shipmentNumber: 'ES-6', awb: null }),
        // The order is parked for an admin, who may retry the clean-up that asks the journal.
        await submission(parked, { age: 60 * DAY, shipmentNumber: 'ES-7', awb: 'EP7' }),
        // The order is still under way.
        await submission(shipped, { age: 60 * DAY, shipmentNumber: 'ES-8', awb: 'EP8' }),
      ];

      const bounded = { ...housekeepingInput, batchSize: 2, maxBatches: 1 };
      expect(await run(bounded)).toMatchObject({ prunedEasyParcelSubmissions: 2, caughtUp: false });
      expect(await run(bounded)).toMatchObject({ prunedEasyParcelSubmissions: 1 });
      expect(await run(housekeepingInput)).toMatchObject({ prunedEasyParcelSubmissions: 0 });

      const left = await database.db
        .selectFrom('easyparcel_submissions')
        .select('reference')
        .where('reference', 'in', [...settled, ...kept])
        .execute();
      expect(left.map((r) => r.reference).sort()).toEqual([...kept].sort());
      await database.db.deleteFrom('easyparcel_submissions').where('reference', 'in', kept).execute();
      await database.db
        .deleteFrom('shipments')
        .where('id', 'in', [...settled, ...kept])
        .execute();
      await database.db
        .deleteFrom('orders')
        .where('id', 'in', [delivered, failed, parked, shipped])
        .execute();
    });

    it('does a bounded amount of work per run and carries on in the next', async () => {
      const old = await Promise.all(
        Array.from({ length: 5 }, () =>
          shipment({
            status: 'CANCELLED',
            finished_at: ago(200 * DAY),
            raw_latest: JSON.stringify(personalPayload),
          }),
        ),
      );
      const input: HousekeepingInput = { ...housekeepingInput, batchSize: 2, maxBatches: 1 };
      const run = (): Promise<HousekeepingResult> =>
        worker.client.workflow.execute('housekeepingWorkflow', {
          workflowId: uniqueId('housekeeping'),
          taskQueue: worker.taskQueue,
          args: [input],
        });
      const archived = async () =>
        (
          await database.db.selectFrom('shipments').select('archived_at').where('id', 'in', old).execute()
        ).filter((r) => r.archived_at !== null).length;

      expect(await run()).toMatchObject({ archived: 2, scrubbed: 2, caughtUp: false });
      expect(await archived()).toBe(2);
      expect(await run()).toMatchObject({ archived: 2, scrubbed: 2, caughtUp: false });
      expect(await run()).toMatchObject({ archived: 1, scrubbed: 1, caughtUp: true });
      expect(await archived()).toBe(5);
    });
  });
});
