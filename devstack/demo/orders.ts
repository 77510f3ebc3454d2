/**
 * One order through the demo run: what the demo tracks of it, placing it through the API,
 * reading it back, cancelling it at its moment, telling when it has settled and checking it
 * against what the plan says it should end as; and the courier outage the run stages.
 */
import { type Config } from '../../src/config';
import { isPickedUpStatus, isTerminal, type ShipmentStatus } from '../../src/domain/status';
import type { PollPolicy } from '../../src/domain/polling';
import { StartupError } from '../../src/main-helpers';
import { type TemporalClient } from '../../src/temporal';
import { orderWorkflowId } from '../../src/workflows/contract';
import { checkOrder, isSettled, SETTLED_ORDER_STATUSES, type ObservedOrder, verdictOf } from './checks';
import type { PlanEntry } from './plan';
import { type DemoStack } from './stack';
import { type OrderRow, type VisibilityCheck } from './view';
import { DEMO_OUTAGE_MS, PARCELS_GRACE_MS, Refusal, STUCK_AFTER_MS } from './settings';
import { type ApiClient, type OrderRead, type TrackingRead } from './api-client';
import { type Screen } from './screen';

interface Tracked {
  entry: PlanEntry;
  orderId: string | null;
  orderNumber: string | null;
  createError: string | null;
  status: string | null;
  failureCode: string | null;
  totalAmount: number;
  parcels: { id: string; trackingNumber: string; status: string }[];
  payment: ObservedOrder['payment'];
  cancel: ObservedOrder['cancel'];
  cancelSent: boolean;
  courierDownNow: boolean;
  sawCourierDown: boolean;
  scans: string[][];
  changedAt: number | null;
  note: string | null;
  /** Since when the order status is final while a parcel is not. */
  finalSince: number | null;
  /** Since when every parcel is final while the order is not. */
  parcelsFinalSince: number | null;
  /** Set once settled and checked: empty when it matched its expectation. */
  problems: string[] | null;
}

export function newTracked(entry: PlanEntry): Tracked {
  return {
    entry,
    orderId: null,
    orderNumber: null,
    createError: null,
    status: null,
    failureCode: null,
    totalAmount: 0,
    parcels: [],
    payment: null,
    cancel: null,
    cancelSent: false,
    courierDownNow: false,
    sawCourierDown: false,
    scans: [],
    changedAt: null,
    note: null,
    finalSince: null,
    parcelsFinalSince: null,
    problems: null,
  };
}

export function rowOf(t: Tracked): OrderRow {
  return {
    n: t.entry.n,
    kind: t.entry.spec.kind,
    orderNumber: t.orderNumber,
    status: t.createError ? 'NOT PLACED' : t.status,
    parcels: t.parcels.map((p) => p.status),
    changedAt: t.changedAt,
    note: t.createError ?? t.note,
    verdict: t.problems === null ? null : verdictOf(t.entry.spec, t.problems),
  };
}

export const COURIER_NAMES: Record<string, string> = {
  easyparcel: 'EasyParcel',
  bluedart: 'Blue Dart',
  simulator: 'the simulator courier',
};

/** The simulator's wire format for a courier code (the outage is set per format). */
const SIM_FORMAT: Record<string, string> = {
  simulator: 'native',
  easyparcel: 'easyparcel',
  bluedart: 'bluedart',
};

export interface RunContext {
  config: Config;
  api: ApiClient;
  temporal: TemporalClient;
  screen: Screen;
  plan: PlanEntry[];
  customerId: string;
  runId: string;
  timeoutMs: number;
  strict: boolean;
  stack: DemoStack | null;
  signal: AbortSignal;
  t0: number;
  /**
   * The poll policy of the stack's worker (it owns it): built from the demo stack's settings,
   * which an attached stack (one `npm run demo -- --keep` left) was started with too.
   */
  policy: PollPolicy;
}

export interface CheckResult {
  check: VisibilityCheck;
  /** null: the check could not be taken (reason in `error`). */
  listed: number | null;
  expectedTotal: number;
  /** Order ids whose workflows were listed other than expected, with or without a known bug to explain it. */
  explained: string[];
  unexplained: string[];
  error: string | null;
}

export interface OutageResult {
  courier: string;
  refusedCalls: number;
  parcels: number;
  shownDown: number;
  problems: string[];
}

export interface RunOutcome {
  tracked: Tracked[];
  checks: CheckResult[];
  outage: OutageResult | null;
  timedOut: boolean;
  settledMs: number;
}

export function apiUrlOf(config: Config): string {
  const host = config.api.host === '0.0.0.0' || config.api.host === '::' ? '127.0.0.1' : config.api.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.api.port}`;
}

export async function simulatorTimeScale(config: Config): Promise<number> {
  try {
    const res = await fetch(`${config.courier.simulatorUrl}/control/clock`, {
      signal: AbortSignal.timeout(3_000),
    });
    const body = (await res.json()) as { timeScale?: number };
    if (!res.ok || typeof body.timeScale !== 'number') throw new Error(`answered ${res.status}`);
    return body.timeScale;
  } catch (err) {
    throw new Refusal(
      `the courier simulator's control API does not answer at ${config.courier.simulatorUrl}/control/clock (${(err as Error).message}); the demo steers parcels through it`,
    );
  }
}

export async function placeOrder(ctx: RunContext, t: Tracked): Promise<void> {
  const { entry } = t;
  const answer = await ctx.api.request<{ orderId: string; orderNumber: string; error?: { message: string } }>(
    'POST',
    '/v1/orders',
    {
      key: `demo-${ctx.runId}-${entry.n}`,
      body: {
        email: entry.email,
        shippingAddress: entry.shippingAddress,
        lines: entry.spec.lines,
        // Development only: the demo puts the outage orders on the courier it takes down.
        // Elsewhere the server picks each parcel's courier from its warehouse.
        courier: entry.spec.courier,
        payment: { token: entry.paymentToken },
      },
    },
  );
  if (answer.status !== 202) {
    t.createError =
      `POST /v1/orders answered ${answer.status} ${answer.code ?? ''}: ${answer.body?.error?.message ?? ''}`.trim();
    t.problems = [t.createError];
    return;
  }
  t.orderId = answer.body.orderId;
  t.orderNumber = answer.body.orderNumber;
  t.status = 'PENDING';
  t.changedAt = Date.now();
}

export async function refreshOrder(ctx: RunContext, t: Tracked, outageMatters: boolean): Promise<boolean> {
  const answer = await ctx.api.request<OrderRead>('GET', `/v1/orders/${t.orderId}`);
  if (answer.status !== 200) {
    t.note = `GET /v1/orders answered ${answer.status}`;
    return false;
  }
  const o = answer.body;
  const parcels = o.shipments.map((s) => ({
    id: s.shipmentId,
    trackingNumber: s.trackingNumber,
    status: s.status,
  }));
  const changed =
    o.status !== t.status || parcels.map((p) => p.status).join() !== t.parcels.map((p) => p.status).join();
  t.status = o.status;
  t.failureCode = o.failure?.code ?? null;
  t.totalAmount = o.totalAmount;
  t.parcels = parcels;
  t.payment = o.payment;
  if (changed) t.changedAt = Date.now();

  if (t.entry.spec.outage && outageMatters) {
    const tracking = await ctx.api.request<TrackingRead>('GET', `/v1/orders/${t.orderId}/tracking`);
    if (tracking.status === 200) {
      const down = tracking.body.shipments.some((s) => s.dataSource.unavailable);
      if (down && !t.courierDownNow) t.note = 'courier unreachable: tracking shows cached data';
      if (!down && t.courierDownNow) t.note = 'courier back: tracking live again';
      t.courierDownNow = down;
      t.sawCourierDown ||= down;
    }
  }
  return changed;
}

/** The deepest message of a failure chain (workflow → activity → application failure). */
function rootMessage(err: unknown): string {
  let cause = err as { message?: string; cause?: unknown } | undefined;
  while (cause?.cause) cause = cause.cause as typeof cause;
  return cause?.message ?? String(err);
}

/**
 * Every parcel is final but the order is not: a saga that stopped half way would keep the
 * demo waiting until its timeout, so ask Temporal whether the order's workflow still runs.
 * Returns the problem when it does not.
 */
async function orderWorkflowEnded(ctx: RunContext, t: Tracked): Promise<string | null> {
  const handle = ctx.temporal.client.workflow.getHandle(orderWorkflowId(t.orderId!));
  const { status } = await handle.describe();
  if (status.name === 'RUNNING') return null;
  const why = await handle.result().then(
    () => 'completed',
    (err: unknown) => rootMessage(err),
  );
  return `the order workflow ${status.name}: ${why} (the order stays ${t.status})`;
}

/** Settled orders are checked once, with their full tracking history. */
export async function checkIfSettled(ctx: RunContext, t: Tracked): Promise<boolean> {
  const finalStatus = t.status !== null && SETTLED_ORDER_STATUSES.has(t.status);
  const parcelsFinal = t.parcels.length > 0 && t.parcels.every((p) => isTerminal(p.status as ShipmentStatus));
  t.parcelsFinalSince = parcelsFinal && !finalStatus ? (t.parcelsFinalSince ?? Date.now()) : null;
  if (t.parcelsFinalSince !== null && Date.now() - t.parcelsFinalSince > STUCK_AFTER_MS) {
    const ended = await orderWorkflowEnded(ctx, t).catch(() => null);
    if (ended !== null) {
      // Everything else that is off follows from this: it is the one problem to report.
      t.problems = [ended];
      return true;
    }
    t.parcelsFinalSince = Date.now();
  }
  if (!finalStatus) return false;
  // A cancel answered 202 may arrive after the order is CANCELLED: its answer is part of the check.
  if (t.cancelSent && t.cancel === null) return false;
  t.finalSince ??= Date.now();
  if (!isSettled(t) && Date.now() - t.finalSince < PARCELS_GRACE_MS) return false;
  const tracking = await ctx.api.request<TrackingRead>('GET', `/v1/orders/${t.orderId}/tracking`);
  const events = new Map(
    (tracking.status === 200 ? tracking.body.shipments : []).map((s) => [
      s.shipmentId,
      s.events.map((e) => e.status),
    ]),
  );
  t.scans = t.parcels.map((p) => events.get(p.id) ?? []);
  t.problems = checkOrder(t.entry.spec.expect, {
    createError: t.createError,
    status: t.status,
    failureCode: t.failureCode,
    totalAmount: t.totalAmount,
    parcels: t.parcels.map((p, i) => ({ status: p.status, scans: t.scans[i] ?? [] })),
    payment: t.payment,
    cancel: t.cancel,
  });
  return true;
}

/** The courier loses this order's bookings (the kind says so): the simulator forgets them, so the cancel meets a real 404. */
async function loseBookings(ctx: RunContext, t: Tracked): Promise<void> {
  if (!t.entry.spec.courierForgetsBooking) return;
  for (const parcel of t.parcels) {
    const url = `${ctx.config.courier.simulatorUrl}/control/parcels/${encodeURIComponent(parcel.trackingNumber)}`;
    const res = await fetch(url, { method: 'DELETE' });
    if (!res.ok)
      throw new Error(`the courier simulator did not forget ${parcel.trackingNumber}: ${res.status}`);
  }
}

/** Sends the order's cancel once its moment has come (booked, or picked up). */
export function maybeCancel(ctx: RunContext, t: Tracked, pending: Set<Promise<void>>): void {
  const when = t.entry.spec.cancelWhen;
  if (when === null || t.cancelSent || t.orderId === null) return;
  const due =
    when === 'booked'
      ? t.status === 'CONFIRMED' && t.parcels.length > 0
      : t.status === 'SHIPPED' || t.status === 'PARTIALLY_SHIPPED';
  if (!due) return;
  t.cancelSent = true;
  t.note = 'cancel sent…';
  const sent = loseBookings(ctx, t)
    .then(() =>
      ctx.api.request('POST', `/v1/orders/${t.orderId}/cancel`, {
        body: { reason: 'demo: the shopper changed their mind' },
      }),
    )
    .then((answer) => {
      t.cancel = { httpStatus: answer.status, code: answer.code };
      t.note = `cancel → ${answer.status}${answer.code ? ` ${answer.code}` : ''}`;
    })
    .catch((err: Error) => {
      t.cancel = { httpStatus: 0, code: err.message };
      t.note = `cancel failed: ${err.message}`;
    })
    .finally(() => pending.delete(sent));
  pending.add(sent);
}

export class Outage {
  state: 'waiting' | 'active' | 'over' | 'none';
  private until = 0;
  private startedAt = 0;
  private firstPickupAt: number | null = null;
  /** The simulator's outage counter when this outage began (an attached simulator may have counted others). */
  refusedBefore = 0;
  readonly format: string;

  constructor(
    private readonly ctx: RunContext,
    readonly courier: string | null,
  ) {
    this.state = courier === null ? 'none' : 'waiting';
    this.format = SIM_FORMAT[courier ?? 'simulator'] ?? 'native';
  }

  /**
   * Takes the courier down while its parcels travel: once every one of them is booked and
   * picked up, or 10 s after the first pickup (a slow machine must not push the outage past
   * their delivery).
   */
  async maybeStart(tracked: Tracked[]): Promise<void> {
    if (this.state !== 'waiting') return;
    const riders = tracked.filter((t) => t.entry.spec.outage && t.orderId !== null && t.problems === null);
    const pickedUp = riders.filter(
      (t) =>
        t.parcels.length > 0 &&
        t.parcels.every((p) => isPickedUpStatus(p.status) && !isTerminal(p.status as ShipmentStatus)),
    );
    if (pickedUp.length === 0) return;
    this.firstPickupAt ??= Date.now();
    const booked = riders.every((t) => t.parcels.length > 0);
    if (pickedUp.length < riders.length && !(booked && Date.now() - this.firstPickupAt > 10_000)) return;
    this.refusedBefore = await this.refusedSoFar();
    const res = await fetch(`${this.ctx.config.courier.simulatorUrl}/control/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'outage', format: this.format, durationMs: DEMO_OUTAGE_MS }),
      signal: AbortSignal.timeout(3_000),
    });
    if (!res.ok)
      throw new StartupError(`the courier simulator refused the outage: ${res.status} ${await res.text()}`);
    this.state = 'active';
    this.startedAt = Date.now();
    this.until = this.startedAt + DEMO_OUTAGE_MS;
  }

  tick(): void {
    if (this.state === 'active' && Date.now() >= this.until) this.state = 'over';
  }

  /** Active, or over for less than half a minute (parcels notice the courier is back at their next poll). */
  recent(): boolean {
    return this.state === 'active' || (this.state === 'over' && Date.now() - this.until < 30_000);
  }

  /** Outage pages the simulator has answered for this format so far (its counters are per format). */
  async refusedSoFar(): Promise<number> {
    const res = await fetch(`${this.ctx.config.courier.simulatorUrl}/control/stats`, {
      signal: AbortSignal.timeout(3_000),
    });
    const stats = (await res.json()) as { formats?: Record<string, { faults?: { outage?: number } }> };
    return stats.formats?.[this.format]?.faults?.outage ?? 0;
  }

  /** Removes the rule if it is still on (an interrupted run must not leave the courier down). */
  async clear(): Promise<void> {
    if (this.state !== 'active') return;
    await fetch(`${this.ctx.config.courier.simulatorUrl}/control/faults?kind=outage&format=${this.format}`, {
      method: 'DELETE',
      signal: AbortSignal.timeout(3_000),
    }).catch(() => undefined);
    this.state = 'over';
  }

  describe(elapsed: (ms: number) => string): string | null {
    const name = COURIER_NAMES[this.courier ?? ''] ?? this.courier;
    switch (this.state) {
      case 'waiting':
        return `${name} outage: at pickup`;
      case 'active':
        return `${name} DOWN, ${Math.ceil((this.until - Date.now()) / 1000)} s left`;
      case 'over':
        return `${name} was down ${elapsed(this.startedAt)}`;
      default:
        return null;
    }
  }
}

/**
 * Runs a visibility query and compares what it lists with what the plan says it should,
 * order by order; asks again for a few seconds while they differ (visibility trails the
 * workflows by a moment). Workflows of other runs or other shops are ignored.
 */
