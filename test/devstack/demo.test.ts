/**
 * `npm run demo`'s pieces without a stack: the plan, the settings check, the expectation
 * check and what it prints. The demo end to end takes minutes; it is run by hand (README).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEMO_CATALOGUE } from '../../db/seed';
import { loadConfig } from '../../src/config';
import {
  assessPlan,
  buildPlan,
  endsByItself,
  longestQuietStretch,
  parseKinds,
  PlanError,
} from '../../devstack/demo/plan';
import {
  checkOrder,
  compareListing,
  outageProblems,
  verdictOf,
  type ObservedOrder,
} from '../../devstack/demo/checks';
import { DEMO_KIND_SPECS, DEMO_KINDS, type DemoKind, KNOWN_BUGS } from '../../devstack/demo/kinds';
import { DEMO_OUTAGE_MS, DEMO_STACK_ENV, DEMO_TIME_SCALE } from '../../devstack/demo/settings';
import { parseDemoArgs } from '../../devstack/demo/args';
import {
  changeLine,
  cliListCommand,
  exceptionCheck,
  orderIdOfWorkflow,
  renderFrame,
  summaryLine,
  temporalUiUrl,
  visibilityChecks,
  type OrderRow,
} from '../../devstack/demo/view';
import { DEMO_MARKER, resetDataDir } from '../../devstack/demo/stack';
import { pollPolicyFromConfig } from '../../src/poll-policy';
import { scenarioHint } from '../../simulators/courier/core';

const HOUR = 3_600_000;
const demoPolicy = () => pollPolicyFromConfig(loadConfig({ ...DEMO_STACK_ENV }));
const TEN_MINUTES = 600_000;

/** What the API shows of an order that ended exactly as `kind` expects. */
function asExpected(kind: DemoKind): ObservedOrder {
  const { expect } = DEMO_KIND_SPECS[kind];
  const total = 8_990;
  return {
    createError: null,
    status: expect.orderStatus,
    failureCode: expect.failureCode,
    totalAmount: total,
    parcels: expect.parcels.map((status) => ({ status, scans: [...expect.scans, status] })),
    payment:
      expect.payment === 'DECLINED'
        ? { status: 'DECLINED', amountCaptured: 0, amountRefunded: 0 }
        : {
            status: expect.payment,
            amountCaptured: expect.payment === 'VOIDED' ? 0 : total,
            amountRefunded: expect.payment === 'REFUNDED' ? total : 0,
          },
    cancel:
      expect.cancel === 'accepted'
        ? { httpStatus: 200, code: null }
        : expect.cancel === 'refused'
          ? { httpStatus: 409, code: 'ALREADY_PICKED_UP' }
          : null,
  };
}

describe('the demo plan', () => {
  it('places 42 orders of every kind, declined payments first so the probe order holds nothing', () => {
    const plan = buildPlan();
    expect(plan).toHaveLength(42);
    expect(new Set(plan.map((e) => e.spec.kind))).toEqual(new Set(DEMO_KINDS));
    expect(plan[0]!.spec.kind).toBe('payment_declined');
    expect(plan.map((e) => e.n)).toEqual(plan.map((_, i) => i + 1));
    // Both decline reasons of the payment simulator are shown.
    expect(plan.filter((e) => e.spec.kind === 'payment_declined').map((e) => e.paymentToken)).toEqual([
      'tok_chargeDeclined',
      'tok_chargeDeclinedInsufficientFunds',
    ]);
  });

  it('deals --orders over the chosen kinds in turn, keeping each kind together', () => {
    const plan = buildPlan({ kinds: ['delivered', 'lost', 'exception'], orders: 7 });
    expect(plan.map((e) => e.spec.kind)).toEqual([
      'delivered',
      'delivered',
      'delivered',
      'exception',
      'exception',
      'lost',
      'lost',
    ]);
    expect(buildPlan({ kinds: ['lost'] })).toHaveLength(DEMO_KIND_SPECS.lost.count);
    expect(() => buildPlan({ orders: 0 })).toThrow(PlanError);
  });

  it('steers every parcel through the recipient name, and only orders from two warehouses ship two parcels', () => {
    const locationOf = new Map<string, string>(DEMO_CATALOGUE.map((item) => [item.sku, item.location]));
    for (const entry of buildPlan()) {
      const { spec } = entry;
      expect(scenarioHint(entry.shippingAddress.name)).toBe(spec.parcelScenario);
      for (const line of spec.lines) expect(locationOf.has(line.sku)).toBe(true);
      const places = new Set(spec.lines.map((line) => locationOf.get(line.sku)));
      const parcels = spec.expect.payment === 'DECLINED' ? 0 : places.size;
      expect(spec.expect.parcels).toHaveLength(parcels);
    }
    expect(DEMO_KIND_SPECS.two_warehouses.expect.parcels).toHaveLength(2);
  });

  it("takes the outage courier down only for orders shipped with it, the fleet kinds with the shop's own fleet, every other order with the simulator", () => {
    for (const spec of Object.values(DEMO_KIND_SPECS)) {
      expect(spec.courier).toBe(
        spec.outage ? 'easyparcel' : spec.kind.startsWith('fleet_') ? 'fleet' : 'simulator',
      );
    }
  });

  it('refuses unknown scenario names and lists the valid ones', () => {
    expect(parseKinds('lost, delivered')).toEqual(['delivered', 'lost']);
    expect(() => parseKinds('delivered,teleported')).toThrow(
      /unknown scenario teleported; choose from payment_declined/,
    );
    expect(() => parseKinds(',')).toThrow(PlanError);
  });
});

describe('whether a stack can run the plan', () => {
  it("finishes the whole plan well within ten minutes on the demo's own settings, no moving parcel expiring", () => {
    const { problems, estimateMs } = assessPlan(
      buildPlan(),
      { timeScale: DEMO_TIME_SCALE, policy: demoPolicy() },
      { timeoutMs: TEN_MINUTES, outageMs: DEMO_OUTAGE_MS },
    );
    expect(problems).toEqual([]);
    expect(estimateMs).toBeGreaterThan(120_000);
    expect(estimateMs).toBeLessThan(240_000);
  });

  it('refuses a stack on production settings, saying how long the orders would take', () => {
    const { problems } = assessPlan(
      buildPlan({ kinds: ['delivered', 'lost'] }),
      { timeScale: 1, policy: pollPolicyFromConfig(loadConfig({})) },
      { timeoutMs: TEN_MINUTES, outageMs: DEMO_OUTAGE_MS },
    );
    expect(problems).toEqual([
      expect.stringMatching(/^delivered orders would take about 2 d 15 h at courier time scale 1/),
      expect.stringMatching(/^lost orders would take about 7 d/),
    ]);
  });

  it('refuses an expiry shorter than a moving parcel goes without a scan', () => {
    const policy = { ...demoPolicy(), expireAfterNoScanMs: 40_000 };
    const { problems } = assessPlan(
      buildPlan({ kinds: ['return_to_origin', 'courier_outage'] }),
      { timeScale: DEMO_TIME_SCALE, policy },
      { timeoutMs: TEN_MINUTES, outageMs: DEMO_OUTAGE_MS },
    );
    expect(problems).toEqual([
      expect.stringMatching(/^WAYBILL_EXPIRE_AFTER_NO_SCAN is 40 s, but courier_outage parcels can go 40 s/),
      expect.stringMatching(
        /^WAYBILL_EXPIRE_AFTER_NO_SCAN is 40 s, but return_to_origin parcels can go 54 s/,
      ),
    ]);
  });

  it('does not count the courier outage towards a parcel going without a scan (the expiry stands still meanwhile)', () => {
    const policy = { ...demoPolicy(), expireAfterNoScanMs: 45_000 };
    const { problems } = assessPlan(
      buildPlan({ kinds: ['courier_outage'] }),
      { timeScale: DEMO_TIME_SCALE, policy },
      { timeoutMs: TEN_MINUTES, outageMs: DEMO_OUTAGE_MS },
    );
    expect(problems).toEqual([]);
  });

  it("reads the scenarios' timelines: the longest quiet stretch and whether a parcel ends by itself", () => {
    expect(longestQuietStretch('return_to_origin')).toBe(44 * HOUR);
    expect(longestQuietStretch('delivered')).toBe(30 * HOUR);
    expect(endsByItself('available_for_pickup')).toBe(true);
    expect(endsByItself('exception')).toBe(false);
    expect(endsByItself('lost')).toBe(false);
  });
});

describe('checking an order against its expectation', () => {
  it('finds nothing wrong with an order of any kind that ended as expected', () => {
    for (const kind of DEMO_KINDS)
      expect(checkOrder(DEMO_KIND_SPECS[kind].expect, asExpected(kind))).toEqual([]);
  });

  it('names each way an order differs', () => {
    const seen: ObservedOrder = {
      ...asExpected('return_to_origin'),
      status: 'DELIVERED',
      failureCode: 'SHIPMENT_LOST',
      parcels: [{ status: 'DELIVERED', scans: ['IN_TRANSIT', 'DELIVERED'] }],
      payment: { status: 'CAPTURED', amountCaptured: 8_990, amountRefunded: 0 },
    };
    expect(checkOrder(DEMO_KIND_SPECS.return_to_origin.expect, seen)).toEqual([
      'order DELIVERED, expected RETURNED',
      'failure SHIPMENT_LOST, expected none',
      'parcels DELIVERED, expected RETURNED',
      "parcel 1's tracking has no ATTEMPT_FAIL, RETURNING scan",
      'payment CAPTURED (captured 89.90, refunded 0.00 of 89.90), expected captured and refunded in full',
    ]);
  });

  it('checks the answers to the cancels, and that the outage reached the courier and the shop', () => {
    expect(
      checkOrder(DEMO_KIND_SPECS.cancel_refused_after_pickup.expect, {
        ...asExpected('cancel_refused_after_pickup'),
        cancel: { httpStatus: 200, code: null },
      }),
    ).toEqual(['cancel answered 200, expected 409 ALREADY_PICKED_UP']);
    expect(
      checkOrder(DEMO_KIND_SPECS.cancelled_before_pickup.expect, {
        ...asExpected('cancelled_before_pickup'),
        cancel: null,
      }),
    ).toEqual(['the demo never sent its cancel (the order was never booked)']);
    expect(outageProblems({ started: true, refusedCalls: 12, parcels: 4, shownDown: 1 })).toEqual([]);
    expect(outageProblems({ started: true, refusedCalls: 0, parcels: 4, shownDown: 0 })).toEqual([
      'the courier refused no call while it was down',
      "none of the 4 parcels' tracking ever showed the courier as unavailable",
    ]);
    expect(outageProblems({ started: false, refusedCalls: 0, parcels: 4, shownDown: 0 })).toEqual([
      'the outage never started (no parcel of the outage courier was picked up)',
    ]);
  });

  it('counts a difference as a known bug only when a listed known bug explains every problem', () => {
    const lost = DEMO_KIND_SPECS.lost;
    expect(verdictOf(lost, [])).toBe('pass');
    // No known bugs are listed today: every difference fails the run.
    expect(Object.keys(KNOWN_BUGS)).toEqual([]);
    expect(verdictOf(lost, ['parcels CANCELLED, expected EXPIRED'])).toBe('fail');
    const withBug = {
      ...lost,
      knownBugs: [{ id: 'x', title: 'x', explains: (p: string) => p.startsWith('parcels CANCELLED') }],
    };
    expect(verdictOf(withBug, ['parcels CANCELLED, expected EXPIRED'])).toBe('known-bug');
    expect(
      verdictOf(withBug, ['parcels CANCELLED, expected EXPIRED', 'order SHIPPED, expected FAILED']),
    ).toBe('fail');
  });

  it('compares what a visibility query listed with what it should, order by order', () => {
    const expected = new Map([
      ['ord_a', 1],
      ['ord_b', 1],
    ]);
    expect(
      compareListing({
        expected,
        found: new Map([
          ['ord_a', 1],
          ['ord_b', 1],
        ]),
        isKnownBug: () => false,
      }),
    ).toEqual({ listed: 2, expectedTotal: 2, explained: [], unexplained: [] });
    expect(
      compareListing({
        expected,
        found: new Map([
          ['ord_a', 1],
          ['ord_c', 1],
        ]),
        isKnownBug: (id) => id === 'ord_b',
      }),
    ).toEqual({ listed: 2, expectedTotal: 2, explained: ['ord_b'], unexplained: ['ord_c'] });
  });
});

describe('the command line', () => {
  it('reads every flag, with its value after a space or an equals sign', () => {
    expect(parseDemoArgs([])).toEqual({
      help: false,
      attach: false,
      keep: false,
      strict: false,
      kinds: undefined,
      orders: undefined,
      timeoutMs: TEN_MINUTES,
    });
    expect(
      parseDemoArgs([
        '--attach',
        '--keep',
        '--strict',
        '--scenarios',
        'lost,delivered',
        '--orders=4',
        '--timeout',
        '90s',
      ]),
    ).toEqual({
      help: false,
      attach: true,
      keep: true,
      strict: true,
      kinds: ['delivered', 'lost'],
      orders: 4,
      timeoutMs: 90_000,
    });
  });

  it('refuses what it does not understand, with the usage', () => {
    expect(() => parseDemoArgs(['--orders', 'many'])).toThrow(
      '--orders must be a whole number from 1 to 500 (got "many")',
    );
    expect(() => parseDemoArgs(['--timeout'])).toThrow(/--timeout needs a value\nusage: npm run demo/);
    expect(() => parseDemoArgs(['--fast'])).toThrow(/unknown argument --fast\nusage:/);
  });
});

describe('what the demo prints', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  const row = (n: number, over: Partial<OrderRow> = {}): OrderRow => ({
    n,
    kind: 'delivered',
    orderNumber: `WB-${100000 + n}`,
    status: 'SHIPPED',
    parcels: ['IN_TRANSIT'],
    changedAt: now - 3_000,
    note: null,
    verdict: null,
    ...over,
  });

  it('draws one line per order, cut to the terminal width', () => {
    const rows = [row(1), row(2, { kind: 'two_warehouses', parcels: ['IN_TRANSIT', 'INFO_RECEIVED'] })];
    const opts = { title: 'Waybill demo', summary: 'summary', now, height: 40, color: false };
    const frame = renderFrame(rows, { ...opts, width: 140 });
    expect(frame).toHaveLength(5);
    expect(frame[1]).toMatch(/^ORDER\s+SCENARIO\s+ORDER STATUS\s+PARCELS\s+UPDATED\s+NOTE$/);
    expect(frame[2]).toMatch(/^WB-100001 delivered\s+SHIPPED\s+IN_TRANSIT\s+3s ago$/);
    expect(frame[3]).toContain('IN_TRANSIT · INFO_RECEIVED');
    for (const line of renderFrame(rows, { ...opts, width: 60 })) expect(line.length).toBeLessThanOrEqual(60);
  });

  it('shows unsettled orders first when they do not all fit, so the frame never scrolls', () => {
    const rows = Array.from({ length: 30 }, (_, i) => row(i + 1, { verdict: i < 25 ? 'pass' : null }));
    const frame = renderFrame(rows, { title: 't', summary: 's', now, width: 120, height: 12, color: true });
    expect(frame.length).toBeLessThanOrEqual(12);
    for (const n of [26, 27, 28, 29, 30])
      expect(frame.some((line) => line.startsWith(`WB-1000${n}`))).toBe(true);
    expect(frame.some((line) => line.includes('more settled orders'))).toBe(true);
  });

  it('sums the orders up by status in one line, with what is settled and what is not as expected', () => {
    const rows = [
      row(1),
      row(2, { status: 'DELIVERED', verdict: 'pass' }),
      row(3, { status: 'FAILED', verdict: 'known-bug' }),
      row(4, { status: 'FAILED', verdict: 'fail' }),
    ];
    expect(summaryLine(rows, { elapsedMs: 83_000, outage: 'EasyParcel DOWN, 12 s left' })).toBe(
      '4 orders: 1 SHIPPED, 1 DELIVERED, 2 FAILED │ settled 3/4 (1 not as expected, 1 known bug) │ EasyParcel DOWN, 12 s left │ 1:23 elapsed',
    );
    expect(changeLine(row(2, { status: 'DELIVERED', parcels: ['DELIVERED'], verdict: 'pass' }), 65_000)).toBe(
      '[1:05] WB-100002 delivered: DELIVERED parcels DELIVERED ✓ as expected',
    );
  });

  it('names the Temporal queries with what each must list for the full plan', () => {
    const specs = buildPlan().map((e) => e.spec);
    const checks = visibilityChecks(specs, {
      customerId: 'cus_demo_1',
      sinceIso: '2026-11-23T12:00:00.000Z',
    });
    const total = (label: string) => {
      const check = checks.find((c) => c.label === label)!;
      return specs.reduce((sum, spec) => sum + check.per(spec), 0);
    };
    expect(checks.map((c) => c.query)).toEqual([
      'CustomerId="cus_demo_1"',
      'CustomerId="cus_demo_1" AND OrderStatus="FAILED"',
      'CustomerId="cus_demo_1" AND OrderStatus="RETURNED"',
      'CustomerId="cus_demo_1" AND OrderStatus="CANCELLED"',
      'ShipmentStatus="EXPIRED" AND StartTime >= "2026-11-23T12:00:00.000Z"',
      'ShipmentStatus="RETURNED" AND StartTime >= "2026-11-23T12:00:00.000Z"',
      'Courier="easyparcel" AND StartTime >= "2026-11-23T12:00:00.000Z"',
    ]);
    expect(total('orders of this run')).toBe(42);
    expect(total('failed orders')).toBe(9);
    expect(total('cancelled orders')).toBe(6);
    expect(total('parcels that expired')).toBe(7);
    expect(total('EasyParcel parcels (the outage)')).toBe(4);
    expect(exceptionCheck(specs, '2026-11-23T12:00:00.000Z')?.query).toBe(
      'ShipmentStatus="EXCEPTION" AND StartTime >= "2026-11-23T12:00:00.000Z"',
    );
    expect(
      exceptionCheck(
        buildPlan({ kinds: ['lost'] }).map((e) => e.spec),
        'x',
      ),
    ).toBeNull();
  });

  it('prints UI links and CLI commands a shell runs as they are', () => {
    const query = 'OrderStatus="FAILED" AND CustomerId="cus_demo_1"';
    expect(temporalUiUrl({ uiPort: 8233, namespace: 'default', query })).toBe(
      'http://localhost:8233/namespaces/default/workflows?query=OrderStatus%3D%22FAILED%22%20AND%20CustomerId%3D%22cus_demo_1%22',
    );
    expect(
      temporalUiUrl({
        uiPort: 8233,
        namespace: 'default',
        workflow: { workflowId: 'order-ord_1', runId: 'r1' },
      }),
    ).toBe('http://localhost:8233/namespaces/default/workflows/order-ord_1/r1/history');
    expect(cliListCommand({ cli: '/c/temporal', address: null, namespace: 'default', query })).toBe(
      `/c/temporal workflow list --query 'OrderStatus="FAILED" AND CustomerId="cus_demo_1"'`,
    );
    expect(
      cliListCommand({ cli: 'temporal', address: 'localhost:7310', namespace: 'shop', query: "x='y'" }),
    ).toBe(`temporal workflow list --address localhost:7310 --namespace shop --query 'x='\\''y'\\'''`);
    expect(orderIdOfWorkflow('order-ord_ab12')).toBe('ord_ab12');
    expect(orderIdOfWorkflow('shipment-ord_ab12-p2')).toBe('ord_ab12');
    expect(orderIdOfWorkflow('something-else')).toBeNull();
  });
});

describe("the demo's data folder", () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'waybill-demo-'));
  });
  afterEach(() => fs.rm(root, { recursive: true, force: true }));

  it("is made, marked as the demo's, and emptied at the start of the next run", async () => {
    const dir = path.join(root, 'demo');
    await resetDataDir(dir);
    expect(await fs.readdir(dir)).toEqual([DEMO_MARKER]);
    await fs.writeFile(path.join(dir, 'stack.log'), 'last run');
    await resetDataDir(dir);
    expect(await fs.readdir(dir)).toEqual([DEMO_MARKER]);
  });

  it('is never emptied when the demo did not make it', async () => {
    await fs.writeFile(path.join(root, 'precious.txt'), 'keep me');
    await expect(resetDataDir(root)).rejects.toThrow(/exists and was not made by the demo/);
    expect(await fs.readdir(root)).toEqual(['precious.txt']);
  });
});
