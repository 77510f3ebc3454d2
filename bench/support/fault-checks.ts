/**
 * The fault suites' own checks (bench/faults.ts): waiting for the orders to settle, and what
 * reads and writes may answer while a part of the stack is broken. The consistency checks
 * are bench/support/consistency.ts.
 */
import { SETTLED_STATUSES } from '../../devstack/ledger';
import { orderWorkflowId } from '../../src/workflows/contract';
import { summarise, type Check } from './consistency';
import { sleep, type HttpTally } from './fault-shop';
import type { FaultLog, Suite } from './fault-suites';
import { type ProcessStack } from './stack';

export const SETTLE_DEADLINE_MS = 8 * 60_000;

/**
 * Waits until every order is settled on the read model, for at most SETTLE_DEADLINE_MS, or
 * until the open ones have no running workflow left (they will never settle: the checks say so).
 */
export async function settle(
  stack: ProcessStack,
  orderIds: string[],
  say: (line: string) => void,
): Promise<void> {
  const from = Date.now();
  let lastReport = 0;
  for (;;) {
    const rows = orderIds.length
      ? await stack.db
          .selectFrom('orders')
          .select(['id', 'status'])
          .where('id', 'in', orderIds)
          .execute()
          .catch(() => [])
      : [];
    const open = rows.filter((r) => !SETTLED_STATUSES.has(r.status));
    if (rows.length === orderIds.length && open.length === 0) return;
    if (Date.now() - from > SETTLE_DEADLINE_MS) {
      say(`${open.length} orders still open after ${SETTLE_DEADLINE_MS / 60_000} min; checking as they are`);
      return;
    }
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      say(`${open.length} open: ${summarise(rows.map((r) => r.status))}`);
      if (
        open.length > 0 &&
        (await runningWorkflows(
          stack,
          open.map((r) => r.id),
        )) === 0
      ) {
        say(`the workflows of the ${open.length} open orders have all ended: they will not settle; checking`);
        return;
      }
    }
    await sleep(2_000);
  }
}

/** How many of these orders' workflows are running, or could not be asked about. */
export async function runningWorkflows(stack: ProcessStack, orderIds: string[]): Promise<number> {
  let running = 0;
  for (const id of orderIds) {
    const status = await stack.temporal.client.workflow
      .getHandle(orderWorkflowId(id))
      .describe()
      .then((d) => d.status.name)
      .catch(() => null);
    if (status === null || status === 'RUNNING') running++;
  }
  return running;
}

/** Reads answer from Postgres only: never 5xx, except 503 + Retry-After while Postgres is down. */
export function readCheck(suite: Suite, reads: HttpTally, faults: FaultLog): Check {
  const total = [...reads.byStatus.values()].reduce((a, b) => a + b, 0);
  const figures = [...reads.byStatus].map(([s, n]) => `${n}×${s}`).join(', ');
  if (suite !== 'postgres-restart') {
    return {
      name: 'reads never answered 5xx',
      pass: reads.fivexx.length === 0,
      detail:
        reads.fivexx.length === 0
          ? `${total} reads: ${figures}`
          : `${reads.fivexx.length} of ${total}: ${figures}`,
    };
  }
  // Allow a second either side of the window for requests in flight when it opened or closed.
  const inWindow = (at: number) => faults.down.some((w) => at >= w.from - 1_000 && at <= w.until + 1_000);
  const bad = reads.fivexx.filter((r) => r.status !== 503 || !r.retryAfter || !inWindow(r.at));
  return {
    name: 'reads never 5xx, except 503 + Retry-After while Postgres was down',
    pass: bad.length === 0,
    detail:
      bad.length === 0
        ? `${total} reads: ${figures} (${reads.fivexx.length} × 503 inside the outage)`
        : `${bad.length} bad of ${total}: ${bad
            .slice(0, 3)
            .map((r) => `${r.status} ${r.route}`)
            .join(', ')}`,
  };
}

/** Writes may meet 503 (Temporal or Postgres away) but never a 500 or no answer at all. */
export function writeCheck(writes: HttpTally): Check {
  const bad = writes.fivexx.filter((w) => w.status !== 503 || !w.retryAfter);
  const figures = [...writes.byStatus].map(([s, n]) => `${n}×${s}`).join(', ');
  return {
    name: 'writes answered 503 + Retry-After at worst, never 500',
    pass: bad.length === 0,
    detail:
      bad.length === 0
        ? figures
        : `${bad.length} bad: ${bad
            .slice(0, 3)
            .map((w) => `${w.status} ${w.route}`)
            .join(', ')}`,
  };
}
