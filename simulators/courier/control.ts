/**
 * The control API under `/control`: tests, the demo and the benchmarks script parcels, read
 * and change the clock, inject faults, script answers and read call counts. Control calls are
 * never counted as courier calls.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { answerRoutes } from './answers';
import { SimRequestError, type SimulatorCore } from './core';
import { FAULT_KINDS, type FaultInput, type FaultRule } from './faults';
import { SIM_FORMATS, type SimScan } from './model';
import { Nullable, ScenarioSchema, SimErrorBody, simError } from './native';
import { SCENARIO_NAMES, SCENARIOS } from './scenarios';

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

export const controlRoutes: FastifyPluginAsyncTypebox<{ core: SimulatorCore }> = async (app, { core }) => {
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

  // EasyParcel's booking behaviours (model.ts EasyParcelBookingQuirks), off until switched on here.
  const EasyParcelBookingSchema = Type.Object({
    awbAfterLookups: Type.Integer({ minimum: 0, maximum: 100 }),
    repeatBooksAgain: Type.Boolean(),
    unreadableAnswers: Type.Integer({ minimum: 0, maximum: 100 }),
  });
  app.put(
    '/easyparcel/booking',
    {
      schema: {
        body: Type.Partial(EasyParcelBookingSchema, { additionalProperties: false }),
        response: { 200: EasyParcelBookingSchema },
      },
    },
    async (request) => Object.assign(core.easyParcelBooking, request.body),
  );

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
