/**
 * The `courier-answers` fault suite's two actors, both over HTTP like the real ones:
 *
 * - the courier that answers books and cancels with random refusals and outages for a
 *   window ({@link scriptCourierAnswers}: the simulator's `/control/answers`), then answers
 *   normally again;
 * - the admin who works the exceptions queue afterwards ({@link playAdmin}: lists
 *   `GET /v1/admin/attention` and retries each open item until none is open).
 *
 * The simulator keeps one rule per operation and scope, so "random statuses" is a rotation:
 * every few seconds the rule of each operation is replaced by one with a status drawn from
 * {@link ANSWERS} (a seeded PRNG: the same run draws the same order) and a rate around the
 * operation's base. A replaced rule restarts its own seeded PRNG, hence the varied rate.
 * The simulator counts scripted calls per operation (`GET /control/stats`); reading those
 * counters at every rotation attributes them to the status that was in force (a call that
 * lands in the few milliseconds between the read and the new rule counts for the next one).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { seededRandom } from '../../simulators/courier/faults';
import type { Check } from './consistency';

/** The statuses each operation is answered with, and the share of calls a rule takes on average. */
export const ANSWERS = {
  // 400: the booking is refused for good (the order fails, nothing held); 401 our credentials
  // (an incident, retried); 5xx an outage (retried).
  book: { statuses: [400, 401, 500, 503], rate: 0.15 },
  // 400: refused for good (parked for an admin); 401 retried; 409 "collected" that tracking
  // does not confirm (retried, never believed); 5xx retried. No 404: see bench/faults.ts.
  cancel: { statuses: [400, 401, 409, 500, 503], rate: 0.6 },
} as const;
export type AnswerOperation = keyof typeof ANSWERS;
const OPERATIONS = Object.keys(ANSWERS) as AnswerOperation[];

/** How often the rule of each operation changes status (ms). */
const ROTATE_MS = 4_000;
const SEED = 13;

/** Calls the courier answered with a scripted status: per operation, per status, and the simulator's own totals. */
export interface ScriptedTally {
  byStatus: Record<AnswerOperation, Record<string, number>>;
  /** The simulator's `scripted` counters, summed over formats. */
  totals: Record<AnswerOperation, number>;
  /** How many rules were set (status changes). */
  rotations: number;
}

async function control(url: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method,
    ...(body !== undefined
      ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {}),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok)
    throw new Error(`${method} ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

async function scriptedTotals(courierUrl: string): Promise<Record<AnswerOperation, number>> {
  const stats = (await control(`${courierUrl}/control/stats`, 'GET')) as {
    formats: Record<string, { scripted: Record<AnswerOperation, number> }>;
  };
  const totals = { book: 0, cancel: 0 };
  for (const format of Object.values(stats.formats)) {
    for (const op of OPERATIONS) totals[op] += format.scripted[op];
  }
  return totals;
}

/**
 * Answers books and cancels with scripted statuses until `closes` resolves, then clears every
 * scripted answer. `note` gets one line when the window opens and one when it closes.
 */
export async function scriptCourierAnswers(
  courierUrl: string,
  closes: Promise<void>,
  note: (line: string) => void,
): Promise<ScriptedTally> {
  const random = seededRandom(SEED);
  const tally: ScriptedTally = {
    byStatus: { book: {}, cancel: {} },
    totals: { book: 0, cancel: 0 },
    rotations: 0,
  };
  const before = await scriptedTotals(courierUrl);
  let counted = before;
  const inForce: Record<AnswerOperation, number | null> = { book: null, cancel: null };
  // Calls scripted since the last read go to the status that answered them.
  const attribute = async () => {
    const now = await scriptedTotals(courierUrl);
    for (const op of OPERATIONS) {
      const status = inForce[op];
      const calls = now[op] - counted[op];
      if (status !== null && calls > 0) {
        tally.byStatus[op][status] = (tally.byStatus[op][status] ?? 0) + calls;
      }
    }
    counted = now;
  };

  let closed = false;
  void closes.then(() => (closed = true));
  const from = Date.now();
  note(
    `the courier answers books (${ANSWERS.book.statuses.join('/')}, ~${ANSWERS.book.rate * 100}%) and cancels ` +
      `(${ANSWERS.cancel.statuses.join('/')}, ~${ANSWERS.cancel.rate * 100}%) with scripted statuses`,
  );
  try {
    while (!closed) {
      await attribute();
      for (const op of OPERATIONS) {
        const { statuses, rate } = ANSWERS[op];
        const status = statuses[Math.floor(random() * statuses.length)]!;
        // Half to one and a half times the base rate (a replaced rule restarts its PRNG).
        const share = Math.min(1, Number((rate * (0.5 + random())).toFixed(2)));
        await control(`${courierUrl}/control/answers`, 'POST', { operation: op, status, rate: share });
        inForce[op] = status;
        tally.rotations++;
      }
      await Promise.race([new Promise((r) => setTimeout(r, ROTATE_MS)), closes]);
    }
  } finally {
    await control(`${courierUrl}/control/answers`, 'DELETE');
    await attribute();
    for (const op of OPERATIONS) tally.totals[op] = counted[op] - before[op];
  }
  const figures = OPERATIONS.map(
    (op) =>
      `${op} ${tally.totals[op]} (${Object.entries(tally.byStatus[op])
        .map(([s, n]) => `${n}×${s}`)
        .join(', ')})`,
  ).join('; ');
  note(
    `scripted answers cleared after ${Math.round((Date.now() - from) / 1000)} s: the courier answers normally again; scripted calls: ${figures}`,
  );
  return tally;
}

// --- The admin ------------------------------------------------------------------------------

interface AttentionItem {
  orderId: string;
  itemId: string;
  step: string;
  reason: string;
  status: 'OPEN' | 'RETRIED' | 'RESOLVED';
}

/** What the admin saw and did. */
export interface AdminTally {
  /** Every item ever parked on these orders (open or closed at the end), by step. */
  parkedByStep: Record<string, number>;
  parkedOrders: number;
  /** Items closed by a retry, closed otherwise, and still open when the admin stopped. */
  retried: number;
  resolved: number;
  open: string[];
  /** Answers to the admin's retries: retried, still_failing, or the HTTP status of anything else. */
  outcomes: Record<string, number>;
  /** One example reason per step, as the courier's refusal reads. */
  reasons: Record<string, string>;
}

async function admin(
  apiUrl: string,
  token: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  try {
    const res = await fetch(`${apiUrl}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      // A retry runs the step once at the courier; the route gives it 30 s.
      signal: AbortSignal.timeout(40_000),
    });
    return {
      status: res.status,
      body: (await res.json().catch(() => null)) as Record<string, unknown> | null,
    };
  } catch {
    return { status: 0, body: null };
  }
}

async function listItems(
  apiUrl: string,
  token: string,
  status: AttentionItem['status'],
): Promise<AttentionItem[]> {
  const items: AttentionItem[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await admin(
      apiUrl,
      token,
      'GET',
      `/v1/admin/attention?status=${status}&limit=200&offset=${offset}`,
    );
    if (page.status !== 200) throw new Error(`GET /v1/admin/attention answered ${page.status}`);
    const got = (page.body?.items ?? []) as AttentionItem[];
    items.push(...got);
    if (got.length < 200) return items;
  }
}

/**
 * Plays the admin: every `everyMs`, lists the open items and retries each once, until
 * `stop()` says so and nothing is open, or `deadline` (epoch ms) passes. Then tells what was
 * parked (every status of the list), by step.
 */
export async function playAdmin(opts: {
  apiUrl: string;
  token: string;
  stop: () => boolean;
  deadline: number;
  say: (line: string) => void;
  everyMs?: number;
}): Promise<AdminTally> {
  const { apiUrl, token, say } = opts;
  const outcomes: Record<string, number> = {};
  for (;;) {
    const open = await listItems(apiUrl, token, 'OPEN').catch(() => null);
    if (open !== null && open.length === 0 && opts.stop()) break;
    if (Date.now() > opts.deadline) break;
    if (open && open.length > 0) {
      say(`admin: ${open.length} parked items open; retrying each`);
      for (const item of open) {
        const answer = await admin(
          apiUrl,
          token,
          'POST',
          `/v1/admin/orders/${item.orderId}/attention/${encodeURIComponent(item.itemId)}`,
          { action: 'retry', reason: 'fault suite: courier answers normally again' },
        );
        const outcome = answer.status === 200 ? String(answer.body?.outcome) : String(answer.status);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 5_000));
  }

  const [open, retried, resolved] = await Promise.all(
    (['OPEN', 'RETRIED', 'RESOLVED'] as const).map((s) => listItems(apiUrl, token, s)),
  );
  const all = [...open!, ...retried!, ...resolved!];
  const parkedByStep: Record<string, number> = {};
  const reasons: Record<string, string> = {};
  for (const item of all) {
    parkedByStep[item.step] = (parkedByStep[item.step] ?? 0) + 1;
    reasons[item.step] ??= item.reason;
  }
  return {
    parkedByStep,
    parkedOrders: new Set(all.map((i) => i.orderId)).size,
    retried: retried!.length,
    resolved: resolved!.length,
    open: open!.map((i) => `${i.orderId} ${i.itemId}: ${i.reason}`),
    outcomes,
    reasons,
  };
}

/** Every parked item ended closed by the admin's retry: nothing left open, nothing needed another way out. */
export function attentionCheck(tally: AdminTally): Check {
  const parked = Object.values(tally.parkedByStep).reduce((a, b) => a + b, 0);
  const bySteps = Object.entries(tally.parkedByStep)
    .map(([step, n]) => `${n} ${step}`)
    .join(', ');
  const tries = Object.entries(tally.outcomes)
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(', ');
  const pass = tally.open.length === 0 && tally.resolved === 0;
  return {
    name: 'every parked step was closed by an admin retry',
    pass,
    detail: pass
      ? parked === 0
        ? 'nothing was parked'
        : `${parked} parked on ${tally.parkedOrders} orders (${bySteps}), all retried (admin retries: ${tries})`
      : `${tally.open.length} still open of ${parked} (${bySteps}; admin retries: ${tries || 'none'}): ${tally.open.slice(0, 3).join('; ')}`,
  };
}

/**
 * A refusal the courier got over (credentials refused, then the call went through) leaves no
 * incident behind: no delivered, returned or cancelled parcel of these orders still carries a
 * sync error, which tracking reads as "unavailable" and the admin queue lists as an exception.
 * (EXPIRED parcels may keep theirs: it says why they expired. No poll fails in this suite.)
 */
export async function incidentCheck(db: Kysely<Database>, orderIds: string[]): Promise<Check> {
  const rows = orderIds.length
    ? await db
        .selectFrom('shipments')
        .select(['id', 'status', 'sync_error'])
        .where('order_id', 'in', orderIds)
        .where('status', 'in', ['DELIVERED', 'RETURNED', 'CANCELLED'])
        .execute()
    : [];
  const stale = rows.filter((r) => r.sync_error !== null);
  return {
    name: 'no finished parcel still shows a courier incident (sync error)',
    pass: stale.length === 0,
    detail:
      stale.length === 0
        ? `${rows.length} delivered, returned or cancelled parcels`
        : `${stale.length} of ${rows.length}: ${stale
            .slice(0, 3)
            .map((r) => `${r.id} ${r.status} "${r.sync_error!.slice(0, 90)}"`)
            .join('; ')}`,
  };
}
