/**
 * The demo's plan data: every kind of order `npm run demo` places, with its parcel scenario,
 * courier, lines, payment card, when it cancels, and how it should end (its expectation).
 * The logic that deals them into a plan is plan.ts; the checks against it, checks.ts.
 */
import { CourierCode } from '../../src/couriers/types';
import { ShipmentStatus } from '../../src/domain/status';
import type { ScenarioName } from '../../simulators/courier/scenarios';
import { OrderStatus } from '../../src/workflows/contract';

export const DemoKind = {
  PAYMENT_DECLINED: 'payment_declined',
  DELIVERED: 'delivered',
  FAILED_ATTEMPT: 'failed_attempt_then_delivered',
  AVAILABLE_FOR_PICKUP: 'available_for_pickup',
  TWO_WAREHOUSES: 'two_warehouses',
  COURIER_OUTAGE: 'courier_outage',
  CANCEL_REFUSED: 'cancel_refused_after_pickup',
  RETURN_TO_ORIGIN: 'return_to_origin',
  EXCEPTION: 'exception',
  CANCELLED: 'cancelled_before_pickup',
  CANCEL_UNKNOWN_BOOKING: 'cancel_unknown_booking',
  NEVER_PICKED_UP: 'never_picked_up',
  LOST: 'lost',
} as const;
export type DemoKind = (typeof DemoKind)[keyof typeof DemoKind];
export const DEMO_KINDS = Object.values(DemoKind) as DemoKind[];

/** Where the payment ends up once the saga is done with the order. */
export type PaymentOutcome =
  /** Captured in full at pickup, nothing refunded. */
  | 'CAPTURED'
  /** Captured at pickup, then refunded in full (returned, or lost after pickup). */
  | 'REFUNDED'
  /** Authorised, then released without any capture. */
  | 'VOIDED'
  /** Never authorised. */
  | 'DECLINED';

export interface Expectation {
  orderStatus: OrderStatus;
  /** The order's failure code (the read model's `failure_code`); null: none. */
  failureCode: string | null;
  /** Final status of each parcel, in parcel order. */
  parcels: ShipmentStatus[];
  /** Statuses every parcel's tracking history must contain (the story really happened). */
  scans: ShipmentStatus[];
  payment: PaymentOutcome;
  /** The demo cancels through the API: accepted (200/202), or refused with 409 ALREADY_PICKED_UP. */
  cancel: 'accepted' | 'refused' | null;
}

export interface DemoKindSpec {
  kind: DemoKind;
  /** One line for --help and the README. */
  description: string;
  /** The simulator scenario its parcels play, through the recipient-name rule. */
  parcelScenario: ScenarioName;
  courier: CourierCode;
  lines: readonly { sku: string; quantity: number }[];
  /** Payment simulator tokens, used in turn. */
  paymentTokens: readonly string[];
  /** When the demo asks the API to cancel the order: once it is booked, or once a parcel is picked up. */
  cancelWhen: 'booked' | 'picked_up' | null;
  /** Its parcels are in flight when the demo takes their courier down. */
  outage: boolean;
  /** Just before the cancel the courier loses the order's bookings (the simulator forgets them): it answers the cancel 404. */
  courierForgetsBooking: boolean;
  /** How many the full plan has. */
  count: number;
  expect: Expectation;
  /**
   * Bugs of the product this kind of order runs into today. An order that differs from its
   * expectation only in ways these explain is reported as a known bug, not as a failure
   * (unless --strict). Remove the entry once the bug is fixed: the demo says when it no
   * longer shows.
   */
  knownBugs: readonly KnownBug[];
}

export interface KnownBug {
  id: string;
  /** One line for the results. */
  title: string;
  /** Whether one problem {@link checkOrder} found is this bug's doing. */
  explains(problem: string): boolean;
}

/**
 * Bugs of the product the demo runs into today, by id. Empty: the three the demo found
 * (a parcel lost after pickup failed its order's workflow; a pickup hidden by a later
 * EXCEPTION in the same poll; an expired parcel shown as CANCELLED) are fixed and every
 * order must now end as expected. Add an entry only with a filed issue, and remove it
 * with the fix.
 */
export const KNOWN_BUGS: Record<string, KnownBug> = {};

const S = ShipmentStatus;
const OK_CARD = ['tok_visa'];
const KETTLE = { sku: 'KETTLE-1L', quantity: 1 };
const MUGS = { sku: 'MUG-SET-4', quantity: 1 };
const TEA = { sku: 'TEA-SAMPLER', quantity: 2 };

function spec(
  kind: DemoKind,
  s: Omit<
    DemoKindSpec,
    | 'kind'
    | 'courier'
    | 'paymentTokens'
    | 'cancelWhen'
    | 'outage'
    | 'courierForgetsBooking'
    | 'expect'
    | 'knownBugs'
  > &
    Partial<
      Pick<
        DemoKindSpec,
        'courier' | 'paymentTokens' | 'cancelWhen' | 'outage' | 'courierForgetsBooking' | 'knownBugs'
      >
    > & {
      expect: Omit<Expectation, 'cancel'> & Partial<Expectation>;
    },
): DemoKindSpec {
  return {
    kind,
    courier: CourierCode.SIMULATOR,
    paymentTokens: OK_CARD,
    cancelWhen: null,
    outage: false,
    courierForgetsBooking: false,
    knownBugs: [],
    ...s,
    expect: { cancel: null, ...s.expect },
  };
}

/** Every kind of order the demo places, in the order the plan lists them. */
export const DEMO_KIND_SPECS: Readonly<Record<DemoKind, DemoKindSpec>> = {
  payment_declined: spec(DemoKind.PAYMENT_DECLINED, {
    description: 'the card is declined: the saga releases the stock and the order FAILS, no parcel',
    parcelScenario: 'delivered',
    lines: [KETTLE],
    paymentTokens: ['tok_chargeDeclined', 'tok_chargeDeclinedInsufficientFunds'],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'PAYMENT_DECLINED',
      parcels: [],
      scans: [],
      payment: 'DECLINED',
    },
  }),
  delivered: spec(DemoKind.DELIVERED, {
    description: 'picked up, through two hubs, out for delivery, delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE, MUGS],
    count: 6,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  failed_attempt_then_delivered: spec(DemoKind.FAILED_ATTEMPT, {
    description: 'the first delivery attempt fails (recipient absent); delivered the next day',
    parcelScenario: 'failed_attempt_then_delivered',
    lines: [MUGS],
    count: 4,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.ATTEMPT_FAIL, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  available_for_pickup: spec(DemoKind.AVAILABLE_FOR_PICKUP, {
    description: 'a failed attempt, held at the courier counter, collected two days later',
    parcelScenario: 'available_for_pickup',
    lines: [KETTLE],
    count: 3,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.ATTEMPT_FAIL, S.AVAILABLE_FOR_PICKUP, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  two_warehouses: spec(DemoKind.TWO_WAREHOUSES, {
    description: 'lines from Shah Alam and Penang: two parcels, two shipment workflows, both delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE, TEA],
    count: 3,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED, S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  courier_outage: spec(DemoKind.COURIER_OUTAGE, {
    description:
      'shipped with EasyParcel, which the demo takes down while the parcels are in transit; they recover and are delivered',
    parcelScenario: 'delivered',
    courier: CourierCode.EASYPARCEL,
    lines: [MUGS],
    outage: true,
    count: 4,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
    },
  }),
  cancel_refused_after_pickup: spec(DemoKind.CANCEL_REFUSED, {
    description: 'the shopper tries to cancel after pickup: 409 ALREADY_PICKED_UP, and it is delivered',
    parcelScenario: 'delivered',
    lines: [KETTLE],
    cancelWhen: 'picked_up',
    count: 2,
    expect: {
      orderStatus: OrderStatus.DELIVERED,
      failureCode: null,
      parcels: [S.DELIVERED],
      scans: [S.IN_TRANSIT, S.DELIVERED],
      payment: 'CAPTURED',
      cancel: 'refused',
    },
  }),
  return_to_origin: spec(DemoKind.RETURN_TO_ORIGIN, {
    description: 'two failed attempts, returned to the shop: restocked and refunded in full',
    parcelScenario: 'return_to_origin',
    lines: [KETTLE],
    count: 3,
    expect: {
      orderStatus: OrderStatus.RETURNED,
      failureCode: null,
      parcels: [S.RETURNED],
      scans: [S.ATTEMPT_FAIL, S.RETURNING],
      payment: 'REFUNDED',
    },
  }),
  exception: spec(DemoKind.EXCEPTION, {
    description:
      'damaged at the destination hub (EXCEPTION), no scan after that: the parcel EXPIRES, the order FAILS and is refunded',
    parcelScenario: 'exception',
    lines: [MUGS],
    count: 3,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [S.IN_TRANSIT, S.EXCEPTION],
      payment: 'REFUNDED',
    },
  }),
  cancelled_before_pickup: spec(DemoKind.CANCELLED, {
    description: 'the shopper cancels before pickup: booking cancelled, payment voided, stock released',
    parcelScenario: 'never_picked_up',
    lines: [KETTLE],
    cancelWhen: 'booked',
    count: 3,
    expect: {
      orderStatus: OrderStatus.CANCELLED,
      failureCode: 'CANCELLED',
      parcels: [S.CANCELLED],
      scans: [],
      payment: 'VOIDED',
      cancel: 'accepted',
    },
  }),
  cancel_unknown_booking: spec(DemoKind.CANCEL_UNKNOWN_BOOKING, {
    description:
      'the shopper cancels; the courier has lost the booking and answers the cancel 404: CANCELLED, nothing captured',
    parcelScenario: 'never_picked_up',
    lines: [TEA],
    cancelWhen: 'booked',
    courierForgetsBooking: true,
    count: 2,
    expect: {
      orderStatus: OrderStatus.CANCELLED,
      failureCode: 'CANCELLED',
      parcels: [S.CANCELLED],
      scans: [],
      payment: 'VOIDED',
      cancel: 'accepted',
    },
  }),
  never_picked_up: spec(DemoKind.NEVER_PICKED_UP, {
    description: 'manifested but never collected: the parcel EXPIRES, the order FAILS, the payment is voided',
    parcelScenario: 'never_picked_up',
    lines: [MUGS],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [S.INFO_RECEIVED],
      payment: 'VOIDED',
    },
  }),
  lost: spec(DemoKind.LOST, {
    description: 'the courier knows the number but never scans it: EXPIRED, the order FAILS, payment voided',
    parcelScenario: 'lost',
    lines: [KETTLE],
    count: 2,
    expect: {
      orderStatus: OrderStatus.FAILED,
      failureCode: 'SHIPMENT_LOST',
      parcels: [S.EXPIRED],
      scans: [],
      payment: 'VOIDED',
    },
  }),
};
