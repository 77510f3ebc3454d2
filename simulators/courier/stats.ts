/**
 * Counters of courier calls per format (what the control API's `/stats` answers): calls by
 * kind and HTTP status, faults applied, scripted answers, numbers tracked.
 */
import type { AnswerOperation } from './answers';
import { FAULT_KINDS, type FaultKind } from './faults';
import { SIM_FORMATS, type SimFormat } from './model';

export type CallKind = 'track' | 'book' | 'cancel' | 'token' | 'other';
const CALL_KINDS: readonly CallKind[] = ['track', 'book', 'cancel', 'token', 'other'];

/** The kind of a courier call, from its path (the same rule for every format). */
export function callKind(path: string): CallKind {
  const p = path.split('?')[0]!.toLowerCase();
  if (p.includes('token')) return 'token';
  if (p.includes('cancel')) return 'cancel';
  if (p.includes('track') || p.includes('routingservlet')) return 'track';
  if (p.includes('create') || p.includes('generate') || p.endsWith('/shipments')) return 'book';
  return 'other';
}

export interface FormatStats {
  /** Every courier call received, faulted or not. */
  calls: number;
  byKind: Record<CallKind, number>;
  /** HTTP status codes answered. */
  byStatus: Record<string, number>;
  /** Calls a fault touched (latency counts too: the call was slowed, then answered). */
  faults: Record<FaultKind, number>;
  /** Book and cancel calls answered by a scripted answer instead of running. */
  scripted: Record<AnswerOperation, number>;
  /** Tracking numbers asked about in track calls (one call may ask about 100). */
  numbersTracked: number;
}

export interface SimStats {
  /** Real time the counters started (start-up or the last reset). */
  since: string;
  calls: number;
  formats: Record<SimFormat, FormatStats>;
}

function emptyFormatStats(): FormatStats {
  return {
    calls: 0,
    byKind: Object.fromEntries(CALL_KINDS.map((kind) => [kind, 0])) as Record<CallKind, number>,
    byStatus: {},
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    scripted: { book: 0, cancel: 0 },
    numbersTracked: 0,
  };
}

/** Counters of courier calls per format; control calls are never counted. */
export class CallStats {
  private since = 0;
  private formats = {} as Record<SimFormat, FormatStats>;

  constructor(private readonly now: () => number) {
    this.reset();
  }

  reset(): void {
    this.since = this.now();
    this.formats = Object.fromEntries(SIM_FORMATS.map((format) => [format, emptyFormatStats()])) as Record<
      SimFormat,
      FormatStats
    >;
  }

  call(format: SimFormat, kind: CallKind): void {
    this.formats[format].calls++;
    this.formats[format].byKind[kind]++;
  }

  fault(format: SimFormat, kind: FaultKind): void {
    this.formats[format].faults[kind]++;
  }

  scripted(format: SimFormat, operation: AnswerOperation): void {
    this.formats[format].scripted[operation]++;
  }

  status(format: SimFormat, status: number): void {
    const byStatus = this.formats[format].byStatus;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }

  tracked(format: SimFormat, numbers: number): void {
    this.formats[format].numbersTracked += numbers;
  }

  snapshot(): SimStats {
    const formats = structuredClone(this.formats);
    return {
      since: new Date(this.since).toISOString(),
      calls: SIM_FORMATS.reduce((sum, format) => sum + formats[format].calls, 0),
      formats,
    };
  }
}
