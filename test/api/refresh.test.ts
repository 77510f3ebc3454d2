/**
 * The cost of `?refresh=true`: the real API (inject), the real Temporal dev server and
 * worker, Postgres, and the courier simulator over HTTP, whose own counters (its control
 * API, `/control/stats`) say how many courier calls were made. Parcels are tracked by
 * their shipment workflows directly (no saga): what is measured is the refresh path.
 */
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { SimStats } from '../../simulators/courier/stats';
import { createSimulatorAdapter } from '../../src/couriers/simulator';
import { CourierCode } from '../../src/couriers/types';
import type { PollPolicy } from '../../src/domain/polling';
import { refreshNowUpdate, shipmentWorkflowId } from '../../src/workflows/contract';
import { type TestApi } from '../support/api';
import { insertOrderRow } from '../support/db';
import { eventually } from '../support/eventually';
import { startShipmentWorkflow, startTestWorker, stillPolicy } from '../support/temporal';
import { parcelRow, trackParcel } from '../support/shipments';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const COOLDOWN_MS = 3_000;

/** Nothing polls on its own during a test: every courier call comes from a refresh. */
const POLICY: PollPolicy = stillPolicy({ refreshCooldownMs: COOLDOWN_MS });

/** Runs `count` calls of `work`, `concurrency` at a time. */
async function hammer<T>(count: number, concurrency: number, work: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started += 1;
      results.push(await work());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return results;
}

const tally = (values: string[]) =>
  values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {});

describe('live refresh cost', () => {
  // Neither the per-IP rate limit nor the quota is what protects the courier here.
  // The API reads the cooldown from its own settings, the workflows from the worker's policy.
  const env = {
    WAYBILL_RATE_LIMIT_PER_MINUTE: '1000000',
    WAYBILL_REFRESH_QUOTA: '1000000',
    WAYBILL_REFRESH_COOLDOWN: `${COOLDOWN_MS}ms`,
  };
  const stack = useStack({
    payments: false,
    worker: { pollPolicy: POLICY },
    api: { env },
  });
  /** The same API with a quota of two live refreshes per customer per hour. */
  let tight: TestApi;

  beforeAll(async () => {
    tight = await stack.anotherApi({ env: { ...env, WAYBILL_REFRESH_QUOTA: '2' } });
  });

  /** Courier track calls so far, as the simulator counted them. */
  async function courierTrackCalls(): Promise<number> {
    const stats = (await (await fetch(`${stack.couriers.url}/control/stats`)).json()) as SimStats;
    return stats.formats.native.byKind.track;
  }

  /** An order of `customerId` with one parcel its shipment workflow tracks, synced once. */
  async function trackedOrder(customerId: string) {
    const orderId = await insertOrderRow(stack.database.db, { customerId });
    const { shipmentId, handle } = await trackParcel(stack, {
      orderId,
      scenario: 'never_picked_up',
      policy: POLICY,
    });
    await eventually(
      () =>
        stack.database.db
          .selectFrom('shipments')
          .select('last_synced_at')
          .where('id', '=', shipmentId)
          .executeTakeFirstOrThrow(),
      (row) => row.last_synced_at !== null,
    );
    return { orderId, shipmentId, handle };
  }

  /** refreshNow updates the workflow took, over every run (it may have continued as new). */
  async function updatesAccepted(first: WorkflowHandleWithFirstExecutionRunId): Promise<number> {
    let accepted = 0;
    let runId: string | undefined = first.firstExecutionRunId;
    while (runId) {
      const history = await stack.worker.client.workflow.getHandle(first.workflowId, runId).fetchHistory();
      accepted += history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
      runId =
        history.events!.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ??
        undefined;
    }
    return accepted;
  }

  const refresh = (orderId: string, headers: Record<string, string>, target: TestApi = stack.api) =>
    target.app.inject({ url: `/v1/orders/${orderId}/tracking?refresh=true`, headers });

  /** refreshNow updates the workflow has taken so far (one run). */
  const updatesTaken = async (handle: WorkflowHandle) =>
    (await handle.fetchHistory()).events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
      .length;

  /**
   * An order of `customerId` whose parcel is tracked on a worker of its own, against a courier
   * that takes every call and never answers: the parcel's poll stays out, and so does every
   * refresh waiting for it, until the test ends (the courier then hangs up).
   */
  async function withSilentCourier(
    customerId: string,
    test: (parcel: { orderId: string; handle: WorkflowHandle }) => Promise<void>,
  ) {
    const sockets = new Set<Socket>();
    const courier = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => courier.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(courier.address() as AddressInfo).port}`;
    const own = await startTestWorker({
      db: stack.database.db,
      couriers: { [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: url, timeoutMs: 60_000 }) },
      pollPolicy: POLICY,
    });
    try {
      const orderId = await insertOrderRow(stack.database.db, { customerId });
      const { shipmentId, trackingNumber } = await parcelRow(stack, { orderId, scenario: 'never_picked_up' });
      await startShipmentWorkflow(own, { shipmentId, orderId, trackingNumber, policy: POLICY });
      // Through the stack's client, which outlives the own worker's.
      const handle = stack.started(stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)));
      await test({ orderId, handle });
    } finally {
      // The poll fails at once, so the worker can stop; the stack terminates the workflow.
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => courier.close(resolve));
      await own.stop();
    }
  }

  it('sends one refreshNow for concurrent refreshes of a parcel: they share its answer', async () => {
    await withSilentCourier('cus_together', async ({ orderId, handle }) => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await refresh(orderId, stack.api.customer('cus_together'));
          expect(res.statusCode).toBe(200);
          return res.json().shipments[0].dataSource.refresh as string;
        }),
      );
      // The courier never answers: every refresh ran out of the deadline waiting for the one poll.
      expect(tally(answers)).toEqual({ timeout: 20 });
      // The workflow takes updates when its task next completes (the poll, a local activity,
      // holds it open for up to 8 s). Before, each refresh sent its own: ten filled the
      // workflow's limit and the rest were refused.
      await eventually(
        () => updatesTaken(handle),
        (n) => n > 0,
        30_000,
      );
      expect(await updatesTaken(handle)).toBe(1);
    });
  });

  it("answers busy when the refreshes already under way fill the parcel's limit of updates in flight", async () => {
    await withSilentCourier('cus_busy', async ({ orderId, handle }) => {
      // Ten refreshNow updates from elsewhere (other API processes, ops), all waiting for the poll.
      for (let i = 0; i < 10; i++)
        void handle
          .executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'ops' }] })
          .catch(() => undefined);
      await eventually(
        () => updatesTaken(handle),
        (n) => n === 10,
      );
      const res = await refresh(orderId, stack.api.customer('cus_busy'));
      expect(res.statusCode).toBe(200);
      const { dataSource } = res.json().shipments[0];
      // Before: courier_unavailable, "the courier could not be asked right now", which it was not.
      expect(dataSource.refresh).toBe('busy');
      expect(dataSource.isLive).toBe(false);
      expect(res.json().message).toMatch(/refreshes already under way fill what its tracking takes at once/);
      expect(await updatesTaken(handle)).toBe(10);
    });
  });

  it('1,000 refresh reads of one order by one customer cost at most a handful of courier calls', async () => {
    const { orderId, handle } = await trackedOrder('cus_hammer');
    // Let the cooldown of the first poll pass: the first refresh is then due a live poll.
    await new Promise((r) => setTimeout(r, COOLDOWN_MS));
    const before = await courierTrackCalls();
    const t0 = Date.now();
    const lanes = 10;
    const answers = await hammer(1_000, lanes, async () => {
      const res = await refresh(orderId, stack.api.customer('cus_hammer'));
      expect(res.statusCode).toBe(200);
      return res.json().shipments[0].dataSource.refresh as string;
    });
    const elapsedMs = Date.now() - t0;
    const cooldowns = 1 + Math.ceil(elapsedMs / COOLDOWN_MS);
    const courierCalls = (await courierTrackCalls()) - before;
    const reachedWorkflow = await updatesAccepted(handle);
    if (process.env.WAYBILL_PRINT_FIGURES === '1') {
      process.stderr.write(
        `[figures] 1000 refreshes in ${elapsedMs} ms: ${courierCalls} courier calls, ${reachedWorkflow} reached the workflow, outcomes ${JSON.stringify(tally(answers))}\n`,
      );
    }

    // At most one live poll per cooldown whatever the traffic: one, or a few if the burst
    // outlasted cooldowns (a loaded machine serves the thousand requests slower, so the bound
    // is the elapsed time's, not a fixed count); never the thousand it cost before the cooldown.
    expect(courierCalls).toBeGreaterThanOrEqual(1);
    expect(courierCalls).toBeLessThanOrEqual(cooldowns);
    const outcomes = tally(answers);
    expect(outcomes.live).toBeGreaterThanOrEqual(1);
    expect((outcomes.live ?? 0) + (outcomes.cooldown ?? 0)).toBe(1_000);
    // Almost every request was answered by the API from the read model, never reaching Temporal:
    // only the requests in flight when a cooldown ends (one per lane) ask the workflow.
    expect(reachedWorkflow).toBeLessThanOrEqual(lanes * cooldowns);
  });

  it('says a refresh inside the cooldown is not live, why, and from when it can be', async () => {
    const { orderId } = await trackedOrder('cus_cool');
    const res = await refresh(orderId, stack.api.customer('cus_cool'));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const [shipment] = body.shipments;
    expect(shipment.dataSource).toMatchObject({ isLive: false, isCached: true, refresh: 'cooldown' });
    const next = Date.parse(shipment.dataSource.nextLiveRefreshAt);
    expect(next).toBe(Date.parse(shipment.lastUpdatedAt) + COOLDOWN_MS);
    expect(body.message).toMatch(
      /^Showing the last stored tracking: the courier was asked less than 3 s ago/,
    );

    // A plain read asks for nothing and says so.
    const plain = await stack.api.app.inject({
      url: `/v1/orders/${orderId}/tracking`,
      headers: stack.api.customer('cus_cool'),
    });
    expect(plain.json().shipments[0].dataSource).toEqual({
      isLive: false,
      isCached: true,
      unavailable: false,
      refresh: null,
      nextLiveRefreshAt: null,
    });
    expect(plain.json().message).toBeNull();
  });

  it('holds a customer to their live-refresh quota; other customers and admins are not held to it', async () => {
    const orders = [
      await trackedOrder('cus_quota'),
      await trackedOrder('cus_quota'),
      await trackedOrder('cus_quota'),
    ];
    const other = await trackedOrder('cus_other');
    await new Promise((r) => setTimeout(r, COOLDOWN_MS));
    const before = await courierTrackCalls();

    for (const { orderId } of orders.slice(0, 2)) {
      const res = await refresh(orderId, tight.customer('cus_quota'), tight);
      expect(res.json().shipments[0].dataSource.refresh).toBe('live');
    }
    const refused = await refresh(orders[2]!.orderId, tight.customer('cus_quota'), tight);
    expect(refused.statusCode).toBe(200);
    const dataSource = refused.json().shipments[0].dataSource;
    expect(dataSource).toMatchObject({ isLive: false, refresh: 'quota' });
    // The window is an hour by default: the quota comes back within it.
    const resetsIn = Date.parse(dataSource.nextLiveRefreshAt) - Date.now();
    expect(resetsIn).toBeGreaterThan(50 * 60_000);
    expect(resetsIn).toBeLessThanOrEqual(60 * 60_000);
    expect(refused.json().message).toMatch(
      /your live refreshes \(2 per 60 min\) are used up until \d\d:\d\d:\d\d UTC/,
    );
    expect((await courierTrackCalls()) - before).toBe(2);

    // Another customer has a quota of their own; an admin has none (the cooldown still holds).
    expect(
      (await refresh(other.orderId, tight.customer('cus_other'), tight)).json().shipments[0].dataSource
        .refresh,
    ).toBe('live');
    expect(
      (await refresh(orders[2]!.orderId, tight.admin(), tight)).json().shipments[0].dataSource.refresh,
    ).toBe('live');
    expect(
      (await refresh(orders[2]!.orderId, tight.admin(), tight)).json().shipments[0].dataSource.refresh,
    ).toBe('cooldown');
    expect((await courierTrackCalls()) - before).toBe(4);
  });

  it('holds the admin refresh route to the cooldown: the poll waits for its end instead of happening at once', async () => {
    const { shipmentId } = await trackedOrder('cus_admin');
    const before = await courierTrackCalls();
    const requestedAt = Date.now();
    const res = await stack.api.app.inject({
      method: 'POST',
      url: `/v1/admin/shipments/${shipmentId}/refresh`,
      headers: stack.api.admin('alice'),
    });
    expect(res.statusCode).toBe(202);
    const cooldownUntil = Date.parse(res.json().cooldownUntil);
    expect(cooldownUntil).toBeGreaterThan(Date.now());
    const bulk = await stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/shipments/refresh',
      payload: { shipmentIds: [shipmentId] },
      headers: stack.api.admin('alice'),
    });
    expect(bulk.json()).toMatchObject({ signalled: 1, inCooldown: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(await courierTrackCalls()).toBe(before);
    // Not lost either: the workflow polls once the cooldown is over.
    await eventually(courierTrackCalls, (n) => n === before + 1, COOLDOWN_MS + 5_000);
    expect(Date.now() - requestedAt).toBeGreaterThanOrEqual(COOLDOWN_MS / 2);
  });
});
