/**
 * What one parcel costs over its whole life, counted (not timed) on the real stack: orders placed
 * through the API, each booked with the courier simulator and tracked by its shipment workflow
 * until it ends (delivered, returned, expired…), at a compressed time scale: the simulator's clock
 * runs `timeScale` × real time and every poll interval, expiry and age limit of the production
 * defaults is divided by the same factor, so each parcel is polled as often, per courier day, as in
 * production. The scenario mix is the simulator's own weights, allotted in proportion (55 %
 * delivered, 15 % failed attempt then delivered, …), each named in the recipient's name.
 *
 * Counted once every workflow has closed: Temporal history events, encoded history bytes and
 * billable actions (as Temporal Cloud counts them: bench/support/history-actions.ts) of every
 * order and shipment workflow across their continue-as-new runs; Postgres rows inserted, updated
 * and deleted, relation bytes and WAL bytes, as deltas of pg_stat_user_tables,
 * pg_total_relation_size and the WAL position; courier HTTP calls from courier_api_usage. Per
 * parcel and per open-parcel day (simulated days the shipment workflows were open).
 *
 * Counts, not timings: the machine is shared, and its load only moves when a poll happens, not
 * how many there are — except that late polls stretch a parcel's simulated life a little (each
 * real second late is `timeScale` simulated seconds), which lowers the per-day figures slightly.
 *
 *   npm run bench:capacity -- [parcels=100] [timeScale=2880] [ordersPerSecond=2] [--temporal dev|server]
 *
 * Prints the figures and writes bench/results/capacity.json.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database';
import { customerToken } from '../src/api/tokens';
import { loadConfig } from '../src/config';
import { runMain } from '../src/main-helpers';
import { orderWorkflowId, shipmentWorkflowId } from '../src/workflows/contract';
import { SCENARIO_NAMES, SCENARIOS, TOTAL_WEIGHT, type ScenarioName } from '../simulators/courier/scenarios';
import {
  addActions,
  countHistory,
  emptyActions,
  totalActions,
  type Actions,
  type HistoryCounts,
} from './support/history-actions';
import { projection } from './support/poll-model';
import { fmt, machine, sleep, table, writeResult } from './support/measure';
import { startProcessStack, takeTargetArgs, type ProcessStack } from './support/stack';

const DAY_MS = 86_400_000;
const SKUS = ['KETTLE-1L', 'MUG-SET-4', 'TEA-SAMPLER', 'TRIVET-OAK'];

/** The production defaults' durations, divided by `scale`, as the worker's environment. */
function scaledPolicyEnv(scale: number): Record<string, string> {
  const p = loadConfig({}).polling;
  const d = (msValue: number) => `${Math.max(1, Math.round(msValue / scale))}ms`;
  const env: Record<string, string> = {
    COURIER_SIMULATOR_TIME_SCALE: String(scale),
    WAYBILL_POLL_BACKOFF_CAP: d(p.backoffCapMs),
    WAYBILL_EXPIRE_AFTER_NO_SCAN: d(p.expireAfterNoScanMs),
    WAYBILL_TRACKING_MAX_AGE: d(p.maxAgeMs),
    WAYBILL_REFRESH_COOLDOWN: d(p.refreshCooldownMs),
    EASYPARCEL_POLL_INTERVAL: d(p.easyParcel.intervalMs),
    EASYPARCEL_POLL_QUIET_INTERVAL: d(p.easyParcel.quietIntervalMs),
    EASYPARCEL_POLL_SLOT: d(p.easyParcel.slotMs),
    // A compressed clock has no nights: the simulator's scans keep their round-the-clock timelines.
    EASYPARCEL_POLL_NIGHT: 'off',
    // The batch window is real time in production: scaled too, or one 2 s window would gather
    // 1.6 simulated hours of polls. Calls per parcel at scale: docs/capacity.md.
    WAYBILL_COURIER_BATCH_WINDOW: d(loadConfig({}).courier.batchWindowMs),
  };
  for (const [status, value] of Object.entries(p.intervalMs)) env[`WAYBILL_POLL_${status}`] = d(value);
  return env;
}

/** N scenarios in the simulator's weights (largest remainders), then interleaved by index. */
function scenarioMix(n: number): ScenarioName[] {
  const quotas = SCENARIO_NAMES.map((name) => ({ name, exact: (n * SCENARIOS[name].weight) / TOTAL_WEIGHT }));
  const counts = new Map(quotas.map((q) => [q.name, Math.floor(q.exact)]));
  let left = n - [...counts.values()].reduce((s, c) => s + c, 0);
  for (const q of [...quotas].sort((a, b) => (b.exact % 1) - (a.exact % 1))) {
    if (left-- <= 0) break;
    counts.set(q.name, counts.get(q.name)! + 1);
  }
  const out: ScenarioName[] = [];
  while (out.length < n)
    for (const name of SCENARIO_NAMES)
      if (counts.get(name)! > out.filter((s) => s === name).length) out.push(name);
  return out;
}

interface TableStats {
  relname: string;
  inserted: number;
  updated: number;
  deleted: number;
  bytes: number;
}

async function dbSnapshot(db: Kysely<Database>) {
  await sql`select pg_stat_force_next_flush()`.execute(db).catch(() => undefined);
  await sleep(1_500); // the backends' pending counters reach the shared stats
  await sql`select pg_stat_clear_snapshot()`.execute(db);
  const { rows } = await sql<TableStats>`
    select relname, n_tup_ins::float8 as inserted, n_tup_upd::float8 as updated,
           n_tup_del::float8 as deleted, pg_total_relation_size(relid)::float8 as bytes
    from pg_stat_user_tables order by relname`.execute(db);
  const wal = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db);
  return { tables: rows, lsn: wal.rows[0]!.lsn };
}

const runKey = randomBytes(6).toString('hex');

async function placeOrder(
  stack: ProcessStack,
  token: string,
  n: number,
  scenario: ScenarioName,
): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${stack.apiUrl}/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': `capacity-${runKey}-${n}`,
      },
      body: JSON.stringify({
        email: `capacity${n}@example.com`,
        shippingAddress: {
          name: `Capacity Shopper ${n} [scenario:${scenario}]`,
          line1: `${n} Jalan Ampang`,
          city: 'Kuala Lumpur',
          postcode: '50450',
          country: 'MY',
        },
        lines: [{ sku: SKUS[n % SKUS.length]!, quantity: 1 }],
        payment: { token: 'tok_visa' },
      }),
    }).catch(() => null);
    const body = (await res?.json().catch(() => null)) as {
      orderId?: string;
      error?: { message: string };
    } | null;
    if (res && res.status < 300 && body?.orderId) return body.orderId;
    if (attempt >= 5)
      throw new Error(
        `order ${n} not accepted (HTTP ${res?.status ?? 'no answer'}: ${body?.error?.message ?? ''})`,
      );
    await sleep(1_000);
  }
}

/** Waits until every workflow id has closed; returns how many still run at the deadline. */
async function untilClosed(stack: ProcessStack, ids: string[], deadlineMs: number, say: (l: string) => void) {
  let open = ids;
  while (open.length > 0 && Date.now() < deadlineMs) {
    const states = await Promise.all(
      open.map((id) =>
        stack.temporal.client.workflow
          .getHandle(id)
          .describe()
          .then((d) => d.status.name === 'RUNNING')
          .catch(() => true),
      ),
    );
    open = open.filter((_, i) => states[i]);
    say(`${open.length} of ${ids.length} workflows still open`);
    if (open.length > 0) await sleep(10_000);
  }
  return open;
}

function perTable(before: TableStats[], after: TableStats[]) {
  const was = new Map(before.map((t) => [t.relname, t]));
  return after
    .map((t) => {
      const b = was.get(t.relname);
      return {
        table: t.relname,
        inserted: t.inserted - (b?.inserted ?? 0),
        updated: t.updated - (b?.updated ?? 0),
        deleted: t.deleted - (b?.deleted ?? 0),
        bytes: t.bytes - (b?.bytes ?? 0),
      };
    })
    .filter((t) => t.inserted + t.updated + t.deleted > 0 || t.bytes !== 0);
}

runMain(async () => {
  const target = takeTargetArgs(process.argv.slice(2));
  const parcels = Number(target.rest[0] ?? 100);
  const scale = Number(target.rest[1] ?? 2_880);
  const rate = Number(target.rest[2] ?? 2);
  if (!(parcels >= 10 && scale >= 1 && rate > 0))
    throw new Error('usage: [parcels ≥ 10] [timeScale ≥ 1] [ordersPerSecond > 0]');
  const t0 = Date.now();
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  const policyEnv = scaledPolicyEnv(scale);
  say(
    `capacity: ${parcels} parcels, courier clock ×${scale} (1 simulated day = ${fmt(DAY_MS / scale / 1000, 1)} s)`,
  );
  const stack = await startProcessStack({
    name: 'capacity',
    temporal: target.temporal,
    workers: target.workers,
    ...(target.shards !== undefined ? { shards: target.shards } : {}),
    timeScale: scale,
    stock: 1_000_000,
    env: policyEnv,
    stopOnInterrupt: true,
    say,
  });
  try {
    const token = customerToken(stack.config, `cus_cap_${randomBytes(4).toString('hex')}`, 6 * 3_600_000);
    const before = await dbSnapshot(stack.db);
    const mix = scenarioMix(parcels);
    const orderIds: string[] = [];
    for (let n = 0; n < parcels; n++) {
      const started = Date.now();
      orderIds.push(await placeOrder(stack, token, n, mix[n]!));
      if ((n + 1) % 20 === 0) say(`${n + 1} orders placed`);
      await sleep(Math.max(0, 1000 / rate - (Date.now() - started)));
    }
    say(`${parcels} orders placed`);
    // The longest life: the max tracking age (scaled) after the last order, plus slack.
    const deadline = Date.now() + loadConfig({}).polling.maxAgeMs / scale + 10 * 60_000;
    await sleep(5_000);
    let shipments = await stack.db.selectFrom('shipments').select(['id', 'order_id']).execute();
    const orderOpen = await untilClosed(stack, orderIds.map(orderWorkflowId), deadline, say);
    shipments = await stack.db.selectFrom('shipments').select(['id', 'order_id']).execute();
    const shipmentOpen = await untilClosed(
      stack,
      shipments.map((s) => shipmentWorkflowId(s.id)),
      deadline,
      say,
    );
    const after = await dbSnapshot(stack.db);

    const count = async (ids: string[]) => {
      const out: HistoryCounts[] = [];
      for (const id of ids) out.push(await countHistory(stack.temporal.client, id));
      return out;
    };
    const orders = await count(orderIds.map(orderWorkflowId));
    const tracked = await count(shipments.map((s) => shipmentWorkflowId(s.id)));
    const openDays = tracked.reduce(
      (s, h) => s + (((h.closedAtMs ?? Date.now()) - h.startedAtMs) * scale) / DAY_MS,
      0,
    );
    const sum = (hs: HistoryCounts[]) => {
      const actions = emptyActions();
      for (const h of hs) addActions(actions, h.actions);
      return {
        workflows: hs.length,
        runs: hs.reduce((s, h) => s + h.runs, 0),
        events: hs.reduce((s, h) => s + h.events, 0),
        bytes: hs.reduce((s, h) => s + h.bytes, 0),
        maxRunEvents: Math.max(0, ...hs.map((h) => h.maxRunEvents)),
        maxRunBytes: Math.max(0, ...hs.map((h) => h.maxRunBytes)),
        workflowTasks: hs.reduce((s, h) => s + h.workflowTasks, 0),
        actions,
        totalActions: totalActions(actions),
      };
    };
    const temporalTotals = { order: sum(orders), shipment: sum(tracked) };
    const tables = perTable(before.tables, after.tables);
    const { rows: walRows } = await sql<{ bytes: number }>`
      select pg_wal_lsn_diff(${after.lsn}::pg_lsn, ${before.lsn}::pg_lsn)::float8 as bytes`.execute(stack.db);
    const walBytes = walRows[0]!.bytes;
    const courierCalls = await stack.db
      .selectFrom('courier_api_usage')
      .select([
        'courier',
        sql<number>`sum(calls)::float8`.as('calls'),
        sql<number>`sum(failures)::float8`.as('failures'),
      ])
      .groupBy('courier')
      .execute();
    const { rows: outcomes } = await sql<{ status: string; n: number }>`
      select status, count(*)::int as n from shipments group by status order by n desc`.execute(stack.db);

    const n = shipments.length;
    const projected = projection(
      tracked,
      {
        events: temporalTotals.order.events / n,
        bytes: temporalTotals.order.bytes / n,
        actions: temporalTotals.order.totalActions / n,
        workflowTasks: temporalTotals.order.workflowTasks / n,
      },
      mix,
    );
    const per = (v: number) => v / n;
    const perDay = (v: number) => v / openDays;
    const lines = [
      '',
      `capacity: ${parcels} orders, ${n} parcels, courier clock ×${scale}, ${machine().cores} cores; Temporal ${stack.target}`,
      `parcels ended: ${outcomes.map((o) => `${o.status} ${o.n}`).join(', ')}; still open: ${orderOpen.length} orders, ${shipmentOpen.length} shipments`,
      `open-parcel days (shipment workflows, simulated): ${fmt(openDays, 1)} = ${fmt(openDays / n, 2)} days per parcel`,
      '',
      'Temporal, per parcel (order + shipment workflows) and per open-parcel day:',
      ...table(
        [
          ...(Object.keys(temporalTotals.order.actions) as (keyof Actions)[]).map((k) => ({
            what: `action: ${k}`,
            order: temporalTotals.order.actions[k],
            shipment: temporalTotals.shipment.actions[k],
          })),
          {
            what: 'actions (total)',
            order: temporalTotals.order.totalActions,
            shipment: temporalTotals.shipment.totalActions,
          },
          {
            what: 'history events',
            order: temporalTotals.order.events,
            shipment: temporalTotals.shipment.events,
          },
          {
            what: 'history bytes',
            order: temporalTotals.order.bytes,
            shipment: temporalTotals.shipment.bytes,
          },
          {
            what: 'workflow tasks',
            order: temporalTotals.order.workflowTasks,
            shipment: temporalTotals.shipment.workflowTasks,
          },
          { what: 'runs', order: temporalTotals.order.runs, shipment: temporalTotals.shipment.runs },
        ],
        [
          ['what', (r) => r.what],
          ['order/parcel', (r) => fmt(per(r.order), 2)],
          ['shipment/parcel', (r) => fmt(per(r.shipment), 2)],
          ['total/parcel', (r) => fmt(per(r.order + r.shipment), 2)],
          ['shipment/parcel-day', (r) => fmt(perDay(r.shipment), 3)],
        ],
      ),
      `largest run: ${temporalTotals.shipment.maxRunEvents} events / ${temporalTotals.shipment.maxRunBytes} bytes (shipment), ${temporalTotals.order.maxRunEvents} / ${temporalTotals.order.maxRunBytes} (order)`,
      '',
      'Postgres, whole run (per parcel):',
      ...table(tables, [
        ['table', (t) => t.table],
        ['inserted', (t) => `${t.inserted} (${fmt(per(t.inserted), 2)})`],
        ['updated', (t) => `${t.updated} (${fmt(per(t.updated), 2)})`],
        ['deleted', (t) => `${t.deleted} (${fmt(per(t.deleted), 2)})`],
        ['bytes Δ', (t) => `${t.bytes} (${fmt(per(t.bytes), 0)})`],
      ]),
      `WAL written: ${walBytes} bytes = ${fmt(per(walBytes), 0)} per parcel, ${fmt(perDay(walBytes), 0)} per open-parcel day`,
      '',
      `projection (unloaded: polls on time): ${fmt(projected.measuredPollsPerParcel, 2)} polls per parcel measured here, ${fmt(projected.modelPolls, 1)} in the virtual-time model over ${fmt(projected.modelDays, 2)} days`,
      ...table(projected.rows, [
        ['figure', (r) => r.what],
        ['shipment fixed', (r) => fmt(r.fixed, 1)],
        ['per poll', (r) => fmt(r.perPoll, 2)],
        ['per parcel (+ order)', (r) => fmt(r.perParcel, 1)],
        ['per open-parcel day', (r) => fmt(r.perParcelDay, 2)],
      ]),
      '',
      `courier HTTP calls: ${courierCalls.map((c) => `${c.courier} ${c.calls} (${fmt(per(c.calls), 2)}/parcel, ${fmt(perDay(c.calls), 3)}/parcel-day, ${c.failures} failed)`).join('; ')}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const out = writeResult('capacity', {
      machine: machine(),
      args: { parcels, timeScale: scale, ordersPerSecond: rate, temporal: stack.target },
      policyEnv,
      mix: Object.fromEntries(SCENARIO_NAMES.map((s) => [s, mix.filter((m) => m === s).length])),
      outcomes,
      stillOpen: { orders: orderOpen.length, shipments: shipmentOpen.length },
      parcels: n,
      openParcelDays: openDays,
      temporal: temporalTotals,
      postgres: { tables, walBytes },
      courierCalls,
      projection: projected,
      seconds: (Date.now() - t0) / 1000,
    });
    say(`wrote ${out}; stopping the stack`);
  } finally {
    await stack.stop();
  }
  process.exit(0);
});
