/**
 * The order's money steps run one at a time (OrderPayment's `exclusive`): an admin's resolve,
 * a compensation and a parcel's refund can overlap in one order workflow (handlers run while
 * the main path awaits), and each works its amounts out from what the others left. Here the
 * class runs outside a workflow with its activities replaced by a ledger that answers late,
 * so overlapping steps would interleave if nothing kept them apart.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { OrderWorkflowInput } from '../../src/workflows/contract';
import type { SagaActivities } from '../../src/workflows/order-activities';
import { OrderPayment } from '../../src/workflows/order-payment';

const TOTAL = 10_000;

/** A provider that answers each call after a few ms, and the calls it was sent, in order. */
function lateProvider() {
  const calls: string[] = [];
  let captured = 0;
  let refunded = 0;
  const answer = async <T>(name: string, value: () => T): Promise<T> => {
    calls.push(`${name} start`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    calls.push(`${name} end`);
    return value();
  };
  const settle = {
    capturePayment: {
      executeWithOptions: (_options: unknown, [input]: [{ amount: number }]) =>
        answer('capture', () => {
          captured += input.amount;
        }),
    },
    refundPayment: {
      executeWithOptions: (_options: unknown, [input]: [{ amount: number; step: string }]) =>
        answer(`refund ${input.step} ${input.amount}`, () => {
          refunded += input.amount;
        }),
    },
    readPayment: {
      executeWithOptions: () =>
        answer('read', () => ({ status: 'CAPTURED', amountCaptured: captured, amountRefunded: refunded })),
    },
    voidPayment: {
      executeWithOptions: () =>
        answer('void', () => {
          throw ApplicationFailure.create({ type: 'ProviderUnavailable', message: 'the provider is down' });
        }),
    },
  };
  return {
    act: { settle } as unknown as SagaActivities,
    calls,
    books: () => ({ captured, refunded }),
  };
}

function payment(provider: ReturnType<typeof lateProvider>) {
  const paid = new OrderPayment(
    { orderId: 'ord_1', totalAmount: TOTAL, currency: 'MYR' } as OrderWorkflowInput,
    provider.act,
  );
  paid.providerRef = 'pay_1';
  paid.answered = true;
  return paid;
}

describe('the order money steps, one at a time', () => {
  it('a parcel refund that overlaps the capture waits for it, so the refund is paid, not skipped as "nothing captured"', async () => {
    const provider = lateProvider();
    const paid = payment(provider);

    await Promise.all([paid.capture(), paid.refund(3_000, 'refund:p1', 'refund p1')]);

    expect(provider.calls).toEqual([
      'capture start',
      'capture end',
      'refund refund:p1 3000 start',
      'refund refund:p1 3000 end',
    ]);
    expect(provider.books()).toEqual({ captured: TOTAL, refunded: 3_000 });
  });

  it('a compensation that overlaps a parcel refund gives back only what is left: the shopper is never refunded more than was captured', async () => {
    const provider = lateProvider();
    const paid = payment(provider);
    await paid.capture();

    await Promise.all([paid.refund(3_000, 'refund:p1', 'refund p1'), paid.giveBack()]);

    expect(provider.books()).toEqual({ captured: TOTAL, refunded: TOTAL });
    expect(provider.calls.slice(2)).toEqual([
      'refund refund:p1 3000 start',
      'refund refund:p1 3000 end',
      // The compensation reads the books after the parcel's refund, and refunds what they keep.
      'read start',
      'read end',
      'refund refund:cancel 7000 start',
      'refund refund:cancel 7000 end',
    ]);
  });

  it('a step that fails does not hold up the next: the void fails, the capture after it still runs', async () => {
    const provider = lateProvider();
    const paid = payment(provider);

    const [voided, captured] = await Promise.allSettled([paid.waive(), paid.capture()]);

    expect(voided).toMatchObject({ status: 'rejected', reason: { message: 'the provider is down' } });
    expect(captured.status).toBe('fulfilled');
    expect(provider.calls).toEqual(['void start', 'void end', 'capture start', 'capture end']);
    expect(paid.captured).toBe(true);
  });
});
