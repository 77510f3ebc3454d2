/**
 * The simulator speaking Blue Dart (XML tracking, JSON booking; wire format in
 * src/couriers/README.md). The quirks are rendered on purpose: Indian wall-clock times
 * without a zone in two date styles, scans newest first, codes in two families (S movement,
 * T status), the booking scan "Online shipment booked" under a code outside the adapter's
 * table, the consignee's personal data in every answer (the adapter must strip it), a waybill
 * it shows nothing about (unknown or cancelled) as `StatusType` NF — or, when no number of
 * the call is known, as a root `<Error>` — and a return to origin as a second `<Shipment>`
 * whose `RefNo` reads `074 - <original>`, named in the original's `<NewWaybillNo>`.
 *
 * Mount it inside a plugin with a prefix, e.g.
 * `app.register(async (scope) => registerBlueDartRoutes(scope, backend, {}), { prefix: '/bluedart' })`
 * or `app.register(blueDartPlugin, { prefix: '/bluedart', backend })`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BlueDartCode, BlueDartStatusType } from '../../../src/couriers/bluedart-codes';
import {
  IST_OFFSET_MINUTES,
  MONTH_ABBREVIATIONS,
  MONTH_NAMES,
  pad,
  utcToLocal,
} from '../../../src/couriers/time';
import { ShipmentStatus } from '../../../src/domain/status';
import { OUTAGE_PAGE } from '../faults';
import type {
  RenderedResponse,
  SimBackend,
  SimRecipient,
  SimScan,
  SimShipmentView,
  SimTrackingItem,
} from '../model';

export interface BlueDartRouteOptions {
  /** When set, calls must carry this `loginid` (query string); otherwise any is accepted. */
  loginId?: string;
  /** When set, calls must carry this `lickey` (query string); otherwise any is accepted. */
  licenceKey?: string;
}

/** Most waybills one tracking call accepts. */
export const BLUEDART_SIM_MAX_BATCH = 25;

const S = ShipmentStatus;
const C = BlueDartCode;
const T = BlueDartStatusType;
const XML_TYPE = 'text/xml; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Blue Dart's booking scan. Its code is not in any public table we have, so the adapter keeps
 * it as UNKNOWN (never a pickup): the code here is the one a public integration uses for it.
 */
export const BLUEDART_BOOKED = { code: 'S-030', text: 'Online shipment booked' } as const;

/** A scan as Blue Dart writes it: family-code, status letters and, where Blue Dart has its own, words. */
interface WireScan {
  code: string;
  type: string;
  text: string | null;
}

/** The code and status letters Blue Dart writes for each status (refined by sub-status below). */
const SCAN_BY_STATUS: Readonly<Record<ShipmentStatus, Omit<WireScan, 'text'>>> = {
  [S.PENDING]: { code: BLUEDART_BOOKED.code, type: T.PICKUP },
  [S.INFO_RECEIVED]: { code: BLUEDART_BOOKED.code, type: T.PICKUP },
  [S.IN_TRANSIT]: { code: C.FURTHER_CONNECTED, type: T.UNDELIVERED },
  [S.OUT_FOR_DELIVERY]: { code: C.OUT_FOR_DELIVERY, type: T.UNDELIVERED },
  [S.ATTEMPT_FAIL]: { code: C.CONSIGNEE_NOT_AVAILABLE, type: T.UNDELIVERED },
  [S.AVAILABLE_FOR_PICKUP]: { code: C.PARCEL_SHOP, type: T.UNDELIVERED },
  [S.EXCEPTION]: { code: C.DAMAGED, type: T.UNDELIVERED },
  [S.EXPIRED]: { code: C.DAMAGED, type: T.UNDELIVERED },
  [S.DELIVERED]: { code: C.DELIVERED, type: T.DELIVERED },
  [S.RETURNING]: { code: C.RETURN_TO_ORIGIN, type: T.RETURNED },
  [S.RETURNED]: { code: C.DELIVERED_BACK_TO_SHIPPER, type: T.RETURNED },
  // Never rendered: Blue Dart shows a cancelled waybill no more (see renderBlueDartTracking).
  [S.CANCELLED]: { code: 'T-098', type: T.CANCELLED },
};

/** The Blue Dart scan of one simulator scan (`leg`: the return leg's own scans). */
export function blueDartScanFor(
  scan: Pick<SimScan, 'status' | 'subStatus'>,
  leg: 'parcel' | 'return' = 'parcel',
): WireScan {
  if (scan.status === S.INFO_RECEIVED || scan.status === S.PENDING) {
    // A return leg opens with its first inscan, as in captured answers.
    return leg === 'return'
      ? { code: C.ARRIVED, type: T.UNDELIVERED, text: 'SHIPMENT ARRIVED' }
      : { ...SCAN_BY_STATUS[scan.status], text: BLUEDART_BOOKED.text };
  }
  if (scan.status === S.IN_TRANSIT && scan.subStatus === 'PICKED_UP')
    return { code: C.PICKED_UP, type: T.PICKUP, text: null };
  if (scan.status === S.IN_TRANSIT && scan.subStatus === 'ARRIVED_AT_HUB')
    return { code: C.ARRIVED_AT_HUB, type: T.UNDELIVERED, text: null };
  return { ...SCAN_BY_STATUS[scan.status], text: null };
}

/** Text safe inside an element or a double-quoted attribute. */
export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function element(name: string, value: string | null): string {
  return value === null ? '' : `<${name}>${escapeXml(value)}</${name}>`;
}

/** `07-Jun-2012` (scans), in India. */
function scanDate(at: Date): string {
  const l = utcToLocal(at, IST_OFFSET_MINUTES);
  return `${pad(l.day)}-${MONTH_ABBREVIATIONS[l.month - 1]}-${l.year}`;
}

/** `07 June 2012` (status and expected delivery dates), in India. */
function longDate(at: Date): string {
  const l = utcToLocal(at, IST_OFFSET_MINUTES);
  return `${pad(l.day)} ${MONTH_NAMES[l.month - 1]} ${l.year}`;
}

/** `13:05`, in India: Blue Dart times have no seconds. */
function clock(at: Date): string {
  const l = utcToLocal(at, IST_OFFSET_MINUTES);
  return `${pad(l.hour)}:${pad(l.minute)}`;
}

function city(scan: SimScan): string {
  return scan.location.city.toUpperCase();
}

function scanDetail(scan: SimScan, leg: 'parcel' | 'return'): string {
  const wire = blueDartScanFor(scan, leg);
  const [group, code] = wire.code.split('-') as [string, string];
  return (
    '<ScanDetail>' +
    element('Scan', wire.text ?? scan.text.toUpperCase()) +
    element('ScanCode', code) +
    element('ScanType', wire.type) +
    element('ScanGroupType', group) +
    element('ScanDate', scanDate(scan.at)) +
    element('ScanTime', clock(scan.at)) +
    element('ScannedLocation', city(scan)) +
    '</ScanDetail>'
  );
}

function consignee(person: Pick<SimRecipient, 'name' | 'line1' | 'city' | 'postcode' | 'phone'>): string {
  return (
    element('Consignee', person.name) +
    element('ConsigneeAddress1', person.line1) +
    element('ConsigneeCity', person.city.toUpperCase()) +
    element('ConsigneePincode', person.postcode) +
    element('ConsigneeMobile', person.phone)
  );
}

/**
 * Status block and scans (newest first) of one leg; only `<Status>AWB GENERATED</Status>`
 * before any scan. `extra` goes after the status (the original's `<NewWaybillNo>`).
 */
function statusAndScans(scans: SimScan[], leg: 'parcel' | 'return', eta: Date | null, extra = ''): string {
  const latest = scans[scans.length - 1];
  const wire = latest ? blueDartScanFor(latest, leg) : null;
  const status =
    latest && wire
      ? element('Status', wire.text ?? latest.text.toUpperCase()) +
        element('StatusType', wire.type) +
        element('StatusDate', longDate(latest.at)) +
        element('StatusTime', clock(latest.at))
      : element('Status', 'AWB GENERATED');
  const newestFirst = [...scans].reverse().map((scan) => scanDetail(scan, leg));
  return (
    status +
    element('ExpectedDeliveryDate', eta ? longDate(eta) : null) +
    extra +
    `<Scans>${newestFirst.join('')}</Scans>`
  );
}

function renderShipment(view: SimShipmentView): string {
  const origin = view.scans[0]?.location.city.toUpperCase() ?? null;
  const destination = view.recipient.city.toUpperCase();
  const reference = view.reference !== null ? ` RefNo="${escapeXml(view.reference)}"` : '';
  const returnLeg = view.returnTrackingNumber;
  // With a return leg, the parcel being back with the shipper is the leg's delivered scan:
  // the original ends with its return-to-origin scan and names the leg's waybill.
  const scans = returnLeg === null ? view.scans : view.scans.filter((scan) => scan.status !== S.RETURNED);
  let xml =
    `<Shipment WaybillNo="${escapeXml(view.trackingNumber)}"${reference}>` +
    element('Service', 'Domestic Priority') +
    element('Origin', origin) +
    element('Destination', destination) +
    consignee(view.recipient) +
    statusAndScans(scans, 'parcel', view.eta, element('NewWaybillNo', returnLeg)) +
    '</Shipment>';
  if (returnLeg !== null) {
    // The return leg travels back to the shipper: the shipper is its consignee. Its RefNo
    // names the code that cut it and the original waybill.
    const ref = `${C.RETURN_TO_ORIGIN.slice(2)} - ${view.trackingNumber}`;
    xml +=
      `<Shipment WaybillNo="${escapeXml(returnLeg)}" RefNo="${escapeXml(ref)}">` +
      element('Service', 'Domestic Priority') +
      element('Origin', destination) +
      element('Destination', origin) +
      consignee({
        name: 'RETURNS DESK',
        line1: 'SHIPPER WAREHOUSE',
        city: origin ?? destination,
        postcode: '000000',
        phone: null,
      }) +
      statusAndScans(view.returnScans, 'return', null) +
      '</Shipment>';
  }
  return xml;
}

/** Blue Dart's words for a waybill it shows nothing about (unknown, not yet scanned, or cancelled). */
export const BLUEDART_NO_INFORMATION = 'Incorrect Waybill number or No Information';

/** A waybill Blue Dart shows nothing about, among others it knows. */
function renderNotFound(waybill: string): string {
  return (
    `<Shipment WaybillNo="${escapeXml(waybill)}">` +
    element('StatusType', T.NOT_FOUND) +
    element('Status', BLUEDART_NO_INFORMATION) +
    '</Shipment>'
  );
}

/** Whether Blue Dart still shows a parcel: a cancelled waybill drops out of its tracking. */
function shown(item: SimTrackingItem): item is Extract<SimTrackingItem, { found: true }> {
  return item.found && !item.view.scans.some((scan) => scan.status === S.CANCELLED);
}

/**
 * The answer to a RoutingServlet tracking call: one `<Shipment>` per item (plus return
 * legs), in the order given; a root `<Error>` when Blue Dart shows none of them.
 */
export function renderBlueDartTracking(items: SimTrackingItem[]): RenderedResponse {
  if (!items.some(shown)) return renderBlueDartError(200, BLUEDART_NO_INFORMATION);
  const shipments = items.map((item) =>
    shown(item) ? renderShipment(item.view) : renderNotFound(item.trackingNumber),
  );
  return {
    status: 200,
    contentType: XML_TYPE,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<ShipmentData>${shipments.join('')}</ShipmentData>\n`,
  };
}

/** A call-wide failure as Blue Dart writes it: `<ShipmentData><Error>…</Error></ShipmentData>`. */
export function renderBlueDartError(status: number, message: string): RenderedResponse {
  return {
    status,
    contentType: XML_TYPE,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<ShipmentData>${element('Error', message)}</ShipmentData>\n`,
  };
}

function json(status: number, body: object): RenderedResponse {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(body) };
}

/**
 * Blue Dart's refusal of a generate or cancel with `status`, about `subject` (the waybill
 * being cancelled, or the booking's reference): the real path's 404 and 409, and every
 * scripted answer. A cancel's 409 says, in Blue Dart's words, that the AWB is already picked
 * up; a generate's 409 only that the reference conflicts. A 5xx is an HTML outage page, as
 * Blue Dart's front end sends it.
 */
export function renderBlueDartRefusal(
  operation: 'book' | 'cancel',
  status: number,
  subject: string,
): RenderedResponse {
  if (status >= 500) return { status, contentType: 'text/html; charset=utf-8', body: OUTAGE_PAGE };
  const cancel = operation === 'cancel';
  const refusals: Readonly<Record<number, { Status: string; Message: string }>> = {
    400: { Status: 'Invalid', Message: 'Invalid request' },
    401: { Status: 'Invalid', Message: 'Invalid login id or licence key' },
    403: { Status: 'Invalid', Message: 'Licence key is not authorised for this service' },
    404: { Status: 'Invalid', Message: cancel ? `AWB ${subject} not found` : 'Service not found' },
    409: cancel
      ? { Status: 'Rejected', Message: `AWB ${subject} is already picked up` }
      : { Status: 'Rejected', Message: `Reference ${subject} conflicts with an existing waybill` },
  };
  return json(status, refusals[status] ?? { Status: 'Rejected', Message: 'Request refused' });
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

function optionalText(value: unknown): value is string | null | undefined {
  return value === undefined || value === null || (typeof value === 'string' && value.length <= 200);
}

/** The consignee of a generate call, or the reason it is unusable. */
function consigneeOf(value: unknown): SimRecipient | string {
  if (!isBody(value)) return 'consignee is required';
  for (const field of ['name', 'address1', 'city', 'pincode'] as const) {
    if (!text(value[field])) return `consignee.${field} is required`;
  }
  if (!optionalText(value.state) || !optionalText(value.country) || !optionalText(value.mobile)) {
    return 'consignee.state, consignee.country and consignee.mobile must be text';
  }
  return {
    name: value.name as string,
    line1: value.address1 as string,
    city: value.city as string,
    state: (value.state as string | null | undefined) ?? null,
    postcode: value.pincode as string,
    country: (value.country as string | null | undefined) || 'IN',
    phone: (value.mobile as string | null | undefined) ?? null,
  };
}

/**
 * Registers the Blue Dart routes on `app` (relative paths: mount under a prefix). With
 * `loginId`/`licenceKey` set, a call with other credentials answers 401.
 */
export function registerBlueDartRoutes(
  app: FastifyInstance,
  backend: SimBackend,
  opts: BlueDartRouteOptions = {},
): void {
  function licensed(request: FastifyRequest): boolean {
    const query = isBody(request.query) ? request.query : {};
    return (
      (opts.loginId === undefined || query.loginid === opts.loginId) &&
      (opts.licenceKey === undefined || query.lickey === opts.licenceKey)
    );
  }

  app.get('/servlet/RoutingServlet', async (request, reply) => {
    if (!licensed(request)) return send(reply, renderBlueDartError(401, 'Invalid login id or licence key'));
    const query = isBody(request.query) ? request.query : {};
    if (query.handler !== 'tnt' || query.action !== 'custawbquery') {
      return send(reply, renderBlueDartError(400, 'Unsupported handler or action'));
    }
    const numbers =
      typeof query.numbers === 'string'
        ? query.numbers
            .split(',')
            .map((n) => n.trim())
            .filter(Boolean)
        : [];
    if (
      numbers.length < 1 ||
      numbers.length > BLUEDART_SIM_MAX_BATCH ||
      !numbers.every((n) => n.length <= 64)
    ) {
      return send(
        reply,
        renderBlueDartError(400, `numbers must list 1 to ${BLUEDART_SIM_MAX_BATCH} waybills`),
      );
    }
    return send(reply, renderBlueDartTracking(backend.track('bluedart', numbers)));
  });

  app.post('/waybill/generate', async (request, reply) => {
    if (!licensed(request)) return send(reply, renderBlueDartRefusal('book', 401, ''));
    const body = isBody(request.body) ? request.body : {};
    const recipient = consigneeOf(body.consignee);
    const weight = body.weight_grams;
    if (!text(body.reference, 128))
      return send(reply, json(422, { Status: 'Invalid', Message: 'reference is required' }));
    if (typeof recipient === 'string')
      return send(reply, json(422, { Status: 'Invalid', Message: recipient }));
    if (!(typeof weight === 'number' && Number.isInteger(weight) && weight > 0 && weight <= 1_000_000)) {
      return send(
        reply,
        json(422, { Status: 'Invalid', Message: 'weight_grams must be a whole number of grams above 0' }),
      );
    }
    const scripted = backend.scriptedAnswer?.('bluedart', 'book', { reference: body.reference }) ?? null;
    if (scripted !== null) return send(reply, renderBlueDartRefusal('book', scripted, body.reference));
    const { trackingNumber } = backend.book('bluedart', {
      reference: body.reference,
      recipient,
      weightGrams: weight,
    });
    return send(reply, json(200, { AWBNo: trackingNumber, Status: 'Valid' }));
  });

  app.post('/waybill/cancel', async (request, reply) => {
    if (!licensed(request)) return send(reply, renderBlueDartRefusal('cancel', 401, ''));
    const awb = isBody(request.body) ? request.body.AWBNo : undefined;
    if (!text(awb, 64)) return send(reply, json(422, { Status: 'Invalid', Message: 'AWBNo is required' }));
    const scripted = backend.scriptedAnswer?.('bluedart', 'cancel', { trackingNumber: awb }) ?? null;
    if (scripted !== null) return send(reply, renderBlueDartRefusal('cancel', scripted, awb));
    const outcome = backend.cancel('bluedart', awb);
    if (outcome === 'not_found') return send(reply, renderBlueDartRefusal('cancel', 404, awb));
    if (outcome === 'already_picked_up') return send(reply, renderBlueDartRefusal('cancel', 409, awb));
    return send(reply, json(200, { AWBNo: awb, Status: 'Cancelled' }));
  });
}

/** The same routes as a Fastify plugin: `app.register(blueDartPlugin, { prefix, backend, ...opts })`. */
export const blueDartPlugin: FastifyPluginAsync<BlueDartRouteOptions & { backend: SimBackend }> = async (
  app,
  opts,
) => {
  registerBlueDartRoutes(app, opts.backend, opts);
};
