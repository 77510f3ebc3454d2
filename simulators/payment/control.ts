/** The payment simulator's control API (`/control`): faults, counters, settings and payment state. Never counted, never faulted. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { PaymentRejection } from '../../src/payments/types';
import { PAYMENT_FAULT_KINDS, type PaymentFaultInput } from './faults';
import {
  ErrorBody,
  FaultBody,
  FaultRuleView,
  faultView,
  OperationSchema,
  PaymentView,
  RefParams,
  SettingsBody,
  SettingsView,
  StatsView,
} from './schemas';
import type { PaymentSimulatorSettings, PaymentSimulatorState } from './state';
import { simError } from './wire';

export const controlRoutes: FastifyPluginAsyncTypebox<{ state: PaymentSimulatorState }> = async (
  control,
  { state },
) => {
  control.get(
    '/faults',
    { schema: { response: { 200: Type.Object({ faults: Type.Array(FaultRuleView) }) } } },
    async () => ({ faults: state.faults.list().map((rule) => faultView(rule, state.now())) }),
  );

  control.post(
    '/faults',
    { schema: { body: FaultBody, response: { 200: FaultRuleView, 400: ErrorBody } } },
    async (request, reply) => {
      try {
        return faultView(state.faults.set(request.body as PaymentFaultInput), state.now());
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        return reply.code(400).send(simError('invalid_request_error', 'invalid_fault', err.message));
      }
    },
  );

  control.delete(
    '/faults',
    {
      schema: {
        querystring: Type.Object({
          kind: Type.Optional(Type.Enum([...PAYMENT_FAULT_KINDS])),
          operation: Type.Optional(OperationSchema),
        }),
        response: { 200: Type.Object({ removed: Type.Integer() }) },
      },
    },
    async (request) => ({ removed: state.faults.clear(request.query) }),
  );

  control.get('/stats', { schema: { response: { 200: StatsView } } }, async () => state.stats());

  control.get('/settings', { schema: { response: { 200: SettingsView } } }, async () => state.settings());

  control.put(
    '/settings',
    { schema: { body: SettingsBody, response: { 200: SettingsView } } },
    async (request) => state.configure(request.body as Partial<PaymentSimulatorSettings>),
  );

  control.get(
    '/payments',
    {
      schema: {
        querystring: Type.Object({ orderId: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ payments: Type.Array(PaymentView) }) },
      },
    },
    async (request) => ({ payments: state.paymentsOf(request.query.orderId) }),
  );

  control.get(
    '/payments/:ref',
    { schema: { params: RefParams, response: { 200: PaymentView, 404: ErrorBody } } },
    async (request, reply) => {
      const payment = state.payment(request.params.ref);
      if (payment) return payment;
      return reply
        .code(404)
        .send(
          simError(
            'invalid_request_error',
            PaymentRejection.NOT_FOUND,
            `No such payment: '${request.params.ref}'`,
          ),
        );
    },
  );

  control.post(
    '/reset',
    {
      schema: {
        querystring: Type.Object({ payments: Type.Optional(Type.Enum(['true', 'false'])) }),
        response: { 200: Type.Object({ payments: Type.Integer() }) },
      },
    },
    async (request) => {
      state.reset({ payments: request.query.payments === 'true' });
      return { payments: state.paymentCount() };
    },
  );
};
