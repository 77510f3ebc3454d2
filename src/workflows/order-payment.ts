/**
 * The order's money at the payment provider: one authorisation for the whole order, one
 * capture at the first pickup, refunds of what did not arrive, and giving back whatever the
 * card still holds. The provider's answers are read, not guessed. Deterministic code only.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { FailureType } from '../domain/failures';
import { paymentIdempotencyKey, PaymentRejection, PaymentStatus, type PaymentBooks } from '../payments/types';
import type { OrderWorkflowInput } from './contract';
import { rejectionCode, type SagaActivities } from './order-activities';
import { money } from './summaries';

export class OrderPayment {
  /** Authorise has answered (authorised or declined); it is not asked again. */
  answered = false;
  providerRef: string | null = null;
  captured = false;
  /**
   * The shop waived the charge (a parked capture resolved `not_charged`): the authorisation is
   * voided, and nothing is captured or refunded on this payment any more.
   */
  waived = false;
  /** Minor units given back so far: Waybill's refunds, and what the total lacks of a capture made by hand. */
  refunded = 0;
  /**
   * Given back outside Waybill (a partial capture, or refunds in the provider's dashboard) and
   * not yet set against a parcel's refund: the refunds Waybill owes are paid from it first.
   */
  private givenBackByHand = 0;
  /** Each refund step's amount, worked out once (see {@link pay}). */
  private readonly refunds = new Map<
    string,
    {
      due: number;
      byHand: number;
      paid: boolean;
      /** Sent at least once: a later try reads the provider's books for it first. */
      tried: boolean;
    }
  >();
  /** The money steps run one at a time (see {@link exclusive}). */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly input: OrderWorkflowInput,
    private readonly act: SagaActivities,
  ) {}

  private get request() {
    const { input } = this;
    return {
      orderId: input.orderId,
      amount: input.totalAmount,
      currency: input.currency,
      card: input.payment,
    };
  }

  /** `captured`, `authorised` or null: what the order's details line says of the money. */
  describe(): string | null {
    const total = money(this.input.totalAmount, this.input.currency);
    if (this.captured) return `${total} captured`;
    if (this.waived) return `${total} not charged`;
    return this.providerRef !== null ? `${total} authorised` : null;
  }

  /**
   * Authorises the total, then records the provider's answer in our database. Throws when
   * every authorise attempt failed: the outcome is then unknown (see {@link voidUnknown}).
   * The record is a step of its own, retried until our database takes it: an outage of our
   * own Postgres must not use up the attempts meant for the provider and fail a sale the
   * provider authorised.
   */
  async authorise(): Promise<{ authorised: true } | { authorised: false; reason: string }> {
    const { input } = this;
    const result = await this.act.forward.authorisePayment.executeWithOptions(
      { summary: `authorise ${money(input.totalAmount, input.currency)}` },
      [this.request],
    );
    const authorised = result.status === PaymentStatus.AUTHORISED;
    await this.act.always.recordAuthorisation.executeWithOptions(
      { summary: authorised ? 'record the authorisation' : 'record the decline' },
      [{ orderId: input.orderId, amount: input.totalAmount, currency: input.currency, result }],
    );
    this.answered = true;
    if (!authorised)
      return { authorised: false, reason: `payment declined (${result.declineCode}): ${result.message}` };
    this.providerRef = result.providerRef;
    return { authorised: true };
  }

  /** The provider may have authorised before its answer was lost: ask again under the same key and void it. */
  async voidUnknown(): Promise<void> {
    await this.act.settle.voidUnknownAuthorisation.executeWithOptions(
      { summary: 'compensate: void any authorisation made before the answer was lost' },
      [this.request],
    );
  }

  /** Whether the first pickup has money to capture. */
  get capturable(): boolean {
    return !this.captured && !this.waived && this.providerRef !== null;
  }

  /**
   * Captures the total. Answered "already captured" (in the provider's dashboard, under
   * another key), the provider's books say what it holds: what the total does not keep of
   * that capture is set against the refunds owed (see {@link readBooks}).
   */
  capture(): Promise<void> {
    return this.exclusive(async () => {
      const { input } = this;
      // Captured or waived meanwhile (a compensation or a resolve read the books first).
      if (this.captured || this.waived) return;
      try {
        await this.act.settle.capturePayment.executeWithOptions(
          { summary: `capture ${money(input.totalAmount, input.currency)} at the first pickup` },
          [{ orderId: input.orderId, providerRef: this.providerRef!, amount: input.totalAmount }],
        );
        this.captured = true;
      } catch (err) {
        if (rejectionCode(err) !== PaymentRejection.ALREADY_CAPTURED) throw err;
        await this.readBooks('the provider says it was captured before');
      }
    });
  }

  /**
   * An admin says the parked capture was made by hand (the provider's dashboard). The
   * provider's books decide: with no capture there, the resolve is refused.
   */
  takeCaptureMadeByHand(): Promise<void> {
    return this.exclusive(async () => {
      if (this.captured) return; // a retry, or a compensation, read the books meanwhile
      const ref = this.providerRef!;
      const books = await this.readBooks('an admin says it was captured by hand');
      if (books.amountCaptured > 0) return;
      throw ApplicationFailure.create({
        type: FailureType.SETTLEMENT_REFUSED,
        message:
          books.status === PaymentStatus.AUTHORISED
            ? `the provider holds no capture of payment ${ref} (it is AUTHORISED): capture it there first, or retry the capture here`
            : `the provider holds no capture of payment ${ref} (it is ${books.status}): nothing can be captured on it; resolve as not_charged`,
        nonRetryable: true,
      });
    });
  }

  /**
   * An admin says the shopper is not charged on this payment: what the card holds is voided
   * (a lapsed or voided authorisation holds nothing). A payment the provider says was
   * captured is not waived: the resolve is refused.
   */
  waive(): Promise<void> {
    return this.exclusive(async () => {
      const ref = this.providerRef!;
      const refused = () =>
        ApplicationFailure.create({
          type: FailureType.SETTLEMENT_REFUSED,
          message: `the provider says payment ${ref} was captured: resolve it as captured_by_hand (Waybill then pays back what is owed)`,
          nonRetryable: true,
        });
      if (this.captured) throw refused();
      try {
        await this.act.settle.voidPayment.executeWithOptions(
          { summary: `void payment ${ref}: an admin waived the charge` },
          [{ orderId: this.input.orderId, providerRef: ref }],
        );
      } catch (err) {
        const code = rejectionCode(err);
        if (code === PaymentRejection.ALREADY_CAPTURED) throw refused();
        if (code !== PaymentRejection.VOIDED && code !== PaymentRejection.AUTHORISATION_EXPIRED) throw err;
      }
      this.waived = true;
    });
  }

  /**
   * Whatever the shopper's card holds goes back: the authorisation voided, or the capture
   * refunded. The provider's answer decides when our view was behind (a void of a captured
   * payment becomes a refund of what its books say it keeps; a lapsed or voided authorisation
   * holds nothing).
   */
  giveBack(): Promise<void> {
    return this.exclusive(async () => {
      const { input } = this;
      const total = money(input.totalAmount, input.currency);
      if (this.waived) return; // voided when it was waived
      if (!this.captured) {
        try {
          await this.act.settle.voidPayment.executeWithOptions(
            { summary: `compensate: void the ${total} authorisation` },
            [{ orderId: input.orderId, providerRef: this.providerRef! }],
          );
          return;
        } catch (err) {
          const code = rejectionCode(err);
          if (code === PaymentRejection.VOIDED || code === PaymentRejection.AUTHORISATION_EXPIRED) return;
          if (code !== PaymentRejection.ALREADY_CAPTURED) throw err;
          await this.readBooks('the provider says it was captured');
        }
      } else {
        // Someone may have refunded in the dashboard since the capture: give back what it keeps.
        await this.readBooks('what is left to give back');
      }
      // What was given back by hand is in `refunded` already: not set against this refund.
      await this.pay(
        'refund:cancel',
        () => ({ due: input.totalAmount - this.refunded, byHand: 0 }),
        `compensate: refund what is left of ${total}`,
      );
    });
  }

  /**
   * Refunds `amount` once under the saga step's key (nothing when nothing was captured), less
   * what was given back by hand and not yet set against a refund.
   */
  refund(amount: number, step: string, summary: string): Promise<void> {
    return this.exclusive(async () => {
      if (amount <= 0 || !this.captured) return;
      await this.pay(
        step,
        () => {
          const byHand = Math.min(amount, this.givenBackByHand);
          this.givenBackByHand -= byHand;
          return { due: amount - byHand, byHand };
        },
        summary,
      );
    });
  }

  /**
   * Pays a refund step once. Its amount is worked out the first time the step runs and kept:
   * a retry of a parked step sends the same amount under the same idempotency key.
   */
  private async pay(
    step: string,
    plan: () => { due: number; byHand: number },
    summary: string,
  ): Promise<void> {
    let refund = this.refunds.get(step);
    if (!refund) {
      refund = { ...plan(), paid: false, tried: false };
      this.refunds.set(step, refund);
    }
    if (refund.paid || refund.due <= 0 || this.providerRef === null) return;
    const less =
      refund.byHand > 0 ? ` (less ${money(refund.byHand, this.input.currency)} given back by hand)` : '';
    // Tried before without a known outcome (parked, now retried): the books are read first.
    const lookFirst = refund.tried;
    refund.tried = true;
    await this.act.settle.refundPayment.executeWithOptions({ summary: `${summary}${less}` }, [
      {
        orderId: this.input.orderId,
        providerRef: this.providerRef,
        amount: refund.due,
        step,
        ...(lookFirst ? { lookFirst } : {}),
      },
    ]);
    refund.paid = true;
    this.refunded += refund.due;
  }

  /**
   * The payment as the provider's books hold it (`why` names who asked). Captured there: the
   * order counts as captured, and what the total does not keep of it (captured less, or
   * refunded in the dashboard) counts as given back by hand, to be set against the refunds
   * owed before any is paid. A refund of Waybill's whose answer never came (tried, not known
   * paid) is found there by its key first: paid, not given back by hand.
   */
  private async readBooks(why: string): Promise<PaymentBooks> {
    const { input } = this;
    const ref = this.providerRef!;
    const books = await this.act.settle.readPayment.executeWithOptions(
      { summary: `read payment ${ref} at the provider: ${why}` },
      [{ orderId: input.orderId, providerRef: ref }],
    );
    const booked = new Set((books.refunds ?? []).map((refund) => refund.reference));
    for (const [step, refund] of this.refunds) {
      if (refund.tried && !refund.paid && booked.has(paymentIdempotencyKey(input.orderId, step))) {
        refund.paid = true;
        this.refunded += refund.due;
      }
    }
    if (books.amountCaptured === 0) return books;
    const byHand = Math.max(
      0,
      input.totalAmount - (books.amountCaptured - books.amountRefunded) - this.refunded,
    );
    this.givenBackByHand += byHand;
    this.refunded += byHand;
    this.captured = true;
    return books;
  }

  /**
   * Runs the steps that read and change what is captured and refunded one at a time: an
   * admin's resolve, a compensation and a parcel's refund may overlap, and each works its
   * amounts out from what the others left.
   */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
