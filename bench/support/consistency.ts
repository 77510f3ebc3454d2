/**
 * The consistency checks every fault suite ends with. The money rules (payments, bookings,
 * stock) are the ledger's (devstack/ledger.ts), one check per rule; the rest are the
 * suites' own: every order settled on the read model and in Temporal, every parcel of a
 * settled order final, no tracking event recorded twice. Each returns PASS/FAIL with the
 * offending ids.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { checkLedger } from '../../devstack/ledger';
import { LEDGER_RULE_TEXT, LEDGER_RULES } from '../../devstack/ledger-rules';
import { TERMINAL_STATUSES } from '../../src/domain/status';
import type { RunningPaymentSimulator } from '../../simulators/payment/server';
import type { RunningSimulator } from '../../simulators/courier/server';
import type { TemporalClient } from '../../src/temporal';
import { orderWorkflowId } from '../../src/workflows/contract';
import { waitForTemporal } from './stack';

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

/** How long the checks wait for the harness's Temporal client to reach the server. */
const TEMPORAL_REACH_MS = 60_000;

function listed(ids: string[], max = 5): string {
  if (ids.length === 0) return '';
  return `${ids.slice(0, max).join(', ')}${ids.length > max ? ` (+${ids.length - max} more)` : ''}`;
}

function check(name: string, bad: string[], okDetail: string, badWhat: string): Check {
  return bad.length === 0
    ? { name, pass: true, detail: okDetail }
    : { name, pass: false, detail: `${bad.length} ${badWhat}: ${listed(bad)}` };
}

export interface ConsistencyInput {
  db: Kysely<Database>;
  temporal: TemporalClient;
  payments: RunningPaymentSimulator;
  courier: RunningSimulator;
  /** Orders the API accepted (202). */
  orderIds: string[];
  /** Stock each sku started with. */
  initialStock: number;
}

export async function consistencyChecks(input: ConsistencyInput): Promise<Check[]> {
  const { db, orderIds } = input;
  const checks: Check[] = [];
  const ledger = await checkLedger({
    db,
    payments: input.payments,
    courier: input.courier,
    orderIds,
    initialStock: input.initialStock,
  });

  // 1. Every order settled, in the read model and in Temporal.
  const statuses = orderIds.length
    ? await db.selectFrom('orders').select('status').where('id', 'in', orderIds).execute()
    : [];
  checks.push(
    check(
      'every order reached a terminal state (read model)',
      ledger.unsettled.map((o) => `${o.orderId}=${o.status ?? 'no row'}`),
      `${orderIds.length} orders: ${summarise(statuses.map((o) => o.status))}`,
      'orders not terminal',
    ),
  );
  checks.push(await workflowsCompleted(input.temporal, orderIds));

  // 2. Nothing recorded twice, nothing left open under a settled order.
  const dupEvents = await sql<{ shipment_id: string; status: string; n: number }>`
    select shipment_id, status, count(*)::int as n from tracking_events
    group by shipment_id, status, occurred_at having count(*) > 1`.execute(db);
  const events = await sql<{ n: number }>`select count(*)::int as n from tracking_events`.execute(db);
  checks.push(
    check(
      'no duplicate tracking events',
      dupEvents.rows.map((r) => `${r.shipment_id} ${r.status} ×${r.n}`),
      `${events.rows[0]!.n} events, each once`,
      'events recorded more than once',
    ),
  );
  const unsettled = new Set(ledger.unsettled.map((o) => o.orderId));
  const settled = orderIds.filter((id) => !unsettled.has(id));
  const openParcels = settled.length
    ? await db
        .selectFrom('shipments')
        .select(['id', 'status'])
        .where('order_id', 'in', settled)
        .where('status', 'not in', [...TERMINAL_STATUSES])
        .execute()
    : [];
  checks.push(
    check(
      'every parcel of a settled order is final (read model)',
      openParcels.map((s) => `${s.id}=${s.status}`),
      `${settled.length} settled orders`,
      'parcels still open',
    ),
  );

  // 3. The money ledger, one check per rule.
  for (const rule of LEDGER_RULES) {
    const bad = ledger.violations.filter((v) => v.rule === rule);
    checks.push(
      check(
        `ledger: ${LEDGER_RULE_TEXT[rule]}`,
        bad.map((v) => `${v.orderId ?? 'stock'}: ${v.detail}`),
        `${ledger.orders} settled orders`,
        'violations',
      ),
    );
  }
  return checks;
}

/** Every order's workflow completed, once the harness's client reaches Temporal (a restart may just have happened). */
async function workflowsCompleted(temporal: TemporalClient, orderIds: string[]): Promise<Check> {
  const name = 'every order workflow completed (Temporal)';
  if (!(await waitForTemporal(temporal.connection, TEMPORAL_REACH_MS))) {
    return {
      name,
      pass: false,
      detail: `Temporal did not answer the harness within ${TEMPORAL_REACH_MS / 1000} s`,
    };
  }
  const open: string[] = [];
  for (const id of orderIds) {
    const description = await temporal.client.workflow
      .getHandle(orderWorkflowId(id))
      .describe()
      .catch(() => null);
    if (description?.status.name !== 'COMPLETED')
      open.push(`${id}=${description?.status.name ?? 'not found'}`);
  }
  return check(name, open, `${orderIds.length} completed`, 'workflows');
}

export function summarise(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}
