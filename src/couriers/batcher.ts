/**
 * Bulk tracking across shipment workflows, inside one worker process: every poll activity of
 * a courier joins that courier's open batch; the batch goes out as one `track` call when it
 * is full (the adapter's `maxBatch`) or its window has passed since the first poll joined,
 * and each poll gets its own number's result — or the call's error — back. The batcher also
 * holds the worker's caps per courier: calls in flight, and calls started per second. The polls
 * stay Temporal's: each is its own attempt with its own retry, so a worker that dies mid-batch
 * loses its polls with their workflow tasks, and Temporal runs them again elsewhere.
 */
import { CourierRefusal, CourierRejectedError, type CourierAdapter, type TrackResult } from './types';

export interface TrackBatcherOptions {
  adapter: CourierAdapter;
  /** How long a batch stays open for more polls after the first one joined (ms); 0: one poll per call. */
  windowMs: number;
  /** Courier calls of this batcher in flight at once; more full batches wait their turn. */
  concurrency: number;
  /** Courier calls this batcher starts in any one second (default: no cap); a due batch waits for the next. */
  callsPerSecond?: number;
  /**
   * Makes the courier call for a batch: the activity layer wraps `adapter.track` with the
   * budget gate and its metrics. Defaults to the bare adapter.
   */
  call?: (trackingNumbers: string[]) => Promise<TrackResult[]>;
}

/** One number's part of a call: its result, or its own error after a refused bulk call was split. */
type Answer = { result: TrackResult } | { error: unknown };

interface Waiter {
  trackingNumber: string;
  /** When the poll joined (ms since the epoch): its batch goes out `windowMs` after the oldest. */
  joinedAt: number;
  resolve: (result: TrackResult) => void;
  reject: (err: unknown) => void;
}

export interface TrackBatcher {
  /** This number's result from the next bulk call (or that call's error). */
  track(trackingNumber: string): Promise<TrackResult>;
  /** Polls waiting for a call (joined, not yet answered). */
  readonly waiting: number;
}

export function createTrackBatcher(opts: TrackBatcherOptions): TrackBatcher {
  const { adapter } = opts;
  const call = opts.call ?? ((numbers: string[]) => adapter.track(numbers));
  const size = Math.max(1, adapter.maxBatch);
  /** Polls not yet in a call, oldest first. */
  const queue: Waiter[] = [];
  let timer: NodeJS.Timeout | null = null;
  let inFlight = 0;
  let answering = 0;
  const perSecond = opts.callsPerSecond ?? Number.POSITIVE_INFINITY;
  /** When the calls of the last second started (ms since the epoch), oldest first. */
  const startedAt: number[] = [];

  /** How long until another call may start under `callsPerSecond` (ms); 0: now. */
  function rateWait(now: number): number {
    while (startedAt.length > 0 && startedAt[0]! <= now - 1_000) startedAt.shift();
    return startedAt.length < perSecond ? 0 : startedAt[0]! + 1_000 - now;
  }

  /** One call for these waiters; a number asked twice (two workflows, one parcel) is asked once. */
  async function send(batch: Waiter[]): Promise<void> {
    const numbers = [...new Set(batch.map((w) => w.trackingNumber))];
    try {
      const answers = await callOrSplit(numbers);
      const byNumber = new Map(numbers.map((n, i) => [n, answers[i]!]));
      for (const w of batch) {
        const answer = byNumber.get(w.trackingNumber)!;
        if ('result' in answer) w.resolve(answer.result);
        else w.reject(answer.error);
      }
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }

  /**
   * A bulk call the courier refuses as a whole as invalid (one malformed number spoils the
   * request) is asked again one number at a time, so only the bad number's poll fails.
   */
  async function callOrSplit(numbers: string[]): Promise<Answer[]> {
    try {
      return (await call(numbers)).map((result) => ({ result }));
    } catch (err) {
      if (
        numbers.length < 2 ||
        !(err instanceof CourierRejectedError) ||
        err.reason !== CourierRefusal.INVALID
      ) {
        throw err;
      }
    }
    const settled = await Promise.allSettled(numbers.map((n) => call([n])));
    return settled.map((s) => (s.status === 'fulfilled' ? { result: s.value[0]! } : { error: s.reason }));
  }

  function pump(): void {
    while (inFlight < opts.concurrency && queue.length > 0) {
      const now = Date.now();
      const due = queue.length >= size || now - queue[0]!.joinedAt >= opts.windowMs;
      if (!due || rateWait(now) > 0) break;
      startedAt.push(now);
      const batch = queue.splice(0, size);
      inFlight += 1;
      answering += batch.length;
      void send(batch).finally(() => {
        inFlight -= 1;
        answering -= batch.length;
        pump();
      });
    }
    arm();
  }

  /** When the armed timer fires (ms since the epoch); null: none armed. */
  let timerAt: number | null = null;

  function arm(): void {
    // A due batch waiting for a free call slot is sent when a call ends, not by the timer.
    if (queue.length === 0 || inFlight >= opts.concurrency) return;
    const now = Date.now();
    const windowLeft = queue.length >= size ? 0 : queue[0]!.joinedAt + opts.windowMs - now;
    const at = now + Math.max(0, windowLeft, rateWait(now));
    // A timer armed for an earlier batch fires in time (pump re-arms); one armed for later (a
    // window that a full batch no longer waits for) is moved up.
    if (timer !== null) {
      if (timerAt! <= at) return;
      clearTimeout(timer);
    }
    timerAt = at;
    timer = setTimeout(() => {
      timer = null;
      timerAt = null;
      pump();
    }, at - now);
    // A pending batch never keeps a worker process alive on its own.
    timer.unref();
  }

  return {
    track(trackingNumber: string): Promise<TrackResult> {
      return new Promise<TrackResult>((resolve, reject) => {
        queue.push({ trackingNumber, joinedAt: Date.now(), resolve, reject });
        pump();
      });
    },
    get waiting() {
      return queue.length + answering;
    },
  };
}
