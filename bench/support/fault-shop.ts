/**
 * The fault suites' shop (bench/faults.ts): the mix of orders it places through the API,
 * its HTTP tallies, placing, cancelling and reading like a real shop, and waiting for bookings.
 */
import { randomBytes } from 'node:crypto';
import { customerToken } from '../../src/api/tokens';
import type { Args } from './fault-suites';
import { type ProcessStack } from './stack';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;

// --- The shop ------------------------------------------------------------------------------

/**
 * What kind of order the shop places; the courier simulator's "test card" picks the lifecycle.
 * `cancel`: the shop cancels it a few seconds after placing it (`soon`), or once the API shows
 * it booked (`once-booked`: the cancel then reaches the courier); `loseBooking`: just before
 * that cancel, the courier loses the order's booking (its cancel then answers a real 404).
 */
export interface MixEntry {
  kind: string;
  scenario: string;
  token: string;
  cancel: 'never' | 'soon' | 'once-booked';
  loseBooking: boolean;
}
export const orderKind = (kind: string, scenario: string, token = 'tok_visa'): MixEntry => ({
  kind,
  scenario,
  token,
  cancel: 'never',
  loseBooking: false,
});

/** One in ten cancelled, some seconds after placing: a race with the parcel's pickup (6 courier hours). */
export const MIX: readonly MixEntry[] = [
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('returned', 'return_to_origin'),
  orderKind('declined', 'delivered', 'tok_chargeDeclined'),
  { ...orderKind('cancelled', 'delivered'), cancel: 'soon' },
  orderKind('delivered', 'delivered'),
];

/**
 * courier-answers: three in ten cancelled once booked (so that each cancel reaches the courier
 * to be refused), their parcels never collected (a cancel the courier refused must still be
 * possible when the admin retries it), one of the three losing its booking first.
 */
export const ANSWERS_MIX: readonly MixEntry[] = [
  orderKind('delivered', 'delivered'),
  orderKind('delivered', 'delivered'),
  { ...orderKind('cancelled', 'never_picked_up'), cancel: 'once-booked' },
  orderKind('retry-delivered', 'failed_attempt_then_delivered'),
  orderKind('returned', 'return_to_origin'),
  { ...orderKind('cancelled-lost-booking', 'never_picked_up'), cancel: 'once-booked', loseBooking: true },
  orderKind('delivered', 'delivered'),
  orderKind('declined', 'delivered', 'tok_chargeDeclined'),
  { ...orderKind('cancelled', 'never_picked_up'), cancel: 'once-booked' },
  orderKind('delivered', 'delivered'),
];

export interface HttpTally {
  byStatus: Map<number, number>;
  /** 5xx answers: when, what and whether they carried Retry-After. */
  fivexx: { at: number; route: string; status: number; retryAfter: boolean }[];
}

export const tally = (): HttpTally => ({ byStatus: new Map(), fivexx: [] });

export async function call(
  stack: ProcessStack,
  t: HttpTally,
  method: string,
  route: string,
  opts: { token: string; body?: unknown; key?: string },
): Promise<{ status: number; body: Record<string, unknown> | null; retryAfter: boolean }> {
  let status = 0;
  let body: Record<string, unknown> | null = null;
  let retryAfter = false;
  try {
    const res = await fetch(`${stack.apiUrl}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${opts.token}`,
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(opts.key ? { 'idempotency-key': opts.key } : {}),
      },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    status = res.status;
    retryAfter = res.headers.has('retry-after');
    body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  } catch {
    status = 0; // no answer at all (the API process is never broken here, so this counts)
  }
  t.byStatus.set(status, (t.byStatus.get(status) ?? 0) + 1);
  if (status >= 500 || status === 0) {
    t.fivexx.push({ at: Date.now(), route: route.replace(/ord_[A-Za-z0-9]+/, ':id'), status, retryAfter });
  }
  return { status, body, retryAfter };
}

export interface Shop {
  accepted: string[];
  /** The kind (MixEntry.kind) of each accepted order. */
  kindOf: Map<string, string>;
  refusedForGood: string[];
  createRetries: number;
  cancels: { asked: number; accepted: number; refused: number };
  /**
   * Orders cancelled once booked: how many were booked (and so cancelled at the courier), how
   * many bookings the courier lost just before their cancel, and how many orders had no
   * booking by then (refused, or not booked within 2 min; cancelled anyway).
   */
  onceBooked: { booked: number; lost: number; notBooked: number };
  writes: HttpTally;
  reads: HttpTally;
  /** The reader loop; settles once told to stop. */
  readerDone?: Promise<void>;
}

/** How the suite steers its shop from outside. */
export interface ShopControl {
  /** The reader stops polling. */
  stopReading: boolean;
  /** The stack will not come back: stop placing orders and retrying. */
  giveUp: boolean;
  /** Called once every order has been placed and every cancel asked once (or the shop stopped early). */
  allAsked: () => void;
}

export async function runShop(
  stack: ProcessStack,
  args: Args,
  mix: readonly MixEntry[],
  control: ShopControl,
): Promise<Shop> {
  const runId = randomBytes(4).toString('hex');
  const token = customerToken(stack.config, `cus_faults_${runId}`, 6 * 3_600_000);
  const shop: Shop = {
    accepted: [],
    kindOf: new Map(),
    refusedForGood: [],
    createRetries: 0,
    cancels: { asked: 0, accepted: 0, refused: 0 },
    onceBooked: { booked: 0, lost: 0, notBooked: 0 },
    writes: tally(),
    reads: tally(),
  };

  const reader = (async () => {
    let i = 0;
    while (!control.stopReading) {
      if (shop.accepted.length > 0) {
        const id = shop.accepted[i++ % shop.accepted.length]!;
        const route = i % 2 === 0 ? `/v1/orders/${id}` : `/v1/orders/${id}/tracking`;
        await call(stack, shop.reads, 'GET', route, { token });
      }
      await sleep(50);
    }
  })();

  // Orders not yet placed, or placed with their cancel not asked yet.
  let toAsk = args.orders;
  const place = async (n: number) => {
    let asked = false;
    const askedNow = () => {
      if (asked) return;
      asked = true;
      if (--toAsk === 0) control.allAsked();
    };
    try {
      await placeOne(n, askedNow);
    } finally {
      askedNow();
    }
  };
  const placeOne = async (n: number, askedNow: () => void) => {
    const entry = mix[n % mix.length]!;
    const key = `faults-${runId}-${n}`;
    const body = {
      email: `fault${n}@example.com`,
      shippingAddress: {
        name: `Fault Shopper ${n} [scenario:${entry.scenario}]`,
        line1: `${n} Jalan Ampang`,
        city: 'Kuala Lumpur',
        postcode: '50450',
        country: 'MY',
      },
      lines: [{ sku: n % 2 === 0 ? 'KETTLE-1L' : 'MUG-SET-4', quantity: 1 }],
      payment: { token: entry.token },
    };
    // A shop retries a create that met an outage, with the same key, for up to 5 minutes
    // (less when the suite gives up on the stack).
    const until = Date.now() + 5 * 60_000;
    const retrying = () => Date.now() < until && !control.giveUp;
    for (;;) {
      const answer = await call(stack, shop.writes, 'POST', '/v1/orders', { token, body, key });
      if (answer.status === 202) {
        const orderId = String(answer.body?.orderId);
        shop.accepted.push(orderId);
        shop.kindOf.set(orderId, entry.kind);
        if (entry.cancel !== 'never') {
          if (entry.cancel === 'soon') await sleep(1_000 + (n % 5) * 1_000);
          else await untilBooked(stack, shop, token, orderId, entry.loseBooking);
          shop.cancels.asked++;
          askedNow();
          for (;;) {
            const c = await call(stack, shop.writes, 'POST', `/v1/orders/${orderId}/cancel`, {
              token,
              body: { reason: 'changed my mind' },
              key: `${key}-cancel`,
            });
            if (c.status === 202 || c.status === 200) shop.cancels.accepted++;
            else if (c.status === 409) shop.cancels.refused++;
            else if (c.status >= 500 && retrying()) {
              await sleep(2_000);
              continue;
            }
            break;
          }
        }
        return;
      }
      if ((answer.status >= 500 || answer.status === 0 || answer.status === 409) && retrying()) {
        shop.createRetries++;
        await sleep(2_000);
        continue;
      }
      shop.refusedForGood.push(
        `#${n}: ${answer.status} ${JSON.stringify(answer.body?.error ?? answer.body)}`,
      );
      return;
    }
  };

  const placing: Promise<void>[] = [];
  for (let n = 0; n < args.orders && !control.giveUp; n++) {
    placing.push(place(n));
    await sleep(1_000 / args.rate);
  }
  await Promise.all(placing);
  control.allAsked();
  shop.readerDone = reader;
  return shop;
}

/**
 * Waits (up to 2 min) until the API shows the order booked (CONFIRMED, with its parcels), as a
 * shopper who cancels after the confirmation; with `lose`, the courier then loses those
 * bookings (the simulator forgets them). An order that is not booked by then (its booking
 * retrying through scripted answers) or never will be (refused) is counted and left alone.
 */
export async function untilBooked(
  stack: ProcessStack,
  shop: Shop,
  token: string,
  orderId: string,
  lose: boolean,
): Promise<void> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const { status, body } = await call(stack, shop.reads, 'GET', `/v1/orders/${orderId}`, { token });
    const shipments = (body?.shipments ?? []) as { trackingNumber: string }[];
    if (status === 200 && body?.status === 'CONFIRMED' && shipments.length > 0) {
      shop.onceBooked.booked++;
      if (!lose) return;
      for (const s of shipments) {
        const url = `${stack.courier.url}/control/parcels/${encodeURIComponent(s.trackingNumber)}`;
        const res = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
        if (!res.ok)
          throw new Error(`the courier simulator did not forget ${s.trackingNumber}: ${res.status}`);
      }
      shop.onceBooked.lost += shipments.length;
      return;
    }
    if (status === 200 && body?.status !== 'PENDING' && body?.status !== 'CONFIRMED') break;
    await sleep(500);
  }
  shop.onceBooked.notBooked++;
}
