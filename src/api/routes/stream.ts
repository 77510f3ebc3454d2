/**
 * `GET /v1/orders/:orderId/tracking/stream`: an order's tracking as Server-Sent Events.
 * The stream opens with the current tracking, then sends one event per new tracking event
 * and per status change, a comment line as a heartbeat, and a final event before it closes
 * once every shipment is finished.
 *
 * Changes are found by reading the read model every `streamPollMs` (one small query per
 * open stream while nothing changes; shipments.version tells which shipments to look at).
 * A later improvement: the record activity could `NOTIFY` after its write and the API
 * `LISTEN` once per process, waking only the streams of that order.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { Gauge } from 'prom-client';
import { Type, type Static } from 'typebox';
import type { Database } from '../../../db/database';
import { isTerminal, type ShipmentStatus } from '../../domain/status';
import type { ApiDeps } from '../app';
import { requireSignedIn } from '../auth';
import { FINISHED_ORDER_STATUSES, orderVisibleTo } from '../order-actions';
import { STATUS_TEXT } from '../freshness';
import {
  SHIPMENT_VIEW_COLUMNS,
  trackingViews,
  type ShipmentTrackingView,
  type TrackingEventView,
} from '../tracking-view';

const OrderParams = Type.Object({
  orderId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', maxLength: 64, description: 'The order id' }),
});

/** A stream whose client reads slower than this much buffered output is dropped (bytes). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

type StreamEvent =
  | {
      event: 'snapshot' | 'end';
      data: { orderId: string; orderStatus: string; shipments: ShipmentTrackingView[] };
    }
  | { event: 'order'; data: { orderId: string; orderStatus: string } }
  | { event: 'shipment'; data: Omit<ShipmentTrackingView, 'events'> }
  | {
      event: 'tracking';
      data: { shipmentId: string; trackingNumber: string } & Static<typeof TrackingEventView>;
    };

const STREAM_DESCRIPTION = [
  'Server-Sent Events (`text/event-stream`). Events, each with a JSON `data` line:',
  '`snapshot` first: `{ orderId, orderStatus, shipments: [tracking view] }` (as `GET /v1/orders/{orderId}/tracking`);',
  '`tracking`: one new tracking event `{ shipmentId, trackingNumber, status, description, occurredAt, city, country }`;',
  '`shipment`: a shipment appeared or its status, ETA or courier availability changed (its tracking view without `events`);',
  '`order`: the order status changed `{ orderId, orderStatus }`;',
  '`end` last, same shape as `snapshot`, then the server closes the stream: every shipment is finished',
  '(delivered, returned, cancelled, expired), or the order finished without any. Close your EventSource on `end`,',
  'or it reconnects. Lines starting with `:` are heartbeats.',
].join(' ');

interface Seen {
  status: string;
  subStatus: string | null;
  eta: number | null;
  unavailable: boolean;
  version: number;
  /** Highest tracking_events.id sent for this shipment (its events are written in id order). */
  lastEventId: number;
}

const STREAM_SHIPMENT_COLUMNS = [...SHIPMENT_VIEW_COLUMNS, 'sub_status', 'version'] as const;

function shipmentsOf(db: Kysely<Database>, orderId: string) {
  return db
    .selectFrom('shipments')
    .select(STREAM_SHIPMENT_COLUMNS)
    .where('order_id', '=', orderId)
    .orderBy('id')
    .execute();
}

type Row = Awaited<ReturnType<typeof shipmentsOf>>[number];

const seenOf = (row: Row, lastEventId: number): Seen => ({
  status: row.status,
  subStatus: row.sub_status,
  eta: row.eta?.getTime() ?? null,
  unavailable: row.sync_error !== null,
  version: row.version,
  lastEventId,
});

/** What the customer sees changed: the status, the promised date, or whether the courier answers. */
const shownChanged = (a: Seen, b: Seen) =>
  a.status !== b.status || a.subStatus !== b.subStatus || a.eta !== b.eta || a.unavailable !== b.unavailable;

const finished = (rows: Row[], orderStatus: string) =>
  rows.length > 0
    ? rows.every((r) => isTerminal(r.status as ShipmentStatus))
    : FINISHED_ORDER_STATUSES.has(orderStatus);

/** One open stream: its timers, what it has sent, and the body Fastify pipes to the client. */
class TrackingStream {
  readonly body = new Readable({ read() {} });
  private readonly seen = new Map<string, Seen>();
  private orderStatus = '';
  private heartbeat: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly deps: ApiDeps,
    private readonly orderId: string,
    private readonly log: FastifyBaseLogger,
    private readonly onClose: () => void,
  ) {
    // Destroyed by Fastify when the client goes away, or ended by us: either way stop everything.
    this.body.once('close', () => this.stop());
  }

  /** Reads the current tracking (one consistent snapshot) and queues it as the first event. */
  async open(): Promise<void> {
    const { db, shipmentPolicy } = this.deps;
    const { rows, maxIds, views, orderStatus } = await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const rows = await shipmentsOf(trx, this.orderId);
        const maxIds =
          rows.length === 0
            ? []
            : await trx
                .selectFrom('tracking_events')
                .select(['shipment_id', (eb) => eb.fn.max('id').as('max')])
                .where(
                  'shipment_id',
                  'in',
                  rows.map((r) => r.id),
                )
                .groupBy('shipment_id')
                .execute();
        const order = await trx
          .selectFrom('orders')
          .select('status')
          .where('id', '=', this.orderId)
          .executeTakeFirstOrThrow();
        return {
          rows,
          maxIds,
          views: await trackingViews(trx, rows, shipmentPolicy),
          orderStatus: order.status,
        };
      });
    const maxId = new Map(maxIds.map((m) => [m.shipment_id, Number(m.max ?? 0)]));
    for (const row of rows) this.seen.set(row.id, seenOf(row, maxId.get(row.id) ?? 0));
    this.orderStatus = orderStatus;
    this.send({ event: 'snapshot', data: { orderId: this.orderId, orderStatus, shipments: views } });
  }

  /** Starts the heartbeat and the read-model checks; ends at once if there is nothing left to follow. */
  start(): void {
    const { streamHeartbeatMs, streamPollMs } = this.deps.config.api;
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), streamHeartbeatMs);
    let failing = false;
    const tick = async () => {
      try {
        await this.check();
        if (failing) this.log.info({ orderId: this.orderId }, 'tracking stream reads the read model again');
        failing = false;
      } catch (err) {
        // Postgres away for a moment: keep the connection (heartbeats go on) and look again;
        // said once per outage, not once per poll.
        if (!failing) {
          this.log.warn({ err, orderId: this.orderId }, 'tracking stream could not read the read model');
        }
        failing = true;
      }
      if (!this.closed) this.pollTimer = setTimeout(() => void tick(), streamPollMs);
    };
    this.pollTimer = setTimeout(() => void tick(), 0);
  }

  /** One look at the read model: sends what changed since the last look, ends when all is finished. */
  private async check(): Promise<void> {
    const { db, shipmentPolicy } = this.deps;
    const order = await db
      .selectFrom('orders')
      .select('status')
      .where('id', '=', this.orderId)
      .executeTakeFirst();
    const rows = await shipmentsOf(db, this.orderId);
    if (this.closed) return;

    const moved = rows.filter((r) => {
      const before = this.seen.get(r.id);
      return !before || before.version !== r.version || shownChanged(before, seenOf(r, 0));
    });
    if (moved.length > 0) {
      const events = await db
        .selectFrom('tracking_events')
        .select(['id', 'shipment_id', 'status', 'occurred_at', 'location_city', 'location_country'])
        .where((eb) =>
          eb.or(
            moved.map((r) =>
              eb.and([eb('shipment_id', '=', r.id), eb('id', '>', this.seen.get(r.id)?.lastEventId ?? 0)]),
            ),
          ),
        )
        .orderBy('id')
        .execute();
      const statusChanged = moved.filter((r) => {
        const before = this.seen.get(r.id);
        return !before || shownChanged(before, seenOf(r, 0));
      });
      const views = statusChanged.length > 0 ? await trackingViews(db, statusChanged, shipmentPolicy) : [];
      if (this.closed) return;

      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const e of events) {
        const status = e.status as ShipmentStatus;
        this.send({
          event: 'tracking',
          data: {
            shipmentId: e.shipment_id,
            trackingNumber: byId.get(e.shipment_id)!.tracking_number,
            status,
            description: STATUS_TEXT[status],
            occurredAt: e.occurred_at.toISOString(),
            city: e.location_city,
            country: e.location_country,
          },
        });
      }
      for (const { events: _all, ...view } of views) this.send({ event: 'shipment', data: view });
      for (const r of moved) {
        const sent = events.filter((e) => e.shipment_id === r.id).map((e) => Number(e.id));
        const before = this.seen.get(r.id)?.lastEventId ?? 0;
        this.seen.set(r.id, seenOf(r, Math.max(before, ...sent)));
      }
    }

    const orderStatus = order?.status ?? this.orderStatus;
    if (orderStatus !== this.orderStatus) {
      this.orderStatus = orderStatus;
      this.send({ event: 'order', data: { orderId: this.orderId, orderStatus } });
    }
    if (!order || finished(rows, orderStatus)) {
      const shipments = await trackingViews(db, rows, shipmentPolicy);
      if (this.closed) return;
      this.send({ event: 'end', data: { orderId: this.orderId, orderStatus, shipments } });
      this.end();
    }
  }

  private send(message: StreamEvent): void {
    this.write(`event: ${message.event}\ndata: ${JSON.stringify(message.data)}\n\n`);
  }

  private write(text: string): void {
    if (this.closed) return;
    if (this.body.readableLength > MAX_BUFFERED_BYTES) {
      this.log.warn({ orderId: this.orderId }, 'tracking stream dropped: the client is not reading');
      this.body.destroy();
      return;
    }
    this.body.push(text);
  }

  /** Ends the stream normally (the final event is already queued). */
  end(comment?: string): void {
    if (this.closed) return;
    if (comment) this.write(`: ${comment}\n\n`);
    this.stop();
    this.body.push(null);
  }

  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.pollTimer);
    this.onClose();
  }
}

export const streamRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const open = new Set<TrackingStream>();

  new Gauge({
    name: 'waybill_sse_streams_open',
    help: 'Tracking streams (Server-Sent Events) open right now',
    registers: [app.metrics],
    collect() {
      this.set(open.size);
    },
  });

  // Open streams would hold app.close() for ever: end them first (clients reconnect elsewhere).
  app.addHook('preClose', async () => {
    for (const stream of [...open]) stream.end('server shutting down');
  });

  app.get(
    '/v1/orders/:orderId/tracking/stream',
    {
      schema: {
        tags: ['orders', 'tracking'],
        summary: "Live tracking of the caller's order (Server-Sent Events)",
        description: STREAM_DESCRIPTION,
        params: OrderParams,
        response: {
          200: {
            description: 'An event stream; see the operation description for the events',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          400: { $ref: 'Error#' },
          401: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
      onRequest: requireSignedIn,
    },
    async (request, reply) => {
      const order = await orderVisibleTo(deps, request.principal, request.params.orderId);
      const stream = new TrackingStream(deps, order.id, request.log, () => open.delete(stream));
      // The snapshot is read before the response starts: a failure here is a normal error answer.
      await stream.open();
      open.add(stream);
      stream.start();
      return (
        reply
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-cache, no-transform')
          // Proxies such as nginx would otherwise hold events back in their buffers.
          .header('x-accel-buffering', 'no')
          .send(stream.body)
      );
    },
  );
};
