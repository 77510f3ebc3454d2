/** The payment simulator's TypeBox schemas: its API's bodies and answers, and the control routes'. */
import { Type, type TSchema } from 'typebox';
import { PAYMENT_OPERATIONS, PAYMENT_STATUSES, type PaymentOperation } from '../../src/payments/types';
import type { PaymentFaultRule } from './faults';
import { PAYMENT_REJECTIONS } from './wire';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Largest amount one call accepts, in minor units (Stripe's limit for most currencies). */
export const MAX_AMOUNT = 99_999_999;

export const ErrorBody = Type.Object({
  error: Type.Object({
    type: Type.String(),
    code: Type.String(),
    message: Type.String(),
    declineCode: Type.Optional(Type.String()),
  }),
});

export const RefundView = Type.Object({
  id: Type.String(),
  amount: Type.Integer(),
  createdAt: Type.String(),
  metadata: Type.Record(Type.String(), Type.String()),
});

export const PaymentView = Type.Object({
  id: Type.String(),
  orderId: Type.String(),
  status: Type.Enum([...PAYMENT_STATUSES]),
  currency: Type.String(),
  amountAuthorised: Type.Integer(),
  amountCaptured: Type.Integer(),
  /** The Idempotency-Key the capture came with; null while nothing is captured. */
  captureKey: Type.Union([Type.String(), Type.Null()]),
  amountRefunded: Type.Integer(),
  voided: Type.Boolean(),
  expired: Type.Boolean(),
  createdAt: Type.String(),
  refunds: Type.Array(RefundView),
});

export const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT });

export const AuthoriseBody = Type.Object(
  {
    orderId: Type.String({ minLength: 1, maxLength: 128 }),
    amount: Amount,
    currency: Type.String({ pattern: '^[A-Za-z]{3}$' }),
    card: Type.Union([
      Type.Object(
        {
          number: Type.String({ pattern: '^[0-9]{12,19}$' }),
          expMonth: Type.Integer({ minimum: 1, maximum: 12 }),
          expYear: Type.Integer({ minimum: 2000, maximum: 2199 }),
          cvc: Type.String({ pattern: '^[0-9]{3,4}$' }),
        },
        { additionalProperties: false },
      ),
      Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
);

export const AmountBody = Type.Object({ amount: Amount }, { additionalProperties: false });

/** Stripe's shape: up to 50 keys of up to 40 characters, values of up to 500. */
export const Metadata = Type.Record(
  Type.String({ minLength: 1, maxLength: 40 }),
  Type.String({ maxLength: 500 }),
  {
    maxProperties: 50,
  },
);

export const RefundBody = Type.Object(
  { amount: Amount, metadata: Type.Optional(Metadata) },
  { additionalProperties: false },
);

/** Every operation needs a key: the saga depends on it, so a call without one is a bug. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.String({ minLength: 1, maxLength: 255 }),
});

export const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 64 }) });

/** Responses every operation may give besides its success. */
export const Failures = { '4xx': ErrorBody, '5xx': ErrorBody };

export const OperationSchema = Type.Enum([...PAYMENT_OPERATIONS]);
export const OperationScope = { operation: Type.Optional(Nullable(OperationSchema)) };

export const FaultBody = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('timeout'),
      ...OperationScope,
      ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('error'),
      ...OperationScope,
      rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('outage'),
      ...OperationScope,
      durationMs: Type.Integer({ minimum: 1 }),
      startsInMs: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('reject'),
      ...OperationScope,
      code: Type.Enum([...PAYMENT_REJECTIONS]),
      rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      calls: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
]);

export const SettingsView = Type.Object({ authorisationTtlMs: Nullable(Type.Integer()) });

export const SettingsBody = Type.Object(
  { authorisationTtlMs: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))) },
  { additionalProperties: false },
);

/** Every rule in one flat shape (outage times as ISO strings). */
export const FaultRuleView = Type.Object({
  kind: Type.String(),
  operation: Nullable(OperationSchema),
  code: Type.Optional(Type.String()),
  ms: Type.Optional(Type.Number()),
  rate: Type.Optional(Nullable(Type.Number())),
  remainingCalls: Type.Optional(Nullable(Type.Number())),
  from: Type.Optional(Type.String()),
  until: Type.Optional(Type.String()),
  active: Type.Optional(Type.Boolean()),
});

export const PerOperation = Type.Object(
  Object.fromEntries(PAYMENT_OPERATIONS.map((op) => [op, Type.Integer()])) as Record<
    PaymentOperation,
    ReturnType<typeof Type.Integer>
  >,
);

export const StatsView = Type.Object({
  since: Type.String(),
  calls: PerOperation,
  applied: PerOperation,
  replays: PerOperation,
  declines: Type.Integer(),
  faults: Type.Record(Type.String(), Type.Integer()),
  byStatus: Type.Record(Type.String(), Type.Integer()),
  payments: Type.Record(
    Type.String(),
    Type.Object({
      orderId: Type.String(),
      authorised: Type.Integer(),
      captured: Type.Integer(),
      refunded: Type.Integer(),
      voided: Type.Boolean(),
      expired: Type.Boolean(),
    }),
  ),
});

export function faultView(rule: PaymentFaultRule, now: number) {
  if (rule.kind !== 'outage') return { ...rule };
  return {
    kind: rule.kind,
    operation: rule.operation,
    from: new Date(rule.from).toISOString(),
    until: new Date(rule.until).toISOString(),
    active: rule.from <= now && now < rule.until,
  };
}
