/**
 * What stops the order saga's forward path, and the undo stack's entries: shared by the saga
 * (./order-saga.ts) and its steps (./order-steps.ts, ./order-ending.ts). Deterministic code only.
 */
import type { AttentionStep, OrderFailure } from './contract';

/** A forward step failed for good: the saga compensates and the order ends FAILED. */
export class OrderFailed extends Error {
  constructor(
    readonly code: OrderFailure,
    message: string,
  ) {
    super(message);
  }
}

/** A cancel was accepted: the forward path stops where it is and the workflow carries it out. */
export class CancelRequested extends Error {}

/** One undo in the saga's stack. `kind` labels the compensations metric. */
export interface Compensation {
  id: string;
  step: AttentionStep | null;
  kind: 'release_stock' | 'void_or_refund_payment' | 'cancel_booking';
  run: () => Promise<void>;
}
