/**
 * The order's money at the payment provider: one authorisation for the whole order, one
 * capture at the first pickup, refunds of what did not arrive, and giving back whatever the
 * card still holds. The provider's answers are read, not guessed. Deterministic code only.
 */
import { PaymentRejection, PaymentStatus } from '../payments/types';
import type { OrderWorkflowInput } from './contract';
import { rejectionCode, type SagaActivities } from './order-activities';
import { money } from './summaries';

export class OrderPayment {
  /** Authorise has answered (authorised or declined); it is not asked again. */
  answered = false;
  providerRef: string | null = null;
  captured = false;
  /** Minor units refunded so far. */
  refunded = 0;

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
    return !this.captured && this.providerRef !== null;
  }

  async capture(): Promise<void> {
    const { input } = this;
    try {
      await this.act.settle.capturePayment.executeWithOptions(
        { summary: `capture ${money(input.totalAmount, input.currency)} at the first pickup` },
        [{ orderId: input.orderId, providerRef: this.providerRef!, amount: input.totalAmount }],
      );
    } catch (err) {
      // Captured before, under another key: the provider's books say the money is ours.
      if (rejectionCode(err) !== PaymentRejection.ALREADY_CAPTURED) throw err;
    }
    this.captured = true;
  }

  /**
   * Whatever the shopper's card holds goes back: the authorisation voided, or the capture
   * refunded. The provider's answer decides when our view was behind (a void of a captured
   * payment becomes a refund; a lapsed or voided authorisation holds nothing).
   */
  async giveBack(): Promise<void> {
    const { input } = this;
    const total = money(input.totalAmount, input.currency);
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
        this.captured = true;
      }
    }
    await this.refund(
      input.totalAmount - this.refunded,
      'refund:cancel',
      `compensate: refund what is left of ${total}`,
    );
  }

  /** Refunds `amount` once under the saga step's key (nothing when nothing was captured). */
  async refund(amount: number, step: string, summary: string): Promise<void> {
    if (amount <= 0 || !this.captured || this.providerRef === null) return;
    await this.act.settle.refundPayment.executeWithOptions({ summary }, [
      { orderId: this.input.orderId, providerRef: this.providerRef, amount, step },
    ]);
    this.refunded += amount;
  }
}
