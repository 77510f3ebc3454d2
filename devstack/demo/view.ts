/**
 * What `npm run demo` prints: the live table of orders (redrawn in place on a terminal),
 * the one-line summary, the plain lines it prints instead when stdout is not a terminal,
 * the results, and where to look in the Temporal UI and CLI. Pure functions of the rows.
 */
import type { DemoKind, DemoKindSpec } from './kinds';
import type { Verdict } from './checks';

/** One order as the table shows it. */
export interface OrderRow {
  n: number;
  kind: DemoKind;
  orderNumber: string | null;
  status: string | null;
  parcels: readonly string[];
  /** Real ms (epoch) the demo last saw the order or a parcel change. */
  changedAt: number | null;
  /** What the demo did to it, or what went wrong (`cancel → 409 ALREADY_PICKED_UP`). */
  note: string | null;
  /** Once settled: whether it matched its expectation (or differed only by a known bug). */
  verdict: Verdict | null;
}

export const ORDER_STATUS_ORDER = [
  'PENDING',
  'CONFIRMED',
  'PARTIALLY_SHIPPED',
  'SHIPPED',
  'DELIVERED',
  'RETURNED',
  'CANCELLED',
  'FAILED',
] as const;

const COLORS = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Color = keyof typeof COLORS;

export function paint(color: Color, text: string, enabled: boolean): string {
  return enabled ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text;
}

/** `1:05` / `12:40`: minutes and seconds since the start. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function ago(changedAt: number | null, now: number): string {
  if (changedAt === null) return '';
  const s = Math.max(0, Math.round((now - changedAt) / 1000));
  return s < 60 ? `${s}s ago` : `${Math.floor(s / 60)}m ago`;
}

const pad = (text: string, width: number) =>
  text.length >= width ? text : text + ' '.repeat(width - text.length);

/** Cuts a line to `width` visible characters (colour codes do not count). */
export function fit(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return out;
}

const COLUMNS = { order: 10, kind: 30, status: 19, parcels: 44, updated: 9 } as const;

const MARK: Record<Verdict, string> = { pass: '✓', 'known-bug': '⚠', fail: '✗' };
const TINT: Record<Verdict, Color> = { pass: 'green', 'known-bug': 'yellow', fail: 'red' };

function rowLine(row: OrderRow, now: number, color: boolean): string {
  const mark = row.verdict ? ` ${MARK[row.verdict]}` : '';
  const status = pad(`${row.status ?? '…'}${mark}`, COLUMNS.status);
  const tint = row.verdict ? TINT[row.verdict] : null;
  return [
    pad(row.orderNumber ?? `#${row.n}`, COLUMNS.order),
    pad(row.kind, COLUMNS.kind),
    tint ? paint(tint, status, color) : status,
    pad(row.parcels.length > 0 ? row.parcels.join(' · ') : '—', COLUMNS.parcels),
    pad(ago(row.changedAt, now), COLUMNS.updated),
    row.note ? paint('dim', row.note, color) : '',
  ]
    .join('')
    .trimEnd();
}

/** Counts by order status, settled count and elapsed time, in one line. */
export function summaryLine(
  rows: readonly OrderRow[],
  opts: { elapsedMs: number; outage: string | null },
): string {
  const counts = new Map<string, number>();
  for (const row of rows)
    counts.set(row.status ?? 'NOT PLACED', (counts.get(row.status ?? 'NOT PLACED') ?? 0) + 1);
  const byStatus = [...ORDER_STATUS_ORDER, 'NOT PLACED']
    .filter((status) => counts.has(status))
    .map((status) => `${counts.get(status)} ${status}`);
  const settled = rows.filter((row) => row.verdict !== null).length;
  const failed = rows.filter((row) => row.verdict === 'fail').length;
  const known = rows.filter((row) => row.verdict === 'known-bug').length;
  const notes = [
    ...(failed > 0 ? [`${failed} not as expected`] : []),
    ...(known > 0 ? [`${known} known bug${known > 1 ? 's' : ''}`] : []),
  ];
  return [
    `${rows.length} orders: ${byStatus.join(', ')}`,
    `settled ${settled}/${rows.length}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`,
    ...(opts.outage ? [opts.outage] : []),
    `${clock(opts.elapsedMs)} elapsed`,
  ].join(' │ ');
}

/**
 * The live frame: a title, the column heads, one line per order and the summary, cut to
 * the terminal. When the orders do not fit, unsettled ones are shown first and the rest are
 * counted in one line, so the frame never scrolls (a scrolled frame cannot be redrawn).
 */
export function renderFrame(
  rows: readonly OrderRow[],
  opts: { title: string; summary: string; now: number; width: number; height: number; color: boolean },
): string[] {
  const head = paint(
    'bold',
    [
      pad('ORDER', COLUMNS.order),
      pad('SCENARIO', COLUMNS.kind),
      pad('ORDER STATUS', COLUMNS.status),
      pad('PARCELS', COLUMNS.parcels),
      pad('UPDATED', COLUMNS.updated),
      'NOTE',
    ].join(''),
    opts.color,
  );
  const room = Math.max(3, opts.height - 4);
  let shown = [...rows];
  let hidden = 0;
  if (shown.length > room) {
    const open = rows.filter((row) => row.verdict === null);
    const done = rows.filter((row) => row.verdict !== null);
    shown = [...open, ...done].slice(0, room - 1).sort((a, b) => a.n - b.n);
    hidden = rows.length - shown.length;
  }
  const lines = [
    paint('bold', opts.title, opts.color),
    head,
    ...shown.map((row) => rowLine(row, opts.now, opts.color)),
    ...(hidden > 0
      ? [paint('dim', `… ${hidden} more settled orders (terminal too small to show all)`, opts.color)]
      : []),
    opts.summary,
  ];
  return lines.map((line) => fit(line, opts.width));
}

/** The line printed for a change when stdout is not a terminal. */
export function changeLine(row: OrderRow, elapsedMs: number): string {
  const parcels = row.parcels.length > 0 ? ` parcels ${row.parcels.join(', ')}` : '';
  const verdict =
    row.verdict === 'pass' ? ' ✓ as expected' : row.verdict === 'fail' ? ' ✗ NOT as expected' : '';
  return `[${clock(elapsedMs)}] ${row.orderNumber ?? `#${row.n}`} ${row.kind}: ${row.status ?? '…'}${parcels}${row.note ? ` (${row.note})` : ''}${verdict}`;
}

/** One result line per order: what it ended as and, when it differs, how (and which known bug that is). */
export function resultLine(
  row: OrderRow,
  details: { failureCode: string | null; problems: readonly string[]; knownBugs: readonly string[] },
  color: boolean,
): string {
  const verdict = row.verdict ?? 'fail';
  const mark = paint(TINT[verdict], MARK[verdict], color);
  const status = `${row.status ?? 'never placed'}${details.failureCode && details.failureCode !== row.status ? ` (${details.failureCode})` : ''}`;
  const parcels = row.parcels.length > 0 ? `parcels ${row.parcels.join(', ')}` : 'no parcel';
  const tail =
    verdict === 'pass'
      ? ''
      : `  ${paint(TINT[verdict], details.problems.join('; '), color)}${
          verdict === 'known-bug'
            ? paint('yellow', ` [known bug ${details.knownBugs.join(', ')}]`, color)
            : ''
        }`;
  return `  ${mark} ${pad(row.orderNumber ?? `#${row.n}`, COLUMNS.order)}${pad(row.kind, COLUMNS.kind)}${pad(status, 28)}${parcels}${tail}`;
}

// ---------------------------------------------------------------------------------------
// Temporal

export interface VisibilityCheck {
  label: string;
  /** A Temporal visibility query (the UI's filter, `temporal workflow list --query`). */
  query: string;
  /** Which workflows it lists: orders' own, or their parcels'. */
  lists: 'orders' | 'parcels';
  /** How many of the listed workflows an order of this kind should contribute. */
  per: (spec: DemoKindSpec) => number;
}

/**
 * The queries ops would type to find this run's workflows in the end state. Orders carry
 * the run's customer id; parcels are scoped by start time.
 */
export function visibilityChecks(
  specs: readonly DemoKindSpec[],
  opts: { customerId: string; sinceIso: string },
): VisibilityCheck[] {
  const orders = `CustomerId="${opts.customerId}"`;
  const since = `StartTime >= "${opts.sinceIso}"`;
  const orderStatus = (status: string) => (spec: DemoKindSpec) =>
    spec.expect.orderStatus === status ? 1 : 0;
  const parcelStatus = (status: string) => (spec: DemoKindSpec) =>
    spec.expect.parcels.filter((parcel) => parcel === status).length;
  const checks: VisibilityCheck[] = [
    { label: 'orders of this run', query: orders, lists: 'orders', per: () => 1 },
    {
      label: 'failed orders',
      query: `${orders} AND OrderStatus="FAILED"`,
      lists: 'orders',
      per: orderStatus('FAILED'),
    },
    {
      label: 'returned orders',
      query: `${orders} AND OrderStatus="RETURNED"`,
      lists: 'orders',
      per: orderStatus('RETURNED'),
    },
    {
      label: 'cancelled orders',
      query: `${orders} AND OrderStatus="CANCELLED"`,
      lists: 'orders',
      per: orderStatus('CANCELLED'),
    },
    {
      label: 'parcels that expired',
      query: `ShipmentStatus="EXPIRED" AND ${since}`,
      lists: 'parcels',
      per: parcelStatus('EXPIRED'),
    },
    {
      label: 'parcels returned to the shop',
      query: `ShipmentStatus="RETURNED" AND ${since}`,
      lists: 'parcels',
      per: parcelStatus('RETURNED'),
    },
    {
      label: 'EasyParcel parcels (the outage)',
      query: `Courier="easyparcel" AND ${since}`,
      lists: 'parcels',
      per: (spec) => (spec.courier === 'easyparcel' ? spec.expect.parcels.length : 0),
    },
  ];
  return checks.filter((check, i) => i === 0 || specs.some((spec) => check.per(spec) > 0));
}

/** Parcels in EXCEPTION: taken mid-run, while the damaged parcels are still in that status. */
export function exceptionCheck(specs: readonly DemoKindSpec[], sinceIso: string): VisibilityCheck | null {
  return specs.some((spec) => spec.kind === 'exception')
    ? {
        label: 'parcels in EXCEPTION (taken mid-run)',
        query: `ShipmentStatus="EXCEPTION" AND StartTime >= "${sinceIso}"`,
        lists: 'parcels',
        per: (spec) => (spec.kind === 'exception' ? spec.expect.parcels.length : 0),
      }
    : null;
}

/** The order a listed workflow belongs to: `order-<orderId>` or `shipment-<orderId>-p<n>`. */
export function orderIdOfWorkflow(workflowId: string): string | null {
  const order = /^order-(.+)$/.exec(workflowId);
  if (order) return order[1]!;
  const parcel = /^shipment-(.+)-p\d+$/.exec(workflowId);
  return parcel ? parcel[1]! : null;
}

export function temporalUiUrl(opts: {
  uiPort: number;
  namespace: string;
  query?: string;
  workflow?: { workflowId: string; runId: string };
}): string {
  const base = `http://localhost:${opts.uiPort}/namespaces/${encodeURIComponent(opts.namespace)}/workflows`;
  if (opts.workflow) {
    return `${base}/${encodeURIComponent(opts.workflow.workflowId)}/${encodeURIComponent(opts.workflow.runId)}/history`;
  }
  return opts.query ? `${base}?query=${encodeURIComponent(opts.query)}` : base;
}

/** A `temporal workflow list` command line a shell runs as printed (the query in single quotes). */
export function cliListCommand(opts: {
  cli: string;
  address: string | null;
  namespace: string;
  query: string;
}): string {
  const flags = [
    ...(opts.address ? [`--address ${opts.address}`] : []),
    ...(opts.namespace !== 'default' ? [`--namespace ${opts.namespace}`] : []),
  ];
  return [opts.cli, 'workflow list', ...flags, `--query '${opts.query.replace(/'/g, `'\\''`)}'`].join(' ');
}
