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
 *
 * Here: the caps, the LISTEN connection, the gauges and the route. One stream's own work
 * (its snapshot, what it has sent, its timers, each look at the read model) is
 * src/api/tracking-stream.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Gauge } from 'prom-client';
import { Type } from 'typebox';
import type { ApiDeps } from '../app';
import { actorOf, requireSignedIn } from '../auth';
import { ApiError } from '../errors';
import { OrderChangeListener } from '../order-changes';
import { orderVisibleTo } from '../order-actions';
import { TrackingStream } from '../tracking-stream';

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
