/**
 * The books every saga test ends on: the stock reconciles with the active orders, and the
 * money ledger of the orders the test placed holds (devstack/ledger.ts: no capture without a
 * pickup, refunds paid, no authorisation held or booking live for a settled order).
 */
import { checkLedger } from '../../devstack/ledger';
import { stockReconciliation } from '../../src/read-model/stock-checks';
import type { Stack } from './stack';

export async function expectBooksBalance(
  stack: Pick<Stack, 'database' | 'payments' | 'couriers'>,
  orderIds: string[],
): Promise<void> {
  expect(await stockReconciliation(stack.database.db)).toEqual([]);
  const ledger = await checkLedger({
    db: stack.database.db,
    payments: stack.payments,
    courier: stack.couriers,
    orderIds,
  });
  expect(ledger.violations).toEqual([]);
}
