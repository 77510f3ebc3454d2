/**
 * What an order's failure says to whom. Customers get the failure code and our own sentence;
 * the stored `failure_message` is the payment provider's or courier's own text (it can name
 * internal references, and some providers echo what they were sent), shown to staff only.
 */
import { OrderFailure, OrderStatus } from '../workflows/contract';

/** Every failure code has one: a new code without a sentence fails the typecheck. */
const CUSTOMER_MESSAGES: Readonly<Record<OrderFailure | typeof OrderStatus.NEEDS_ATTENTION, string>> = {
  [OrderFailure.OUT_OF_STOCK]:
    'Some items are out of stock, so the order was not placed. Nothing was charged.',
  [OrderFailure.STOCK_FAILED]:
    'The items could not be reserved, so the order was not placed. Nothing was charged.',
  [OrderFailure.PAYMENT_DECLINED]:
    'The payment was declined, so the order was not placed. Nothing was charged; try another payment method.',
  [OrderFailure.PAYMENT_FAILED]:
    'The payment could not be taken, so the order was not placed. Nothing was charged.',
  [OrderFailure.BOOKING_FAILED]:
    'No courier could take the parcels, so the order was cancelled and the payment hold released.',
  [OrderFailure.SHIPMENT_LOST]: 'The parcels did not reach you. Our team will contact you about a refund.',
  [OrderFailure.NOT_STARTED]:
    'The order could not be started when it was placed and has been closed; nothing was reserved or charged. Please place it again.',
  [OrderStatus.NEEDS_ATTENTION]:
    'Our team is finishing something on this order by hand; nothing is needed from you.',
};

const FALLBACK = 'The order could not be completed.';

export interface FailureView {
  code: string;
  message: string;
  /** The provider's or courier's own text: staff only. */
  detail?: string;
}

export function failureView(
  code: string | null,
  storedMessage: string | null,
  forStaff: boolean,
): FailureView | null {
  if (code === null) return null;
  const view: FailureView = {
    code,
    message: (CUSTOMER_MESSAGES as Readonly<Record<string, string>>)[code] ?? FALLBACK,
  };
  if (forStaff && storedMessage !== null) view.detail = storedMessage;
  return view;
}
