/**
 * The simulator speaking EasyParcel (EasyParcel Open API: JSON under `/open_api/<version>/`,
 * OAuth tokens from `/oauth/token` with the refresh-token grant; wire format in
 * src/couriers/README.md). The quirks are rendered on purpose, so the real adapter meets
 * them in every end-to-end run: EasyParcel's own "Schedule In Arrangement" is stamped in UTC
 * while the couriers' scans are Malaysia time, the two date formats alternate, `status_log`
 * comes in a shuffled (but repeatable) order, out-for-delivery, failed attempts, returns and
 * a cancellation exist only in the text, locations read "Place, State, MY", unknown numbers
 * are `not_found` items inside a 200, and tokens expire. Every version answers with the
 * current (0-11) code table.
 *
 * Mount it inside a plugin with a prefix, e.g.
 * `app.register(async (scope) => registerEasyParcelRoutes(scope, backend, opts), { prefix: '/easyparcel' })`
 * or `app.register(easyParcelPlugin, { prefix: '/easyparcel', backend, ...opts })`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { EasyParcelCode } from '../../../src/couriers/easyparcel-codes';
import { EASYPARCEL_API_VERSIONS } from '../../../src/couriers/easyparcel-versions';
import { formatIsoSeconds, formatSqlLocal, MYT_OFFSET_MINUTES } from '../../../src/couriers/time';
import { ShipmentStatus } from '../../../src/domain/status';
import type {
  RenderedResponse,
  SimBackend,
  SimBookingRequest,
  SimScan,
  SimShipmentView,
  SimTrackingItem,
} from '../model';

export interface EasyParcelRouteOptions {
  /** The app's credentials, checked as HTTP Basic on the token endpoint. */
  clientId: string;
  clientSecret: string;
  /** The refresh token of the authorised account (the simulator has no login page to issue one). */
  refreshToken: string;
  /** Lifetime of an issued access token, in seconds of `now()`. */
  tokenTtlSeconds: number;
  /** Real clock (ms since the epoch): token expiry, and the moment tracking answers describe. */
  now: () => number;
  /**
   * Rotate refresh tokens as EasyParcel does: each refresh answers a new one and spends the one
   * used (a second use is `invalid_grant`). Off by default: a process that keeps the configured
   * token in memory only can then refresh more than once.
   */
  rotateRefreshTokens?: boolean;
}

/** Most AWB numbers one tracking call accepts (more: 422), as EasyParcel's docs say. */
export const EASYPARCEL_SIM_MAX_BATCH = 100;

const S = ShipmentStatus;
const JSON_TYPE = 'application/json; charset=utf-8';

/** The code EasyParcel would give each taxonomy status (sub-status refinements below). */
const CODE_BY_STATUS: Readonly<Record<ShipmentStatus, number>> = {
  // EasyParcel's own "Schedule In Arrangement": the courier has the shipment's data.
  [S.PENDING]: EasyParcelCode.SCHEDULED,
  [S.INFO_RECEIVED]: EasyParcelCode.SCHEDULED,
  [S.IN_TRANSIT]: EasyParcelCode.IN_TRANSIT,
  // EasyParcel has no code for these: code 4 or 8, and the text says what happened.
  [S.OUT_FOR_DELIVERY]: EasyParcelCode.IN_TRANSIT,
  [S.ATTEMPT_FAIL]: EasyParcelCode.ON_HOLD,
  [S.RETURNING]: EasyParcelCode.IN_TRANSIT,
  // Nor for "held for collection" or a damaged parcel: both are "on hold" at EasyParcel.
  [S.AVAILABLE_FOR_PICKUP]: EasyParcelCode.ON_HOLD,
  [S.EXCEPTION]: EasyParcelCode.ON_HOLD,
  [S.DELIVERED]: EasyParcelCode.DELIVERED,
  [S.RETURNED]: EasyParcelCode.RETURNED,
  // Its tracking answers a cancelled shipment as code 8 with the text "Cancelled" (code 0 is
  // what its webhooks send).
  [S.CANCELLED]: EasyParcelCode.ON_HOLD,
  [S.EXPIRED]: EasyParcelCode.ON_HOLD,
};

/** Statuses of no physical scan (EasyParcel's own paperwork): `location: null`, and stamped in UTC. */
const OWN_EVENT: ReadonlySet<ShipmentStatus> = new Set([S.PENDING, S.INFO_RECEIVED]);
const OWN_EVENT_TEXT = 'Schedule In Arrangement';

/** The EasyParcel code of one scan. */
export function easyParcelCodeFor(scan: Pick<SimScan, 'status' | 'subStatus'>): number {
  if (scan.status === S.IN_TRANSIT && scan.subStatus === 'PICKED_UP') return EasyParcelCode.COLLECTED;
  return CODE_BY_STATUS[scan.status];
}

/**
 * The scan's text as EasyParcel writes it: the scan's own words, with the phrase that
 * carries the status added when the words lack it (EasyParcel has no code for these).
 */
function wireText(scan: SimScan, leg: 'parcel' | 'return'): string {
  if (OWN_EVENT.has(scan.status)) return OWN_EVENT_TEXT;
  if (scan.status === S.CANCELLED) return 'Cancelled';
  let text = scan.text;
  if (scan.status === S.OUT_FOR_DELIVERY && !/out for delivery|with courier for delivery/i.test(text)) {
    text = `Out for delivery: ${text}`;
  }
  if (scan.status === S.ATTEMPT_FAIL && !/attempt|not available/i.test(text))
    text = `Delivery attempt failed: ${text}`;
  if ((leg === 'return' || scan.status === S.RETURNING) && !/return/i.test(text))
    text = `Return to shipper: ${text}`;
  return text;
}

interface WireEntry {
  at: Date;
  code: number;
  text: string;
  location: string | null;
  /** EasyParcel's own event (stamped in UTC), not a courier's scan (Malaysia time). */
  own: boolean;
}

/** `"Kuala Lumpur Hub, Kuala Lumpur, MY"`: place, state, country code. */
function location(scan: SimScan): string | null {
  if (OWN_EVENT.has(scan.status)) return null;
  return [scan.location.city, scan.location.state, scan.location.country].filter(Boolean).join(', ');
}

/**
 * The entries of one parcel, oldest first. EasyParcel keeps one AWB for the whole journey,
 * so the return leg's movements join the parcel's log as code 4/8 with "return" in the
 * text. The leg's opening and its delivery are left out: the parcel's own RETURNING and
 * RETURNED scans already say those (unless the parcel has no RETURNED scan yet).
 */
function entriesOf(view: SimShipmentView, now: number): WireEntry[] {
  const hasReturned = view.scans.some((scan) => scan.status === S.RETURNED);
  const entries: WireEntry[] = view.scans.map((scan) => ({
    at: scan.at,
    code: easyParcelCodeFor(scan),
    text: wireText(scan, 'parcel'),
    location: location(scan),
    own: OWN_EVENT.has(scan.status),
  }));
  for (const scan of view.returnScans) {
    if (scan.status === S.INFO_RECEIVED) continue;
    if (scan.status === S.DELIVERED || scan.status === S.RETURNED) {
      if (hasReturned) continue;
      entries.push({
        at: scan.at,
        code: EasyParcelCode.RETURNED,
        text: 'Returned to shipper',
        location: location(scan),
        own: false,
      });
      continue;
    }
    const code = scan.status === S.RETURNING ? EasyParcelCode.IN_TRANSIT : easyParcelCodeFor(scan);
    entries.push({
      at: scan.at,
      // A return leg's pickup is still the parcel moving (4), never a fresh "collected" (3).
      code: code === EasyParcelCode.COLLECTED ? EasyParcelCode.IN_TRANSIT : code,
      text: wireText(scan, 'return'),
      location: location(scan),
      own: false,
    });
  }
  // A courier never shows a scan from the future.
  return entries.filter((entry) => entry.at.getTime() <= now).sort((a, b) => a.at.getTime() - b.at.getTime());
}

/**
 * EasyParcel's own events as `YYYY-MM-DD HH:mm:ss` in UTC; the couriers' scans alternate the
 * two formats EasyParcel mixes: ISO UTC, then Malaysia local time.
 */
function wireDate(entry: WireEntry, index: number): string {
  if (entry.own) return formatSqlLocal(entry.at, 0);
  return index % 2 === 0 ? formatIsoSeconds(entry.at) : formatSqlLocal(entry.at, MYT_OFFSET_MINUTES);
}

/**
 * `items` in a repeatable order that is not oldest first: sorted by a hash of the AWB and
 * each entry, and, should that happen to come out in time order, the first two swapped.
 */
function shuffled<T>(items: T[], awb: string, describe: (item: T, index: number) => string): T[] {
  const keyed = items.map((item, index) => ({
    item,
    index,
    hash: createHash('sha256')
      .update(`${awb}|${describe(item, index)}`)
      .digest('hex'),
  }));
  keyed.sort((a, b) => a.hash.localeCompare(b.hash));
  if (keyed.length > 1 && keyed.every((entry, i) => entry.index === i))
    [keyed[0], keyed[1]] = [keyed[1]!, keyed[0]!];
  return keyed.map((entry) => entry.item);
}

export interface EasyParcelLogEntry {
  event_date: string;
  shipment_status_code: number;
  tracking_status: string;
  location: string | null;
}

type EasyParcelItem =
  | {
      status: 'success';
      awb_number: string;
      shipment_number: string;
      order_number: string;
      latest_shipment_status_code: number;
      latest_tracking_status: string;
      latest_event_date: string | null;
      status_log: EasyParcelLogEntry[];
    }
  | { status: 'not_found'; awb_number: string; message: string };

/** The simulator's shipment number of an AWB (EasyParcel cancels by it): `ES-` and the AWB's digits. */
export function shipmentNumberOf(awb: string): string {
  return `ES-${awb.replace(/\D/g, '')}`;
}

/** A parcel's status log as EasyParcel shows it at `now`, oldest first (tracking answers and webhooks). */
export function easyParcelStatusLog(view: SimShipmentView, now: number): EasyParcelLogEntry[] {
  return entriesOf(view, now).map((entry, index) => ({
    event_date: wireDate(entry, index),
    shipment_status_code: entry.code,
    tracking_status: entry.text,
    location: entry.location,
  }));
}

/** One entry of EasyParcel's webhook log: no place (its docs' sample has none). */
export interface EasyParcelWebhookEntry {
  timestamp: string;
  shipment_status_code: number;
  tracking_status: string;
}

/**
 * A parcel's status log as EasyParcel's webhooks write it at `now`, oldest first: every time as
 * its docs' sample writes one, `YYYY-MM-DD HH:mm:ss` (UTC for its own events, Malaysia time for
 * the couriers' scans), where the tracking answer mixes that with ISO. So a pushed entry and the
 * same entry polled later do not carry the same time text.
 */
export function easyParcelWebhookLog(view: SimShipmentView, now: number): EasyParcelWebhookEntry[] {
  return entriesOf(view, now).map((entry) => ({
    timestamp: formatSqlLocal(entry.at, entry.own ? 0 : MYT_OFFSET_MINUTES),
    shipment_status_code: entry.code,
    tracking_status: entry.text,
  }));
}

function renderItem(item: SimTrackingItem, now: number): EasyParcelItem {
  if (!item.found)
    return { status: 'not_found', awb_number: item.trackingNumber, message: 'AWB number not found' };
  const { view } = item;
  const digits = view.trackingNumber.replace(/\D/g, '').slice(-5).padStart(5, '0');
  const log = easyParcelStatusLog(view, now);
  const latest = log[log.length - 1];
  return {
    status: 'success',
    awb_number: view.trackingNumber,
    shipment_number: shipmentNumberOf(view.trackingNumber),
    order_number: `EI-${digits}`,
    // Before any scan, EasyParcel is still arranging the pickup.
    latest_shipment_status_code: latest?.shipment_status_code ?? EasyParcelCode.SCHEDULED,
    latest_tracking_status: latest?.tracking_status ?? OWN_EVENT_TEXT,
    latest_event_date: latest?.event_date ?? null,
    status_log: shuffled(
      log,
      view.trackingNumber,
      (entry) => `${entry.event_date}|${entry.shipment_status_code}|${entry.tracking_status}`,
    ),
  };
}

/** The answer to `POST /open_api/<version>/shipment/tracking_status`: one result per item, in the order given. */
export function renderEasyParcelTracking(items: SimTrackingItem[], now: number): RenderedResponse {
  const found = items.filter((item) => item.found).length;
  const body = {
    status_code: 200,
    request_id: `${now}.${createHash('sha256')
      .update(items.map((i) => (i.found ? i.view.trackingNumber : i.trackingNumber)).join(','))
      .digest('hex')
      .slice(0, 32)}`,
    message: `${found} requests success, ${items.length - found} request error.`,
    data: { results: items.map((item) => renderItem(item, now)) },
  };
  return { status: 200, contentType: JSON_TYPE, body: JSON.stringify(body) };
}

/** EasyParcel's error shape: `{"status_code":401,"message":"Unauthenticated"}`. */
export function renderEasyParcelError(status: number, message: string): RenderedResponse {
  return { status, contentType: JSON_TYPE, body: JSON.stringify({ status_code: status, message }) };
}

/**
 * EasyParcel's refusal of a create or cancel with `status`, about `subject` (the AWB being
 * cancelled, or the booking's reference): the real path's 404 and 409, and every scripted
 * answer. A cancel's 409 says, in EasyParcel's words, that the AWB has been collected; a
 * create's 409 only that the reference conflicts.
 */
export function renderEasyParcelRefusal(
  operation: 'book' | 'cancel',
  status: number,
  subject: string,
): RenderedResponse {
  const cancel = operation === 'cancel';
  const messages: Readonly<Record<number, string>> = {
    400: 'The given data was invalid.',
    401: 'Unauthenticated',
    403: 'This action is unauthorized.',
    404: cancel ? `AWB ${subject} not found` : 'Not Found',
    409: cancel
      ? `AWB ${subject} has already been collected and cannot be cancelled`
      : `Reference ${subject} conflicts with an existing shipment`,
    503: 'Service Unavailable',
  };
  return renderEasyParcelError(
    status,
    messages[status] ?? (status >= 500 ? 'Server Error' : 'Request refused'),
  );
}

function send(reply: FastifyReply, rendered: RenderedResponse): FastifyReply {
  return reply.code(rendered.status).type(rendered.contentType).send(rendered.body);
}

type Body = Record<string, unknown>;

function isBody(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, max = 200): value is string {
  return typeof value === 'string' && value.trim() !== '' && value.length <= max;
}

/**
 * Registers the EasyParcel routes on `app` (relative paths: mount under a prefix).
 * Each registration keeps its own tokens.
 */
export function registerEasyParcelRoutes(
  app: FastifyInstance,
  backend: SimBackend,
  opts: EasyParcelRouteOptions,
): void {
  /** Issued token → expiry (ms of `now()`). */
  const tokens = new Map<string, number>();
  /** The refresh token a refresh must bring (rotated when `rotateRefreshTokens`). */
  let liveRefreshToken = opts.refreshToken;

  function authenticated(request: FastifyRequest): boolean {
    const match = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '');
    const expiresAt = match ? tokens.get(match[1]!) : undefined;
    return expiresAt !== undefined && opts.now() < expiresAt;
  }

  const unauthenticated = renderEasyParcelError(401, 'Unauthenticated');

  // EasyParcel's token endpoint takes a form, as EasyParcel's own CLI sends it.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  /** Whether the token request names the app as HTTP Basic `client_id:client_secret`. */
  function clientAuthenticated(request: FastifyRequest): boolean {
    const match = /^Basic (\S+)$/i.exec(request.headers.authorization ?? '');
    const pair = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    return pair === `${opts.clientId}:${opts.clientSecret}`;
  }

  app.post('/oauth/token', async (request, reply) => {
    const body = isBody(request.body) ? request.body : {};
    if (!clientAuthenticated(request)) return send(reply, renderEasyParcelError(401, 'Invalid client'));
    // EasyParcel grants tokens through its login page (authorization_code) and refreshes them
    // (refresh_token); the simulator has no login page, so only a refresh is possible here.
    if (body.grant_type !== 'refresh_token') {
      return send(reply, renderEasyParcelError(400, 'unsupported_grant_type: use refresh_token'));
    }
    if (body.refresh_token !== liveRefreshToken) {
      return send(
        reply,
        renderEasyParcelError(400, 'invalid_grant: the refresh token is invalid or expired'),
      );
    }
    const now = opts.now();
    for (const [token, expiresAt] of tokens) if (expiresAt <= now) tokens.delete(token);
    const token = randomBytes(24).toString('base64url');
    const expiresAt = now + opts.tokenTtlSeconds * 1000;
    tokens.set(token, expiresAt);
    if (opts.rotateRefreshTokens) liveRefreshToken = randomBytes(24).toString('base64url');
    // The answer's fields as EasyParcel documents them.
    return send(reply, {
      status: 200,
      contentType: JSON_TYPE,
      body: JSON.stringify({
        token_type: 'Bearer',
        expires_in: opts.tokenTtlSeconds,
        expires_at: new Date(expiresAt).toISOString(),
        access_token: token,
        refresh_token: liveRefreshToken,
        refresh_token_expires_in: 31_557_600,
        app: { client_id: opts.clientId, callbackUrls: [], redirectUris: [] },
      }),
    });
  });

  /** The Open API routes live under `/open_api/<version>/`; a version EasyParcel never had is 404. */
  const known = new Set(EASYPARCEL_API_VERSIONS);
  function versioned(request: FastifyRequest): boolean {
    const params = isBody(request.params) ? request.params : {};
    return typeof params.version === 'string' && known.has(params.version);
  }
  const unknownVersion = renderEasyParcelError(404, 'Not Found');

  /** Shipment numbers handed out (booking, tracking) → AWB: EasyParcel cancels by shipment number. */
  const awbOf = new Map<string, string>();
  /** Shipment numbers booked without an AWB → `details` look-ups left before it is given. */
  const lookupsBeforeAwb = new Map<string, number>();
  app.post('/open_api/:version/shipment/tracking_status', async (request, reply) => {
    if (!versioned(request)) return send(reply, unknownVersion);
    if (!authenticated(request)) return send(reply, unauthenticated);
    const numbers = isBody(request.body) ? request.body.awb_numbers : undefined;
    if (
      !Array.isArray(numbers) ||
      numbers.length < 1 ||
      numbers.length > EASYPARCEL_SIM_MAX_BATCH ||
      !numbers.every((n) => text(n, 64))
    ) {
      return send(
        reply,
        renderEasyParcelError(422, `awb_numbers must list 1 to ${EASYPARCEL_SIM_MAX_BATCH} AWB numbers`),
      );
    }
    const items = backend.track('easyparcel', numbers as string[]);
    for (const item of items) {
      if (item.found) awbOf.set(shipmentNumberOf(item.view.trackingNumber), item.view.trackingNumber);
    }
    return send(reply, renderEasyParcelTracking(items, opts.now()));
  });

  const json = (body: unknown): RenderedResponse => ({
    status: 200,
    contentType: JSON_TYPE,
    body: JSON.stringify(body),
  });
  const summary = (ok: number, failed: number) =>
    `${ok} request${ok === 1 ? '' : 's'} success, ${failed} request error.`;

  // `submit_orders`, as EasyParcel's 2026-06 docs show it: 200 with one order, one result per shipment.
  app.post('/open_api/:version/shipment/submit_orders', async (request, reply) => {
    if (!versioned(request)) return send(reply, unknownVersion);
    if (!authenticated(request)) return send(reply, unauthenticated);
    const list = isBody(request.body) ? request.body.shipment : undefined;
    if (!Array.isArray(list) || list.length < 1 || list.length > 100) {
      return send(reply, renderEasyParcelError(422, 'shipment must list 1 to 100 shipments'));
    }
    const shipments = [];
    for (const entry of list as unknown[]) {
      // A scripted answer stands in for the whole call, whatever the shipment says.
      const reference = isBody(entry) && text(entry.reference, 128) ? entry.reference : null;
      const scripted =
        reference === null ? null : (backend.scriptedAnswer?.('easyparcel', 'book', { reference }) ?? null);
      if (scripted !== null) return send(reply, renderEasyParcelRefusal('book', scripted, reference!));
      const order = submittedOrder(entry);
      if (typeof order === 'string') {
        shipments.push({ status: 'error', errors: [order] });
        continue;
      }
      const quirks = backend.easyParcelBooking;
      const { trackingNumber } =
        quirks?.repeatBooksAgain && backend.bookAgain
          ? backend.bookAgain('easyparcel', order)
          : backend.book('easyparcel', order);
      const shipmentNumber = shipmentNumberOf(trackingNumber);
      awbOf.set(shipmentNumber, trackingNumber);
      const awbLater = quirks !== undefined && quirks.awbAfterLookups > 0;
      if (awbLater) lookupsBeforeAwb.set(shipmentNumber, quirks.awbAfterLookups);
      shipments.push({
        status: 'success',
        shipment_number: shipmentNumber,
        courier: 'Simulated Courier',
        awb_number: awbLater ? null : trackingNumber,
        awb_url: '',
        tracking_url: null,
        weight: order.weightGrams / 1000,
        reference: order.reference,
      });
    }
    const quirks = backend.easyParcelBooking;
    if (quirks && quirks.unreadableAnswers > 0 && shipments.some((s) => s.status === 'success')) {
      quirks.unreadableAnswers--; // booked, but the answer is cut off on its way
      return send(reply, { status: 200, contentType: JSON_TYPE, body: '{"status_code":200,"data":[{"ord' });
    }
    const ok = shipments.filter((s) => s.status === 'success').length;
    const orderNumber = `EI-${createHash('sha256').update(JSON.stringify(shipments)).digest('hex').slice(0, 5).toUpperCase()}`;
    return send(
      reply,
      json({
        status_code: 200,
        message: summary(ok, shipments.length - ok),
        data: [{ order_details: { order_number: orderNumber, account_id: 1 }, shipments }],
      }),
    );
  });

  // `details` of one shipment by its number, as EasyParcel's 2026-06 docs show it (the fields
  // Waybill reads, and the reference): 200 with one shipment, or 404 for a number it never gave.
  app.post('/open_api/:version/shipment/details', async (request, reply) => {
    if (!versioned(request)) return send(reply, unknownVersion);
    if (!authenticated(request)) return send(reply, unauthenticated);
    const number = isBody(request.body) ? request.body.shipment_number : undefined;
    if (!text(number, 64)) return send(reply, renderEasyParcelError(422, 'shipment_number is required'));
    const awb = awbOf.get(number);
    const found = awb === undefined ? null : backend.track('easyparcel', [awb])[0];
    if (!found?.found) {
      const message = `No Order with shipment_number ${number} found from this account`;
      return send(reply, { ...json({ status_code: 404, message, data: [] }), status: 404 });
    }
    const waiting = lookupsBeforeAwb.get(number) ?? 0;
    if (waiting > 0) lookupsBeforeAwb.set(number, waiting - 1);
    else lookupsBeforeAwb.delete(number);
    const awbNumber = waiting > 0 ? null : found.view.trackingNumber;
    return send(
      reply,
      json({
        status_code: 200,
        message: 'success',
        data: [
          {
            shipment_number: number,
            shipment_details: {
              awb_number: awbNumber,
              awb_url: null,
              tracking_url: null,
              reference: found.view.reference,
            },
          },
        ],
      }),
    );
  });

  // `cancel` by shipment number, as EasyParcel's 2026-06 docs show it: 200, one result per shipment.
  app.post('/open_api/:version/shipment/cancel', async (request, reply) => {
    if (!versioned(request)) return send(reply, unknownVersion);
    if (!authenticated(request)) return send(reply, unauthenticated);
    const list = isBody(request.body) ? request.body.cancel_list : undefined;
    if (
      !Array.isArray(list) ||
      list.length < 1 ||
      !list.every((c) => isBody(c) && text(c.shipment_number, 64) && text(c.remark, 500))
    ) {
      return send(reply, renderEasyParcelError(422, 'cancel_list must list shipment_number and remark'));
    }
    const results = [];
    for (const { shipment_number: number } of list as { shipment_number: string }[]) {
      // The simulator's own AWBs are EP and the shipment number's digits.
      const awb = awbOf.get(number) ?? `EP${number.replace(/\D/g, '')}`;
      const scripted = backend.scriptedAnswer?.('easyparcel', 'cancel', { trackingNumber: awb }) ?? null;
      if (scripted !== null) return send(reply, renderEasyParcelRefusal('cancel', scripted, awb));
      const outcome = backend.cancel('easyparcel', awb);
      const refusal: Record<typeof outcome, string | null> = {
        cancelled: null,
        not_found: 'Shipment Not Found',
        // Not in EasyParcel's docs ("only shipments not yet processed by the courier can be
        // cancelled"): the words its refusal of a collected parcel would need to say so.
        already_picked_up: 'Shipment has been collected by the courier, cannot cancel',
      };
      const message = refusal[outcome];
      results.push(
        message === null
          ? { status: 'success', message: 'Shipment Cancelled', shipment_number: number }
          : { status: 'error', message, shipment_number: number },
      );
    }
    const ok = results.filter((r) => r.status === 'success').length;
    return send(reply, json({ status_code: 200, message: summary(ok, results.length - ok), data: results }));
  });
}

/** A `submit_orders` shipment as the simulator books it, or the reason it is refused (EasyParcel's words). */
function submittedOrder(entry: unknown): SimBookingRequest | string {
  if (!isBody(entry)) return 'The shipment field must be an object';
  if (!text(entry.service_id, 10)) return 'The service id field is required';
  if (typeof entry.collection_date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(entry.collection_date))
    return 'The collection date field must be a date (YYYY-MM-DD)';
  if (!(typeof entry.weight === 'number' && entry.weight > 0 && entry.weight <= 1000))
    return 'The weight field must be a number of kg above 0';
  const receiver = isBody(entry.receiver) ? entry.receiver : {};
  const fields = ['name', 'phone_number', 'address_1', 'postcode', 'city', 'country_code'] as const;
  for (const field of fields) {
    if (!text(receiver[field])) return `The receiver ${field.replace('_', ' ')} field is required`;
  }
  return {
    // EasyParcel's reference is optional; the simulator's bookings are idempotent on it.
    reference: text(entry.reference, 128) ? entry.reference : randomBytes(8).toString('hex'),
    recipient: {
      name: receiver.name as string,
      line1: receiver.address_1 as string,
      city: receiver.city as string,
      state: null,
      postcode: receiver.postcode as string,
      country: receiver.country_code as string,
      phone: receiver.phone_number as string,
    },
    weightGrams: Math.round(entry.weight * 1000),
  };
}

/** The same routes as a Fastify plugin: `app.register(easyParcelPlugin, { prefix, backend, ...opts })`. */
export const easyParcelPlugin: FastifyPluginAsync<EasyParcelRouteOptions & { backend: SimBackend }> = async (
  app,
  opts,
) => {
  registerEasyParcelRoutes(app, opts.backend, opts);
};
