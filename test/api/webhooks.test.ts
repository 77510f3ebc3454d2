/**
 * Courier webhooks on the real stack: the API on a fresh database, a shipment workflow on
 * the test Temporal server polling the courier simulator over HTTP, and pushes signed the
 * way a courier would sign them (HMAC-SHA256 over "<timestamp>.<raw body>").
 */
import { createHmac } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { eventually } from '../support/eventually';
import { freePort } from '../support/ports';
import { fastPolicy, uniqueId } from '../support/temporal';
import { shipmentRow as shipmentRowOf, trackParcel, trackingEventsOf } from '../support/shipments';
import { useStack } from '../support/stack';

const SECRET = 'test-simulator-webhook-secret';

jest.setTimeout(90_000);

/** Signs `body` as a courier does; the parts can be spoiled one at a time. */
function signed(body: string, opts: { secret?: string; timestamp?: number } = {}) {
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const hex = createHmac('sha256', opts.secret ?? SECRET)
    .update(`${timestamp}.${body}`)
    .digest('hex');
  return {
    'content-type': 'application/json',
    'x-waybill-timestamp': timestamp,
    'x-waybill-signature': `sha256=${hex}`,
  };
}

describe('POST /v1/webhooks/couriers/:courier', () => {
  const stack = useStack({ payments: false, api: { env: { COURIER_WEBHOOK_SECRET_SIMULATOR: SECRET } } });

  // Long intervals: after its first poll the workflow only wakes for what the test sends.
  const slow = fastPolicy({
    intervalMs: {
      ...fastPolicy().intervalMs,
      PENDING: 600_000,
      INFO_RECEIVED: 600_000,
      IN_TRANSIT: 600_000,
      OUT_FOR_DELIVERY: 600_000,
    },
  });

  /** A parcel the simulator knows (info received, then nothing) and its running workflow, polled once. */
  async function trackedParcel() {
    const tracked = await trackParcel(stack, {
      scenario: 'never_picked_up',
      ageMs: 60 * 60_000,
      policy: slow,
    });
    await eventually(
      () => shipmentRow(tracked.shipmentId),
      (row) => row.status === 'INFO_RECEIVED',
    );
    return tracked;
  }

  const shipmentRow = (id: string) => shipmentRowOf(stack, id);
  const eventsOf = (id: string) => trackingEventsOf(stack, id);
  const dedupeRows = (eventId: string) =>
    stack.database.db
      .selectFrom('courier_webhook_events')
      .selectAll()
      .where('event_id', '=', eventId)
      .execute();
  const nativeTrackCalls = () => stack.couriers.backend.stats.snapshot().formats.native.byKind.track;
  /** Pushes the shipment workflow has received, from its history. */
  const signalsTo = async (handle: WorkflowHandle) =>
    ((await handle.fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'courierEvents',
    ).length;

  const outForDelivery = (trackingNumber: string, eventId = uniqueId('evt')) => ({
    eventId,
    trackingNumber,
    events: [
      {
        code: 'OUT_FOR_DELIVERY',
        text: 'With courier for delivery',
        occurredAt: new Date().toISOString(),
        location: { city: 'Petaling Jaya', state: 'Selangor', country: 'MY' },
      },
    ],
  });

  function post(body: string, headers: Record<string, string>, courier = 'simulator', app = stack.api.app) {
    return app.inject({ method: 'POST', url: `/v1/webhooks/couriers/${courier}`, payload: body, headers });
  }

  it('hands a signed push to the shipment workflow, which records it without calling the courier', async () => {
    const { shipmentId, trackingNumber } = await trackedParcel();
    const calls = nativeTrackCalls();
    const push = outForDelivery(trackingNumber);
    const body = JSON.stringify(push);

    const res = await post(body, signed(body));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      result: 'accepted',
      eventId: push.eventId,
      events: 1,
      message: `1 scan handed to the tracking of ${trackingNumber}`,
    });

    const row = await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'OUT_FOR_DELIVERY',
    );
    expect(row.last_event_at!.toISOString()).toBe(new Date(push.events[0]!.occurredAt).toISOString());
    const pushed = (await eventsOf(shipmentId)).filter((e) => e.source === 'push');
    expect(pushed).toHaveLength(1);
    expect(pushed[0]).toMatchObject({
      status: 'OUT_FOR_DELIVERY',
      raw_code: 'OUT_FOR_DELIVERY',
      location_city: 'Petaling Jaya',
    });
    expect(await dedupeRows(push.eventId)).toMatchObject([
      { courier: 'simulator', tracking_number: trackingNumber },
    ]);
    expect(nativeTrackCalls()).toBe(calls);

    // What a customer sees: the read model, through the API.
    const view = await stack.api.app.inject({ method: 'GET', url: `/v1/tracking/${trackingNumber}` });
    expect(view.json()).toMatchObject({ status: 'OUT_FOR_DELIVERY' });
    expect(view.json().events[0]).toMatchObject({ status: 'OUT_FOR_DELIVERY', city: 'Petaling Jaya' });
  });

  it('keeps one event when a scan is both polled and pushed (same event key)', async () => {
    const { shipmentId, trackingNumber } = await trackedParcel();
    const [scan] = stack.couriers.backend.inspect(trackingNumber)!.view.scans;
    expect(await eventsOf(shipmentId)).toHaveLength(1);
    const before = (await shipmentRow(shipmentId)).updated_at;

    const body = JSON.stringify({
      eventId: uniqueId('evt'),
      trackingNumber,
      events: [
        {
          code: scan!.status,
          text: scan!.text,
          // Another zone for the same instant: the key is built from the instant.
          occurredAt: new Date(scan!.at.getTime() + 8 * 3_600_000).toISOString().replace('Z', '+08:00'),
          location: scan!.location,
        },
      ],
    });
    const res = await post(body, signed(body));
    expect(res.json().result).toBe('accepted');

    await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.updated_at.getTime() > before.getTime(),
    );
    const events = await eventsOf(shipmentId);
    expect(events).toHaveLength(1);
    expect(events[0]!.source).toBe('poll');
  });

  it('answers the same event id twice once: the second is a duplicate and changes nothing', async () => {
    const { shipmentId, trackingNumber, handle } = await trackedParcel();
    const push = outForDelivery(trackingNumber);
    const body = JSON.stringify(push);

    const first = await post(body, signed(body));
    // A courier's retry is signed again, later, with the same event id.
    const second = await post(body, signed(body, { timestamp: Math.floor(Date.now() / 1000) + 1 }));
    expect(first.json().result).toBe('accepted');
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ result: 'duplicate', eventId: push.eventId, events: 0 });

    await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'OUT_FOR_DELIVERY',
    );
    expect((await eventsOf(shipmentId)).filter((e) => e.source === 'push')).toHaveLength(1);
    expect(await dedupeRows(push.eventId)).toHaveLength(1);
    expect(await signalsTo(handle)).toBe(1);
  });

  it('refuses a signed scan timed beyond the clock-skew allowance, which would hold off no-scan expiry; a little ahead is fine', async () => {
    const { shipmentId, trackingNumber, handle } = await trackedParcel();
    const before = await shipmentRow(shipmentId);
    const push = outForDelivery(trackingNumber);
    push.events[0]!.occurredAt = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const body = JSON.stringify(push);
    const res = await post(body, signed(body));
    expect({ status: res.statusCode, error: res.json().error }).toEqual({
      status: 400,
      error: {
        code: 'INVALID_PUSH',
        message: expect.stringMatching(
          /^events\[0\]\.occurredAt is 17280\d s ahead of our clock; at most 300 s/,
        ),
      },
    });
    expect(await dedupeRows(push.eventId)).toEqual([]);
    expect(await signalsTo(handle)).toBe(0);
    expect((await shipmentRow(shipmentId)).last_event_at).toEqual(before.last_event_at);

    const slightlyAhead = outForDelivery(trackingNumber);
    slightlyAhead.events[0]!.occurredAt = new Date(Date.now() + 60_000).toISOString();
    const ok = JSON.stringify(slightlyAhead);
    expect((await post(ok, signed(ok))).json().result).toBe('accepted');
  });

  describe('refuses what is not signed by the courier, and writes nothing', () => {
    const staleSeconds = () => Math.floor(Date.now() / 1000) - 5 * 60 - 60;
    const futureSeconds = () => Math.floor(Date.now() / 1000) + 5 * 60 + 60;
    const cases: [string, number, string, (body: string) => Record<string, string>, string | null][] = [
      [
        'no signature headers',
        401,
        'SIGNATURE_REQUIRED',
        () => ({ 'content-type': 'application/json' }),
        null,
      ],
      [
        'a signature made with another secret',
        401,
        'INVALID_SIGNATURE',
        (body) => signed(body, { secret: 'someone-elses-secret' }),
        null,
      ],
      [
        'a body changed after signing',
        401,
        'INVALID_SIGNATURE',
        (body) => signed(body.replace('With courier', 'Without courier')),
        null,
      ],
      [
        'a malformed signature header',
        401,
        'INVALID_SIGNATURE',
        (body) => ({ ...signed(body), 'x-waybill-signature': 'md5=abc' }),
        null,
      ],
      [
        'a timestamp older than the allowed age',
        401,
        'STALE_TIMESTAMP',
        (body) => signed(body, { timestamp: staleSeconds() }),
        'old',
      ],
      [
        'a timestamp too far ahead',
        401,
        'STALE_TIMESTAMP',
        (body) => signed(body, { timestamp: futureSeconds() }),
        'in the future',
      ],
    ];

    it.each(cases)('%s → %i %s', async (_case, status, code, headers, says) => {
      const { shipmentId, trackingNumber, handle } = await trackedParcel();
      const eventsBefore = await eventsOf(shipmentId);
      const push = outForDelivery(trackingNumber);
      const body = JSON.stringify(push);

      const res = await post(body, headers(body));
      expect(res.statusCode).toBe(status);
      expect(res.json().error.code).toBe(code);
      if (says) expect(res.json().error.message).toContain(says);

      expect(await dedupeRows(push.eventId)).toEqual([]);
      expect(await signalsTo(handle)).toBe(0);
      expect(await eventsOf(shipmentId)).toEqual(eventsBefore);
    });

    it.each([
      ['an unknown courier', 'dhl'],
      ['a courier without a webhook secret', 'easyparcel'],
    ])('%s → 404', async (_case, courier) => {
      const { trackingNumber, handle } = await trackedParcel();
      const push = outForDelivery(trackingNumber);
      const body = JSON.stringify(push);
      const res = await post(body, signed(body), courier);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
      expect(await dedupeRows(push.eventId)).toEqual([]);
      expect(await signalsTo(handle)).toBe(0);
    });
  });

  it.each([
    ['not JSON', '{"eventId": ', 'INVALID_JSON'],
    [
      'no events',
      JSON.stringify({ eventId: 'e-1', trackingNumber: 'SIM12345', events: [] }),
      'VALIDATION_FAILED',
    ],
    [
      'an unknown field',
      JSON.stringify({ ...outForDelivery('SIM12345', 'e-2'), extra: true }),
      'VALIDATION_FAILED',
    ],
    [
      'a code the courier does not use',
      JSON.stringify({
        ...outForDelivery('SIM12345', 'e-3'),
        events: [{ code: 'LOST_IN_SPACE', occurredAt: '2026-01-01T00:00:00Z' }],
      }),
      'INVALID_PUSH',
    ],
    [
      'a time without a zone',
      JSON.stringify({
        ...outForDelivery('SIM12345', 'e-4'),
        events: [{ code: 'IN_TRANSIT', occurredAt: '2026-01-01 10:00:00' }],
      }),
      'INVALID_PUSH',
    ],
  ])(
    'answers a signed push with %s 400, naming the problem, and writes nothing',
    async (_case, body, code) => {
      const res = await post(body, signed(body));
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe(code);
      const rows = await stack.database.db.selectFrom('courier_webhook_events').select('event_id').execute();
      expect(rows.map((r) => r.event_id)).not.toEqual(expect.arrayContaining(['e-1', 'e-2', 'e-3', 'e-4']));
    },
  );

  it('answers a push for a tracking number it does not know 200 ignored, so the courier stops retrying', async () => {
    const push = outForDelivery('SIM999999999');
    const body = JSON.stringify(push);
    const res = await post(body, signed(body));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ result: 'ignored', events: 0 });
    expect(res.json().message).toContain('SIM999999999');
    expect(await dedupeRows(push.eventId)).toEqual([]);
  });

  it('answers 503 while Temporal is down and keeps no dedupe row, so the retry goes through later', async () => {
    const { shipmentId, trackingNumber, handle } = await trackedParcel();
    const down = await stack.anotherApi({
      env: { COURIER_WEBHOOK_SECRET_SIMULATOR: SECRET, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` },
    });
    const push = outForDelivery(trackingNumber);
    const body = JSON.stringify(push);
    try {
      const res = await post(body, signed(body), 'simulator', down.app);
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('TEMPORAL_UNAVAILABLE');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await down.close().catch(() => undefined);
    }
    expect(await dedupeRows(push.eventId)).toEqual([]);
    expect(await signalsTo(handle)).toBe(0);

    // The courier's retry, once Temporal answers again, is taken.
    const retry = await post(body, signed(body));
    expect(retry.json().result).toBe('accepted');
    await eventually(
      () => shipmentRow(shipmentId),
      (r) => r.status === 'OUT_FOR_DELIVERY',
    );
  });

  it('is in the OpenAPI document with its body and signature headers', async () => {
    const doc = (await stack.api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/v1/webhooks/couriers/{courier}'].post;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['courier', 'x-waybill-timestamp']),
    );
    // The signature header is the operation's security scheme.
    expect(op.security).toEqual([{ courierSignature: [] }]);
    expect(doc.components.securitySchemes.courierSignature).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'x-waybill-signature',
    });
    expect(op.requestBody.content['application/json'].schema).toBeDefined();
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '401', '404', '503']));
  });
});
