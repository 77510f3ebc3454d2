/**
 * `GET /v1/orders/:orderId/tracking/stream`: an order's tracking as Server-Sent Events.
 * The stream opens with the current tracking, then sends one event per new tracking event
 * and per status change, a comment line as a heartbeat, and a final event before it closes
 * once every shipment is finished.
 *
 * Changes arrive by Postgres LISTEN/NOTIFY (src/api/order-changes.ts: one listening
 * connection per process, woken by triggers on the read model), so an idle stream costs no
 * query at all; on a wake-up the stream reads what changed (shipments.version tells which
 * shipments to look at).
 *
 * Every event carries an `id`: the highest tracking-event id the client has been sent. A
 * reconnect with `Last-Event-ID` gets the tracking events it missed and the current state
 * instead of a new snapshot. Streams are capped per caller and in all (429), and end after
 * a maximum lifetime (the client reconnects with its Last-Event-ID and loses nothing).
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
import { actorOf, requireSignedIn } from '../auth';
import { ApiError } from '../errors';
import { OrderChangeListener } from '../order-changes';
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

const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,15}$',
      maxLength: 15,
      description:
        'The `id` of the last event received: the stream resumes after it (EventSource sends it when it reconnects)',
    }),
  ),
});

/** A stream whose client reads slower than this much buffered output is dropped (bytes). */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** How long EventSource waits before reconnecting after the server ends a stream (ms). */
const RECONNECT_HINT_MS = 3_000;
/** After a failed read of the read model (Postgres away), look again this long after (ms). */
const RETRY_READ_MS = 2_000;

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
  'Every event has an `id`; reconnect with `Last-Event-ID` to get, instead of a snapshot, the `tracking` events',
  'recorded since, then a `shipment` event per shipment and an `order` event with the current state.',
  'A stream ends without `end` after WAYBILL_STREAM_MAX_LIFETIME: reconnect with `Last-Event-ID` (EventSource does).',
  'Open streams are capped per caller and in all: over the cap the answer is 429 TOO_MANY_STREAMS.',
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
  /** The highest tracking-event id sent (the `id` of every event); a resume starts above it. */
  private cursor = 0;
  /**
   * Events above this are new for a shipment not seen yet: 0 on a fresh stream (a parcel
   * that appears later has every event sent), the client's Last-Event-ID on a resume.
   */
  private floor = 0;
  /** Wake-ups before start() are dropped: start() looks at everything after the snapshot anyway. */
  private started = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private lifetime: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The check under way, if any; a wake-up during it asks for one more after it. */
  private checking: Promise<void> | null = null;
  private again = false;
  private failing = false;
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

  /**
   * A reconnect after event `lastEventId`: nothing is queued now; the first check sends
   * every tracking event above it and the current state of each shipment and the order.
   */
  resume(lastEventId: number): void {
    this.cursor = lastEventId;
    this.floor = lastEventId;
    this.write(`retry: ${RECONNECT_HINT_MS}\n\n`);
  }

  /** Reads the current tracking (one consistent snapshot) and queues it as the first event. */
  async open(): Promise<void> {
    const { db, config } = this.deps;
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
          views: await trackingViews(trx, rows, config.api.freshness),
          orderStatus: order.status,
        };
      });
    const maxId = new Map(maxIds.map((m) => [m.shipment_id, Number(m.max ?? 0)]));
    for (const row of rows) this.seen.set(row.id, seenOf(row, maxId.get(row.id) ?? 0));
    this.cursor = Math.max(0, ...maxId.values());
    this.orderStatus = orderStatus;
    this.write(`retry: ${RECONNECT_HINT_MS}\n\n`);
    this.send({ event: 'snapshot', data: { orderId: this.orderId, orderStatus, shipments: views } });
  }

  /**
   * Starts the heartbeat and the lifetime, and looks at the read model once (a resume's
   * catch-up, or whatever changed since the snapshot); after that, only a wake-up from the
   * change listener makes it look again. Ends at once if there is nothing left to follow.
   */
  start(lifetimeMs: number): void {
    const { streamHeartbeatMs } = this.deps.config.api;
    this.started = true;
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), streamHeartbeatMs);
    this.lifetime = setTimeout(
      () => this.end('stream lifetime reached: reconnect with Last-Event-ID to carry on'),
      lifetimeMs,
    );
    this.wake();
  }

  /** Something of this order changed (or the listener reconnected): look at the read model. */
  wake(): void {
    if (this.closed || !this.started) return;
    if (this.checking) {
      this.again = true;
      return;
    }
    clearTimeout(this.retryTimer);
    this.checking = this.checkSafely().finally(() => {
      this.checking = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async checkSafely(): Promise<void> {
    try {
      await this.check();
      if (this.failing)
        this.log.info({ orderId: this.orderId }, 'tracking stream reads the read model again');
      this.failing = false;
    } catch (err) {
      // Postgres away for a moment: keep the connection (heartbeats go on) and look again
      // until it answers; said once per outage, not once per try.
      if (!this.failing) {
        this.log.warn({ err, orderId: this.orderId }, 'tracking stream could not read the read model');
      }
      this.failing = true;
      if (!this.closed) this.retryTimer = setTimeout(() => this.wake(), RETRY_READ_MS);
    }
  }

  /** One look at the read model: sends what changed since the last look, ends when all is finished. */
  private async check(): Promise<void> {
    const { db, config } = this.deps;
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
              eb.and([
                eb('shipment_id', '=', r.id),
                eb('id', '>', this.seen.get(r.id)?.lastEventId ?? this.floor),
              ]),
            ),
          ),
        )
        .orderBy('id')
        .execute();
      const statusChanged = moved.filter((r) => {
        const before = this.seen.get(r.id);
        return !before || shownChanged(before, seenOf(r, 0));
      });
      const views =
        statusChanged.length > 0 ? await trackingViews(db, statusChanged, config.api.freshness) : [];
      if (this.closed) return;

      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const e of events) {
        const status = e.status as ShipmentStatus;
        this.cursor = Math.max(this.cursor, Number(e.id));
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
        const before = this.seen.get(r.id)?.lastEventId ?? this.floor;
        this.seen.set(r.id, seenOf(r, Math.max(before, ...sent)));
      }
    }

    const orderStatus = order?.status ?? this.orderStatus;
    if (orderStatus !== this.orderStatus) {
      this.orderStatus = orderStatus;
      this.send({ event: 'order', data: { orderId: this.orderId, orderStatus } });
    }
    if (!order || finished(rows, orderStatus)) {
      const shipments = await trackingViews(db, rows, config.api.freshness);
      if (this.closed) return;
      this.send({ event: 'end', data: { orderId: this.orderId, orderStatus, shipments } });
      this.end();
    }
  }

  private send(message: StreamEvent): void {
    this.write(`id: ${this.cursor}\nevent: ${message.event}\ndata: ${JSON.stringify(message.data)}\n\n`);
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
    clearTimeout(this.lifetime);
    clearTimeout(this.retryTimer);
    this.onClose();
  }
}

/** A stream's lifetime: the configured maximum less up to a tenth, so streams opened together do not all reconnect at once (ms). */
const lifetimeOf = (maxMs: number) => Math.round(maxMs * (0.9 + Math.random() * 0.1));

export const streamRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { streamMaxPerCaller, streamMaxOpen, streamMaxLifetimeMs } = deps.config.api;
  const open = new Set<TrackingStream>();
  /** Streams open (or opening) per caller (`actorOf`): the per-caller cap counts these. */
  const perCaller = new Map<string, number>();
  let opening = 0;
  const changes = new OrderChangeListener(deps.config.database.url, app.log.child({ component: 'streams' }));

  new Gauge({
    name: 'waybill_sse_streams_open',
    help: 'Tracking streams (Server-Sent Events) open right now',
    registers: [app.metrics],
    collect() {
      this.set(open.size);
    },
  });
  new Gauge({
    name: 'waybill_sse_listener_connected',
    help: '1 while the tracking streams’ LISTEN connection to Postgres is up (0 before the first stream)',
    registers: [app.metrics],
    collect() {
      this.set(changes.listening ? 1 : 0);
    },
  });

  // Open streams would hold app.close() for ever: end them first (clients reconnect elsewhere).
  app.addHook('preClose', async () => {
    for (const stream of [...open]) stream.end('server shutting down');
  });
  app.addHook('onClose', async () => changes.close());

  /** Takes a place for a new stream of `caller`, or refuses with 429; the returned function gives it back. */
  function admit(caller: string): () => void {
    const mine = perCaller.get(caller) ?? 0;
    if (mine >= streamMaxPerCaller) {
      throw new ApiError(
        429,
        'TOO_MANY_STREAMS',
        `you have ${mine} tracking streams open, the most one caller may hold; close one (EventSource.close()) before opening another`,
      );
    }
    if (open.size + opening >= streamMaxOpen) {
      throw new ApiError(
        429,
        'TOO_MANY_STREAMS',
        'this server has as many tracking streams open as it takes; retry in a moment or read GET /v1/orders/{orderId}/tracking',
      );
    }
    perCaller.set(caller, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (perCaller.get(caller) ?? 1) - 1;
      if (left > 0) perCaller.set(caller, left);
      else perCaller.delete(caller);
    };
  }

  app.get(
    '/v1/orders/:orderId/tracking/stream',
    {
      schema: {
        tags: ['orders', 'tracking'],
        summary: "Live tracking of the caller's order (Server-Sent Events)",
        description: STREAM_DESCRIPTION,
        params: OrderParams,
        headers: StreamHeaders,
        response: {
          200: {
            description: 'An event stream; see the operation description for the events',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          400: { $ref: 'Error#' },
          401: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
          429: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
      onRequest: requireSignedIn,
    },
    async (request, reply) => {
      const release = admit(actorOf(request.principal));
      opening++;
      let stream: TrackingStream | undefined;
      let unsubscribe = () => {};
      try {
        const order = await orderVisibleTo(deps, request.principal, request.params.orderId);
        const created = new TrackingStream(deps, order.id, request.log, () => {
          open.delete(created);
          unsubscribe();
          release();
        });
        stream = created;
        // Listening before the first read: a change can only come after it, and then wakes the stream.
        unsubscribe = changes.subscribe(order.id, () => created.wake());
        await changes.ready();
        const lastEventId = request.headers['last-event-id'];
        // The snapshot is read before the response starts: a failure here is a normal error answer.
        if (lastEventId === undefined) await created.open();
        else created.resume(Number(lastEventId));
        open.add(created);
      } catch (err) {
        unsubscribe();
        release();
        throw err;
      } finally {
        opening--;
      }
      stream.start(lifetimeOf(streamMaxLifetimeMs));
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
