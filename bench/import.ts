/**
 * Importing parcels already in flight: POSTs a list of `parcels` simulator parcels (numbers
 * the courier simulator adopts on first sight, playing their lifecycles in real time) to
 * /v1/admin/imports on a process stack (API, worker, Temporal dev server, Postgres), follows
 * the import's progress, and counts the courier calls made in the first `minutes` minutes
 * after the POST: the import must not fire one poll per parcel at once, and its first polls
 * must stay within the share of the courier's daily budget the import may use.
 *
 *   npm run bench:import -- [parcels=10000] [minutes=5] [budget=<WAYBILL_COURIER_DAILY_BUDGET>]
 *
 * It follows the import for `minutes` minutes, done or not (`finished` says which; lines/s is
 * over the lines done). Prints progress lines, then one JSON object, and writes
 * bench/results/import.json.
 */
import { randomBytes } from 'node:crypto';
import { IMPORT_BUDGET_SHARE } from '../src/activities/imports';
import { staffToken } from '../src/api/tokens';
import { runMain } from '../src/main-helpers';
import { machine, sleep, writeResult } from './support/measure';
import { startProcessStack } from './support/stack';

const MINUTE = 60_000;

function parseArgs(argv: readonly string[]): { parcels: number; minutes: number; budget: number | null } {
  const [parcels = '10000', minutes = '5', budget] = argv;
  const positive = (text: string, name: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${name} must be a whole number above 0 (got ${text})`);
    return n;
  };
  return {
    parcels: positive(parcels, 'parcels'),
    minutes: positive(minutes, 'minutes'),
    budget: budget === undefined ? null : positive(budget, 'budget'),
  };
}

interface Progress {
  status: string;
  done: number;
  total: number;
  counts: { started: number; alreadyTracked: number; rejected: number };
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  const stack = await startProcessStack({
    name: 'import',
    timeScale: 1,
    stopOnInterrupt: true,
    env: args.budget === null ? {} : { WAYBILL_COURIER_DAILY_BUDGET: String(args.budget) },
    say,
  });
  try {
    const budget = stack.config.courier.dailyBudget;
    const auth = { authorization: `Bearer ${staffToken(stack.config, 'bench', 'admin', 3 * 3_600_000)}` };
    const prefix = String(randomBytes(3).readUIntBE(0, 3) % 1000).padStart(3, '0');
    const parcels = Array.from({ length: args.parcels }, (_, i) => ({
      courier: 'simulator',
      trackingNumber: `SIM${prefix}${String(i).padStart(7, '0')}`,
      orderReference: `OLD-${i}`,
    }));
    const track = () => stack.courier.backend.stats.snapshot().formats.native.byKind.track;
    const callsBefore = track();
    const postedAt = Date.now();
    const res = await fetch(`${stack.apiUrl}/v1/admin/imports`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ parcels }),
    });
    if (res.status !== 202) throw new Error(`import refused: ${res.status} ${await res.text()}`);
    const { importId } = (await res.json()) as { importId: string };
    const acceptedMs = Date.now() - postedAt;
    say(`import ${importId}: ${args.parcels} lines accepted in ${acceptedMs} ms; following it`);

    let progress: Progress | null = null;
    let doneAt: number | null = null;
    const calls: { atMin: number; linesDone: number; calls: number }[] = [];
    // Follows the import for `minutes` minutes whether or not it is done by then (a loaded
    // machine imports slower): the figures say how far it got.
    for (let minute = 1; minute <= args.minutes; minute += 1) {
      while (Date.now() - postedAt < minute * MINUTE) {
        await sleep(2_000);
        const answer = await fetch(`${stack.apiUrl}/v1/admin/imports/${importId}?limit=1`, { headers: auth });
        progress = (await answer.json()) as Progress;
        if (progress.status === 'DONE' && doneAt === null) {
          doneAt = Date.now();
          say(
            `import done: ${JSON.stringify(progress.counts)} in ${((doneAt - postedAt) / 1000).toFixed(1)} s`,
          );
        }
      }
      calls.push({ atMin: minute, linesDone: progress!.done, calls: track() - callsBefore });
      say(
        `minute ${minute}: ${progress!.done}/${progress!.total} lines done, ${track() - callsBefore} courier tracking calls so far`,
      );
    }
    const windowEnd = new Date(postedAt + args.minutes * MINUTE);
    const schedule = await stack.db
      .selectFrom('parcel_import_lines')
      .select((eb) => [
        eb.fn.min('first_poll_at').as('first'),
        eb.fn.max('first_poll_at').as('last'),
        eb.fn.countAll<string>().filterWhere('first_poll_at', '<=', windowEnd).as('due'),
      ])
      .where('import_id', '=', importId)
      .executeTakeFirstOrThrow();
    const firstPollSpanMin =
      schedule.first && schedule.last
        ? (new Date(schedule.last).getTime() - new Date(schedule.first).getTime()) / MINUTE
        : null;
    const seconds = ((doneAt ?? Date.now()) - postedAt) / 1000;
    const linesDone = doneAt === null ? progress!.done : args.parcels;
    const result = {
      parcels: args.parcels,
      minutes: args.minutes,
      finished: doneAt !== null,
      dailyBudgetPerCourier: budget,
      importBudgetShare: IMPORT_BUDGET_SHARE,
      acceptedMs,
      linesDone,
      importSeconds: Number(seconds.toFixed(1)),
      linesPerSecond: Number((linesDone / seconds).toFixed(1)),
      counts: progress!.counts,
      courierCallsByMinute: calls,
      courierCallsInWindow: calls.at(-1)?.calls ?? 0,
      firstPollsDueInWindow: Number(schedule.due),
      firstPollsScheduledOverMinutes: firstPollSpanMin === null ? null : Number(firstPollSpanMin.toFixed(1)),
      machine: machine(),
    };
    const out = writeResult('import', result);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    say(`written to ${out}`);
  } finally {
    await stack.stop();
  }
});
