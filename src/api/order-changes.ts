/**
 * One Postgres LISTEN per API process for the live tracking streams: the read model's
 * triggers (migration `2026-12-04T17-00-00_tracking_change_notify`) send
 * `NOTIFY waybill_order_changed, '<order id>'` on every change a stream shows, and this
 * wakes only the streams following that order.
 *
 * The connection is its own `pg.Client`, never one of the request pool's: a LISTEN holds
 * its connection for as long as it listens. It opens with the first stream and stays open.
 * When it is lost (Postgres restarted, network cut) it reconnects with backoff, and every
 * stream is woken once it listens again: a change made while nobody listened is then read
 * from the read model, so nothing is missed.
 */
import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';

/** The channel the triggers notify; the payload is the order id. */
export const ORDER_CHANGED_CHANNEL = 'waybill_order_changed';

/** Reconnect delays after the connection is lost (ms): doubling from the first up to the cap. */
const RECONNECT_FIRST_MS = 250;
const RECONNECT_CAP_MS = 10_000;
/** A half-open TCP connection says nothing: a ping this often finds it (ms). */
const PING_EVERY_MS = 30_000;
const PING_TIMEOUT_MS = 5_000;

type Wake = () => void;

export class OrderChangeListener {
  private readonly subscribers = new Map<string, Set<Wake>>();
  private client: pg.Client | null = null;
  /** The connection being opened, shared by everyone who waits for it. */
  private connecting: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = RECONNECT_FIRST_MS;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** True while the LISTEN is in place. */
  get listening(): boolean {
    return this.client !== null;
  }

  /**
   * Resolves once notifications flow: a stream subscribes, waits for this, then reads its
   * first state, so no change can fall between the read and the LISTEN. Rejects when
   * Postgres cannot be reached (the stream then answers 503).
   */
  async ready(): Promise<void> {
    if (this.closed) throw new Error('the change listener is closed');
    if (this.client) return;
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Calls `wake` whenever `orderId` changes, and after each reconnect; returns the unsubscribe. */
  subscribe(orderId: string, wake: Wake): () => void {
    let set = this.subscribers.get(orderId);
    if (!set) this.subscribers.set(orderId, (set = new Set()));
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.subscribers.get(orderId) === set) this.subscribers.delete(orderId);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const client = this.client;
    this.client = null;
    await this.connecting?.catch(() => undefined);
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'waybill-stream-listener',
      keepAlive: true,
      connectionTimeoutMillis: 3_000,
      query_timeout: PING_TIMEOUT_MS,
    });
    // Until the LISTEN is in place a failure is the caller's (ready() rejects); after, it is lost().
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (message) => {
      if (message.channel === ORDER_CHANGED_CHANNEL && message.payload) this.wake(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${ORDER_CHANGED_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners('end');
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.reconnectDelayMs = RECONNECT_FIRST_MS;
    this.pingTimer = setInterval(() => {
      client.query('select 1').catch((err: unknown) => this.lost(client, err as Error));
    }, PING_EVERY_MS);
    this.pingTimer.unref();
  }

  /** The listening connection failed: drop it, listen again soon, and then wake every stream. */
  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = null;
    clearInterval(this.pingTimer);
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.log.warn({ err }, 'tracking streams: lost the LISTEN connection to Postgres; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(delay * 2, RECONNECT_CAP_MS);
    this.reconnectTimer = setTimeout(() => {
      if (this.closed || this.client) return;
      this.ready().then(
        () => {
          this.log.info('tracking streams: listening to Postgres again; streams catch up');
          for (const orderId of [...this.subscribers.keys()]) this.wake(orderId);
        },
        () => this.scheduleReconnect(),
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  private wake(orderId: string): void {
    for (const wake of [...(this.subscribers.get(orderId) ?? [])]) wake();
  }
}
