/**
 * Bulk tracking across shipment workflows, inside one worker process: every poll activity of
 * a courier joins that courier's open batch; the batch goes out as one `track` call when it
 * is full (the adapter's `maxBatch`) or its window has passed since the first poll joined,
 * and each poll gets its own number's result — or the call's error — back. The batcher also
 * holds the worker's caps per courier: calls in flight, and calls started per second, for
 * every call it makes (the calls that find a refused number among a batch's too). The polls
 * stay Temporal's: each is its own attempt with its own retry, so a worker that dies mid-batch
 * loses its polls with their workflow tasks, and Temporal runs them again elsewhere.
 *
 * Each poll waiting here holds a workflow-task slot of the worker (a local activity keeps its
 * workflow task open), so a courier that stops answering must not keep taking them: see
 * `slowAfterMs`.
 */
import {
  CourierRefusal,
  CourierRejectedError,
  CourierUnavailableError,
  type CourierAdapter,
  type TrackResult,
} from './types';

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
   * budget gate and its metrics, and tells `watch` when each request waits at the gate and
   * when it is sent (a wait for the courier's next request slot is not the courier's time). Defaults
   * to the bare adapter.
   */
  call?: (trackingNumbers: string[], watch: CallWatch) => Promise<TrackResult[]>;
  /**
   * A call in flight this long (ms), with no call started after it answered in the meantime,
   * means the courier has stopped answering (default: never). Until the courier answers a call
   * within it again (any answer of its own: found, refused, a 5xx), the polls that were waiting
   * for a call, and every poll that comes, are put off at once with no call made
   * ({@link CourierNotAnsweringError}: retryable, so each waits on its workflow's retry timer
   * instead of in a worker slot that orders and other couriers' parcels need), and one call at
   * a time, of the polls that came while no call was out, finds out whether it answers. Only
   * the calls already out keep their polls' slots, until the adapter's timeout. The time counted
   * is each request's from when it passes the budget gate (`watch.sent`), a token request's
   * too: a wait at the gate for the courier's next request slot (`watch.held`) is not counted.
   */
  slowAfterMs?: number;
  /** Told when the courier stops answering in time (true), and when a call answers in time again (false). */
  onSlow?: (slow: boolean) => void;
}

/**
 * A refused batch of more numbers than this is asked again in two halves (each half that is
 * refused again is halved again); this many or fewer, one number a call. One bad number among
 * n then costs about 2·log2(n) calls instead of n, each under the caps.
 */
export const SPLIT_ONE_BY_ONE_AT = 4;

/** How long a number the courier refused on its own is sent alone (ms): it spoils no batch meanwhile. */
export const REFUSED_ALONE_MS = 60 * 60_000;
/** Refused numbers remembered at most; when full, the oldest is forgotten. */
export const REFUSED_REMEMBERED = 10_000;

interface Waiter {
  trackingNumber: string;
  /** When the poll joined (ms since the epoch): its batch goes out `windowMs` after the oldest. */
  joinedAt: number;
  resolve: (result: TrackResult) => void;
  reject: (err: unknown) => void;
}

/** What a call tells the batcher's watch of it: a request waits at the gate, or has been sent. */
export interface CallWatch {
  /** A request waits at the gate: the courier has nothing to answer yet. */
  held(): void;
  /** A request has passed the gate and gone: the courier's time runs from now. */
  sent(): void;
}

export interface TrackBatcher {
  /** This number's result from the next bulk call (or that call's error). */
  track(trackingNumber: string): Promise<TrackResult>;
  /** Polls waiting for a call (joined, not yet answered). */
  readonly waiting: number;
}

/** A poll put off at once, no call made, while its courier is not answering (see `slowAfterMs`). */
export class CourierNotAnsweringError extends CourierUnavailableError {
  override name = 'CourierNotAnsweringError';
}

/** Whether the courier refused a bulk call as a whole as invalid: one malformed number can spoil it. */
const refusedAsInvalid = (err: unknown) =>
  err instanceof CourierRejectedError && err.reason === CourierRefusal.INVALID;

/**
 * The waiters of a refused batch, regrouped for the calls that find the refused number. A
 * number already known to be refused (`knownBad`: it joined before its own refusal came back)
 * goes alone and the rest together; otherwise the batch is halved, or split one by one.
 */
function splitBatch(batch: Waiter[], knownBad: (trackingNumber: string) => boolean): Waiter[][] {
  const numbers = [...new Set(batch.map((w) => w.trackingNumber))];
  const bad = numbers.filter(knownBad);
  const rest = numbers.filter((n) => !bad.includes(n));
  const half = Math.ceil(numbers.length / 2);
  const groups =
    bad.length > 0 && rest.length > 0
      ? [...bad.map((n) => [n]), rest]
      : numbers.length <= SPLIT_ONE_BY_ONE_AT
        ? numbers.map((n) => [n])
        : [numbers.slice(0, half), numbers.slice(half)];
  return groups.map((group) => batch.filter((w) => group.includes(w.trackingNumber)));
}

export function createTrackBatcher(opts: TrackBatcherOptions): TrackBatcher {
  const { adapter } = opts;
  const call =
    opts.call ??
    ((numbers: string[], watch: CallWatch) => {
      watch.sent();
      return adapter.track(numbers);
    });
  const size = Math.max(1, adapter.maxBatch);
  /** Polls not yet in a call, oldest first. */
  const queue: Waiter[] = [];
  /** The parts of a refused batch, each sent as it is and before the queue: their polls waited longest. */
  const splits: Waiter[][] = [];
  /** Polls of numbers refused lately on their own, one number a batch: sent after a due queue batch. */
  const alone: Waiter[][] = [];
  /** Polls in `splits` and `alone`. */
  let formedWaiting = 0;
  /** Numbers the courier refused on their own, with when that stops counting (ms since the epoch). */
  const refusedUntil = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;
  let inFlight = 0;
  let answering = 0;
  const perSecond = opts.callsPerSecond ?? Number.POSITIVE_INFINITY;
  const slowAfterMs = opts.slowAfterMs ?? Number.POSITIVE_INFINITY;
  /** Whether the courier is not answering: a call outlasted `slowAfterMs`, and none has answered within it since. */
  let slow = false;
  /** When the calls of the last second started (ms since the epoch), oldest first. */
  const startedAt: number[] = [];

  /** How long until another call may start under `callsPerSecond` (ms); 0: now. */
  function rateWait(now: number): number {
    while (startedAt.length > 0 && startedAt[0]! <= now - 1_000) startedAt.shift();
    return startedAt.length < perSecond ? 0 : startedAt[0]! + 1_000 - now;
  }

  function rememberRefused(trackingNumber: string): void {
    refusedUntil.delete(trackingNumber);
    if (refusedUntil.size >= REFUSED_REMEMBERED) refusedUntil.delete(refusedUntil.keys().next().value!);
    refusedUntil.set(trackingNumber, Date.now() + REFUSED_ALONE_MS);
  }

  /** Whether this number was refused on its own lately (and so goes alone). */
  function refusedLately(trackingNumber: string): boolean {
    const until = refusedUntil.get(trackingNumber);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    refusedUntil.delete(trackingNumber);
    return false;
  }

  /** Why a poll is put off, no call made, while the courier is not answering. */
  const notAnswering = () =>
    new CourierNotAnsweringError(
      `${adapter.code} has not answered a call within ${slowAfterMs / 1000} s: polls wait on their workflows' timers until a call answers in time; this one is put off, no call made`,
    );

  function putOff(waiters: Waiter[]): void {
    if (waiters.length === 0) return;
    const err = notAnswering();
    for (const w of waiters) w.reject(err);
  }

  /** When the latest call that the courier answered within `slowAfterMs` started (monotonic ms). */
  let lastTimelyStart = Number.NEGATIVE_INFINITY;

  /**
   * A call started at `started` is out past `slowAfterMs`. Unless a call started after it was
   * answered in time (then this one is an outlier, and the courier answers), the courier is
   * not answering: the polls waiting for a call are put off, and so is every poll that comes.
   * While it is not answering, each call that outlasts it puts off those waiting again: none
   * waits behind a call that hangs.
   */
  function callOutlasted(started: number): void {
    if (lastTimelyStart > started) return;
    const waiting = [...queue.splice(0), ...splits.splice(0).flat(), ...alone.splice(0).flat()];
    formedWaiting = 0;
    const turned = !slow;
    slow = true;
    putOff(waiting);
    if (turned) opts.onSlow?.(true);
  }

  /** Whether the courier itself answered (any answer: found, refused, a 5xx), not a refusal of ours or no connection. */
  const courierAnswered = (err: unknown) =>
    err instanceof CourierRejectedError ||
    (err instanceof CourierUnavailableError && err.details.status !== undefined);

  /**
   * The courier's call, watched (see `slowAfterMs`): one out past it finds the courier not
   * answering; one the courier answers within it finds it answering again.
   */
  async function watchedCall(numbers: string[]): Promise<TrackResult[]> {
    /** When the call's latest request left (monotonic ms); null: none has. */
    let started: number | null = null;
    /** Whether the latest request's watch ran out: the timer decides, not a clock read after it (timers may fire a hair early). */
    let outlasted = false;
    let timer: NodeJS.Timeout | null = null;
    const stop = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    const watch: CallWatch = {
      held: stop,
      sent() {
        stop();
        const at = performance.now();
        started = at;
        outlasted = false;
        if (!Number.isFinite(slowAfterMs)) return;
        timer = setTimeout(() => {
          outlasted = true;
          callOutlasted(at);
        }, slowAfterMs);
        timer.unref();
      },
    };
    let answered = true;
    try {
      return await call(numbers, watch);
    } catch (err) {
      answered = courierAnswered(err);
      throw err;
    } finally {
      stop();
      if (answered && started !== null && !outlasted && performance.now() - started < slowAfterMs) {
        lastTimelyStart = Math.max(lastTimelyStart, started);
        if (slow) {
          slow = false;
          opts.onSlow?.(false);
        }
      }
    }
  }

  /**
   * One call for these waiters; a number asked twice (two workflows, one parcel) is asked once.
   * A call the courier refuses as a whole as invalid is split (see {@link SPLIT_ONE_BY_ONE_AT}):
   * its parts go out as calls of their own, under the same caps, so only the bad number's
   * polls fail, and that number is remembered and sent alone for {@link REFUSED_ALONE_MS}.
   */
  async function send(batch: Waiter[]): Promise<void> {
    const numbers = [...new Set(batch.map((w) => w.trackingNumber))];
    const outcome = await watchedCall(numbers).then(
      (results) => ({ results }),
      (err: unknown) => ({ err }),
    );
    // The call's slot is free before its polls hear back: a poll that comes straight after finds it so.
    inFlight -= 1;
    answering -= batch.length;
    try {
      answer(batch, numbers, outcome);
    } catch (err) {
      // An answer that cannot be handed out (not one result per number): every poll gets why.
      for (const w of batch) w.reject(err);
    } finally {
      pump();
    }
  }

  /** Hands a call's outcome to its polls: each its number's result, or the error, or a split. */
  function answer(
    batch: Waiter[],
    numbers: string[],
    outcome: { results: TrackResult[] } | { err: unknown },
  ) {
    if ('results' in outcome) {
      if (outcome.results.length !== numbers.length) {
        throw new Error(
          `${adapter.code} answered ${outcome.results.length} results for ${numbers.length} numbers`,
        );
      }
      if (numbers.length === 1) refusedUntil.delete(numbers[0]!);
      const byNumber = new Map(numbers.map((n, i) => [n, outcome.results[i]!]));
      for (const w of batch) w.resolve(byNumber.get(w.trackingNumber)!);
    } else if (refusedAsInvalid(outcome.err) && numbers.length > 1) {
      // Taken apart, unless the courier is not answering: then its polls are put off.
      if (slow) putOff(batch);
      else {
        splits.unshift(...splitBatch(batch, refusedLately));
        formedWaiting += batch.length;
      }
    } else {
      if (refusedAsInvalid(outcome.err)) rememberRefused(numbers[0]!);
      for (const w of batch) w.reject(outcome.err);
    }
  }

  /** The first batch of `splits` or `alone`, taken out. */
  function takeFormed(list: Waiter[][]): Waiter[] {
    const batch = list.shift()!;
    formedWaiting -= batch.length;
    return batch;
  }

  /** The next batch to send now, or null (none due, or the per-second cap is reached). */
  function nextBatch(now: number): Waiter[] | null {
    if (rateWait(now) > 0) return null;
    if (splits.length > 0) return takeFormed(splits);
    const due = queue.length > 0 && (queue.length >= size || now - queue[0]!.joinedAt >= opts.windowMs);
    if (due) return queue.splice(0, size);
    // A number refused lately is likely refused again: it waits for the good polls due.
    return alone.length > 0 ? takeFormed(alone) : null;
  }

  /** Calls that may be out at once: while the courier is not answering, one finds out whether it does again. */
  const callCap = () => (slow ? 1 : opts.concurrency);

  function pump(): void {
    while (inFlight < callCap()) {
      const now = Date.now();
      const batch = nextBatch(now);
      if (batch === null) break;
      startedAt.push(now);
      inFlight += 1;
      answering += batch.length;
      void send(batch);
    }
    arm();
  }

  /** When the armed timer fires (ms since the epoch); null: none armed. */
  let timerAt: number | null = null;

  function arm(): void {
    // A due batch waiting for a free call slot is sent when a call ends, not by the timer.
    const formedWaits = splits.length > 0 || alone.length > 0;
    if ((queue.length === 0 && !formedWaits) || inFlight >= callCap()) return;
    const now = Date.now();
    const windowLeft = formedWaits || queue.length >= size ? 0 : queue[0]!.joinedAt + opts.windowMs - now;
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
      // While the courier is not answering, a poll waits for a call only when none is out, and
      // only as many as one call takes; those still waiting when that call outlasts
      // `slowAfterMs` are put off then (none waits long behind a call that hangs).
      if (slow && (inFlight > 0 || queue.length + formedWaiting >= size))
        return Promise.reject(notAnswering());
      return new Promise<TrackResult>((resolve, reject) => {
        const waiter = { trackingNumber, joinedAt: Date.now(), resolve, reject };
        if (refusedLately(trackingNumber)) {
          // Alone, with any other poll of the same number still waiting to go.
          const waiting = alone.find((b) => b[0]!.trackingNumber === trackingNumber);
          if (waiting) waiting.push(waiter);
          else alone.push([waiter]);
          formedWaiting += 1;
        } else {
          queue.push(waiter);
        }
        pump();
      });
    },
    get waiting() {
      return queue.length + formedWaiting + answering;
    },
  };
}
