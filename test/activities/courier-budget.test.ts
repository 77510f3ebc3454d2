/**
 * The courier's requests per second hold across workers: each worker's budget gate takes its
 * second from Postgres (`courier_request_seconds`), so two workers together start no more than
 * the cap in any one second. A request over it waits for the next second and is never refused,
 * whatever it is for; each is still counted once on the day's budget. Real Postgres; two
 * connection pools stand for two worker processes.
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
import { takeCourierSecond } from '../../src/read-model/courier-usage';
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

  it('grants at most the cap in any second of Postgres’s clock, to two workers asking at once, and tells the rest when the next second starts', async () => {
    const granted: number[] = [];
    // Twenty requests, ten from each worker, each asking again when told to wait.
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        for (;;) {
          const second = await takeCourierSecond(workers[i % 2]!, 'simulator', 3);
          if (second.taken) {
            granted.push(second.secondAt.getTime());
            return;
          }
          expect(second.waitMs).toBeGreaterThan(0);
          expect(second.waitMs).toBeLessThanOrEqual(1_000);
          await new Promise((resolve) => setTimeout(resolve, second.waitMs));
        }
      }),
    );

    const perSecond = new Map<number, number>();
    for (const at of granted) perSecond.set(at, (perSecond.get(at) ?? 0) + 1);
    expect(granted).toHaveLength(20);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(3);
    // 20 at 3 a second: seven seconds at least.
    expect(perSecond.size).toBeGreaterThanOrEqual(7);
    // Another courier has seconds of its own.
    expect(await takeCourierSecond(workers[0]!, 'easyparcel', 3)).toMatchObject({ taken: true });
  });

  it('makes a request over the cap wait for the next second, never refuses it (polls, bookings and cancels alike), and counts each once', async () => {
    const budgets = [capped(0, 4), capped(1, 4)];
    const uses: CourierUse[] = ['poll', 'book', 'release'];
    const started = Date.now();
    // Ten requests at 4 a second: the last two wait for the third second.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => budgets[i % 2]!.gate('bluedart', uses[i % 3]!)('/track')),
    );
    const tookMs = Date.now() - started;

    expect(tookMs).toBeGreaterThanOrEqual(1_000);
    expect(await callsCounted('bluedart')).toBe(10);

    // Without the cap, ten requests pass at once.
    const uncapped = createCourierBudget({ db: workers[0]!, dailyBudget: 1_000 });
    const at = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => uncapped.gate('bluedart', 'poll')('/track')));
    expect(Date.now() - at).toBeLessThan(1_000);
  });

  it('fails a request that waited its limit for a free second as not sent, and gives its budget unit back', async () => {
    const budget = capped(0, 1, 1_500);
    // Five at once at one a second: the first goes now, the second at the next second, the third
    // a second later (within the limit only when the first second was half gone), the rest
    // past the limit.
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        budget
          .gate(
            'fleetbike',
            'book',
          )('/book')
          .then(
            () => 'sent',
            (err: unknown) => err,
          ),
      ),
    );
    const sent = outcomes.filter((o) => o === 'sent');
    const gaveUp = outcomes.filter((o) => o instanceof CourierRateWaitError) as CourierRateWaitError[];
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(3);
    expect(sent.length + gaveUp.length).toBe(5);
    expect(gaveUp[0]!.details.notSent).toBe(true);
    expect(gaveUp[0]!.message).toMatch(/no free second within 1.5 s .*not sent/);
    expect(await callsCounted('fleetbike')).toBe(sent.length);
  });

  it('takes a request out of the line at its deadline, even while the one ahead of it still waits on Postgres', async () => {
    await takeCourierSecond(database.db, 'lineup', 5);
    // Another session holds the courier's row: the first request's statement waits on it.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`select * from courier_request_seconds where courier = 'lineup' for update`);
      const budget = capped(0, 5, 1_000);
      const first = budget.gate('lineup', 'poll')('/track');
      // The first is at the head of the line once its statement waits on the held row (asked
      // outside the holder's transaction, whose view of pg_stat_activity would stand still).
      for (;;) {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock'
             and query like '%courier_request_seconds%'`.execute(database.db);
        if (rows[0]!.n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const started = Date.now();
      const second = await budget
        .gate(
          'lineup',
          'poll',
        )('/track')
        .then(
          () => 'sent',
          (err: unknown) => err,
        );

      // It gave up at its deadline, the first still waiting: no second was to be had in time.
      expect(second).toBeInstanceOf(CourierRateWaitError);
      expect(Date.now() - started).toBeLessThan(2_500);
      await holder.query('commit');
      // The first was asking already: it gets its second once the row is free.
      await first;
    } finally {
      await holder.end();
    }
  });

  it("limits the waits of one gate's requests together, not the time they spend with the courier", async () => {
    const budget = capped(1, 1, 1_000);
    // One booking attempt: its token request goes at once, the courier takes 1.2 s to answer,
    // then the booking request finds a new second free, past the gate's first second.
    const gate = budget.gate('tokenbound', 'book');
    await gate('/oauth/token');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await expect(gate('/book')).resolves.toBeUndefined();
  });
});
