/**
 * EasyParcel's booking and cancel bodies, as its Open API documents them
 * (github.com/easyparcel/OpenAPI, source/includes/2026-06/_submitorder.md, _cancelshipment.md),
 * for the adapter in easyparcel.ts: `shipment/submit_orders` takes a `shipment` list (service id,
 * collection date, weight in kg and size in cm, items, sender, receiver, features) and answers
 * HTTP 200 with one order holding one result per shipment (`status` success with its
 * `shipment_number` and `awb_number`, or error with `errors`); `shipment/cancel` takes a
 * `cancel_list` of shipment numbers with a remark and answers HTTP 200 with one result per
 * shipment: "Shipment Not Found" is an unknown booking, words of a pickup collected, "Already
 * Cancelled" the success we wanted, anything else ("The shipment cancellation period is over …")
 * invalid. A 4xx `{"status_code","message"}` is read the same way by the adapter.
 */
import { isObject, type JsonObject } from './http';
import type { BookingRequest } from './types';

/** What a booking needs that a Waybill booking request does not say (src/config supplies it). */
export interface EasyParcelShipping {
  /** The courier service booked (EasyParcel's `service_id`, from its rate check, e.g. `EP-CS096`). */
  serviceId: string;
  /** The shop's pickup address and phone (EasyParcel requires both for the sender). */
  senderAddress: string;
  senderPhone: string;
  /**
   * The phone sent for a receiver whose address has none (EasyParcel requires one); null: such
   * a booking is refused before anything is sent.
   */
  receiverPhoneFallback: string | null;
}

/** Development defaults (src/config's): the simulator accepts any service; a real account names its own. */
export const DEFAULT_SHIPPING: EasyParcelShipping = {
  serviceId: 'EP-CS096',
  senderAddress: 'Waybill shop',
  senderPhone: '0123456789',
  receiverPhoneFallback: null,
};

/** A parcel's size when the shop gives none: a small box (cm). */
const DEFAULT_BOX_CM = { length: 20, width: 15, height: 10 };

/** `+60123456789` or `0123456789` as EasyParcel's national number (`123456789`). */
function nationalNumber(phone: string | null): string {
  return (phone ?? '').replace(/[^\d]/g, '').replace(/^60/, '').replace(/^0/, '');
}

/** The phone EasyParcel gets for the receiver: the address's, else the configured fallback, else null. */
export function receiverPhone(request: BookingRequest, shipping: EasyParcelShipping): string | null {
  const own = request.recipient.phone?.trim();
  return own ? own : shipping.receiverPhoneFallback;
}

/** The `submit_orders` body for one parcel, collected on `collectionDate` (YYYY-MM-DD, Malaysia). */
export function submitOrderBody(
  request: BookingRequest,
  shipping: EasyParcelShipping,
  collectionDate: string,
): JsonObject {
  const kg = Math.max(0.01, Math.round(request.parcel.weightGrams / 10) / 100);
  return {
    shipment: [
      {
        reference: request.reference,
        service_id: shipping.serviceId,
        collection_date: collectionDate,
        weight: kg,
        ...DEFAULT_BOX_CM,
        item: [
          {
            content: request.parcel.description,
            weight: kg,
            ...DEFAULT_BOX_CM,
            currency_code: 'MYR',
            // Waybill's booking carries no declared value; EasyParcel's insurance is not bought.
            value: 0,
            quantity: 1,
          },
        ],
        sender: {
          name: request.sender.name,
          phone_number_country_code: request.sender.country,
          phone_number: nationalNumber(shipping.senderPhone),
          address_1: shipping.senderAddress,
          postcode: request.sender.postcode,
          city: request.sender.city,
          country_code: request.sender.country,
        },
        receiver: {
          name: request.recipient.name,
          phone_number_country_code: request.recipient.country,
          phone_number: nationalNumber(receiverPhone(request, shipping)),
          address_1: request.recipient.line1,
          postcode: request.recipient.postcode,
          city: request.recipient.city,
          country_code: request.recipient.country,
        },
        feature: { sms_tracking: false, email_tracking: false, whatsapp_tracking: false },
      },
    ],
  };
}

/** What EasyParcel said about the one shipment of a `submit_orders` answer. */
export type SubmitResult =
  | { kind: 'booked'; shipmentNumber: string; awbNumber: string | null; orderNumber: string | null }
  | { kind: 'refused'; reasons: string[] }
  | { kind: 'unreadable'; why: string };

/** Reads the shipment result of a `submit_orders` answer (`data[0].shipments[0]`). */
export function submitResult(body: JsonObject): SubmitResult {
  const order = Array.isArray(body.data) ? body.data[0] : undefined;
  if (!isObject(order)) return { kind: 'unreadable', why: 'no data[0] order' };
  const shipment = Array.isArray(order.shipments) ? order.shipments[0] : undefined;
  if (!isObject(shipment)) return { kind: 'unreadable', why: 'no data[0].shipments[0]' };
  if (shipment.status === 'error') {
    const errors = Array.isArray(shipment.errors) ? shipment.errors : [];
    return { kind: 'refused', reasons: errors.filter((e): e is string => typeof e === 'string') };
  }
  if (shipment.status !== 'success' || typeof shipment.shipment_number !== 'string') {
    return { kind: 'unreadable', why: `shipment status ${JSON.stringify(shipment.status)}` };
  }
  const details = isObject(order.order_details) ? order.order_details : {};
  return {
    kind: 'booked',
    shipmentNumber: shipment.shipment_number,
    awbNumber:
      typeof shipment.awb_number === 'string' && shipment.awb_number !== '' ? shipment.awb_number : null,
    orderNumber: typeof details.order_number === 'string' ? details.order_number : null,
  };
}

/**
 * The AWB of `shipmentNumber` in a `shipment/details` answer (`data[0].shipment_details.awb_number`,
 * 2026-06 `_shipmentdetail.md`): null while it has none; undefined when the answer has no such
 * shipment in a shape we can read.
 */
export function awbInDetails(body: JsonObject, shipmentNumber: string): string | null | undefined {
  const shipments = Array.isArray(body.data) ? body.data.filter(isObject) : [];
  const ours = shipments.find((s) => s.shipment_number === shipmentNumber);
  const details = ours && isObject(ours.shipment_details) ? ours.shipment_details : undefined;
  if (!details) return undefined;
  const awb = details.awb_number;
  if (awb === null || awb === undefined || awb === '') return null;
  return typeof awb === 'string' ? awb : undefined;
}

/** The `shipment/cancel` body for one shipment. */
export function cancelBody(shipmentNumber: string): JsonObject {
  return { cancel_list: [{ shipment_number: shipmentNumber, remark: 'Order cancelled by the shop' }] };
}

/**
 * The result for `shipmentNumber` in a cancel answer (the only result when there is one): null
 * when there is none; `refusal` null when cancelled, or already cancelled before (harmless).
 */
export function cancelResult(
  body: JsonObject,
  shipmentNumber: string,
): { refusal: { message: string } | null } | null {
  const results = Array.isArray(body.data) ? body.data.filter(isObject) : [];
  const ours =
    results.find((r) => r.shipment_number === shipmentNumber) ??
    (results.length === 1 ? results[0] : undefined);
  if (!ours) return null;
  if (ours.status !== 'error') return { refusal: null };
  const message = typeof ours.message === 'string' ? ours.message : '';
  return { refusal: /already cancell?ed/i.test(message) ? null : { message } };
}

/** The shipment number of `awb` in a tracking answer: `not_found` when EasyParcel says so, null when absent. */
export function shipmentNumberIn(body: JsonObject, awb: string): string | 'not_found' | null {
  const results = isObject(body.data) && Array.isArray(body.data.results) ? body.data.results : [];
  const item = results.find((r) => isObject(r) && r.awb_number === awb);
  if (!isObject(item)) return null;
  if (item.status === 'not_found') return 'not_found';
  return typeof item.shipment_number === 'string' && item.shipment_number !== ''
    ? item.shipment_number
    : null;
}
