/**
 * One open tracking stream (`GET /v1/orders/:orderId/tracking/stream`, src/api/routes/stream.ts):
 * the snapshot it opens with, what it has sent of each shipment, its heartbeat, lifetime and
 * retry timers, and the look at the read model a change wakes it for. The route admits
 * streams and wakes them from Postgres LISTEN/NOTIFY (src/api/order-changes.ts).
 */
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import {
  eventsAfter,
  lastEventIds,
  streamShipmentsOf,
  type StreamShipmentRow,
} from '../read-model/order-tracking';
import { findOrderStatus, getOrderStatus } from '../read-model/orders';
import type { Static } from 'typebox';
import { isTerminal, type ShipmentStatus } from '../domain/status';
import type { ApiDeps } from './app';
import { FINISHED_ORDER_STATUSES } from './order-actions';
import { STATUS_TEXT } from './freshness';
import { trackingViews, type ShipmentTrackingView, type TrackingEventView } from './tracking-view';

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

interface Seen {
  status: string;
  subStatus: string | null;
  eta: number | null;
  unavailable: boolean;
  version: number;
  /** Highest tracking_events.id sent for this shipment (its events are written in id order). */
  lastEventId: number;
}

type Row = StreamShipmentRow;

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
export class TrackingStream {
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
        const rows = await streamShipmentsOf(trx, this.orderId);
        const maxIds =
          rows.length === 0
            ? []
            : await lastEventIds(
                trx,
                rows.map((r) => r.id),
              );
        const orderStatus = await getOrderStatus(trx, this.orderId);
        return {
          rows,
          maxIds,
          views: await trackingViews(trx, rows, config.api.freshness),
          orderStatus,
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
    const order = await findOrderStatus(db, this.orderId);
    const rows = await streamShipmentsOf(db, this.orderId);
    if (this.closed) return;

    const moved = rows.filter((r) => {
      const before = this.seen.get(r.id);
      return !before || before.version !== r.version || shownChanged(before, seenOf(r, 0));
    });
    if (moved.length > 0) {
      const events = await eventsAfter(
        db,
        moved.map((r) => ({ shipmentId: r.id, eventId: this.seen.get(r.id)?.lastEventId ?? this.floor })),
      );
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

    const orderStatus = order ?? this.orderStatus;
    if (orderStatus !== this.orderStatus) {
      this.orderStatus = orderStatus;
      this.send({ event: 'order', data: { orderId: this.orderId, orderStatus } });
    }
    if (order === undefined || finished(rows, orderStatus)) {
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
