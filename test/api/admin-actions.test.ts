/**
 * The admin actions (refresh one or many, cancel, mark delivered) through Fastify's injector
 * against real order and shipment workflows on a real worker and the real Temporal dev
 * server, with the courier and payment simulators over HTTP.
 */
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { orderShipmentId, orderStateQuery, shipmentWorkflowId } from '../../src/workflows/contract';
import type { PollPolicy } from '../../src/domain/polling';
import { eventually } from '../support/eventually';
import { fastPolicy, stillPolicy, uniqueId } from '../support/temporal';
import { startOrder } from '../support/orders';
import { shipmentRow as shipmentRowOf, trackParcel } from '../support/shipments';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const QUIET = { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' };

describe('admin actions on running workflows', () => {
  /** No poll on its own for ten minutes: any poll during a test was asked for. */
  const SLOW = fastPolicy({
    intervalMs: { ...fastPolicy().intervalMs, PENDING: 600_000, INFO_RECEIVED: 600_000 },
  });

  const stack = useStack({
    // SLOW's refresh cooldown (none; 1 ms is the least the setting takes) on the API too: admin refreshes poll at once.
    api: { env: { ...QUIET, WAYBILL_REFRESH_COOLDOWN: '1ms' } },
    // Each test starts from a read model with nothing left open: archived rows are in no admin view.
    afterEachTest: async () => {
      await stack.database.db.updateTable('shipments').set({ archived_at: new Date() }).execute();
    },
  });

  const nativeTrackCalls = () => stack.couriers.backend.stats.snapshot().formats.native.byKind.track;
  const shipmentRow = (id: string) => shipmentRowOf(stack, id);
  const orderRow = (id: string) =>
    stack.database.db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const auditOf = (subjectId: string) =>
    stack.database.db.selectFrom('audit_log').selectAll().where('subject_id', '=', subjectId).execute();
  const post = (url: string, payload?: unknown, headers: Record<string, string> = stack.api.admin()) =>
    stack.api.app.inject({
      method: 'POST',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  /** A parcel tracked by its own workflow (no order), polled once, then only when asked. */
  async function track(scenario: ScenarioName, policy: PollPolicy = SLOW, ageMs?: number) {
    const { shipmentId, handle } = await trackParcel(stack, {
      scenario,
      policy,
      ...(ageMs === undefined ? {} : { ageMs }),
    });
    return { shipmentId, handle };
  }

  /** A parcel the courier delivered days ago: its workflow ends DELIVERED after its first poll. */
  async function finishedOnItsOwn() {
    const tracked = await track('delivered', fastPolicy(), 3 * DAY);
    await tracked.handle.result();
    return tracked;
  }

  /** Tracked and synced once (INFO_RECEIVED); returns its last sync time. */
  async function trackedAndSynced() {
    const tracked = await track('never_picked_up');
    const row = await eventually(
      () => shipmentRow(tracked.shipmentId),
      (r) => r.status === 'INFO_RECEIVED' && r.last_synced_at !== null,
    );
    return { ...tracked, syncedAt: row.last_synced_at! };
  }

  /** An order whose saga runs to CONFIRMED; its one parcel plays `scenario`. */
  async function placeOrder(scenario: ScenarioName, policy: PollPolicy = SLOW) {
    const sku = uniqueId('KETTLE');
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: 5, low_stock_threshold: 1 })
      .execute();
    const { orderId, handle, total } = await startOrder(stack, { sku, quantity: 1, scenario, policy });
    const shipmentId = orderShipmentId(orderId, 1);
    await eventually(
      () => orderRow(orderId),
      (o) => o.status === 'CONFIRMED',
    );
    await eventually(
      () =>
        stack.database.db
          .selectFrom('shipments')
          .select('status')
          .where('id', '=', shipmentId)
          .executeTakeFirst(),
      (s) => s?.status === 'INFO_RECEIVED',
    );
    return { orderId, shipmentId, handle, total };
  }

  it('lets admins with a JWT and with an API key use every action route', async () => {
    const { shipmentId } = await trackedAndSynced();
    const order = await placeOrder('never_picked_up');
    for (const headers of [stack.api.admin(), stack.api.adminKey()]) {
      expect((await post(`/v1/admin/shipments/${shipmentId}/refresh`, undefined, headers)).statusCode).toBe(
        202,
      );
      expect(
        (await post('/v1/admin/shipments/refresh', { shipmentIds: [shipmentId] }, headers)).statusCode,
      ).toBe(202);
      expect(
        (await post(`/v1/admin/orders/${order.orderId}/cancel`, { reason: 'duplicate order' }, headers))
          .statusCode,
      ).toBe(200);
    }
    const { shipmentId: other } = await trackedAndSynced();
    const first = await post(
      `/v1/admin/shipments/${other}/mark-delivered`,
      { reason: 'signed for' },
      stack.api.admin(),
    );
    expect(first.statusCode).toBe(202);
    await eventually(
      () => shipmentRow(other),
      (r) => r.status === 'DELIVERED',
    );
    const second = await post(
      `/v1/admin/shipments/${other}/mark-delivered`,
      { reason: 'signed for' },
      stack.api.adminKey(),
    );
    expect(second.statusCode).toBe(200);
  });

  describe('POST /v1/admin/shipments/:shipmentId/refresh', () => {
    it('makes the shipment workflow poll its courier now', async () => {
      const { shipmentId, syncedAt } = await trackedAndSynced();
      const calls = nativeTrackCalls();
      const res = await post(
        `/v1/admin/shipments/${shipmentId}/refresh`,
        undefined,
        stack.api.admin('alice'),
      );
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        shipmentId,
        workflowId: shipmentWorkflowId(shipmentId),
        signalled: true,
        requestedBy: 'admin:alice',
        cooldownUntil: null,
      });
      // Without the signal the next poll is ten minutes away.
      const row = await eventually(
        () => shipmentRow(shipmentId),
        (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
        10_000,
      );
      expect(row.status).toBe('INFO_RECEIVED');
      expect(nativeTrackCalls()).toBeGreaterThan(calls);
    });

    it('answers 409 for a shipment whose tracking has finished, and polls nothing', async () => {
      const { shipmentId } = await finishedOnItsOwn();
      const calls = nativeTrackCalls();
      const res = await post(`/v1/admin/shipments/${shipmentId}/refresh`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toEqual({
        code: 'SHIPMENT_FINISHED',
        message: `shipment ${shipmentId} is DELIVERED: tracking has finished, there is nothing to refresh`,
      });
      expect(nativeTrackCalls()).toBe(calls);
    });

    it('answers 404 for a shipment it does not know and 409 for one with no running workflow', async () => {
      const unknown = await post('/v1/admin/shipments/shp_nope/refresh');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().error).toEqual({ code: 'NOT_FOUND', message: 'no shipment shp_nope' });
      await stack.database.db
        .insertInto('shipments')
        .values({ id: 'shp_orphan', courier: 'simulator', tracking_number: 'ORPHAN-1', status: 'IN_TRANSIT' })
        .execute();
      const orphan = await post('/v1/admin/shipments/shp_orphan/refresh');
      expect(orphan.statusCode).toBe(409);
      expect(orphan.json().error.code).toBe('NOT_TRACKING');
    });

    it('answers 400 naming the id when it is malformed', async () => {
      const res = await post("/v1/admin/shipments/x'%20OR%201=1/refresh");
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/shipmentId/);
    });
  });

  describe('POST /v1/admin/shipments/refresh', () => {
    it('refreshes by ids: open ones signalled, finished ones skipped, unknown ones named', async () => {
      const a = await trackedAndSynced();
      const b = await trackedAndSynced();
      const done = await finishedOnItsOwn();
      const res = await post('/v1/admin/shipments/refresh', {
        shipmentIds: [a.shipmentId, done.shipmentId, 'shp_unknown', b.shipmentId],
      });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        matched: 3,
        signalled: 2,
        inCooldown: 0,
        skipped: 1,
        failed: 0,
        notFound: ['shp_unknown'],
        capped: false,
        cap: 500,
        failures: [],
      });
      for (const { shipmentId, syncedAt } of [a, b]) {
        await eventually(
          () => shipmentRow(shipmentId),
          (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
          10_000,
        );
      }
    });

    it('refreshes by filter: every open match signalled, one without a workflow reported as failed', async () => {
      const a = await trackedAndSynced();
      const b = await trackedAndSynced();
      // Finished: not matched by a filter (there is nothing to refresh).
      await finishedOnItsOwn();
      // Open in the read model, but no workflow tracks it.
      const orphan = { id: uniqueId('shp') };
      await stack.database.db
        .insertInto('shipments')
        .values({
          id: orphan.id,
          courier: 'simulator',
          tracking_number: uniqueId('LOST'),
          status: 'INFO_RECEIVED',
        })
        .execute();

      const res = await post('/v1/admin/shipments/refresh', { filter: { courier: 'simulator' } });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({
        matched: 3,
        signalled: 2,
        inCooldown: 0,
        skipped: 0,
        failed: 1,
        notFound: [],
        capped: false,
        cap: 500,
        failures: [{ shipmentId: orphan.id, reason: 'no tracking workflow is running for it' }],
      });
      for (const { shipmentId, syncedAt } of [a, b]) {
        await eventually(
          () => shipmentRow(shipmentId),
          (r) => r.last_synced_at!.getTime() > syncedAt.getTime(),
          10_000,
        );
      }
      const none = await post('/v1/admin/shipments/refresh', { filter: { status: ['EXCEPTION'] } });
      expect(none.json()).toMatchObject({ matched: 0, signalled: 0, failed: 0 });
    });

    it('takes at most 500 matches of a filter and says so; lists 50 a page by default', async () => {
      await stack.database.db
        .insertInto('shipments')
        .values(
          Array.from({ length: 501 }, (_, i) => ({
            id: `shp_many_${String(i).padStart(3, '0')}`,
            courier: 'bluedart',
            tracking_number: `MANY${i}`,
            status: 'IN_TRANSIT',
            // Never polled, the first poll due an hour ago at creation: stale.
            created_at: new Date(Date.now() - 3_600_000),
          })),
        )
        .execute();
      const res = await post('/v1/admin/shipments/refresh', { filter: { courier: 'bluedart', stale: true } });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toMatchObject({ matched: 500, capped: true, cap: 500, signalled: 0, failed: 500 });
      expect(res.json().failures).toHaveLength(50);

      const page = await stack.api.app.inject({
        method: 'GET',
        url: '/v1/admin/shipments?courier=bluedart',
        headers: stack.api.admin(),
      });
      expect(page.json().items).toHaveLength(50);
      expect(page.json().nextCursor).toEqual(expect.any(String));
    });

    it.each([
      ['both ids and a filter', { shipmentIds: ['shp_1'], filter: {} }, /either shipmentIds or filter/],
      ['neither', {}, /either shipmentIds or filter/],
      ['too many ids', { shipmentIds: Array.from({ length: 501 }, (_, i) => `shp_${i}`) }, /shipmentIds/],
      ['no ids', { shipmentIds: [] }, /shipmentIds/],
      ['an unknown field', { shipmentIds: ['shp_1'], force: true }, /body has an unknown field "force"/],
      ['an unknown filter', { filter: { colour: 'red' } }, /body.filter has an unknown field "colour"/],
      ['a bad status', { filter: { status: ['LOST'] } }, /body.filter.status\[0\] must be one of PENDING/],
    ])('answers 400 for %s', async (_case, payload, message) => {
      const res = await post('/v1/admin/shipments/refresh', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toMatch(message);
    });
  });

  describe('POST /v1/admin/orders/:orderId/cancel', () => {
    it('cancels before pickup: the order ends CANCELLED and the audit log says who, when and why', async () => {
      const { orderId, shipmentId } = await placeOrder('never_picked_up');
      const res = await post(
        `/v1/admin/orders/${orderId}/cancel`,
        { reason: '  fraud check  ' },
        stack.api.admin('ops'),
      );
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ orderId, status: 'CANCELLED' });
      expect(await orderRow(orderId)).toMatchObject({ status: 'CANCELLED' });
      const payment = await stack.database.db
        .selectFrom('payments')
        .select('status')
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment.status).toBe('VOIDED');
      await eventually(
        () => shipmentRow(shipmentId),
        (r) => r.status === 'CANCELLED',
      );
      const audit = await auditOf(orderId);
      expect(audit).toEqual([
        expect.objectContaining({
          actor: 'admin:ops',
          action: 'order.cancel',
          subject_type: 'order',
          reason: 'fraud check',
        }),
      ]);
      expect(Date.now() - audit[0]!.created_at.getTime()).toBeLessThan(60_000);
    });

    it('answers 202 CANCELLING while the compensations are still running, then the order ends CANCELLED', async () => {
      const { orderId } = await placeOrder('never_picked_up');
      // Voiding fails four times (retried after 1, 2, 4, 8 s): longer than the route waits (8 s in all).
      stack.payments.state.faults.set({ kind: 'error', calls: 4, operation: 'void' });
      try {
        const res = await post(`/v1/admin/orders/${orderId}/cancel`, { reason: 'fraud check' });
        expect(res.statusCode).toBe(202);
        expect(res.json()).toEqual({ orderId, status: 'CANCELLING' });
        await eventually(
          () => orderRow(orderId),
          (o) => o.status === 'CANCELLED',
        );
      } finally {
        stack.payments.state.faults.clear();
      }
    });

    it('refuses with 409 ALREADY_PICKED_UP once the courier has the parcel, and changes nothing', async () => {
      // Nothing polls on its own: the pickup is seen by the refresh below, and the parcel then
      // stays IN_TRANSIT for the rest of the test.
      const { orderId, shipmentId, total } = await placeOrder('never_picked_up', stillPolicy());
      // The courier picks the parcel up: its lifecycle restarts as a normal delivery, just after pickup.
      const { tracking_number } = await shipmentRow(shipmentId);
      stack.couriers.backend.register({
        trackingNumber: tracking_number,
        scenario: 'delivered',
        format: 'native',
        ageMs: 6 * HOUR + MINUTE,
      });
      expect((await post(`/v1/admin/shipments/${shipmentId}/refresh`)).statusCode).toBe(202);
      await eventually(
        () => orderRow(orderId),
        (o) => o.status === 'SHIPPED',
      );

      const res = await post(`/v1/admin/orders/${orderId}/cancel`, { reason: 'too late now' });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('ALREADY_PICKED_UP');
      expect(res.json().error.message).toMatch(/picked up/);
      expect(await orderRow(orderId)).toMatchObject({ status: 'SHIPPED' });
      const payment = await stack.database.db
        .selectFrom('payments')
        .selectAll()
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: total, amount_refunded: 0 });
      expect(await auditOf(orderId)).toEqual([]);
    });

    it('answers 404 for an order it does not know', async () => {
      const res = await post('/v1/admin/orders/ord_nope/cancel', { reason: 'customer asked' });
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toEqual({ code: 'NOT_FOUND', message: 'no order ord_nope' });
    });

    it.each([
      ['no reason', {}, /body is missing "reason"/],
      ['a short reason', { reason: 'no' }, /reason must NOT have fewer than 3 characters/],
      ['a reason of spaces', { reason: '   a    ' }, /reason must have at least 3 characters besides/],
      ['a reason too long', { reason: 'x'.repeat(501) }, /reason must NOT have more than 500 characters/],
      ['a reason that is not text', { reason: { text: 'hi' } }, /reason must be string/],
      ['an unknown field', { reason: 'customer asked', refund: false }, /body has an unknown field "refund"/],
    ])('answers 400 naming the field for %s', async (_case, payload, message) => {
      const res = await post('/v1/admin/orders/ord_nope/cancel', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
      expect(res.json().error.message).toMatch(message);
    });
  });

  describe('POST /v1/admin/shipments/:shipmentId/mark-delivered', () => {
    /**
     * The courier collects the booked parcel: it is registered 10 h into a delivery and courier
     * time then stands (nearly) still, so the parcel stays in the van while the test acts,
     * however slow the machine (at the stack's speed the whole delivery once played out before
     * a test saw the pickup). Returns its tracking number.
     */
    async function collectedByCourier(shipmentId: string): Promise<string> {
      const { tracking_number } = await eventually(
        () => shipmentRow(shipmentId),
        (row) => row.tracking_number !== null,
      );
      stack.couriers.backend.register({
        trackingNumber: tracking_number!,
        scenario: 'delivered',
        format: 'native',
        ageMs: 10 * HOUR,
      });
      stack.couriers.backend.clock.setTimeScale(1);
      return tracking_number!;
    }

    it('a parcel the courier has collected keeps its booking when an admin marks it delivered', async () => {
      const { orderId, shipmentId, handle } = await placeOrder('never_picked_up');
      // The slow poll policy has not seen the pickup yet when the admin marks it delivered.
      const trackingNumber = await collectedByCourier(shipmentId);
      const marked = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, {
        reason: 'the customer confirmed it by phone',
      });
      expect(marked.statusCode).toBe(202);

      // The release asked the courier, which has the parcel: nothing cancelled, nothing parked.
      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attention: [] });
      const parcel = stack.couriers.backend.inspect(trackingNumber)?.parcel;
      expect(parcel?.cancelled).toBe(false);
      expect(await orderRow(orderId)).toMatchObject({ status: 'DELIVERED' });
    });

    it('a parcel the order saw collected is not cancelled at the courier when an admin marks it delivered', async () => {
      const { orderId, shipmentId, handle, total } = await placeOrder('never_picked_up', fastPolicy());
      await collectedByCourier(shipmentId);
      await eventually(
        () => shipmentRow(shipmentId),
        (row) => row.status === 'IN_TRANSIT',
      );
      await eventually(
        () => handle.query(orderStateQuery),
        (s) => s.captured,
      );
      const cancels = () => stack.couriers.backend.stats.snapshot().formats.native.byKind.cancel;
      const before = cancels();
      const marked = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, {
        reason: 'the courier’s scans stopped; the customer has it',
      });
      expect(marked.statusCode).toBe(202);

      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attention: [] });
      // The courier carried it: no cancel is sent, which a courier would refuse for good.
      expect(cancels()).toBe(before);
      expect(await orderRow(orderId)).toMatchObject({ status: 'DELIVERED' });
      const payment = await stack.database.db
        .selectFrom('payments')
        .select(['status', 'amount_captured'])
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment).toEqual({ status: 'CAPTURED', amount_captured: total });
    });

    it('delivers through the shipment workflow: tracking stops, the order moves on, one audit entry', async () => {
      const { orderId, shipmentId, handle, total } = await placeOrder('never_picked_up');
      const calls = nativeTrackCalls();
      // A double click: both answered, one event, one audit entry.
      const answers = await Promise.all(
        [1, 2].map(() =>
          post(
            `/v1/admin/shipments/${shipmentId}/mark-delivered`,
            { reason: 'signed for at the door' },
            stack.api.admin('bob'),
          ),
        ),
      );
      for (const res of answers) {
        expect([200, 202]).toContain(res.statusCode);
        expect(res.json()).toMatchObject({ shipmentId, eventKey: `manual:delivered:${shipmentId}` });
      }

      const shipment = await stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)).result();
      expect(shipment).toMatchObject({ status: 'DELIVERED', finished: true });
      const row = await shipmentRow(shipmentId);
      expect(row).toMatchObject({ status: 'DELIVERED', next_poll_at: null });
      expect(row.delivered_at).toBeInstanceOf(Date);
      const events = await stack.database.db
        .selectFrom('tracking_events')
        .selectAll()
        .where('shipment_id', '=', shipmentId)
        .where('status', '=', 'DELIVERED')
        .execute();
      expect(events).toEqual([
        expect.objectContaining({ event_key: `manual:delivered:${shipmentId}`, source: 'manual' }),
      ]);
      // The courier was not asked: the delivery came from the admin.
      expect(nativeTrackCalls()).toBe(calls);

      // The order hears of it: captured at the (first) pickup milestone, then DELIVERED.
      expect((await handle.result()).status).toBe('DELIVERED');
      expect(await orderRow(orderId)).toMatchObject({ status: 'DELIVERED' });
      const payment = await stack.database.db
        .selectFrom('payments')
        .selectAll()
        .where('order_id', '=', orderId)
        .executeTakeFirstOrThrow();
      expect(payment).toMatchObject({ status: 'CAPTURED', amount_captured: total });
      // The courier never collected it (the shop delivered it): its booking is released, and
      // the parcel stays DELIVERED.
      const { tracking_number } = await shipmentRow(shipmentId);
      expect(stack.couriers.backend.inspect(tracking_number!)?.parcel.cancelled).toBe(true);
      expect(await shipmentRow(shipmentId)).toMatchObject({ status: 'DELIVERED' });

      const again = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, {
        reason: 'clicked again',
      });
      expect(again.statusCode).toBe(200);
      expect(again.json().outcome).toBe('already_delivered');
      const audit = await auditOf(shipmentId);
      expect(audit).toEqual([
        expect.objectContaining({
          actor: 'admin:bob',
          action: 'shipment.mark_delivered',
          subject_type: 'shipment',
          reason: 'signed for at the door',
          dedupe_key: `shipment.mark_delivered:${shipmentId}`,
        }),
      ]);
    });

    it('answers 409 for a shipment that finished on its own, and audits nothing', async () => {
      const { shipmentId } = await finishedOnItsOwn();
      const res = await post(`/v1/admin/shipments/${shipmentId}/mark-delivered`, { reason: 'signed for' });
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toEqual({
        code: 'SHIPMENT_FINISHED',
        message: `shipment ${shipmentId} is already DELIVERED: it cannot be marked delivered`,
      });
      expect(await auditOf(shipmentId)).toEqual([]);
    });

    it('answers 404 for a shipment it does not know, 409 for one nothing tracks, 400 without a reason', async () => {
      const unknown = await post('/v1/admin/shipments/shp_nope/mark-delivered', { reason: 'signed for' });
      expect(unknown.statusCode).toBe(404);
      await stack.database.db
        .insertInto('shipments')
        .values({
          id: 'shp_untracked',
          courier: 'simulator',
          tracking_number: 'UNTRACKED-1',
          status: 'IN_TRANSIT',
        })
        .execute();
      const untracked = await post('/v1/admin/shipments/shp_untracked/mark-delivered', {
        reason: 'signed for',
      });
      expect(untracked.statusCode).toBe(409);
      expect(untracked.json().error.code).toBe('NOT_TRACKING');
      expect(await auditOf('shp_untracked')).toEqual([]);
      const noReason = await post('/v1/admin/shipments/shp_nope/mark-delivered', {});
      expect(noReason.statusCode).toBe(400);
      expect(noReason.json().error.message).toMatch(/reason/);
    });
  });
});
