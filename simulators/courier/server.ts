/**
 * The courier simulator: one small HTTP server speaking the native format (`/native`),
 * EasyParcel (`/easyparcel`) and Blue Dart (`/bluedart`), with a control API (`/control`)
 * that tests, the demo and the benchmarks use to script parcels, change the time scale,
 * inject faults and read call counts. State lives in memory; see README.md in this folder.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import { Type, type Static } from 'typebox';
import { ShipmentStatus } from '../../src/domain/status';
import type { Logger } from '../../src/logger';
import { answerRoutes, ScriptedAnswers, type AnswerOperation } from './answers';
import { SimClock } from './clock';
import { FAULT_KINDS, Faults, spoilBody, type FaultInput, type FaultKind, type FaultRule } from './faults';
import { registerBlueDartRoutes, type BlueDartRouteOptions } from './formats/bluedart';
import { registerEasyParcelRoutes } from './formats/easyparcel';
import {
  SIM_FORMATS,
  type SimBackend,
  type SimBookingRequest,
  type SimFormat,
  type SimRecipient,
  type SimScan,
  type SimShipmentView,
  type SimTrackingItem,
} from './model';
import { nativeRoutes, Nullable, ScenarioSchema, SimErrorBody, simError } from './native';
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

export { SIM_FORMATS };

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

// ---------------------------------------------------------------------------------------
// Call counting

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

// ---------------------------------------------------------------------------------------
// The core: parcels, clock, faults, counters

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
   * order form), else the tracking number's hash does.
   */
  bookParcel(
    format: SimFormat,
    request: SimBookingRequest,
    scenario?: ScenarioName,
  ): { trackingNumber: string; created: boolean } {
    const key = `${format}|${request.reference}`;
    const existing = this.references.get(key);
    if (existing && this.parcels.has(existing)) return { trackingNumber: existing, created: false };
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

// ---------------------------------------------------------------------------------------
// HTTP

const FormatSchema = Type.Enum([...SIM_FORMATS]);

const ParcelInfoSchema = Type.Object({
  trackingNumber: Type.String(),
  format: FormatSchema,
  scenario: ScenarioSchema,
  reference: Nullable(Type.String()),
  startedAt: Type.String(),
  ageMs: Type.Number(),
  cancelled: Type.Boolean(),
  returnTrackingNumber: Type.String(),
});

const ScanSchema = Type.Object({
  status: Type.String(),
  subStatus: Nullable(Type.String()),
  text: Type.String(),
  at: Type.String(),
  location: Type.Object({ city: Type.String(), state: Nullable(Type.String()), country: Type.String() }),
});

const InspectSchema = Type.Object({
  parcel: ParcelInfoSchema,
  view: Type.Object({
    trackingNumber: Type.String(),
    reference: Nullable(Type.String()),
    eta: Nullable(Type.String()),
    scans: Type.Array(ScanSchema),
    returnTrackingNumber: Nullable(Type.String()),
    returnScans: Type.Array(ScanSchema),
  }),
});

const RegisterBody = Type.Object(
  {
    trackingNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' })),
    scenario: Type.Optional(ScenarioSchema),
    format: Type.Optional(FormatSchema),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    ageMs: Type.Optional(Type.Number({ minimum: 0 })),
    reference: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);

const FormatScope = { format: Type.Optional(Nullable(FormatSchema)) };
const FaultBody = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('latency'),
      ...FormatScope,
      ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
      jitterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('error'), ...FormatScope, rate: Type.Number({ minimum: 0, maximum: 1 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('rate_limit'),
      ...FormatScope,
      rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
      retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('outage'),
      ...FormatScope,
      durationMs: Type.Integer({ minimum: 1 }),
      startsInMs: Type.Optional(Type.Integer({ minimum: 0 })),
      status: Type.Optional(Type.Union([Type.Literal(200), Type.Literal(503)])),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('malformed'),
      ...FormatScope,
      rate: Type.Number({ minimum: 0, maximum: 1 }),
      mode: Type.Optional(
        Type.Union([Type.Literal('truncated'), Type.Literal('gzipped'), Type.Literal('mixed')]),
      ),
    },
    { additionalProperties: false },
  ),
]);

/** Every rule in one flat shape (times as ISO strings). */
const FaultRuleSchema = Type.Object({
  kind: Type.String(),
  format: Nullable(FormatSchema),
  ms: Type.Optional(Type.Number()),
  jitterMs: Type.Optional(Type.Number()),
  rate: Type.Optional(Nullable(Type.Number())),
  remainingCalls: Type.Optional(Nullable(Type.Number())),
  retryAfterSeconds: Type.Optional(Type.Number()),
  from: Type.Optional(Type.String()),
  until: Type.Optional(Type.String()),
  active: Type.Optional(Type.Boolean()),
  status: Type.Optional(Type.Number()),
  mode: Type.Optional(Type.String()),
});
type FaultRuleView = Static<typeof FaultRuleSchema>;

const FormatStatsSchema = Type.Object({
  calls: Type.Number(),
  byKind: Type.Record(Type.String(), Type.Number()),
  byStatus: Type.Record(Type.String(), Type.Number()),
  faults: Type.Record(Type.String(), Type.Number()),
  scripted: Type.Object({ book: Type.Number(), cancel: Type.Number() }),
  numbersTracked: Type.Number(),
});
const StatsSchema = Type.Object({
  since: Type.String(),
  calls: Type.Number(),
  formats: Type.Object({
    native: FormatStatsSchema,
    easyparcel: FormatStatsSchema,
    bluedart: FormatStatsSchema,
  }),
});

const ClockSchema = Type.Object({ now: Type.String(), courierNow: Type.String(), timeScale: Type.Number() });

function faultView(rule: FaultRule, now: number): FaultRuleView {
  if (rule.kind !== 'outage') return { ...rule };
  return {
    kind: rule.kind,
    format: rule.format,
    from: new Date(rule.from).toISOString(),
    until: new Date(rule.until).toISOString(),
    active: rule.from <= now && now < rule.until,
    status: rule.status,
  };
}

function isoScan(scan: SimScan): Static<typeof ScanSchema> {
  return { ...scan, at: scan.at.toISOString() };
}

const controlRoutes: FastifyPluginAsyncTypebox<{ core: SimulatorCore }> = async (app, { core }) => {
  const clockView = () => ({
    now: new Date(core.clock.now()).toISOString(),
    courierNow: new Date(core.clock.courierNow()).toISOString(),
    timeScale: core.clock.timeScale,
  });

  app.get('/scenarios', {}, async () => ({ scenarios: SCENARIO_NAMES.map((name) => SCENARIOS[name]) }));

  app.post(
    '/parcels',
    { schema: { body: RegisterBody, response: { 200: ParcelInfoSchema } } },
    async (request) => {
      const { startedAt, ...rest } = request.body;
      return core.register({
        ...rest,
        ...(startedAt !== undefined ? { startedAt: new Date(startedAt) } : {}),
      });
    },
  );

  app.get(
    '/parcels/:trackingNumber',
    {
      schema: {
        params: Type.Object({ trackingNumber: Type.String() }),
        response: { 200: InspectSchema, 404: SimErrorBody },
      },
    },
    async (request, reply) => {
      const found = core.inspect(request.params.trackingNumber);
      if (!found) {
        return reply.code(404).send(simError('NOT_FOUND', `no parcel ${request.params.trackingNumber}`));
      }
      const { view } = found;
      return {
        parcel: found.parcel,
        view: {
          trackingNumber: view.trackingNumber,
          reference: view.reference,
          eta: view.eta?.toISOString() ?? null,
          scans: view.scans.map(isoScan),
          returnTrackingNumber: view.returnTrackingNumber,
          returnScans: view.returnScans.map(isoScan),
        },
      };
    },
  );

  app.delete(
    '/parcels/:trackingNumber',
    {
      schema: {
        params: Type.Object({ trackingNumber: Type.String() }),
        response: { 200: Type.Object({ forgotten: Type.Literal(true) }), 404: SimErrorBody },
      },
    },
    async (request, reply) => {
      if (!core.forget(request.params.trackingNumber)) {
        return reply.code(404).send(simError('NOT_FOUND', `no parcel ${request.params.trackingNumber}`));
      }
      return { forgotten: true as const };
    },
  );

  app.get('/clock', { schema: { response: { 200: ClockSchema } } }, async () => clockView());

  app.put(
    '/clock',
    {
      schema: {
        body: Type.Object(
          { timeScale: Type.Number({ exclusiveMinimum: 0, maximum: 10_000_000 }) },
          { additionalProperties: false },
        ),
        response: { 200: ClockSchema },
      },
    },
    async (request) => {
      core.clock.setTimeScale(request.body.timeScale);
      return clockView();
    },
  );

  app.get(
    '/faults',
    { schema: { response: { 200: Type.Object({ faults: Type.Array(FaultRuleSchema) }) } } },
    async () => ({
      faults: core.faults.list().map((rule) => faultView(rule, core.clock.now())),
    }),
  );

  app.post(
    '/faults',
    { schema: { body: FaultBody, response: { 200: FaultRuleSchema } } },
    async (request) => {
      try {
        return faultView(core.faults.set(request.body as FaultInput), core.clock.now());
      } catch (err) {
        if (err instanceof RangeError) throw new SimRequestError(400, 'INVALID_FAULT', err.message);
        throw err;
      }
    },
  );

  app.delete(
    '/faults',
    {
      schema: {
        querystring: Type.Object({
          kind: Type.Optional(Type.Enum([...FAULT_KINDS])),
          format: Type.Optional(FormatSchema),
        }),
        response: { 200: Type.Object({ removed: Type.Number() }) },
      },
    },
    async (request) => ({ removed: core.faults.clear(request.query) }),
  );

  await app.register(answerRoutes, { answers: core.answers });

  app.get('/stats', { schema: { response: { 200: StatsSchema } } }, async () => core.stats.snapshot());

  app.post(
    '/reset',
    {
      schema: {
        querystring: Type.Object({ parcels: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ parcels: Type.Number() }) },
      },
    },
    async (request) => {
      core.reset({ parcels: request.query.parcels === true });
      return { parcels: core.parcelCount() };
    },
  );
};

/** Latency faults sleep on real timers; stopping the server wakes every sleeper at once. */
class Sleeper {
  private waiting = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => entry.wake(), ms),
        wake: () => {
          clearTimeout(entry.timer);
          this.waiting.delete(entry);
          resolve();
        },
      };
      this.waiting.add(entry);
    });
  }

  wakeAll(): void {
    for (const entry of [...this.waiting]) entry.wake();
  }
}

const FORMAT_PREFIX = /^\/(native|easyparcel|bluedart)(?:[/?]|$)/;

/** The format a request is addressed to, from its URL; null for control and anything else. */
export function formatOfRequest(url: string): SimFormat | null {
  return (FORMAT_PREFIX.exec(url)?.[1] as SimFormat | undefined) ?? null;
}

export interface EasyParcelCredentials {
  clientId: string;
  clientSecret: string;
  /** The refresh token the token endpoint accepts. */
  refreshToken: string;
  /** Lifetime of an issued access token, in real seconds. */
  tokenTtlSeconds: number;
}

/** Defaults match src/config's defaults, so `npm start` needs no extra settings. */
export const DEFAULT_EASYPARCEL: EasyParcelCredentials = {
  clientId: 'waybill-dev',
  clientSecret: 'waybill-dev-secret',
  refreshToken: 'waybill-dev-refresh-token',
  tokenTtlSeconds: 3600,
};

export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Courier ms per real ms: 1 real time, 1440 one courier day per real minute. Default 1. */
  timeScale?: number;
  log?: Logger;
  easyParcel?: EasyParcelCredentials;
  /** Blue Dart credentials the calls must carry; default: any are accepted. */
  blueDart?: BlueDartRouteOptions;
  /** Real clock (ms since the epoch); tests inject one to move time without sleeping. */
  now?: () => number;
  /** Seed of every fault PRNG. Default 1. */
  seed?: number;
}

export interface RunningSimulator {
  url: string;
  port: number;
  stop(): Promise<void>;
  backend: SimulatorCore;
}

/** Builds the simulator's Fastify app around a core (not listening). */
export async function buildSimulatorApp(
  core: SimulatorCore,
  opts: Pick<SimulatorOptions, 'log' | 'easyParcel' | 'blueDart'> & { sleeper?: Sleeper } = {},
): Promise<{ app: FastifyInstance; wakeSleepers: () => void }> {
  const sleeper = opts.sleeper ?? new Sleeper();
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log as FastifyBaseLogger } : { logger: false }),
    // Per-request lines would drown the stack's log: thousands of polls in a demo run.
    logController: new LogController({ disableRequestLogging: true }),
    // Coercion reaches query strings only in practice (`?parcels=true`); bodies are JSON.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Faults and counting come first, so they apply to every format's routes alike.
  const spoiled = new WeakMap<FastifyRequest, 'truncated' | 'gzipped'>();
  app.addHook('onRequest', async (request, reply) => {
    const format = formatOfRequest(request.url);
    if (!format) return;
    core.stats.call(format, callKind(request.url));
    const decision = core.faults.decide(format);
    if (decision.delayMs > 0) {
      core.stats.fault(format, 'latency');
      await sleeper.sleep(decision.delayMs);
    }
    if (decision.answer) {
      const { answer } = decision;
      core.stats.fault(format, answer.fault);
      request.log.debug({ format, fault: answer.fault, url: request.url }, 'simulated fault');
      void reply.code(answer.status).headers(answer.headers).type(answer.contentType).send(answer.body);
      return reply;
    }
    if (decision.malformed) spoiled.set(request, decision.malformed);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const format = formatOfRequest(request.url);
    if (!format) return payload;
    const mode = spoiled.get(request);
    let body = payload;
    if (mode && reply.statusCode < 300 && (typeof payload === 'string' || Buffer.isBuffer(payload))) {
      core.stats.fault(format, 'malformed');
      void reply.code(200);
      body = spoilBody(payload, mode);
    }
    core.stats.status(format, reply.statusCode);
    return body;
  });

  app.setErrorHandler((err: FastifyError | SimRequestError, request, reply) => {
    if (err instanceof SimRequestError)
      return reply.code(err.statusCode).send(simError(err.code, err.message));
    if (err.validation) {
      return reply.code(400).send(simError('VALIDATION_FAILED', err.message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500)
      return reply.code(status).send(simError(err.code ?? 'BAD_REQUEST', err.message));
    request.log.error({ err }, 'simulator request failed');
    return reply.code(500).send(simError('INTERNAL', 'simulator error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(simError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  await app.register(controlRoutes, { prefix: '/control', core });
  await app.register(nativeRoutes, { prefix: '/native', core });
  const easyParcel = opts.easyParcel ?? DEFAULT_EASYPARCEL;
  await app.register(
    async (scope) => registerEasyParcelRoutes(scope, core, { ...easyParcel, now: core.clock.now }),
    { prefix: '/easyparcel' },
  );
  await app.register(async (scope) => registerBlueDartRoutes(scope, core, opts.blueDart ?? {}), {
    prefix: '/bluedart',
  });

  return { app, wakeSleepers: () => sleeper.wakeAll() };
}

/** Starts the simulator listening on `host:port` (port 0 picks a free one). */
export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const core = new SimulatorCore({
    now: opts.now ?? Date.now,
    timeScale: opts.timeScale ?? 1,
    seed: opts.seed ?? 1,
  });
  const { app, wakeSleepers } = await buildSimulatorApp(core, opts);
  await app.listen({ host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const urlHost =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    backend: core,
    stop() {
      stopping ??= (async () => {
        wakeSleepers();
        await app.close();
      })();
      return stopping;
    },
  };
}

/** The scenario named in a recipient name like `Ana Lim [scenario:return_to_origin]`, if any. */
export function scenarioHint(name: string | null | undefined): ScenarioName | undefined {
  const match = /\[scenario:([a-z_]+)\]\s*$/.exec(name ?? '');
  return match && isScenarioName(match[1]) ? match[1] : undefined;
}
