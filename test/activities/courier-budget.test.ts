/**
 * The courier's requests per second hold across workers: each worker's budget gate reserves
 * the courier's next request slot on Postgres's clock (`courier_request_slots`), slots
 * 1/rate s apart, so two workers together start no more than the rate in any sliding second.
 * A request whose slot is ahead waits for it, whatever it is for; one whose slot is further
 * than its gate's wait limit fails at once as not sent. Each is counted once on the day's
 * budget. Real Postgres; two connection pools stand for two worker processes.
 */
import pg from 'pg';
import { createDb } from '../../db/client';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import {
  createCourierBudget,
  CourierRateWaitError,
  type CourierUse,
} from '../../src/activities/courier-budget';
import { requestSpacingUs, reserveCourierSlot } from '../../src/read-model/courier-usage';
import { freshDatabase, type TestDatabase } from '../support/db';

jest.setTimeout(30_000);

describe('courier requests per second, across workers', () => {
  let database: TestDatabase;
  let workers: Kysely<Database>[];

  beforeAll(async () => {
    database = await freshDatabase();
    workers = [createDb({ url: database.url, poolMax: 10 }), createDb({ url: database.url, poolMax: 10 })];
  });

  afterAll(async () => {
    await Promise.all(workers?.map((db) => db.destroy()) ?? []);
    await database?.drop();
  });

  /** A worker's budget under a cap of `perSecond`, its gates waiting `waitLimitMs` at most. */
  const capped = (worker: number, perSecond: number, waitLimitMs?: number) =>
    createCourierBudget({
      db: workers[worker]!,
      dailyBudget: 1_000,
      requestsPerSecond: perSecond,
      ...(waitLimitMs !== undefined ? { secondWaitLimitMs: waitLimitMs } : {}),
    });
  /** The calls counted on the courier's budget today. */
  const callsCounted = async (courier: string) =>
    (
      await database.db
        .selectFrom('courier_api_usage')
        .select('calls')
        .where('courier', '=', courier)
        .executeTakeFirstOrThrow()
    ).calls;

  /** Statements reserving a courier's slot that wait on its row's lock (asked outside any holder's transaction). */
  const lockWaitersNow = async () =>
    (
      await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'
           and query like '%courier_request_slots%'`.execute(database.db)
    ).rows[0]!.n;
  /** Waits until `n` statements reserving a courier's slot wait on its row's lock. */
  const lockWaiters = async (n: number) => {
    while ((await lockWaitersNow()) < n) await new Promise((resolve) => setTimeout(resolve, 20));
  };
  /**
   * Runs `during` while another session holds the courier's slot row (its reservations wait
   * on it); `release` commits, freeing it.
   */
  const whileRowHeld = async (courier: string, during: (release: () => Promise<void>) => Promise<void>) => {
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select * from courier_request_slots where courier = $1 for update', [courier]);
      await during(async () => {
        await holder.query('commit');
      });
    } finally {
      await holder.end();
    }
  };
  /** What a gated request came to: sent, or the error it failed with. */
  const outcomeOf = (sending: Promise<void>): Promise<unknown> =>
    sending.then(
      () => 'sent',
      (err: unknown) => err,
    );

  it('spaces the slots of two workers asking at once 1/rate s apart on Postgres’s clock, so no sliding second holds more than the rate, and reserves none past the wait limit', async () => {
    const spacingUs = requestSpacingUs(3);
    // Twenty requests at once, ten from each worker, at 3 a second.
    const slots = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        reserveCourierSlot(workers[i % 2]!, 'simulator', spacingUs, 60_000),
      ),
    );
    const starts = slots.map((slot) => (slot.reserved ? slot.startAt.getTime() : NaN)).sort((a, b) => a - b);
    expect(starts.every(Number.isFinite)).toBe(true);
    // The first goes now; each start is a third of a second after the one before, so no
    // sliding second holds four (times at the millisecond, as Postgres's are read here).
    expect(Math.min(...slots.map((slot) => (slot.reserved ? slot.waitMs : NaN)))).toBe(0);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(333);
    for (let i = 3; i < starts.length; i++) expect(starts[i]! - starts[i - 3]!).toBeGreaterThanOrEqual(999);
    const last = starts[19]!;
    expect(last - starts[0]!).toBeGreaterThanOrEqual(6_333);

    // The schedule is over 6 s deep: a request that may wait 1 s is refused at once and leaves
    // it as it was; the next one, which may wait longer, gets the slot after the last.
    expect(await reserveCourierSlot(workers[0]!, 'simulator', spacingUs, 1_000)).toEqual({ reserved: false });
    const next = await reserveCourierSlot(workers[1]!, 'simulator', spacingUs, 60_000);
    expect(next.reserved && next.startAt.getTime() - last).toBeGreaterThanOrEqual(333);
    expect(next.reserved && next.startAt.getTime() - last).toBeLessThanOrEqual(334);
    // Another courier has slots of its own.
    expect(await reserveCourierSlot(workers[0]!, 'easyparcel', spacingUs, 1_000)).toMatchObject({
      reserved: true,
      waitMs: 0,
    });
  });

  it('makes a request whose slot is ahead wait for it, spaced across workers, never refuses it within the limit (polls, bookings and cancels alike), and counts each once', async () => {
    const budgets = [capped(0, 4), capped(1, 4)];
    const uses: CourierUse[] = ['poll', 'book', 'release'];
    const passed: number[] = [];
    // Ten requests at once at 4 a second: a quarter of a second apart, the last 2.25 s on.
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        await budgets[i % 2]!.gate('bluedart', uses[i % 3]!)('/track');
        passed.push(Date.now());
      }),
    );
    passed.sort((a, b) => a - b);

    expect(passed[9]! - passed[0]!).toBeGreaterThanOrEqual(2_200);
    // No burst: any five that passed span most of a second (their slots span a whole one; a
    // timer or a statement may run late on a busy machine). A count per clock second let eight
    // through within a few milliseconds of a boundary.
    for (let i = 4; i < passed.length; i++) expect(passed[i]! - passed[i - 4]!).toBeGreaterThan(600);
    expect(await callsCounted('bluedart')).toBe(10);

    // Without the cap, ten requests pass at once.
    const uncapped = createCourierBudget({ db: workers[0]!, dailyBudget: 1_000 });
    const at = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => uncapped.gate('bluedart', 'poll')('/track')));
    expect(Date.now() - at).toBeLessThan(1_000);
  });

  it('fails at once, as not sent, a request whose slot is further away than its wait limit, and gives its budget unit back', async () => {
    const budget = capped(0, 1, 1_500);
    const started = Date.now();
    // Five at once at one a second: slots now, in 1 s, 2 s, 3 s and 4 s; the limit lets the
    // first two through, and the three others are refused at once, not after waiting.
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const outcome = await outcomeOf(budget.gate('fleetbike', 'book')('/book'));
        return { outcome, afterMs: Date.now() - started };
      }),
    );
    const sent = outcomes.filter((o) => o.outcome === 'sent');
    const gaveUp = outcomes.filter((o) => o.outcome instanceof CourierRateWaitError);
    expect(sent).toHaveLength(2);
    expect(gaveUp).toHaveLength(3);
    // Refused before the second one's slot came, not after waiting for it.
    expect(Math.max(...gaveUp.map((o) => o.afterMs))).toBeLessThan(Math.max(...sent.map((o) => o.afterMs)));
    expect(Math.max(...sent.map((o) => o.afterMs))).toBeGreaterThanOrEqual(950);
    const error = gaveUp[0]!.outcome as CourierRateWaitError;
    expect(error.details.notSent).toBe(true);
    expect(error.message).toMatch(/no free request slot within 1.5 s .*not sent/);
    expect(await callsCounted('fleetbike')).toBe(2);
  });

  it('gives requests that queued for the courier’s row slots from when they got it, not from when they asked', async () => {
    const spacingUs = requestSpacingUs(4);
    await reserveCourierSlot(database.db, 'queued', spacingUs, 1_000);
    await whileRowHeld('queued', async (release) => {
      // Three reservations queue for the row for over half a second, past every slot they
      // would have been given from when they asked.
      const queued = Array.from({ length: 3 }, () =>
        reserveCourierSlot(workers[0]!, 'queued', spacingUs, 5_000),
      );
      await lockWaiters(3);
      await new Promise((resolve) => setTimeout(resolve, 600));
      await release();
      const waits = (await Promise.all(queued))
        .map((slot) => (slot.reserved ? slot.waitMs : NaN))
        .sort((a, b) => a - b);

      // From when the row was free: the first at once, the others a quarter of a second apart.
      // Timed from when they asked, each would have waited its slot out after the 0.6 s it had
      // already queued, and started that much late: bunched up with whoever came after on time.
      expect(waits[0]).toBeLessThanOrEqual(50);
      expect(waits[1]).toBeGreaterThanOrEqual(200);
      expect(waits[1]).toBeLessThanOrEqual(320);
      expect(waits[2]).toBeGreaterThanOrEqual(450);
      expect(waits[2]).toBeLessThanOrEqual(570);
    });
  });

  it('gives a request up at its deadline while reserving its slot waits on Postgres (a held row), and a later one goes', async () => {
    await reserveCourierSlot(database.db, 'lineup', requestSpacingUs(5), 1_000);
    // Another session holds the courier's row: the requests' statements wait on it.
    await whileRowHeld('lineup', async (release) => {
      const budget = capped(0, 5, 1_000);
      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 2 }, () => outcomeOf(budget.gate('lineup', 'poll')('/track'))),
      );

      // Both gave up at their deadline, their statements still waiting on the row.
      for (const outcome of outcomes) expect(outcome).toBeInstanceOf(CourierRateWaitError);
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(await callsCounted('lineup')).toBe(0);
      expect(await lockWaitersNow()).toBe(2);
      await release();
      // Their reservations land once the row is free and stay unused; a later request goes
      // after them, within its limit.
      await expect(capped(1, 5, 1_000).gate('lineup', 'poll')('/track')).resolves.toBeUndefined();
      expect(await callsCounted('lineup')).toBe(1);
    });
  });

  it("limits the waits of one gate's requests together, not the time they spend with the courier", async () => {
    const budget = capped(1, 1, 1_000);
    // One booking attempt: its token request goes at once, the courier takes 1.2 s to answer,
    // then the booking request finds its slot free, past the gate's first second.
    const gate = budget.gate('tokenbound', 'book');
    await gate('/oauth/token');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await expect(gate('/book')).resolves.toBeUndefined();
  });

  it("refuses a gate's request once its earlier requests waited its whole limit", async () => {
    const budget = capped(0, 2, 600);
    const gate = budget.gate('exhausted', 'book');
    // Two of one gate: the first now, the second 0.5 s on (its wait counted); a third, whose
    // slot is 0.5 s on again, is further than the 0.1 s left.
    await gate('/oauth/token');
    await gate('/book');
    await expect(gate('/book')).rejects.toBeInstanceOf(CourierRateWaitError);
    expect(await callsCounted('exhausted')).toBe(2);
  });
});
