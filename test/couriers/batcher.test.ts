/**
 * The batcher's caps per courier, which hold a worker's polls since they run as local
 * activities (no task queue limits them): calls in flight, and calls started per second;
 * and how a bulk call the courier refuses as a whole is taken apart under those caps.
 * The courier call is the batcher's own seam (`call`); the adapter is never asked.
 */
import { CourierNotAnsweringError, createTrackBatcher } from '../../src/couriers/batcher';
import {
  CourierCode,
  CourierRefusal,
  CourierRejectedError,
  type CourierAdapter,
  type TrackResult,
} from '../../src/couriers/types';

const adapter = (maxBatch: number): CourierAdapter =>
  ({
    code: CourierCode.EASYPARCEL,
    maxBatch,
    track: () => Promise.reject(new Error('the batcher must call through `call`')),
  }) as unknown as CourierAdapter;

const notFound = (numbers: string[]): TrackResult[] =>
  numbers.map((trackingNumber) => ({ kind: 'not_found', trackingNumber }));

/**
 * A courier that answers after `ms`, recording each call's numbers, when it started and how
 * many were out at once. It refuses a whole request as invalid when it holds one of the `bad`
 * numbers (as EasyParcel answers 422 for one malformed number).
 */
function recordingCall(ms: number, bad: string[] = []) {
  const calls: string[][] = [];
  const starts: number[] = [];
  let out = 0;
  let mostOut = 0;
  const call = async (numbers: string[]) => {
    calls.push(numbers);
    starts.push(Date.now());
    out += 1;
    mostOut = Math.max(mostOut, out);
    await new Promise((resolve) => setTimeout(resolve, ms));
    out -= 1;
    if (numbers.some((n) => bad.includes(n))) {
      throw new CourierRejectedError(
        'the courier refused the tracking request (422)',
        CourierRefusal.INVALID,
      );
    }
    return notFound(numbers);
  };
  return { call, calls, starts, mostOut: () => mostOut };
}

/**
 * A batcher of `maxBatch` numbers a call over `call`: no window and no caps unless given. Each
 * call is sent as it starts (no gate to wait at), unless `gated` says how long it waits first.
 */
const batcherOf = (
  maxBatch: number,
  call: (numbers: string[]) => Promise<TrackResult[]>,
  caps: {
    windowMs?: number;
    concurrency?: number;
    callsPerSecond?: number;
    slowAfterMs?: number;
    onSlow?: (slow: boolean) => void;
    /** How long each call waits at its gate (e.g. for the courier's next request slot) before it is sent (ms). */
    gatedMs?: number;
  },
) =>
  createTrackBatcher({
    adapter: adapter(maxBatch),
    windowMs: caps.windowMs ?? 0,
    concurrency: caps.concurrency ?? Number.POSITIVE_INFINITY,
    ...(caps.callsPerSecond ? { callsPerSecond: caps.callsPerSecond } : {}),
    ...(caps.slowAfterMs ? { slowAfterMs: caps.slowAfterMs } : {}),
    ...(caps.onSlow ? { onSlow: caps.onSlow } : {}),
    call: async (numbers, watch) => {
      if (caps.gatedMs) {
        watch.held();
        await new Promise((resolve) => setTimeout(resolve, caps.gatedMs));
      }
      watch.sent();
      return call(numbers);
    },
  });

/**
 * The most calls started within any one second, as the courier saw them. A start is read a
 * moment after the batcher took its own time for it, a few ms later on a loaded machine: a
 * window a little under a second keeps that jitter from counting the next second's call.
 */
function mostInOneSecond(starts: number[]): number {
  return Math.max(...starts.map((s) => starts.filter((t) => t >= s && t < s + 950).length));
}

describe('track batcher caps', () => {
  it('starts at most callsPerSecond calls in any second, and answers every poll', async () => {
    const courier = recordingCall(10);
    const batcher = batcherOf(1, courier.call, { callsPerSecond: 2 });
    const numbers = ['A1', 'A2', 'A3', 'A4', 'A5'];
    const results = await Promise.all(numbers.map((n) => batcher.track(n)));

    expect(results.map((r) => r.trackingNumber)).toEqual(numbers);
    expect(courier.starts).toHaveLength(5);
    expect(mostInOneSecond(courier.starts)).toBe(2);
    // Five calls at two a second: the fifth starts two seconds after the first (less that jitter).
    expect(courier.starts[4]! - courier.starts[0]!).toBeGreaterThanOrEqual(1_950);
    expect(batcher.waiting).toBe(0);
  });

  it('sends a full batch at once under the per-second cap, and waits for the cap, not the window, when it is reached', async () => {
    const courier = recordingCall(10);
    const batcher = batcherOf(2, courier.call, { windowMs: 60_000, callsPerSecond: 1 });
    const started = Date.now();
    const results = await Promise.all(['B1', 'B2', 'B3', 'B4'].map((n) => batcher.track(n)));

    expect(results).toHaveLength(4);
    // Two full batches of two: the first at once, the second a second later (never the 60 s window).
    expect(courier.starts).toHaveLength(2);
    expect(courier.starts[0]! - started).toBeLessThan(500);
    expect(courier.starts[1]! - courier.starts[0]!).toBeGreaterThanOrEqual(950);
    expect(courier.starts[1]! - started).toBeLessThan(5_000);
  });

  it('keeps at most `concurrency` calls in flight', async () => {
    const courier = recordingCall(200);
    const batcher = batcherOf(1, courier.call, { concurrency: 2 });
    await Promise.all(['C1', 'C2', 'C3', 'C4', 'C5', 'C6'].map((n) => batcher.track(n)));

    expect(courier.starts).toHaveLength(6);
    expect(courier.mostOut()).toBe(2);
  });
});

/**
 * A courier answered by hand: each call waits until the test calls its `answer`, which
 * refuses the whole request as invalid when it holds `bad`.
 */
function answeredByHand(bad?: string) {
  const calls: { numbers: string[]; answer: () => void }[] = [];
  const call = (numbers: string[]) =>
    new Promise<TrackResult[]>((resolve, reject) => {
      calls.push({
        numbers,
        answer: () =>
          bad !== undefined && numbers.includes(bad)
            ? reject(new CourierRejectedError('refused (422)', CourierRefusal.INVALID))
            : resolve(notFound(numbers)),
      });
    });
  return { calls, call };
}

const numbered = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);

/** Every poll's end: its number's result, or the error it was given. */
const outcomes = (polls: Promise<TrackResult>[]) =>
  Promise.all(
    polls.map((p) =>
      p.then(
        (r) => r.trackingNumber,
        (e: Error) => e,
      ),
    ),
  );

describe('a bulk call refused as a whole', () => {
  it('is halved until the refused number is found: one bad number among 16 costs 9 calls, not 17, and fails only its own poll', async () => {
    const numbers = numbered('D', 16);
    const courier = recordingCall(5, ['D11']);
    const batcher = batcherOf(16, courier.call, { windowMs: 50 });
    const ended = await outcomes(numbers.map((n) => batcher.track(n)));

    expect(ended.filter((e) => typeof e === 'string')).toEqual(numbers.filter((n) => n !== 'D11'));
    expect(ended[10]).toBeInstanceOf(CourierRejectedError);
    // 16 refused → 8 + 8 (one refused) → 4 + 4 (one refused) → four calls of one.
    expect(courier.calls.map((c) => c.length)).toEqual([16, 8, 8, 4, 4, 1, 1, 1, 1]);
    expect(batcher.waiting).toBe(0);
  });

  it('asks every part under the caps: calls in flight and calls started per second', async () => {
    const courier = recordingCall(50, ['E2', 'E7']);
    const batcher = batcherOf(8, courier.call, { windowMs: 50, concurrency: 1, callsPerSecond: 3 });
    const ended = await outcomes(numbered('E', 8).map((n) => batcher.track(n)));

    expect(ended.filter((e) => e instanceof CourierRejectedError)).toHaveLength(2);
    // 8 refused → 4 + 4, both refused → eight calls of one: 11 calls, one at a time, three a second.
    expect(courier.calls).toHaveLength(11);
    expect(courier.mostOut()).toBe(1);
    expect(mostInOneSecond(courier.starts)).toBeLessThanOrEqual(3);
    expect(courier.starts.at(-1)! - courier.starts[0]!).toBeGreaterThanOrEqual(2 * 950);
  });

  it('sends a number refused on its own alone from then on, so it spoils no other batch', async () => {
    const courier = recordingCall(5, ['F3']);
    const batcher = batcherOf(4, courier.call, { windowMs: 50 });
    await outcomes(numbered('F', 4).map((n) => batcher.track(n)));
    const before = courier.calls.length;

    // The next round of polls: the refused number is asked on its own, the others together.
    const ended = await outcomes(['F1', 'F2', 'F3', 'F4'].map((n) => batcher.track(n)));
    expect(ended.filter((e) => e instanceof CourierRejectedError)).toHaveLength(1);
    expect(courier.calls.slice(before).sort((a, b) => a.length - b.length)).toEqual([
      ['F3'],
      ['F1', 'F2', 'F4'],
    ]);
  });

  it('takes out alone a number found refused while its batch was out, instead of halving that batch blind', async () => {
    const { calls, call } = answeredByHand('X3');
    const answer = async (numbers: string[]) => {
      calls.find((c) => c.numbers.join() === numbers.join())!.answer();
      await new Promise((resolve) => setImmediate(resolve));
    };
    const batcher = batcherOf(8, call, { windowMs: 60_000 });

    const first = outcomes(numbered('X', 8).map((n) => batcher.track(n)));
    await answer(numbered('X', 8)); // refused: halved
    await answer(['X5', 'X6', 'X7', 'X8']);
    await answer(['X1', 'X2', 'X3', 'X4']); // refused: one by one
    // X3 is polled again, by another workflow, with seven numbers its refusal has not reached yet.
    const second = outcomes(['X3', ...numbered('Y', 7)].map((n) => batcher.track(n)));
    for (const n of ['X1', 'X2', 'X3', 'X4']) await answer([n]);
    const before = calls.length;
    await answer(['X3', ...numbered('Y', 7)]); // refused, and X3 is known by now

    expect(calls.slice(before).map((c) => c.numbers)).toEqual([['X3'], numbered('Y', 7)]);
    for (const c of calls.slice(before)) c.answer();
    expect((await first).filter((e) => e instanceof CourierRejectedError)).toHaveLength(1);
    expect((await second).filter((e) => e instanceof CourierRejectedError)).toHaveLength(1);
  });

  it('sends a refused number after the good polls that are due, not before them', async () => {
    const { calls, call } = answeredByHand('R1');
    const answerNext = async () => {
      calls.at(-1)!.answer();
      await new Promise((resolve) => setImmediate(resolve));
    };
    const batcher = batcherOf(4, call, { windowMs: 60_000, concurrency: 1 });
    // R1 spoils a batch, and is found refused on its own (one call at a time).
    const first = outcomes(['R1', 'P2', 'P3', 'P4'].map((n) => batcher.track(n)));
    for (let i = 0; i < 5; i++) await answerNext();
    await first;

    // A call is out; meanwhile R1 is polled again and a full batch of good polls falls due.
    const second = outcomes(numbered('H', 4).map((n) => batcher.track(n)));
    const third = outcomes(['R1', ...numbered('G', 4)].map((n) => batcher.track(n)));
    for (let i = 0; i < 3; i++) await answerNext();

    expect(calls.slice(-3).map((c) => c.numbers)).toEqual([numbered('H', 4), numbered('G', 4), ['R1']]);
    await second;
    expect((await third).filter((e) => e instanceof CourierRejectedError)).toHaveLength(1);
  });

  it('asks a refused number once for two polls of it waiting together', async () => {
    const courier = recordingCall(5, ['Z9']);
    const batcher = batcherOf(4, courier.call, { windowMs: 20, callsPerSecond: 1 });
    await outcomes([batcher.track('Z9')]);
    const before = courier.calls.length;

    // The per-second cap holds the next call back: both polls wait for it, and share it.
    const ended = await outcomes([batcher.track('Z9'), batcher.track('Z9')]);
    expect(ended.every((e) => e instanceof CourierRejectedError)).toBe(true);
    expect(courier.calls.slice(before)).toEqual([['Z9']]);
  });

  it('is not taken apart when the refusal is not about the request (credentials): every poll gets that error', async () => {
    const calls: string[][] = [];
    const batcher = batcherOf(
      4,
      async (numbers) => {
        calls.push(numbers);
        throw new CourierRejectedError('credentials refused (401)', CourierRefusal.CREDENTIALS);
      },
      { windowMs: 50 },
    );
    const ended = await outcomes(numbered('G', 4).map((n) => batcher.track(n)));

    expect(ended.every((e) => e instanceof CourierRejectedError)).toBe(true);
    expect(calls).toEqual([['G1', 'G2', 'G3', 'G4']]);
  });
});

describe('a courier that stops answering', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Whether a poll has ended (answered or put off) by now. */
  const ended = async (poll: Promise<unknown>) =>
    Promise.race([
      poll.then(
        () => true,
        () => true,
      ),
      sleep(20).then(() => false),
    ]);
  /** A batcher of `maxBatch` over `courier`, with what it told of the courier: true, not answering; false, answering again. */
  function watched<C extends { call: (numbers: string[]) => Promise<TrackResult[]> }>(
    courier: C,
    maxBatch: number,
    caps: { windowMs?: number; concurrency?: number; slowAfterMs: number; gatedMs?: number },
  ) {
    const told: boolean[] = [];
    const batcher = batcherOf(maxBatch, courier.call, { ...caps, onSlow: (slow) => told.push(slow) });
    return { courier, told, batcher };
  }
  /** Resolves once `cond` holds (checked every 5 ms), or fails after 5 s. */
  async function until(cond: () => boolean): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('condition not reached within 5 s');
      await sleep(5);
    }
  }

  it('puts off at once, no call made, the polls waiting for a call and every poll that comes while a call is out past slowAfterMs', async () => {
    const { courier, told, batcher } = watched(answeredByHand(), 2, {
      concurrency: 1,
      windowMs: 30,
      slowAfterMs: 150,
    });
    // One call of two polls goes out and hangs; two more polls wait for the one call slot.
    const inCall = ['H1', 'H2'].map((n) => batcher.track(n));
    const waiting = outcomes(['H3', 'H4'].map((n) => batcher.track(n)));
    expect(courier.calls.map((c) => c.numbers)).toEqual([['H1', 'H2']]);
    await sleep(200);

    // Past slowAfterMs the waiting polls end, each with the retryable put-off error.
    const putOff = await waiting;
    expect(putOff.every((e) => e instanceof CourierNotAnsweringError)).toBe(true);
    expect((putOff[0] as Error).message).toMatch(
      /easyparcel has not answered a call within 0.15 s: .*put off, no call made/,
    );
    expect(told).toEqual([true]);
    // A poll that comes now is put off too, and holds nothing.
    await expect(batcher.track('H5')).rejects.toBeInstanceOf(CourierNotAnsweringError);
    expect(batcher.waiting).toBe(2);
    expect(courier.calls).toHaveLength(1);

    // The call out keeps its polls: when it answers (late), they get its answer.
    courier.calls[0]!.answer();
    expect(await outcomes(inCall)).toEqual(['H1', 'H2']);
    // An answer past slowAfterMs does not count as answering again.
    expect(told).toEqual([true]);
    expect(batcher.waiting).toBe(0);
  });

  it('then sends one call at a time, of one batch, until a call answers within slowAfterMs; then the caps are as before', async () => {
    // slowAfterMs long enough that the call the test answers at once is in time on a loaded machine.
    const { courier, told, batcher } = watched(answeredByHand(), 2, {
      concurrency: 3,
      windowMs: 30,
      slowAfterMs: 1_000,
    });
    const first = batcher.track('P1');
    await until(() => told.length > 0);
    courier.calls[0]!.answer();
    await first;
    expect(told).toEqual([true]);

    // No call is out: polls wait for one again, as many as one call takes (2); the third is put off.
    const probe = ['P2', 'P3'].map((n) => batcher.track(n));
    await expect(batcher.track('P4')).rejects.toBeInstanceOf(CourierNotAnsweringError);
    await until(() => courier.calls.length === 2);
    expect(courier.calls.map((c) => c.numbers)).toEqual([['P1'], ['P2', 'P3']]);
    // While that call is out, more polls are put off rather than stuck behind it.
    await expect(batcher.track('P5')).rejects.toBeInstanceOf(CourierNotAnsweringError);
    expect(await ended(probe[0]!)).toBe(false);

    // It answers in time: the courier answers again, and three calls may be out at once.
    courier.calls[1]!.answer();
    expect(await outcomes(probe)).toEqual(['P2', 'P3']);
    expect(told).toEqual([true, false]);
    const after = numbered('Q', 6).map((n) => batcher.track(n));
    await until(() => courier.calls.length === 5);
    expect(courier.calls.slice(2).map((c) => c.numbers)).toEqual([
      ['Q1', 'Q2'],
      ['Q3', 'Q4'],
      ['Q5', 'Q6'],
    ]);
    for (const c of courier.calls.slice(2)) c.answer();
    expect(await outcomes(after)).toEqual(numbered('Q', 6));
  });

  it('stays not answering when the one call it sends to find out is out past slowAfterMs too: the next poll is the next such call', async () => {
    const { courier, told, batcher } = watched(answeredByHand(), 2, { slowAfterMs: 100 });
    const first = batcher.track('S1');
    await sleep(150);
    courier.calls[0]!.answer();
    await first;
    const second = batcher.track('S2');
    await sleep(150);
    courier.calls[1]!.answer();
    await second;

    // Still not answering: the next poll goes out alone to find out, and the one after it is put off.
    expect(told).toEqual([true]);
    const third = batcher.track('S3');
    await expect(batcher.track('S4')).rejects.toBeInstanceOf(CourierNotAnsweringError);
    expect(courier.calls.map((c) => c.numbers)).toEqual([['S1'], ['S2'], ['S3']]);
    courier.calls[2]!.answer();
    await third;
    expect(told).toEqual([true, false]);
  });

  it('puts off, when the call it sent to find out is out past slowAfterMs, a poll left waiting behind that call', async () => {
    const { courier, told, batcher } = watched(answeredByHand('X'), 4, { windowMs: 50, slowAfterMs: 300 });
    // X is refused on its own: from now on it goes alone.
    const refused = outcomes([batcher.track('X')]);
    await until(() => courier.calls.length === 1);
    courier.calls[0]!.answer();
    expect((await refused)[0]).toBeInstanceOf(CourierRejectedError);
    // A call hangs past slowAfterMs, then ends late: EasyParcel is not answering.
    const hung = batcher.track('H1');
    await until(() => told.length > 0);
    courier.calls[1]!.answer();
    await hung;

    // No call is out: Y and X both wait for one; X, alone, goes first to find out, and Y
    // (its window not yet over) is left waiting behind it.
    const y = outcomes([batcher.track('Y')]);
    const x = outcomes([batcher.track('X')]);
    expect(courier.calls.map((c) => c.numbers)).toEqual([['X'], ['H1'], ['X']]);
    // X's call out past slowAfterMs puts Y off then, not when X's call ends.
    expect((await y)[0]).toBeInstanceOf(CourierNotAnsweringError);
    expect(courier.calls).toHaveLength(3);
    courier.calls[2]!.answer();
    expect((await x)[0]).toBeInstanceOf(CourierRejectedError);
    expect(told).toEqual([true]);
  });

  it('takes one call out past slowAfterMs while calls started after it are answered in time as an outlier: nothing is put off', async () => {
    const { courier, told, batcher } = watched(answeredByHand(), 1, { concurrency: 2, slowAfterMs: 1_000 });
    const t0 = Date.now();
    const polls = [batcher.track('A'), batcher.track('B'), batcher.track('C')];
    // A's call hangs; B's is answered at once, then C's (it waited for B's slot).
    courier.calls[1]!.answer();
    await until(() => courier.calls.length === 3);
    courier.calls[2]!.answer();
    // Later, D's call goes out and E waits for a slot, still so when A's call passes slowAfterMs.
    await sleep(500);
    polls.push(batcher.track('D'), batcher.track('E'));
    await until(() => Date.now() - t0 > 1_100);
    expect(courier.calls.map((c) => c.numbers)).toEqual([['A'], ['B'], ['C'], ['D']]);
    courier.calls[3]!.answer();
    await until(() => courier.calls.length === 5);
    courier.calls[4]!.answer();
    courier.calls[0]!.answer();

    expect(await outcomes(polls)).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(told).toEqual([]);
  });

  it('puts nothing off while the courier answers in time, however many polls wait: a burst of 400 polls, 3 calls of 50 at once', async () => {
    // EasyParcel's polls are aligned to its slots, so a whole slot's polls join at once.
    const { courier, told, batcher } = watched(recordingCall(40), 50, {
      concurrency: 3,
      windowMs: 20,
      slowAfterMs: 1_000,
    });
    const numbers = numbered('B', 400);
    const results = await outcomes(numbers.map((n) => batcher.track(n)));

    expect(results).toEqual(numbers);
    expect(courier.calls).toHaveLength(8);
    expect(courier.mostOut()).toBe(3);
    expect(told).toEqual([]);
  });

  it("does not count a call's wait at its gate (the courier's next request slot) as the courier's time", async () => {
    // Every call waits 600 ms for a second of the courier's, well past slowAfterMs, and then
    // is answered in 40 ms: the courier answers in time (the margins leave room for a loaded machine).
    const { courier, told, batcher } = watched(recordingCall(40), 2, {
      concurrency: 1,
      windowMs: 10,
      slowAfterMs: 300,
      gatedMs: 600,
    });
    const numbers = numbered('G', 6);
    const results = await outcomes(numbers.map((n) => batcher.track(n)));

    expect(results).toEqual(numbers);
    expect(courier.calls).toHaveLength(3);
    expect(told).toEqual([]);
  });

  it('still finds a courier that stops answering after a wait at the gate: the watch runs from the send', async () => {
    const { courier, told, batcher } = watched(answeredByHand(), 2, {
      concurrency: 1,
      windowMs: 10,
      slowAfterMs: 100,
      gatedMs: 250,
    });
    const polls = ['W1', 'W2'].map((n) => batcher.track(n));
    await until(() => told.length > 0);

    expect(told).toEqual([true]);
    expect(courier.calls).toHaveLength(1);
    courier.calls[0]!.answer();
    expect(await outcomes(polls)).toEqual(['W1', 'W2']);
  });

  it("times each request of a call from its own send: a token request, then the call's wait at the gate, then its answer in time", async () => {
    const told: boolean[] = [];
    const courier = recordingCall(40);
    const batcher = createTrackBatcher({
      adapter: adapter(2),
      windowMs: 10,
      concurrency: 1,
      slowAfterMs: 400,
      onSlow: (slow) => told.push(slow),
      call: async (numbers, watch) => {
        watch.sent(); // the token request goes out and is answered in 60 ms
        await sleep(60);
        watch.held(); // the tracking request waits 600 ms for its slot
        await sleep(600);
        watch.sent();
        return courier.call(numbers);
      },
    });
    expect(await outcomes(['T1', 'T2'].map((n) => batcher.track(n)))).toEqual(['T1', 'T2']);
    expect(told).toEqual([]);
  });
});
