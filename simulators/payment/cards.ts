/** The simulated provider's test cards and tokens (Stripe's test numbers): each has a fixed outcome. */

export type CardOutcome =
  | { kind: 'approve' }
  | { kind: 'decline'; declineCode: string; message: string }
  /** The provider fails while processing: HTTP 500, nothing stored, retryable. */
  | { kind: 'processing_error' };

/** Card numbers with a fixed outcome (Stripe's test numbers). Documented in README.md. */
export const TEST_CARDS = {
  SUCCEEDS: '4242424242424242',
  GENERIC_DECLINE: '4000000000000002',
  INSUFFICIENT_FUNDS: '4000000000009995',
  PROCESSING_ERROR: '4000000000000119',
} as const;

export const CARD_OUTCOMES: Readonly<Record<string, CardOutcome>> = {
  [TEST_CARDS.SUCCEEDS]: { kind: 'approve' },
  [TEST_CARDS.GENERIC_DECLINE]: {
    kind: 'decline',
    declineCode: 'generic_decline',
    message: 'Your card was declined.',
  },
  [TEST_CARDS.INSUFFICIENT_FUNDS]: {
    kind: 'decline',
    declineCode: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  [TEST_CARDS.PROCESSING_ERROR]: { kind: 'processing_error' },
};

/** Tokens a checkout would hand over, each standing for one test card. */
export const TEST_TOKENS: Readonly<Record<string, string>> = {
  tok_visa: TEST_CARDS.SUCCEEDS,
  tok_chargeDeclined: TEST_CARDS.GENERIC_DECLINE,
  tok_chargeDeclinedInsufficientFunds: TEST_CARDS.INSUFFICIENT_FUNDS,
  tok_chargeDeclinedProcessingError: TEST_CARDS.PROCESSING_ERROR,
};
