/**
 * The simulator pushing EasyParcel's own webhooks: topic "Tracking Status Update"
 * (`shipment.tracking.update`, EasyParcel Open API docs 2025-06), the parcel's whole status
 * log each time a new entry appears, unsigned, to one configured URL. As the docs' sample
 * does, the log is newest first, entries are `{timestamp, shipment_status_code,
 * tracking_status}` without a place, every time written `YYYY-MM-DD HH:mm:ss` (where the
 * tracking answer mixes in ISO), and some pushes number the entries as an object
 * (`{"0": …, "1": …}`) instead of a list. A failed delivery (network, 5xx) is retried up to 3
 * times; `lossRate` drops that share of pushes outright (a webhook lost for good), so the
 * receiver's polling fallback is exercised.
 *
 * Started by `RunningSimulator.startEasyParcelPush` (server.ts) or the `EASYPARCEL_PUSH_URL`
 * setting of `npm run sim:courier` (main.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { formatSqlLocal } from '../../../src/couriers/time';
import type { SimulatorCore } from '../core';
import { easyParcelWebhookLog, type EasyParcelWebhookEntry } from './easyparcel';

export interface EasyParcelPushOptions {
  /** Where EasyParcel would POST (the receiver's URL, its secret included). */
  url: string;
  /** Share of pushes lost for good, 0 (default) to 1. */
  lossRate?: number;
  /** How often the simulator looks for new log entries (real ms). Default 500. */
  everyMs?: number;
  /** Seed of the loss PRNG. Default 1. */
  seed?: number;
}

export interface EasyParcelPushStats {
  /** Pushes answered 2xx. */
  delivered: number;
  /** Pushes dropped by `lossRate`. */
  lost: number;
  /** Pushes that failed after every retry. */
  failed: number;
  /** HTTP status of the last answer (0: none yet or a network error). */
  lastStatus: number;
}

const ATTEMPTS = 4;

/** A fixed-seed PRNG: numbers in [0, 1). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

/** The webhook body for one parcel's log (oldest first in, newest first out). */
export function easyParcelTrackingWebhook(
  awb: string,
  shipmentNumber: string,
  log: readonly EasyParcelWebhookEntry[],
  nowMs: number,
): Record<string, unknown> {
  const newestFirst = [...log].reverse();
  const latest = newestFirst[0]!;
  const keyed = createHash('sha256').update(`${awb}|${log.length}`).digest()[0]! % 2 === 1;
  return {
    topic: 'shipment.tracking.update',
    shipment_number: shipmentNumber,
    uuid: randomUUID(),
    timestamp: formatSqlLocal(new Date(nowMs), 0),
    awb_number: awb,
    latest_shipment_status_code: latest.shipment_status_code,
    latest_tracking_status: latest.tracking_status,
    status_log: keyed ? Object.fromEntries(newestFirst.map((entry, i) => [String(i), entry])) : newestFirst,
  };
}

export class EasyParcelPusher {
  readonly stats: EasyParcelPushStats = { delivered: 0, lost: 0, failed: 0, lastStatus: 0 };
  /** Entries of each AWB's log already pushed (or lost). */
  private pushed = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly random: () => number;

  constructor(
    private readonly core: SimulatorCore,
    private readonly opts: EasyParcelPushOptions,
    private readonly shipmentNumberOf: (awb: string) => string,
  ) {
    this.random = prng(opts.seed ?? 1);
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = null));
    }, this.opts.everyMs ?? 500);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Pushes every EasyParcel parcel whose log has grown since its last push. */
  async tick(): Promise<void> {
    const now = this.core.clock.now();
    for (const parcel of this.core.list()) {
      if (parcel.format !== 'easyparcel') continue;
      const seen = this.core.inspect(parcel.trackingNumber);
      if (!seen) continue;
      const log = easyParcelWebhookLog(seen.view, now);
      if (log.length <= (this.pushed.get(parcel.trackingNumber) ?? 0)) continue;
      this.pushed.set(parcel.trackingNumber, log.length);
      if (this.random() < (this.opts.lossRate ?? 0)) {
        this.stats.lost += 1;
        continue;
      }
      const body = easyParcelTrackingWebhook(
        parcel.trackingNumber,
        this.shipmentNumberOf(parcel.trackingNumber),
        log,
        now,
      );
      await this.send(JSON.stringify(body));
    }
  }

  private async send(body: string): Promise<void> {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const res = await fetch(this.opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(5_000),
        });
        this.stats.lastStatus = res.status;
        await res.arrayBuffer();
        if (res.ok) {
          this.stats.delivered += 1;
          return;
        }
        // A 4xx is the receiver refusing this push: sending it again changes nothing.
        if (res.status < 500) break;
      } catch {
        this.stats.lastStatus = 0;
      }
    }
    this.stats.failed += 1;
  }
}
