/** What the demo's parts share: its patience, its refusal, and a pause. */

/** An order in a final status whose parcels are not final yet: how long to wait for them. */
export const PARCELS_GRACE_MS = 30_000;
/** Every parcel final, the order not: how long before the demo asks Temporal whether its workflow still runs. */
export const STUCK_AFTER_MS = 15_000;

/** The demo will not run as asked; the message says why and what to do instead. */
export class Refusal extends Error {
  override name = 'Refusal';
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
