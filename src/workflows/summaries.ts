/**
 * The words a workflow history is read in, in the Temporal UI and CLI: static summaries of
 * started workflows, activity and timer summaries, current details. One line each, plain
 * text. Pure code: used by the workflows, and by whoever starts an order workflow.
 */
import type { OrderWorkflowInput } from './contract';
import { courierFor } from '../domain/courier-choice';

const COURIER_NAMES: Record<string, string> = {
  easyparcel: 'EasyParcel',
  bluedart: 'Blue Dart',
  simulator: 'Simulator',
};

export function courierName(code: string): string {
  return COURIER_NAMES[code] ?? code;
}

/** `45 s`, `30 min`, `2 h`, `2 h 30 min`, `3 d`, `3 d 4 h`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}

/** `2026-11-24 14:05 UTC`. */
export function utcTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Currencies whose minor unit is the unit itself. */
const NO_DECIMALS = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK', 'UGX']);

/** Minor units as a readable amount: `MYR 120.00`. */
export function money(amount: number, currency: string): string {
  const code = currency.toUpperCase();
  return NO_DECIMALS.has(code) ? `${code} ${amount}` : `${code} ${(amount / 100).toFixed(2)}`;
}

/** Static summary of an order workflow, for whoever starts it: `Order ORD-1001 · 3 items · MYR 120.00 · EasyParcel`. */
export function orderStaticSummary(
  input: Pick<
    OrderWorkflowInput,
    'orderNumber' | 'lines' | 'totalAmount' | 'currency' | 'courier' | 'courierByShipFrom'
  >,
): string {
  const items = input.lines.reduce((sum, line) => sum + line.quantity, 0);
  const couriers = [...new Set(input.lines.map((line) => courierFor(input, line.shipFrom)))];
  return `Order ${input.orderNumber} · ${items} item${items === 1 ? '' : 's'} · ${money(input.totalAmount, input.currency)} · ${couriers.map(courierName).join(' + ')}`;
}

/** Static summary of a parcel's shipment workflow: `Parcel 1 of 2 of order ORD-1001 · EasyParcel EP123`. */
export function shipmentStaticSummary(input: {
  parcel: number;
  parcels: number;
  orderNumber: string;
  courier: string;
  trackingNumber: string;
}): string {
  return `Parcel ${input.parcel} of ${input.parcels} of order ${input.orderNumber} · ${courierName(input.courier)} ${input.trackingNumber}`;
}
