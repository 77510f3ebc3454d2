/**
 * The shipment workflow end to end: real Temporal dev server, real worker and activities,
 * real Postgres read model, and the courier simulator over HTTP (native format) playing
 * the parcel's lifecycle at a high time scale.
 */
import { sql } from 'kysely';
import type { WorkflowHandle } from '@temporalio/client';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import {
  cancelShipmentSignal,
  courierEventsSignal,
  MARKED_BY_ADMIN,
  refreshNowUpdate,
  refreshSignal,
  shipmentStateQuery,
  STOPPED_BY_SHOP,
  shipmentWorkflowId,
  type RefreshNowResult,
  type ShipmentSnapshot,
} from '../../src/workflows/contract';
import type { PollPolicy } from '../../src/domain/polling';
import { budgetDay } from '../../src/domain/polling';
import { CourierKey, ShipmentStatusKey, TrackingNumberKey } from '../../src/workflows/search-attributes';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import {
  fastPolicy,
  startShipmentWorkflow,
  startTestWorker,
  stillPolicy,
  uniqueId,
  type TestWorker,
} from '../support/temporal';
import {
  parcelRow,
  pushedEvent,
  shipmentRow as shipmentRowOf,
  trackParcel,
  trackingEventsOf,
} from '../support/shipments';
import { useStack } from '../support/stack';

/** Courier ms per real ms: the 3-day "delivered" lifecycle plays in about 5 s. */
const TIME_SCALE = 50_000;

jest.setTimeout(90_000);

describe('shipment workflow', () => {
  const stack = useStack({ payments: false, timeScale: TIME_SCALE });

  const track = (scenario: ScenarioName | null, policy: PollPolicy, trackingNumber?: string) =>
    trackParcel(stack, {
      policy,
      ...(scenario === null ? {} : { scenario }),
      ...(trackingNumber === undefined ? {} : { trackingNumber }),
    });

  const nativeTrackCalls = () => stack.couriers.backend.stats.snapshot().formats.native.byKind.track;
  const shipmentRow = (id: string) => shipmentRowOf(stack, id);
  const eventsOf = (id: string) => trackingEventsOf(stack, id);

  /** Runs `test` with the simulator courier's calls today (`day`) already at `calls`; the usage is cleared after. */
  async function withCourierUsage(calls: number, test: (day: string) => Promise<void>) {
    const day = budgetDay(Date.now());
    await stack.database.db
      .insertInto('courier_api_usage')
      .values({ courier: CourierCode.SIMULATOR, day, calls })
      .onConflict((oc) => oc.columns(['courier', 'day']).doUpdateSet({ calls }))
      .execute();
    try {
      await test(day);
    } finally {
      await stack.database.db.deleteFrom('courier_api_usage').execute();
    }
  }

  it('follows a parcel from information received to delivered, one courier call per poll', async () => {
    const callsBefore = nativeTrackCalls();
    const { shipmentId, handle } = await track('delivered', fastPolicy());
    const result: ShipmentSnapshot = await handle.result();
    await recordHistory('shipment-delivered', handle);

    expect(result.status).toBe('DELIVERED');
    expect(result.finished).toBe(true);
    const row = await shipmentRow(shipmentId);
    expect(row).toMatchObject({ status: 'DELIVERED', sync_error: null, next_poll_at: null });
    expect(row.delivered_at).toBeInstanceOf(Date);
    expect(row.picked_up_at).toBeInstanceOf(Date);

    const events = await eventsOf(shipmentId);
    const statuses = events.map((e) => e.status);
    expect(statuses[0]).toBe('INFO_RECEIVED');
    expect(statuses).toEqual(expect.arrayContaining(['IN_TRANSIT', 'OUT_FOR_DELIVERY']));
    expect(statuses[statuses.length - 1]).toBe('DELIVERED');
    expect(new Set(events.map((e) => e.event_key)).size).toBe(events.length);
    expect(events.every((e) => e.source === 'poll')).toBe(true);

    // Every poll cycle made exactly one courier call, and the workflow stopped polling once delivered.
    expect(nativeTrackCalls() - callsBefore).toBe(result.polls);
    const callsAtEnd = nativeTrackCalls();
    await new Promise((r) => setTimeout(r, 800));
    expect(nativeTrackCalls()).toBe(callsAtEnd);
  });

  it('keeps its search attributes current, so ops can list parcels by status', async () => {
    const { handle, trackingNumber } = await track('delivered', fastPolicy());
    await handle.result();
    const attributes = (await handle.describe()).typedSearchAttributes;
    expect(attributes.get(ShipmentStatusKey)).toBe('DELIVERED');
    expect(attributes.get(CourierKey)).toBe('simulator');
    expect(attributes.get(TrackingNumberKey)).toBe(trackingNumber);
    // What `temporal workflow list --query 'ShipmentStatus="DELIVERED"'` runs (visibility is eventually consistent).
    const found = await eventually(
      async () => {
        const ids: string[] = [];
        for await (const wf of stack.worker.client.workflow.list({
          query: `ShipmentStatus="DELIVERED" AND TrackingNumber="${trackingNumber}"`,
        })) {
          ids.push(wf.workflowId);
        }
        return ids;
      },
      // Other test files' simulators issue the same numbers from the same seeds: this parcel's
      // workflow must be among those found.
      (ids) => ids.includes(handle.workflowId),
    );
    expect(found).toContain(handle.workflowId);
  });

  it('records events the courier pushes without calling the courier', async () => {
    const slow = fastPolicy({
      intervalMs: {
        ...fastPolicy().intervalMs,
        INFO_RECEIVED: 600_000,
        PENDING: 600_000,
        OUT_FOR_DELIVERY: 600_000,
      },
    });
    const { shipmentId, handle } = await track('never_picked_up', slow);
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.status === 'INFO_RECEIVED',
    );
    const calls = nativeTrackCalls();
    const pushedAt = new Date().toISOString();
    await handle.signal(courierEventsSignal, {
      events: [
        pushedEvent(`push-${shipmentId}`, 'OUT_FOR_DELIVERY', pushedAt, {
          rawText: 'With courier for delivery',
        }),
      ],
    });
    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'OUT_FOR_DELIVERY',
    );
    expect(row.last_event_at!.toISOString()).toBe(pushedAt);
    const pushed = (await eventsOf(shipmentId)).filter((e) => e.source === 'push');
    expect(pushed).toHaveLength(1);
    expect(nativeTrackCalls()).toBe(calls);
  });

  it('polls on the status interval: a parcel nobody picks up is asked about rarely', async () => {
    const slow = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 60_000, PENDING: 60_000 },
    });
    const callsBefore = nativeTrackCalls();
    const { shipmentId, handle } = await track('never_picked_up', slow);
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.status === 'INFO_RECEIVED',
    );
    await new Promise((r) => setTimeout(r, 1_500));
    expect(nativeTrackCalls() - callsBefore).toBe(1);
    const state = await handle.query(shipmentStateQuery);
    expect(state.status).toBe('INFO_RECEIVED');
    expect(Date.parse(state.nextPollAt!) - Date.now()).toBeGreaterThan(50_000);
  });

  it('polls at once on a refresh signal, and refreshNow answers the fresh snapshot', async () => {
    const slow = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000, PENDING: 600_000 },
    });
    const { shipmentId, handle } = await track('never_picked_up', slow);
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.last_synced_at !== null,
    );
    const firstSync = (await shipmentRow(shipmentId)).last_synced_at!;
    const calls = nativeTrackCalls();

    await handle.signal(refreshSignal, { requestedBy: 'test' });
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.last_synced_at!.getTime() > firstSync.getTime(),
    );
    expect(nativeTrackCalls()).toBe(calls + 1);

    const before = await handle.query(shipmentStateQuery);
    const fresh = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] });
    expect(fresh.source).toBe('live');
    expect(fresh.snapshot.polls).toBe(before.polls + 1);
    expect(Date.parse(fresh.snapshot.lastSyncedAt!)).toBeGreaterThan(Date.parse(before.lastSyncedAt!));
    expect(nativeTrackCalls()).toBe(calls + 2);
  });

  it('polls for a refresh at most once per cooldown, whoever asks', async () => {
    const policy = fastPolicy({
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000, PENDING: 600_000 },
      refreshCooldownMs: 1_500,
    });
    const { shipmentId, handle } = await track('never_picked_up', policy);
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.last_synced_at !== null,
    );
    const calls = nativeTrackCalls();

    // Just polled: answered from the snapshot, no courier call.
    const early = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'customer:a' }] });
    expect(early.source).toBe('cooldown');
    expect(Date.parse(early.nextLiveRefreshAt!)).toBe(Date.parse(early.snapshot.lastPolledAt!) + 1_500);
    expect(nativeTrackCalls()).toBe(calls);

    // An admin's refresh signal within the cooldown is not lost: it polls once when it ends.
    await handle.signal(refreshSignal, { requestedBy: 'admin:alice' });
    await new Promise((r) => setTimeout(r, 300));
    expect(nativeTrackCalls()).toBe(calls);
    await eventually(
      async () => nativeTrackCalls(),
      (n) => n === calls + 1,
      5_000,
    );
    // The courier has been called; the workflow takes its answer a moment later.
    const deferred = await eventually(
      () => handle.query(shipmentStateQuery),
      (state) => state.polls === early.snapshot.polls + 1,
    );
    expect(Date.parse(deferred.lastPolledAt!)).toBeGreaterThanOrEqual(Date.parse(early.nextLiveRefreshAt!));

    // After the cooldown a refresh polls live, and the next one right after does not.
    await new Promise((r) => setTimeout(r, 1_600));
    const live = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'customer:b' }] });
    expect(live.source).toBe('live');
    expect(nativeTrackCalls()).toBe(calls + 2);
    const again = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'customer:c' }] });
    expect(again.source).toBe('cooldown');
    expect(nativeTrackCalls()).toBe(calls + 2);
  });

  it('answers refreshNow only once the read model holds what the poll found', async () => {
    const { shipmentId, trackingNumber, handle } = await track('never_picked_up', stillPolicy());
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.status === 'INFO_RECEIVED',
    );
    // The courier has delivered it since; the next poll finds out, and tracking ends there.
    stack.couriers.backend.register({ trackingNumber, scenario: 'delivered', ageMs: 4 * 86_400_000 });
    const calls = nativeTrackCalls();

    let answered = false;
    let refresh: Promise<RefreshNowResult> | null = null;
    await stack.database.db.transaction().execute(async (trx) => {
      // Holds the shipment row: the poll's read-model write waits for this transaction.
      await trx.selectFrom('shipments').select('id').where('id', '=', shipmentId).forUpdate().execute();
      refresh = handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] });
      refresh.then(
        () => (answered = true),
        () => (answered = true),
      );
      await eventually(
        async () => nativeTrackCalls(),
        (n) => n > calls,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      expect(answered).toBe(false);
    });
    const result: RefreshNowResult = await refresh!;
    expect(result.source).toBe('live');
    expect(result.snapshot.status).toBe('DELIVERED');
    // What the API reads right after the answer is what the answer says.
    expect((await shipmentRow(shipmentId)).status).toBe('DELIVERED');
  });

  it('refuses refreshNow on a finished shipment', async () => {
    const { handle } = await track('never_picked_up', fastPolicy());
    await handle.signal(cancelShipmentSignal, { reason: 'order cancelled' });
    const result = await handle.result();
    expect(result.status).toBe('CANCELLED');
    // The workflow has completed: the server refuses the update.
    await expect(
      handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] }),
    ).rejects.toThrow();
  });

  /**
   * Starts a parcel on a worker of its own, stopped while `send` signals it, so the run takes
   * all of them in one task; `check` runs once a worker is back.
   */
  async function inOneTask(
    send: (handle: WorkflowHandle, shipmentId: string) => Promise<void>,
    check: (handle: WorkflowHandle, shipmentId: string) => Promise<void>,
  ) {
    const deps = {
      db: stack.database.db,
      couriers: {
        [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: stack.couriers.url, timeoutMs: 2_000 }),
      },
    };
    let own: TestWorker | null = await startTestWorker(deps);
    const queues = { taskQueue: own.taskQueue, courierTaskQueue: own.courierTaskQueue };
    try {
      const { shipmentId, trackingNumber } = await parcelRow(stack, { scenario: 'never_picked_up' });
      await startShipmentWorkflow(own, {
        shipmentId,
        orderId: uniqueId('ord'),
        trackingNumber,
        policy: stillPolicy(),
      });
      // Through the stack's client: the own worker's closes with it.
      const handle = stack.started(stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)));
      await eventually(
        () => shipmentRow(shipmentId),
        (row) => row.status === 'INFO_RECEIVED',
      );
      await own.stop();
      own = null;
      await send(handle, shipmentId);
      own = await startTestWorker({ ...deps, taskQueues: queues });
      await check(handle, shipmentId);
    } finally {
      await own?.stop();
    }
  }

  it("records a delivery that arrives in the same task as a stop from outside the parcel's order: the run completes DELIVERED", async () => {
    await inOneTask(
      async (handle, shipmentId) => {
        // An admin marks it delivered, and ops stop its tracking in the same breath.
        await handle.signal(courierEventsSignal, {
          events: [
            pushedEvent(`manual:delivered:${shipmentId}`, 'DELIVERED', new Date().toISOString(), {
              subStatus: MARKED_BY_ADMIN,
              source: 'manual',
            }),
          ],
        });
        await handle.signal(cancelShipmentSignal, { reason: 'ops: stop polling this one' });
      },
      async (handle, shipmentId) => {
        // Before, the stop failed the run first and the delivery was never recorded.
        expect(await handle.result()).toMatchObject({ status: 'DELIVERED', subStatus: MARKED_BY_ADMIN });
        expect(await shipmentRow(shipmentId)).toMatchObject({ status: 'DELIVERED' });
        expect((await eventsOf(shipmentId)).map((e) => e.event_key)).toContain(
          `manual:delivered:${shipmentId}`,
        );
      },
    );
  });

  it("records a courier's push that arrives in the same task as its order's own stop, then ends CANCELLED", async () => {
    await inOneTask(
      async (handle, shipmentId) => {
        // The courier's webhook reports the pickup as the order (cancelled) stops tracking.
        await handle.signal(courierEventsSignal, {
          events: [pushedEvent(`push:picked-up:${shipmentId}`, 'IN_TRANSIT', new Date().toISOString())],
        });
        await handle.signal(cancelShipmentSignal, { reason: 'order cancelled', byOrder: true });
      },
      async (handle, shipmentId) => {
        // Before, the stop ended the run first: the push had been answered "accepted" and was lost.
        expect(await handle.result()).toMatchObject({ status: 'CANCELLED', subStatus: STOPPED_BY_SHOP });
        await recordHistory('shipment-push-with-own-stop', handle);
        const row = await shipmentRow(shipmentId);
        expect(row).toMatchObject({ status: 'CANCELLED' });
        expect(row.picked_up_at).toBeInstanceOf(Date);
        const events = await eventsOf(shipmentId);
        expect(events.find((e) => e.event_key === `push:picked-up:${shipmentId}`)).toMatchObject({
          status: 'IN_TRANSIT',
          source: 'push',
        });
      },
    );
  });

  it('rides out a courier outage: backs off, marks the read model stale, recovers', async () => {
    const { shipmentId, handle } = await track(
      'never_picked_up',
      fastPolicy({ backoffBaseMs: 300, backoffCapMs: 600 }),
    );
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.last_synced_at !== null,
    );
    // Temporal spaces activity retries at least a second apart: two failed cycles take ~3 s.
    stack.couriers.backend.faults.set({ kind: 'outage', durationMs: 8_000, format: 'native' });

    const stale = await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.consecutive_failures >= 2,
    );
    expect(stale.sync_error).toMatch(/^courier unavailable since \d{4}-\d\d-\d\dT/);
    expect(stale.sync_failing_since).toBeInstanceOf(Date);
    expect(stale.status).toBe('INFO_RECEIVED');

    const recovered = await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.sync_error === null && row.last_synced_at!.getTime() > stale.sync_failing_since!.getTime(),
      15_000,
    );
    expect(recovered.consecutive_failures).toBe(0);
    if (process.env.WAYBILL_RECORD_HISTORIES === '1') {
      await handle.signal(cancelShipmentSignal, { reason: 'recorded' });
      await handle.result();
      await recordHistory('shipment-outage-recovered', handle);
    }
    expect(recovered.sync_failing_since).toBeNull();
  });

  it("waits for the next budget window instead of failing, never taking the bookings' share of the budget", async () => {
    // Two calls left today for this courier's polls: of the 1,000 a day, the last 100 are
    // kept for bookings (WAYBILL_COURIER_BOOKING_RESERVE's default, a tenth).
    await withCourierUsage(898, async (day) => {
      const callsBefore = nativeTrackCalls();
      const { shipmentId, handle } = await track('delivered', fastPolicy());
      const row = await eventually(
        () => shipmentRow(shipmentId),
        (r) => (r.sync_error ?? '').includes('budget'),
      );
      expect(row.sync_error).toMatch(
        /daily simulator budget used up; next poll when it reopens at \d{4}-\d\d-\d\dT00:00:00.000Z/,
      );
      const desc = await handle.describe();
      expect(desc.status.name).toBe('RUNNING');
      await new Promise((r) => setTimeout(r, 500));
      expect(nativeTrackCalls() - callsBefore).toBe(2);
      const usage = await stack.database.db
        .selectFrom('courier_api_usage')
        .select('calls')
        .where('courier', '=', CourierCode.SIMULATOR)
        .where('day', '=', day)
        .executeTakeFirstOrThrow();
      expect(usage.calls).toBe(900);
    });
  });

  it('expires a parcel with no scans after the limit', async () => {
    const { shipmentId, handle } = await track('lost', fastPolicy({ expireAfterNoScanMs: 1_500 }));
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'EXPIRED', subStatus: 'NO_SCAN', finished: true });
    expect(await shipmentRow(shipmentId)).toMatchObject({
      status: 'EXPIRED',
      sub_status: 'NO_SCAN',
      next_poll_at: null,
    });
  });

  it('does not count a courier outage towards the no-scan expiry: the parcel expires on answered silence after it', async () => {
    const policy = fastPolicy({ expireAfterNoScanMs: 3_000, backoffBaseMs: 300, backoffCapMs: 600 });
    // The courier answers for a second, then is down for 7 s: over twice the expiry limit.
    stack.couriers.backend.faults.set({
      kind: 'outage',
      startsInMs: 1_000,
      durationMs: 7_000,
      format: 'native',
    });
    const outageEnds = Date.now() + 8_000;
    const { shipmentId, handle } = await track('lost', policy);

    await new Promise((r) => setTimeout(r, outageEnds - 800 - Date.now()));
    const during = await shipmentRow(shipmentId);
    expect(during.status).toBe('PENDING');
    expect(during.sync_error).toMatch(/^courier unavailable since/);
    expect((await handle.describe()).status.name).toBe('RUNNING');

    const result = await handle.result();
    const expiredAt = Date.now();
    expect(result).toMatchObject({ status: 'EXPIRED', subStatus: 'NO_SCAN', syncError: null });
    // About a second of answered silence before the outage, the rest after it.
    expect(expiredAt).toBeGreaterThanOrEqual(outageEnds + 1_000);
  });

  it('does not count time waiting for the courier budget towards the no-scan expiry', async () => {
    await withCourierUsage(1000, async () => {
      const { shipmentId, handle } = await track('lost', fastPolicy({ expireAfterNoScanMs: 1_000 }));
      await eventually(
        () => shipmentRow(shipmentId),
        (r) => (r.sync_error ?? '').includes('budget'),
      );
      await new Promise((r) => setTimeout(r, 3_000));
      expect((await shipmentRow(shipmentId)).status).toBe('PENDING');
      expect((await handle.describe()).status.name).toBe('RUNNING');
    });
  });

  it('turns a number the courier never knew into an exception after the not-found limit', async () => {
    const { shipmentId, handle } = await track(null, fastPolicy({ notFoundLimit: 2 }), `NOPE-${Date.now()}`);
    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'EXCEPTION',
    );
    expect(row.sub_status).toBe('NOT_FOUND_AT_COURIER');
    expect(row.sync_error).toMatch(/^the courier does not know NOPE-\d+ \(2 answers\)$/);
    expect((await handle.query(shipmentStateQuery)).status).toBe('EXCEPTION');
  });

  it('continues as new when the server suggests it, keeping its state', async () => {
    // The test server suggests continue-as-new at 60 history events (global setup).
    const { handle } = await track(
      'never_picked_up',
      fastPolicy({ intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 50, PENDING: 50 } }),
    );
    const firstRunId = (await handle.describe()).runId;
    await eventually(
      () => handle.describe(),
      (d) => d.runId !== firstRunId,
      30_000,
    );
    const state = await handle.query(shipmentStateQuery);
    expect(state.status).toBe('INFO_RECEIVED');
    // Polls from every run are counted: more than a single short run makes.
    expect(state.polls).toBeGreaterThan(3);
    await handle.signal(cancelShipmentSignal, { reason: 'done' });
    expect((await handle.result()).polls).toBeGreaterThanOrEqual(state.polls);
    await recordHistory('shipment-after-continue-as-new', handle);
  });

  it('answers a refreshNow that arrives mid-poll even when continue-as-new is due right after', async () => {
    // Every cycle makes continue-as-new due; a slow courier keeps a poll in flight.
    const policy = fastPolicy({
      maxCyclesPerRun: 1,
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000 },
    });
    const { handle } = await track('never_picked_up', policy);
    const firstRun = (await handle.describe()).runId;
    await eventually(
      () => handle.describe(),
      (d) => d.runId !== firstRun,
    );
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 800, format: 'native' });
    await handle.signal(refreshSignal, { requestedBy: 'test' });
    await new Promise((r) => setTimeout(r, 300)); // that poll is now in flight
    const before = await handle.query(shipmentStateQuery);
    const fresh = await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] });
    expect(fresh.snapshot.polls).toBeGreaterThanOrEqual(before.polls + 1);
    expect(fresh.snapshot.finished).toBe(false);
  });

  it('keeps events pushed during a poll when continue-as-new follows it', async () => {
    const policy = fastPolicy({
      maxCyclesPerRun: 1,
      intervalMs: { ...fastPolicy().intervalMs, INFO_RECEIVED: 600_000 },
    });
    const { shipmentId, handle } = await track('never_picked_up', policy);
    await eventually(
      () => shipmentRow(shipmentId),
      (row) => row.status === 'INFO_RECEIVED',
    );
    stack.couriers.backend.faults.set({ kind: 'latency', ms: 800, format: 'native' });
    await handle.signal(refreshSignal, { requestedBy: 'test' });
    await new Promise((r) => setTimeout(r, 300));
    const at = new Date().toISOString();
    await handle.signal(courierEventsSignal, {
      events: [
        pushedEvent(`push-can-${shipmentId}`, 'IN_TRANSIT', at, {
          subStatus: 'PICKED_UP',
          rawCode: 'PICKED_UP',
          rawText: 'Picked up',
          location: { city: 'Shah Alam', state: 'Selangor', country: 'MY' },
        }),
      ],
    });
    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'IN_TRANSIT',
    );
    expect(row.picked_up_at).toBeInstanceOf(Date);
    expect((await eventsOf(shipmentId)).some((e) => e.event_key === `push-can-${shipmentId}`)).toBe(true);
  });

  it('adds a late pushed event to the history without moving the status back', async () => {
    const { shipmentId, handle } = await track(
      'delivered',
      fastPolicy({ intervalMs: { ...fastPolicy().intervalMs, IN_TRANSIT: 600_000 } }),
    );
    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'IN_TRANSIT',
    );
    const old = new Date(row.last_event_at!.getTime() - 3_600_000).toISOString();
    await handle.signal(courierEventsSignal, {
      events: [
        pushedEvent(`late-${shipmentId}`, 'INFO_RECEIVED', old, {
          rawCode: 'INFO',
          rawText: 'Shipment information received',
          location: { city: null, state: null, country: null },
        }),
      ],
    });
    await eventually(eventsOf.bind(null, shipmentId), (events) =>
      events.some((e) => e.event_key === `late-${shipmentId}`),
    );
    expect((await shipmentRow(shipmentId)).status).toBe('IN_TRANSIT');
    expect((await handle.query(shipmentStateQuery)).status).toBe('IN_TRANSIT');
  });

  it('records the pickup time when a pickup scan comes with a later problem (status EXCEPTION), as the order is told of the pickup', async () => {
    const shipmentId = uniqueId('shp');
    await stack.database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: 'simulator', tracking_number: `SIM-${shipmentId}` })
      .execute();
    const scan = (key: string, status: 'IN_TRANSIT' | 'EXCEPTION', at: string) => ({
      key,
      status,
      subStatus: status === 'IN_TRANSIT' ? 'PICKED_UP' : 'DAMAGED',
      rawCode: key,
      rawText: key,
      occurredAt: at,
      occurredAtRaw: null,
      location: { city: 'Shah Alam', state: 'Selangor', country: 'MY' },
      source: 'poll' as const,
    });
    await stack.worker.activities.recordTracking({
      shipmentId,
      events: [
        scan('pickup', 'IN_TRANSIT', '2026-11-20T10:00:00.000Z'),
        scan('damaged', 'EXCEPTION', '2026-11-20T11:00:00.000Z'),
      ],
      status: 'EXCEPTION' as const,
      subStatus: 'DAMAGED',
      eta: null,
      syncedAt: '2026-11-20T11:05:00.000Z',
      nextPollAt: '2026-11-20T13:05:00.000Z',
    });

    const row = await shipmentRow(shipmentId);
    expect(row.status).toBe('EXCEPTION');
    expect(row.picked_up_at).toBeInstanceOf(Date);
  });

  it('records the same courier answer twice without duplicating events', async () => {
    const shipmentId = uniqueId('shp');
    await stack.database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: 'simulator', tracking_number: 'SIM-DUP' })
      .execute();
    const event = {
      key: 'evt-1',
      status: 'IN_TRANSIT' as const,
      subStatus: 'PICKED_UP',
      rawCode: 'PICKED_UP',
      rawText: 'Picked up',
      occurredAt: '2026-11-20T10:00:00.000Z',
      occurredAtRaw: null,
      location: { city: 'Shah Alam', state: 'Selangor', country: 'MY' },
      source: 'poll' as const,
    };
    const input = {
      shipmentId,
      events: [event],
      status: 'IN_TRANSIT' as const,
      subStatus: 'PICKED_UP',
      eta: null,
      raw: null,
      syncedAt: '2026-11-20T10:05:00.000Z',
      nextPollAt: '2026-11-20T12:05:00.000Z',
    };
    expect(await stack.worker.activities.recordTracking(input)).toEqual({ inserted: 1 });
    const afterFirst = await shipmentRow(shipmentId);
    expect(await stack.worker.activities.recordTracking(input)).toEqual({ inserted: 0 });
    const afterSecond = await shipmentRow(shipmentId);
    const count = await sql<{
      n: number;
    }>`select count(*)::int as n from tracking_events where shipment_id = ${shipmentId}`.execute(
      stack.database.db,
    );
    expect(count.rows[0]!.n).toBe(1);
    expect(afterSecond.version).toBe(afterFirst.version);
    expect(afterSecond.status).toBe('IN_TRANSIT');
  });
});
