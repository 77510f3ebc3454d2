/**
 * Scripted answers: the control API's way (`/control/answers`) to make book or cancel calls
 * answer a chosen HTTP status instead of running, each wire format in its own shape (the
 * format routes render it: native.ts, formats/*.ts). A rule touches the next `calls`
 * matching calls, or a `rate` share of them (seeded PRNG, like faults.ts), or, with neither,
 * every matching call until it is cleared.
 *
 * A scripted answer changes nothing in the simulator: a scripted 409 on a cancel says "the
 * courier has the parcel" while the parcel's own scans do not (tracking will not confirm the
 * pickup), and a scripted 4xx on a book means the booking was not made.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { callShare, hash32, removeRules, seededRandom, touches, type CallShare } from './faults';
import { SIM_FORMATS, type SimFormat } from './model';
import { Nullable, SimErrorBody, simError } from './native';

export const ANSWER_OPERATIONS = ['book', 'cancel'] as const;
export type AnswerOperation = (typeof ANSWER_OPERATIONS)[number];

/** Statuses a rule may answer: the refusals the adapters classify, and two outages. */
export const ANSWER_STATUSES = [400, 401, 403, 404, 409, 500, 503] as const;
export type AnswerStatus = (typeof ANSWER_STATUSES)[number];

/** What a caller asks for (the control API's body). */
export interface AnswerInput {
  operation: AnswerOperation;
  status: AnswerStatus;
  /** Cancel only: the number being cancelled. */
  trackingNumber?: string;
  /** The booking's reference: a book's own, or the reference the cancelled parcel was booked with. */
  reference?: string;
  /** Absent or null: every format. */
  format?: SimFormat | null;
  /** The next `calls` matching calls. */
  calls?: number;
  /** A share of matching calls, from 0 to 1. */
  rate?: number;
}

/** A rule as stored and listed; `remainingCalls` and `rate` as in {@link CallShare}. */
export type AnswerRule = {
  operation: AnswerOperation;
  status: AnswerStatus;
  format: SimFormat | null;
  trackingNumber: string | null;
  reference: string | null;
} & CallShare;

/** One book or cancel call, as a rule sees it. */
export interface AnswerCall {
  format: SimFormat;
  operation: AnswerOperation;
  trackingNumber: string | null;
  reference: string | null;
}

interface StoredAnswer {
  key: string;
  /** When the rule was set: among equally specific rules the newest decides. */
  order: number;
  rule: AnswerRule;
  random: () => number;
}

/** A number beats a reference beats a format: the narrower rule decides. */
function specificity(rule: AnswerRule): number {
  return (
    (rule.trackingNumber !== null ? 4 : 0) +
    (rule.reference !== null ? 2 : 0) +
    (rule.format !== null ? 1 : 0)
  );
}

function matches(rule: AnswerRule, call: AnswerCall): boolean {
  return (
    rule.operation === call.operation &&
    (rule.format === null || rule.format === call.format) &&
    (rule.trackingNumber === null || rule.trackingNumber === call.trackingNumber) &&
    (rule.reference === null || rule.reference === call.reference)
  );
}

/** The scripted answers of one simulator. One rule per operation, format, number and reference. */
export class ScriptedAnswers {
  private rules = new Map<string, StoredAnswer>();
  private added = 0;

  constructor(private readonly seed: number) {}

  /** Adds a rule, replacing the one with the same scope. Throws RangeError on a bad rule. */
  set(input: AnswerInput): AnswerRule {
    if (!ANSWER_OPERATIONS.includes(input.operation)) {
      throw new RangeError(`operation must be one of ${ANSWER_OPERATIONS.join(', ')}`);
    }
    if (!ANSWER_STATUSES.includes(input.status)) {
      throw new RangeError(`status must be one of ${ANSWER_STATUSES.join(', ')}`);
    }
    if (input.operation === 'book' && input.trackingNumber !== undefined) {
      throw new RangeError('a booking has no tracking number yet: scope a book answer by reference');
    }
    const rule: AnswerRule = {
      operation: input.operation,
      status: input.status,
      format: input.format ?? null,
      trackingNumber: input.trackingNumber ?? null,
      reference: input.reference ?? null,
      ...callShare(input, 'an answer', { rate: 1, remainingCalls: null }),
    };
    const key = [rule.operation, rule.format ?? '*', rule.trackingNumber ?? '*', rule.reference ?? '*'].join(
      '|',
    );
    this.rules.set(key, {
      key,
      order: this.added++,
      rule,
      random: seededRandom(hash32(`${this.seed}|answer|${key}`)),
    });
    return { ...rule };
  }

  list(): AnswerRule[] {
    return [...this.rules.values()].map(({ rule }) => ({ ...rule }));
  }

  /** Removes rules: all, or one operation's, or one format's. Returns how many. */
  clear(filter: { operation?: AnswerOperation; format?: SimFormat } = {}): number {
    return removeRules(this.rules, filter);
  }

  /**
   * The status to answer `call` with, or null to let it run. The most specific matching
   * rule decides (the newest among equals) and has its "next N calls" budget counted down;
   * a rate rule that draws "no" lets the call run.
   */
  decide(call: AnswerCall): AnswerStatus | null {
    let best: StoredAnswer | null = null;
    for (const stored of this.rules.values()) {
      if (!matches(stored.rule, call)) continue;
      const rank = specificity(stored.rule) - (best ? specificity(best.rule) : -1);
      if (rank > 0 || (rank === 0 && stored.order > best!.order)) best = stored;
    }
    if (!best) return null;
    const touched = touches(best.rule, best.random);
    if (best.rule.remainingCalls === 0) this.rules.delete(best.key);
    return touched ? best.rule.status : null;
  }
}

// ---------------------------------------------------------------------------------------
// Control routes (mounted by server.ts under /control)

const FormatSchema = Type.Enum([...SIM_FORMATS]);
const OperationSchema = Type.Enum([...ANSWER_OPERATIONS]);

const AnswerBody = Type.Object(
  {
    operation: OperationSchema,
    status: Type.Union(ANSWER_STATUSES.map((status) => Type.Literal(status))),
    trackingNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    reference: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    format: Type.Optional(Nullable(FormatSchema)),
    calls: Type.Optional(Type.Integer({ minimum: 1 })),
    rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

const AnswerRuleSchema = Type.Object({
  operation: OperationSchema,
  status: Type.Integer(),
  format: Nullable(FormatSchema),
  trackingNumber: Nullable(Type.String()),
  reference: Nullable(Type.String()),
  rate: Nullable(Type.Number()),
  remainingCalls: Nullable(Type.Integer()),
});

/** `GET`, `POST` and `DELETE /answers`; README.md in this folder shows them in use. */
export const answerRoutes: FastifyPluginAsyncTypebox<{ answers: ScriptedAnswers }> = async (
  app,
  { answers },
) => {
  app.get(
    '/answers',
    { schema: { response: { 200: Type.Object({ answers: Type.Array(AnswerRuleSchema) }) } } },
    async () => ({ answers: answers.list() }),
  );

  app.post(
    '/answers',
    { schema: { body: AnswerBody, response: { 200: AnswerRuleSchema, 400: SimErrorBody } } },
    async (request, reply) => {
      try {
        return answers.set(request.body as AnswerInput);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        return reply.code(400).send(simError('INVALID_ANSWER', err.message));
      }
    },
  );

  app.delete(
    '/answers',
    {
      schema: {
        querystring: Type.Object({
          operation: Type.Optional(OperationSchema),
          format: Type.Optional(FormatSchema),
        }),
        response: { 200: Type.Object({ removed: Type.Integer() }) },
      },
    },
    async (request) => ({ removed: answers.clear(request.query) }),
  );
};
