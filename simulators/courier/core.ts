/**
 * The simulator's core: parcels, clock, faults, scripted answers and counters, shared by every
 * wire format ({@link SimBackend}) and steered by the control routes (control.ts). Also the
 * tracking-number rules (prefixes, adoption, return legs) and the recipient-name scenario hint.
 */
import { createHash } from 'node:crypto';
import { ShipmentStatus } from '../../src/domain/status';
import { ScriptedAnswers, type AnswerOperation } from './answers';
import { SimClock } from './clock';
import { Faults } from './faults';
import {
  SIM_FORMATS,
  type SimBackend,
  type EasyParcelBookingQuirks,
  type SimBookingRequest,
  type SimFormat,
  type SimRecipient,
  type SimScan,
  type SimShipmentView,
  type SimTrackingItem,
} from './model';
import {
  isScenarioName,
  playScenario,
  regionFor,
  routeFor,
  SCENARIO_NAMES,
  SCENARIOS,
  scenarioFor,
  type Route,
  type ScenarioName,
} from './scenarios';
import { CallStats } from './stats';

/** Tracking numbers the simulator issues (and adopts on first sight): prefix + 4 to 20 digits. */
export const NUMBER_PREFIX: Readonly<Record<SimFormat, string>> = {
  native: 'SIM',
  easyparcel: 'EP',
  bluedart: 'BD',
};
const NUMBER_PATTERN: Readonly<Record<SimFormat, RegExp>> = {
  native: /^SIM\d{4,20}$/,
  easyparcel: /^EP\d{4,20}$/,
  bluedart: /^BD\d{4,20}$/,
};

/** The format whose pattern a number matches, if any. */
export function formatOfNumber(trackingNumber: string): SimFormat | null {
  return SIM_FORMATS.find((format) => NUMBER_PATTERN[format].test(trackingNumber)) ?? null;
}

/** The return leg's own number: the parcel's number with an `R` appended. */
export function returnNumberOf(trackingNumber: string): string {
  return `${trackingNumber}R`;
}

interface Parcel {
  trackingNumber: string;
  format: SimFormat;
  scenario: ScenarioName;
  reference: string | null;
  recipient: SimRecipient;
  weightGrams: number | null;
  route: Route;
  /** Courier time the lifecycle started. */
  startCourier: number;
  cancelledAtCourier: number | null;
}

/** A parcel as the control API describes it. */
export interface ParcelInfo {
  trackingNumber: string;
  format: SimFormat;
  scenario: ScenarioName;
  reference: string | null;
  /** Real time the lifecycle started (ISO 8601 UTC). */
  startedAt: string;
  /** Courier-time age now (ms). */
  ageMs: number;
  cancelled: boolean;
  /** The number the return leg gets if the parcel goes back to the shipper. */
  returnTrackingNumber: string;
}

export interface RegisterParcel {
  /** Omitted: the simulator issues a number in the format's pattern. */
  trackingNumber?: string;
  /** Omitted: chosen from the number's hash. */
  scenario?: ScenarioName;
  /** Omitted: from the number's prefix (SIM native, EP easyparcel, BD bluedart), else native. */
  format?: SimFormat;
  /** Real time the lifecycle started (default now); mapped onto courier time by the clock. */
  startedAt?: Date;
  /** Alternative to `startedAt`: the courier-time age the parcel has now (ms). */
  ageMs?: number;
  reference?: string;
}

/** A request the core refuses (answered 4xx by the control and native routes). */
export class SimRequestError extends Error {
  override name = 'SimRequestError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Statuses after which the courier stops promising a delivery date. */
const NO_ETA: ReadonlySet<ShipmentStatus> = new Set([
  ShipmentStatus.DELIVERED,
  ShipmentStatus.EXCEPTION,
  ShipmentStatus.RETURNING,
  ShipmentStatus.RETURNED,
  ShipmentStatus.CANCELLED,
]);

/**
 * The simulator's state and rules, shared by every wire format ({@link SimBackend}) and
 * steered by the control API. Every method is synchronous: a call sees one instant.
 */
export class SimulatorCore implements SimBackend {
  readonly clock: SimClock;
  readonly faults: Faults;
  readonly answers: ScriptedAnswers;
  readonly stats: CallStats;
  private parcels = new Map<string, Parcel>();
  /** `${format}|${reference}` → tracking number: booking is idempotent per reference. */
  private references = new Map<string, string>();
  /** Numbers the courier lost ({@link forget}): never adopted again on sight. */
  private lost = new Set<string>();
  private issued = 0;
  /** EasyParcel's booking behaviours (control API); reset turns them off. */
  readonly easyParcelBooking: EasyParcelBookingQuirks = {
    awbAfterLookups: 0,
    repeatBooksAgain: false,
    unreadableAnswers: 0,
  };

  constructor(opts: { now: () => number; timeScale: number; seed: number }) {
    this.clock = new SimClock(opts.now, opts.timeScale);
    this.faults = new Faults(opts.seed, opts.now);
    this.answers = new ScriptedAnswers(opts.seed);
    this.stats = new CallStats(opts.now);
  }

  // --- SimBackend -------------------------------------------------------------------------

  track(format: SimFormat, trackingNumbers: string[]): SimTrackingItem[] {
    this.stats.tracked(format, trackingNumbers.length);
    return trackingNumbers.map((trackingNumber) => {
      const parcel = this.lookup(format, trackingNumber);
      return parcel ? { found: true, view: this.view(parcel) } : { found: false, trackingNumber };
    });
  }

  book(format: SimFormat, request: SimBookingRequest): { trackingNumber: string } {
    return { trackingNumber: this.bookParcel(format, request).trackingNumber };
  }

  bookAgain(format: SimFormat, request: SimBookingRequest): { trackingNumber: string } {
    return { trackingNumber: this.bookParcel(format, request, undefined, { again: true }).trackingNumber };
  }

  cancel(format: SimFormat, trackingNumber: string): 'cancelled' | 'already_picked_up' | 'not_found' {
    const parcel = this.lookup(format, trackingNumber);
    if (!parcel) return 'not_found';
    if (parcel.cancelledAtCourier !== null) return 'cancelled';
    const { scans } = this.play(parcel);
    if (scans.some((scan) => scan.status !== ShipmentStatus.INFO_RECEIVED)) return 'already_picked_up';
    parcel.cancelledAtCourier = this.clock.courierNow();
    return 'cancelled';
  }

  /** A cancel is matched by its number and by the reference the parcel was booked with. */
  scriptedAnswer(
    format: SimFormat,
    operation: AnswerOperation,
    subject: { trackingNumber?: string; reference?: string },
  ): number | null {
    const trackingNumber = subject.trackingNumber ?? null;
    const reference =
      subject.reference ?? (trackingNumber ? this.parcels.get(trackingNumber)?.reference : null) ?? null;
    const status = this.answers.decide({ format, operation, trackingNumber, reference });
    if (status !== null) this.stats.scripted(format, operation);
    return status;
  }

  // --- Beyond the wire formats --------------------------------------------------------------

  /**
   * Books (or finds the earlier booking of) `request.reference`; `scenario` applies to a new
   * booking only. Without one, a recipient name ending in `[scenario:<name>]` picks it (the
   * simulator's "test card": the demo and API tests steer parcels through the shop's own
   * order form), else the tracking number's hash does. `again`: a new booking even when the
   * reference has one (the reference then names the newest).
   */
  bookParcel(
    format: SimFormat,
    request: SimBookingRequest,
    scenario?: ScenarioName,
    opts: { again?: boolean } = {},
  ): { trackingNumber: string; created: boolean } {
    const key = `${format}|${request.reference}`;
    const existing = this.references.get(key);
    if (existing && this.parcels.has(existing) && !opts.again)
      return { trackingNumber: existing, created: false };
    const trackingNumber = this.issueNumber(format, `book|${key}`);
    this.add({
      trackingNumber,
      format,
      scenario: scenario ?? scenarioHint(request.recipient.name) ?? scenarioFor(trackingNumber),
      reference: request.reference,
      recipient: request.recipient,
      weightGrams: request.weightGrams,
      startCourier: this.clock.courierNow(),
    });
    this.references.set(key, trackingNumber);
    return { trackingNumber, created: true };
  }

  /** Registers a parcel, or restarts an existing one with a new scenario and start. */
  register(input: RegisterParcel): ParcelInfo {
    if (input.scenario !== undefined && !isScenarioName(input.scenario)) {
      throw new SimRequestError(
        400,
        'UNKNOWN_SCENARIO',
        `scenario must be one of ${SCENARIO_NAMES.join(', ')}`,
      );
    }
    if (input.startedAt !== undefined && input.ageMs !== undefined) {
      throw new SimRequestError(400, 'START_TWICE', 'give startedAt or ageMs, not both');
    }
    const format =
      input.format ?? (input.trackingNumber ? formatOfNumber(input.trackingNumber) : null) ?? 'native';
    const trackingNumber =
      input.trackingNumber ?? this.issueNumber(format, `control|${format}|${this.issued}`);
    const startCourier =
      input.ageMs !== undefined
        ? this.clock.courierNow() - input.ageMs
        : this.clock.courierAt(input.startedAt?.getTime() ?? this.clock.now());

    const previous = this.parcels.get(trackingNumber);
    this.lost.delete(trackingNumber); // registered again: known from now on
    const reference = input.reference ?? previous?.reference ?? null;
    if (previous?.reference && previous.reference !== reference) {
      this.references.delete(`${previous.format}|${previous.reference}`);
    }
    this.add({
      trackingNumber,
      format,
      scenario: input.scenario ?? scenarioFor(trackingNumber),
      reference,
      recipient: previous?.format === format ? previous.recipient : null,
      weightGrams: previous?.weightGrams ?? null,
      startCourier,
    });
    if (reference) this.references.set(`${format}|${reference}`, trackingNumber);
    return this.info(this.parcels.get(trackingNumber)!);
  }

  /** A known parcel's description and its view now, without adopting unknown numbers. */
  inspect(trackingNumber: string): { parcel: ParcelInfo; view: SimShipmentView } | null {
    const parcel = this.parcels.get(trackingNumber);
    return parcel ? { parcel: this.info(parcel), view: this.view(parcel) } : null;
  }

  parcelCount(): number {
    return this.parcels.size;
  }

  /**
   * The courier loses a booking: the number and its reference are forgotten, so its calls
   * answer as for any unknown number (a cancel: 404 in each format). Returns whether it was known.
   */
  forget(trackingNumber: string): boolean {
    const parcel = this.parcels.get(trackingNumber);
    if (!parcel) return false;
    this.parcels.delete(trackingNumber);
    this.lost.add(trackingNumber);
    if (parcel.reference) this.references.delete(`${parcel.format}|${parcel.reference}`);
    return true;
  }

  /** Every parcel the simulator knows, booked or registered (fault suites audit the bookings). */
  list(): ParcelInfo[] {
    return [...this.parcels.values()].map((parcel) => this.info(parcel));
  }

  /** Clears counters, faults and scripted answers; with `parcels`, forgets every parcel and booking too. */
  reset(opts: { parcels?: boolean } = {}): void {
    this.stats.reset();
    this.faults.clear();
    this.answers.clear();
    Object.assign(this.easyParcelBooking, {
      awbAfterLookups: 0,
      repeatBooksAgain: false,
      unreadableAnswers: 0,
    });
    if (opts.parcels) {
      this.parcels.clear();
      this.references.clear();
      this.lost.clear();
      this.issued = 0;
    }
  }

  // --- Internals ----------------------------------------------------------------------------

  /**
   * A parcel of `format`, adopting a number in the simulator's own pattern on first sight
   * (its lifecycle starts now). Anything else is unknown.
   */
  private lookup(format: SimFormat, trackingNumber: string): Parcel | null {
    const parcel = this.parcels.get(trackingNumber);
    if (parcel) return parcel.format === format ? parcel : null;
    if (!NUMBER_PATTERN[format].test(trackingNumber) || this.lost.has(trackingNumber)) return null;
    return this.add({
      trackingNumber,
      format,
      scenario: scenarioFor(trackingNumber),
      reference: null,
      recipient: null,
      weightGrams: null,
      startCourier: this.clock.courierNow(),
    });
  }

  private add(
    input: Omit<Parcel, 'route' | 'recipient' | 'cancelledAtCourier'> & { recipient: SimRecipient | null },
  ): Parcel {
    const region = regionFor(input.format, input.recipient?.country ?? null);
    const { route, recipient } = routeFor(input.trackingNumber, region, input.recipient);
    const parcel: Parcel = { ...input, route, recipient, cancelledAtCourier: null };
    this.parcels.set(parcel.trackingNumber, parcel);
    return parcel;
  }

  /** Prefix + 10 digits from a hash of `seedText`: the same booking gets the same number every run. */
  private issueNumber(format: SimFormat, seedText: string): string {
    this.issued++;
    let value =
      BigInt(`0x${createHash('sha256').update(seedText).digest('hex').slice(0, 15)}`) % 10_000_000_000n;
    for (;;) {
      const candidate = `${NUMBER_PREFIX[format]}${value.toString().padStart(10, '0')}`;
      if (!this.parcels.has(candidate)) return candidate;
      value = (value + 1n) % 10_000_000_000n;
    }
  }

  private play(parcel: Parcel): { scans: SimScan[]; returnScans: SimScan[] } {
    const courierNow = this.clock.courierNow();
    const until =
      parcel.cancelledAtCourier === null ? courierNow : Math.min(courierNow, parcel.cancelledAtCourier);
    return playScenario(SCENARIOS[parcel.scenario], {
      ageMs: until - parcel.startCourier,
      route: parcel.route,
      scanDate: (afterMs) => new Date(this.clock.realAt(parcel.startCourier + afterMs)),
    });
  }

  private view(parcel: Parcel): SimShipmentView {
    const { scans, returnScans } = this.play(parcel);
    if (parcel.cancelledAtCourier !== null) {
      scans.push({
        status: ShipmentStatus.CANCELLED,
        subStatus: null,
        text: 'Shipment cancelled by shipper',
        at: new Date(this.clock.realAt(parcel.cancelledAtCourier)),
        location: { ...parcel.route.origin },
      });
    }
    const last = scans[scans.length - 1];
    const etaAfter = SCENARIOS[parcel.scenario].etaAfter;
    const returning = scans.some((scan) => scan.status === ShipmentStatus.RETURNING);
    return {
      trackingNumber: parcel.trackingNumber,
      reference: parcel.reference,
      recipient: { ...parcel.recipient },
      scans,
      eta:
        etaAfter !== null && !(last && NO_ETA.has(last.status))
          ? new Date(this.clock.realAt(parcel.startCourier + etaAfter))
          : null,
      returnTrackingNumber: returning ? returnNumberOf(parcel.trackingNumber) : null,
      returnScans: returning ? returnScans : [],
    };
  }

  private info(parcel: Parcel): ParcelInfo {
    return {
      trackingNumber: parcel.trackingNumber,
      format: parcel.format,
      scenario: parcel.scenario,
      reference: parcel.reference,
      startedAt: new Date(this.clock.realAt(parcel.startCourier)).toISOString(),
      ageMs: Math.max(0, Math.floor(this.clock.courierNow() - parcel.startCourier)),
      cancelled: parcel.cancelledAtCourier !== null,
      returnTrackingNumber: returnNumberOf(parcel.trackingNumber),
    };
  }
}

/** The scenario named in a recipient name like `Ana Lim [scenario:return_to_origin]`, if any. */
export function scenarioHint(name: string | null | undefined): ScenarioName | undefined {
  const match = /\[scenario:([a-z_]+)\]\s*$/.exec(name ?? '');
  return match && isScenarioName(match[1]) ? match[1] : undefined;
}
