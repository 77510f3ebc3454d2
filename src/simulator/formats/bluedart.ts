/**
 * The simulator speaking Blue Dart (XML tracking, JSON booking; wire format in
 * src/couriers/README.md). The quirks are rendered on purpose: Indian wall-clock times
 * without a zone in two date styles, scans newest first, the consignee's personal data in
 * every answer (the adapter must strip it), an unknown waybill as a `<Shipment>` without
 * `<Status>`, and a return to origin as a second `<Shipment>` pointing back via `RefNo`.
 *
 * Mount it inside a plugin with a prefix, e.g.
 * `app.register(async (scope) => registerBlueDartRoutes(scope, backend, {}), { prefix: '/bluedart' })`
 * or `app.register(blueDartPlugin, { prefix: '/bluedart', backend })`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BlueDartScanCode, BlueDartStatusType } from '../../couriers/bluedart';
import { IST_OFFSET_MINUTES, MONTH_ABBREVIATIONS, MONTH_NAMES, pad, utcToLocal } from '../../couriers/time';
import { ShipmentStatus } from '../../domain/status';
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
const C = BlueDartScanCode;
const T = BlueDartStatusType;
const XML_TYPE = 'text/xml; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/** The scan code Blue Dart would give each taxonomy status (sub-status refinements below). */
const CODE_BY_STATUS: Readonly<Record<ShipmentStatus, string>> = {
  [S.PENDING]: C.MANIFESTED,
  [S.INFO_RECEIVED]: C.MANIFESTED,
  [S.IN_TRANSIT]: C.IN_TRANSIT,
  [S.OUT_FOR_DELIVERY]: C.OUT_FOR_DELIVERY,
  [S.ATTEMPT_FAIL]: C.UNDELIVERED,
  [S.AVAILABLE_FOR_PICKUP]: C.HELD_FOR_COLLECTION,
  [S.EXCEPTION]: C.EXCEPTION,
  [S.DELIVERED]: C.DELIVERED,
  [S.RETURNING]: C.RETURN_INITIATED,
  [S.RETURNED]: C.RETURNED_TO_SHIPPER,
  [S.CANCELLED]: C.CANCELLED,
  [S.EXPIRED]: C.EXCEPTION,
};

/** The Blue Dart scan code of one scan. */
export function blueDartCodeFor(scan: Pick<SimScan, 'status' | 'subStatus'>): string {
  if (scan.status === S.IN_TRANSIT && scan.subStatus === 'PICKED_UP') return C.PICKED_UP;
  if (scan.status === S.IN_TRANSIT && scan.subStatus === 'ARRIVED_AT_HUB') return C.ARRIVED_AT_HUB;
  return CODE_BY_STATUS[scan.status];
}

/** The status letters of a scan code; every scan of a return leg is `RT`. */
function typeFor(code: string, leg: 'parcel' | 'return'): string {
  if (leg === 'return') return T.RETURNED;
  switch (code) {
    case C.PICKED_UP:
      return T.PICKED_UP;
    case C.DELIVERED:
      return T.DELIVERED;
    case C.RETURN_INITIATED:
    case C.RETURNED_TO_SHIPPER:
      return T.RETURNED;
    case C.CANCELLED:
      return T.CANCELLED;
    default:
      return T.UNDELIVERED;
  }
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
  const code = blueDartCodeFor(scan);
  return (
    '<ScanDetail>' +
    element('Scan', scan.text.toUpperCase()) +
    element('ScanCode', code) +
    element('ScanType', typeFor(code, leg)) +
    element('ScanGroupType', 'T') +
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

/** Status block and scans (newest first) of one leg; only `<Status>AWB GENERATED</Status>` before any scan. */
function statusAndScans(scans: SimScan[], leg: 'parcel' | 'return', eta: Date | null): string {
  const latest = scans[scans.length - 1];
  const status = latest
    ? element('Status', latest.text.toUpperCase()) +
      element('StatusType', typeFor(blueDartCodeFor(latest), leg)) +
      element('StatusDate', longDate(latest.at)) +
      element('StatusTime', clock(latest.at))
    : element('Status', 'AWB GENERATED');
  const newestFirst = [...scans].reverse().map((scan) => scanDetail(scan, leg));
  return (
    status +
    element('ExpectedDeliveryDate', eta ? longDate(eta) : null) +
    `<Scans>${newestFirst.join('')}</Scans>`
  );
}

function renderShipment(view: SimShipmentView): string {
  const origin = view.scans[0]?.location.city.toUpperCase() ?? null;
  const destination = view.recipient.city.toUpperCase();
  const reference = view.reference !== null ? ` RefNo="${escapeXml(view.reference)}"` : '';
  let xml =
    `<Shipment WaybillNo="${escapeXml(view.trackingNumber)}"${reference}>` +
    element('Service', 'Domestic Priority') +
    element('Origin', origin) +
    element('Destination', destination) +
    consignee(view.recipient) +
    statusAndScans(view.scans, 'parcel', view.eta) +
    '</Shipment>';
  if (view.returnTrackingNumber !== null) {
    // The return leg travels back to the shipper: the shipper is its consignee.
    xml +=
      `<Shipment WaybillNo="${escapeXml(view.returnTrackingNumber)}" RefNo="${escapeXml(view.trackingNumber)}">` +
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

/** Blue Dart answers an unknown waybill either with an empty `<Shipment>` or with an `<Error>` in it. */
function renderUnknown(waybill: string): string {
  const withError = [...waybill].reduce((sum, ch) => sum + ch.charCodeAt(0), 0) % 2 === 1;
  return `<Shipment WaybillNo="${escapeXml(waybill)}">${withError ? element('Error', 'Invalid Waybill No.') : ''}</Shipment>`;
}

/** The answer to a RoutingServlet tracking call: one `<Shipment>` per item (plus return legs), in the order given. */
export function renderBlueDartTracking(items: SimTrackingItem[]): RenderedResponse {
  const shipments = items.map((item) =>
    item.found ? renderShipment(item.view) : renderUnknown(item.trackingNumber),
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
