/**
 * Payment activities: each calls the provider with a key derived from the order and the
 * saga step (never the attempt), then mirrors the provider's answer into `payments` — except
 * the authorise, whose answer the saga records with its own step (`recordAuthorisation`), so
 * our database being down is retried as our database, not counted against the provider.
 * Running one twice moves no money twice and writes the same row.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { FailureType } from '../domain/failures';
import type { Logger } from '../logger';
import {
  paymentIdempotencyKey,
  PaymentRejectedError,
  PaymentUnavailableError,
  type AuthoriseResult,
  type PaymentBooks,
  type PaymentCard,
  type PaymentProvider,
} from '../payments/types';
import { insertPayment, mirrorPayment } from '../read-model/payments';

export interface PaymentActivityDeps {
  db: Kysely<Database>;
  payments: PaymentProvider;
  providerName: string;
  log: Logger;
}

/** Provider refusals are final; outages retry with the same key. */
function asFailure(err: unknown): unknown {
  if (err instanceof PaymentRejectedError) {
    return ApplicationFailure.create({
      type: FailureType.PAYMENT_REJECTED,
      message: err.message,
      details: [{ code: err.code }],
      nonRetryable: true,
    });
  }
  if (err instanceof PaymentUnavailableError) {
    return ApplicationFailure.create({ type: FailureType.PAYMENT_UNAVAILABLE, message: err.message });
  }
  return err;
}

/** What the saga asks the provider to authorise: the order's total on the shopper's card. */
export interface AuthoriseInput {
  orderId: string;
  amount: number;
  currency: string;
  card: PaymentCard;
}

/** The provider's answer to an order's authorise, with what the payment row needs besides. */
export interface AuthorisationRecord {
  orderId: string;
  amount: number;
  currency: string;
  result: AuthoriseResult;
}

export function createPaymentActivities(deps: PaymentActivityDeps) {
  const { db } = deps;

  /**
   * The provider's answer to the order's authorise as the read model's payment row, declines
   * too; written once per idempotency key (running it again leaves the row as it is).
   */
  async function recordAuthorisation(input: AuthorisationRecord): Promise<void> {
    const { result } = input;
    const idempotencyKey = paymentIdempotencyKey(input.orderId, 'authorise');
    const authorised = result.status === 'AUTHORISED';
    await insertPayment(db, {
      id: idempotencyKey,
      order_id: input.orderId,
      idempotency_key: idempotencyKey,
      provider: deps.providerName,
      provider_ref: authorised ? result.providerRef : null,
      status: result.status,
      currency: input.currency,
      amount_authorised: authorised ? input.amount : 0,
      decline_code: result.status === 'DECLINED' ? result.declineCode : null,
    });
  }

  return {
    /**
     * Asks the provider to authorise the order's total and answers what it said (authorised
     * or declined), recording nothing: the saga records the answer with
     * {@link recordAuthorisation}, under the retries our own database needs.
     */
    async authorisePayment(input: AuthoriseInput): Promise<AuthoriseResult> {
      try {
        return await deps.payments.authorise({
          idempotencyKey: paymentIdempotencyKey(input.orderId, 'authorise'),
          ...input,
        });
      } catch (err) {
        throw asFailure(err);
      }
    },

    recordAuthorisation,

    /**
     * Compensation for an authorise whose outcome is unknown (every attempt timed out or
     * failed, but the provider may have acted before the answer was lost). Asks again with
     * the same idempotency key — the provider answers with what it did the first time, or
     * does it now — records that answer (a decline too) and voids any authorisation, so no
     * hold stays on the shopper's card. A request the provider refuses means nothing was
     * authorised.
     */
    async voidUnknownAuthorisation(input: AuthoriseInput): Promise<{ voided: boolean }> {
      const idempotencyKey = paymentIdempotencyKey(input.orderId, 'authorise');
      let result;
      try {
        result = await deps.payments.authorise({ idempotencyKey, ...input });
      } catch (err) {
        if (err instanceof PaymentRejectedError) return { voided: false };
        throw asFailure(err);
      }
      // Its answer goes on file either way: a decline found now is the order's payment row.
      await recordAuthorisation({
        orderId: input.orderId,
        amount: input.amount,
        currency: input.currency,
        result,
      });
      if (result.status !== 'AUTHORISED') return { voided: false };
      try {
        const summary = await deps.payments.void({
          idempotencyKey: paymentIdempotencyKey(input.orderId, 'void'),
          providerRef: result.providerRef,
        });
        await mirrorPayment(db, input.orderId, summary);
      } catch (err) {
        throw asFailure(err);
      }
      return { voided: true };
    },

    async capturePayment(input: { orderId: string; providerRef: string; amount: number }): Promise<void> {
      try {
        const summary = await deps.payments.capture({
          idempotencyKey: paymentIdempotencyKey(input.orderId, 'capture'),
          providerRef: input.providerRef,
          amount: input.amount,
        });
        await mirrorPayment(db, input.orderId, summary);
      } catch (err) {
        throw asFailure(err);
      }
    },

    async voidPayment(input: { orderId: string; providerRef: string }): Promise<void> {
      try {
        const summary = await deps.payments.void({
          idempotencyKey: paymentIdempotencyKey(input.orderId, 'void'),
          providerRef: input.providerRef,
        });
        await mirrorPayment(db, input.orderId, summary);
      } catch (err) {
        throw asFailure(err);
      }
    },

    /**
     * The payment as the provider's books hold it now, mirrored onto its row: what an admin
     * did in the provider's dashboard (a capture, refunds) shows here. Moves no money.
     */
    async readPayment(input: { orderId: string; providerRef: string }): Promise<PaymentBooks> {
      try {
        const summary = await deps.payments.retrieve(input.providerRef);
        await mirrorPayment(db, input.orderId, summary);
        return summary;
      } catch (err) {
        throw asFailure(err);
      }
    },

    /**
     * `step` names the refund (e.g. 'refund:cancel', 'refund:<shipmentId>') so each is made once.
     * Sent again (a retry of this activity, or `lookFirst`: the order's retry of a refund whose
     * earlier attempt has no known outcome, e.g. parked through an outage and retried by an
     * admin days later), it first reads the provider's books: a refund there carrying this
     * step's key (its `reference`) was made, and is not made again. The key alone would not
     * say so once the provider has forgotten it (Stripe prunes keys after 24 h).
     */
    async refundPayment(input: {
      orderId: string;
      providerRef: string;
      amount: number;
      step: string;
      lookFirst?: boolean;
    }): Promise<void> {
      const idempotencyKey = paymentIdempotencyKey(input.orderId, input.step);
      try {
        if (input.lookFirst || Context.current().info.attempt > 1) {
          const books = await deps.payments.retrieve(input.providerRef);
          if (books.refunds.some((refund) => refund.reference === idempotencyKey)) {
            await mirrorPayment(db, input.orderId, books);
            return;
          }
        }
        const result = await deps.payments.refund({
          idempotencyKey,
          providerRef: input.providerRef,
          amount: input.amount,
        });
        await mirrorPayment(db, input.orderId, result);
      } catch (err) {
        throw asFailure(err);
      }
    },
  };
}

export type PaymentActivities = ReturnType<typeof createPaymentActivities>;
