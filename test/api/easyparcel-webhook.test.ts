/**
 * EasyParcel's own webhooks on the real stack: the courier simulator pushes topic "Tracking
 * Status Update" in EasyParcel's documented shape over HTTP to the API (listening), the
 * parcel's shipment workflow records the pushed status log and reaches DELIVERED without
 * polling again; a wrong token is a 404 like any unknown route; the same log twice is one
 * push; a body EasyParcel's format does not allow is a 400 naming what is wrong.
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { REDACTED } from '../../src/api/log-redact';
import { CourierCode } from '../../src/couriers/types';
import type { EasyParcelPusher } from '../../simulators/courier/formats/easyparcel-push';
import { easyParcelTrackingWebhook } from '../../simulators/courier/formats/easyparcel-push';
import { easyParcelWebhookLog, shipmentNumberOf } from '../../simulators/courier/formats/easyparcel';
import { eventually } from '../support/eventually';
import { shipmentRow as shipmentRowOf, trackingEventsOf } from '../support/shipments';
import { useStack } from '../support/stack';
import { startShipmentWorkflow, stillPolicy, uniqueId } from '../support/temporal';
import { refreshNowUpdate } from '../../src/workflows/contract';

jest.setTimeout(90_000);

const TOKEN = 'test-easyparcel-webhook-token-0123456789abcdef';
const PATH = '/v1/webhooks/easyparcel/native';
const DAY = 86_400_000;

describe(`POST ${PATH}`, () => {
  const stack = useStack({
    payments: false,
    worker: { everyCourier: true },
    api: { env: { EASYPARCEL_WEBHOOK_TOKEN: TOKEN } },
  });
  let pusher: EasyParcelPusher;

  beforeAll(async () => {
    await stack.api.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = stack.api.app.server.address() as AddressInfo;
    pusher = stack.couriers.startEasyParcelPush({
      url: `http://127.0.0.1:${port}${PATH}?token=${TOKEN}`,
      everyMs: 200,
    });
  });

  const trackCalls = () => stack.couriers.backend.stats.snapshot().formats.easyparcel.byKind.track;

  /** An EasyParcel parcel playing `scenario` from `ageMs`, tracked by a workflow that polls once, then every 10 min. */
  async function tracked(scenario: 'delivered' | 'never_picked_up' | 'exception', ageMs: number) {
    const { trackingNumber } = stack.couriers.backend.register({ format: 'easyparcel', scenario, ageMs });
    const shipmentId = uniqueId('shp');
    await stack.database.db
      .insertInto('shipments')
      .values({ id: shipmentId, courier: CourierCode.EASYPARCEL, tracking_number: trackingNumber })
      .execute();
    const handle = stack.started(
      await startShipmentWorkflow(stack.worker, {
        shipmentId,
        trackingNumber,
        courier: CourierCode.EASYPARCEL,
        policy: stillPolicy(),
      }),
    );
    await eventually(
      () => shipmentRowOf(stack, shipmentId),
      (row) => row.last_synced_at !== null,
    );
    return { shipmentId, trackingNumber, handle };
  }

  /** The webhook EasyParcel would send for the parcel's log as it is now. */
  function webhookOf(trackingNumber: string) {
    const { view } = stack.couriers.backend.inspect(trackingNumber)!;
    const now = stack.couriers.backend.clock.now();
    return easyParcelTrackingWebhook(
      trackingNumber,
      shipmentNumberOf(trackingNumber),
      easyParcelWebhookLog(view, now),
      now,
    );
  }

  const post = (payload: unknown, token: string | null = TOKEN) =>
    stack.api.app.inject({
      method: 'POST',
      url: token === null ? PATH : `${PATH}?token=${encodeURIComponent(token)}`,
      payload: payload as object,
    });

  it('carries the simulator’s pushes to the shipment workflow: DELIVERED without another poll', async () => {
    // Booked a minute ago: the first poll sees at most EasyParcel's own first entry.
    const { shipmentId, trackingNumber } = await tracked('delivered', 60_000);
    const polls = trackCalls();
    const delivered = await eventually(
      () => shipmentRowOf(stack, shipmentId),
      (row) => row.status === 'DELIVERED',
      60_000,
    );
    expect(delivered.status).toBe('DELIVERED');
    expect(trackCalls()).toBe(polls);
    const events = await trackingEventsOf(stack, shipmentId);
    expect(events.filter((e) => e.source === 'push').length).toBeGreaterThan(2);
    expect(events.at(-1)).toMatchObject({ status: 'DELIVERED', raw_code: '5', source: 'push' });
    // One row per log entry, however many pushes repeated it.
    expect(new Set(events.map((e) => e.event_key)).size).toBe(events.length);
    expect(pusher.stats.delivered).toBeGreaterThan(0);
    expect(pusher.stats.failed).toBe(0);
    const view = await stack.api.app.inject({ method: 'GET', url: `/v1/tracking/${trackingNumber}` });
    expect(view.json()).toMatchObject({ status: 'DELIVERED' });
  });

  it('stores a scan pushed first and polled later as one row, which keeps the place the poll gave', async () => {
    // Damaged at the hub and left there: tracking goes on after the pushes, so a poll can follow.
    const { shipmentId, trackingNumber, handle } = await tracked('exception', 60_000);
    const pushedRows = await eventually(
      () => trackingEventsOf(stack, shipmentId),
      (rows) => rows.some((e) => e.status === 'EXCEPTION' && e.source === 'push'),
      60_000,
    );
    // The webhook writes every time "YYYY-MM-DD HH:mm:ss"; the tracking answer mixes in ISO.
    expect(pushedRows.filter((e) => e.source === 'push').length).toBeGreaterThan(2);
    const polls = trackCalls();
    await handle.executeUpdate(refreshNowUpdate, { args: [{ requestedBy: 'test' }] });
    expect(trackCalls()).toBeGreaterThan(polls);

    const { view } = stack.couriers.backend.inspect(trackingNumber)!;
    const log = easyParcelWebhookLog(view, stack.couriers.backend.clock.now());
    const afterPoll = await trackingEventsOf(stack, shipmentId);
    expect(afterPoll).toHaveLength(log.length);
    // The couriers' scans have a place in the tracking answer (EasyParcel's own event has none).
    const placed = (rows: typeof afterPoll) =>
      rows.filter((e) => e.raw_text !== 'Schedule In Arrangement').map((e) => e.location_city);
    expect(placed(afterPoll).length).toBeGreaterThan(2);
    expect(placed(afterPoll)).not.toContain(null);

    // The same scans pushed again (a longer log: a new push) change neither the rows nor their places.
    const body = webhookOf(trackingNumber);
    const earlier = {
      timestamp: '2026-01-05 09:00:00',
      shipment_status_code: 2,
      tracking_status: 'To be collected',
    };
    const again = await post({ ...body, status_log: [...Object.values(body.status_log as object), earlier] });
    expect(again.json()).toMatchObject({ result: 'accepted' });
    const afterPush = await eventually(
      () => trackingEventsOf(stack, shipmentId),
      (rows) => rows.length > log.length,
    );
    expect(afterPush).toHaveLength(log.length + 1);
    expect(placed(afterPush.filter((e) => e.raw_text !== 'To be collected'))).toEqual(placed(afterPoll));
  });

  it('answers a wrong or missing token 404, as an unknown route, before reading the body', async () => {
    const { trackingNumber } = await tracked('never_picked_up', 2 * DAY);
    const body = webhookOf(trackingNumber);
    for (const token of [null, 'wrong', TOKEN.slice(0, -1), `${TOKEN}x`]) {
      const res = await post(body, token);
      expect({ token, status: res.statusCode, body: res.json() }).toEqual({
        token,
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: `no route POST ${PATH}` } },
      });
    }
    const notJson = await stack.api.app.inject({
      method: 'POST',
      url: `${PATH}?token=wrong`,
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(notJson.statusCode).toBe(404);
    const unknownRoute = await stack.api.app.inject({
      method: 'POST',
      url: `${PATH}x?token=wrong`,
      payload: {},
    });
    expect(unknownRoute.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no route POST ${PATH}x` } });
  });

  it('never writes the token to the request log', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const api = await stack.anotherApi({ log, env: { EASYPARCEL_WEBHOOK_TOKEN: TOKEN } });
    const { trackingNumber } = await tracked('never_picked_up', 2 * DAY);
    const res = await api.app.inject({
      method: 'POST',
      url: `${PATH}?token=${TOKEN}`,
      payload: webhookOf(trackingNumber),
    });
    expect(res.statusCode).toBe(200);
    const completed = lines.filter((l) => l.includes('request completed'));
    expect(completed).toHaveLength(1);
    expect(JSON.parse(completed[0]!).url).toBe(`${PATH}?token=${REDACTED}`);
    const incoming = lines.filter((l) => l.includes('incoming request'));
    expect(incoming).toHaveLength(1);
    expect(JSON.parse(incoming[0]!).req.url).toBe(`${PATH}?token=${REDACTED}`);
    expect(lines.filter((l) => l.includes(TOKEN))).toEqual([]);
  });

  it('takes the same log twice once: the second push is a duplicate', async () => {
    const { shipmentId, trackingNumber } = await tracked('never_picked_up', 2 * DAY);
    // The documented shape: newest first, entries numbered as object keys.
    const body = webhookOf(trackingNumber);
    const log = Object.values(body.status_log as object) as unknown[];
    // With an entry before the others (EasyParcel's "to be collected"), so that it is not the
    // log the simulator's own pusher may be sending meanwhile.
    const earlier = {
      timestamp: '2026-01-05 09:00:00',
      shipment_status_code: 2,
      tracking_status: 'To be collected',
    };
    const numbered = Object.fromEntries([...log, earlier].map((entry, i) => [String(i), entry]));
    const first = await post({ ...body, status_log: numbered });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ result: 'accepted', events: expect.any(Number) });
    // A redelivery with another uuid (EasyParcel promises no stable delivery id) and a list.
    const again = await post({ ...body, uuid: 'another', status_log: Object.values(numbered) });
    expect(again.json()).toMatchObject({ result: 'duplicate', eventId: first.json().eventId, events: 0 });
    const rows = await stack.database.db
      .selectFrom('courier_webhook_events')
      .selectAll()
      .where('event_id', '=', first.json().eventId)
      .execute();
    expect(rows).toMatchObject([{ courier: 'easyparcel', tracking_number: trackingNumber }]);
    // The pushed entries are the polled ones: no second row for any.
    const events = await trackingEventsOf(stack, shipmentId);
    expect(new Set(events.map((e) => e.event_key)).size).toBe(events.length);
  });

  it('refuses a body EasyParcel would not send with a 400 naming what is wrong; other topics are ignored', async () => {
    const { trackingNumber } = await tracked('never_picked_up', 2 * DAY);
    const body = webhookOf(trackingNumber);
    const entry = {
      timestamp: '2026-12-01 10:00:00',
      shipment_status_code: 4,
      tracking_status: 'In transit',
    };
    const cases: [string, unknown, RegExp][] = [
      ['no topic', { awb_number: trackingNumber, status_log: [entry] }, /topic/],
      ['no status log', { ...body, status_log: undefined }, /status_log/],
      ['an empty status log', { ...body, status_log: [] }, /status_log/],
      ['no AWB', { ...body, awb_number: undefined }, /awb_number/],
      [
        'a code that is not a number',
        { ...body, status_log: [{ ...entry, shipment_status_code: 'x' }] },
        /shipment_status_code/,
      ],
      ['a time in no format', { ...body, status_log: [{ ...entry, timestamp: 'yesterday' }] }, /timestamp/],
      [
        'a time two days ahead',
        { ...body, status_log: [{ ...entry, timestamp: new Date(Date.now() + 2 * DAY).toISOString() }] },
        /ahead of our clock/,
      ],
    ];
    for (const [what, payload, message] of cases) {
      const res = await post(payload);
      expect({ what, status: res.statusCode, code: res.json().error?.code }).toEqual({
        what,
        status: 400,
        code: expect.stringMatching(/^(VALIDATION_FAILED|INVALID_PUSH)$/),
      });
      expect(res.json().error.message).toMatch(message);
    }
    const awb = await post({
      topic: 'shipment.awb.update',
      shipment_number: 'ES-1',
      awb_number: trackingNumber,
    });
    expect(awb.json()).toMatchObject({ result: 'ignored', events: 0 });
  });
});
