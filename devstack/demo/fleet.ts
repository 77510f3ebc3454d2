/**
 * The demo's own fleet (docs/fleet.md): it plays dispatch and the driver through the HTTP
 * API. Before the orders it adds a vehicle and a driver, issues the driver's token (admin key)
 * and opens a run; then, every tick, it puts the fleet orders' booked parcels on that run and
 * moves each parcel of an order that is not to be cancelled one report further along the
 * driver's day. Report ids are fixed per order and step, so a retried report is a duplicate.
 */
import { DEV_ADMIN_API_KEY } from '../../src/config';
import { CourierCode } from '../../src/couriers/types';
import type { RunContext } from './orders';
import { apiUrlOf } from './orders';
import type { newTracked } from './orders';

type Tracked = ReturnType<typeof newTracked>;

/** The driver's day for one parcel, one report per demo tick. */
const DAY: readonly ({ kind: string } & Record<string, string>)[] = [
  { kind: 'PICKED_UP' },
  { kind: 'OUT_FOR_DELIVERY' },
  { kind: 'FAILED_ATTEMPT', reason: 'RECIPIENT_ABSENT', note: 'left a card' },
  { kind: 'OUT_FOR_DELIVERY' },
  { kind: 'DELIVERED', proofRef: 'demo/pod' },
];

export class DemoFleet {
  private runId: string | null = null;
  private token: string | null = null;
  private readonly assigned = new Set<string>();
  /** Reports sent per tracking number. */
  private readonly done = new Map<string, number>();
  private readonly url: string;

  constructor(private readonly ctx: RunContext) {
    this.url = apiUrlOf(ctx.config);
  }

  static wanted(tracked: readonly Tracked[]): boolean {
    return tracked.some((t) => t.entry.spec.courier === CourierCode.FLEET);
  }

  private async call<T>(method: string, path: string, body?: unknown, driver = false): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(driver ? { 'x-driver-token': this.token! } : { 'x-api-key': DEV_ADMIN_API_KEY }),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const answer = (await res.json()) as T;
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(answer)}`);
    return answer;
  }

  /** A vehicle, a driver with a token, and the driver's run for today. */
  async prepare(): Promise<void> {
    const tag = this.ctx.runId
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(-8)
      .toUpperCase();
    const { vehicleId } = await this.call<{ vehicleId: string }>('POST', '/v1/admin/fleet/vehicles', {
      registration: `DEMO ${tag}`,
      label: 'Demo van',
    });
    const { driverId } = await this.call<{ driverId: string }>('POST', '/v1/admin/fleet/drivers', {
      name: 'Demo driver',
    });
    this.token = (
      await this.call<{ token: string }>('POST', `/v1/admin/fleet/drivers/${driverId}/token`)
    ).token;
    this.runId = (
      await this.call<{ runId: string }>('POST', '/v1/admin/fleet/runs', { driverId, vehicleId })
    ).runId;
  }

  /** Dispatch the booked fleet parcels, then one report each for those being delivered. */
  async tick(open: readonly Tracked[]): Promise<void> {
    if (this.runId === null) return;
    const fleet = open.filter((t) => t.entry.spec.courier === CourierCode.FLEET && t.parcels.length > 0);
    const toAssign = fleet
      .flatMap((t) => t.parcels.map((p) => p.trackingNumber))
      .filter((n) => !this.assigned.has(n));
    if (toAssign.length > 0) {
      await this.call('POST', `/v1/admin/fleet/runs/${this.runId}/parcels`, { trackingNumbers: toAssign });
      for (const n of toAssign) this.assigned.add(n);
    }
    for (const t of fleet) {
      // An order the shopper cancels is never picked up: the driver leaves it.
      if (t.entry.spec.cancelWhen !== null) continue;
      for (const parcel of t.parcels) {
        const step = this.done.get(parcel.trackingNumber) ?? 0;
        const next = DAY[step];
        if (next === undefined || !this.assigned.has(parcel.trackingNumber)) continue;
        await this.call(
          'POST',
          '/v1/driver/reports',
          {
            reportId: `${this.ctx.runId}-${t.entry.n}-${step}`,
            trackingNumber: parcel.trackingNumber,
            ...next,
          },
          true,
        );
        this.done.set(parcel.trackingNumber, step + 1);
        t.note = `driver: ${next.kind.toLowerCase().replace(/_/g, ' ')}`;
      }
    }
  }

  /** The day is over: the run closes (parcels never picked up go back to the queue). */
  async close(): Promise<void> {
    if (this.runId === null) return;
    await this.call('POST', `/v1/admin/fleet/runs/${this.runId}/close`).catch(() => undefined);
  }
}
