import type { Client } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { createFleetAdapter } from '../couriers/fleet';
import type { CourierAdapter, CourierCode } from '../couriers/types';
import type { PollPolicy } from '../domain/polling';
import type { Logger } from '../logger';
import type { NotificationTransport } from '../notifications/transport';
import type { PaymentProvider } from '../payments/types';
import { createBookingActivities } from './bookings';
import { createFleetActivities } from './fleet';
import { createHousekeepingActivities } from './housekeeping';
import { createImportActivities } from './imports';
import { createInventoryActivities } from './inventory';
import { createOrderActivities } from './orders';
import { createPaymentActivities } from './payments';
import { createReportActivities } from './reports';
import { createShipmentActivities } from './shipments';

export interface ActivityDeps {
  db: Kysely<Database>;
  /** Housekeeping asks Temporal whether a shipment's workflow still runs; the worker always passes one. */
  temporal?: Client;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  payments: PaymentProvider;
  /** Name recorded on payment rows, e.g. 'simulator'. */
  paymentProviderName?: string;
  dailyBudget: number;
  /** Of the daily budget, the calls polls leave to bookings (default: a tenth). */
  bookingReserve?: number;
  /** Requests per courier started in any second of Postgres's clock, across every worker (./courier-budget.ts); none when not given. */
  requestsPerSecond?: number;
  /** Bulk tracking: how long a courier call waits for more polls (ms); calls in flight, and started per second, per courier. */
  batchWindowMs?: number;
  batchConcurrency?: number;
  batchCallsPerSecond?: number;
  /** A courier's tracking call out this long (ms) means it is not answering: its polls are put off meanwhile. */
  batchSlowAfterMs?: number;
  log: Logger;
  /** The shipment workflows' poll policy: this worker's, built from its config (src/poll-policy.ts). */
  pollPolicy: PollPolicy;
  notifications?: NotificationTransport;
  now?: () => number;
}

/** Every activity, wired with its dependencies. `src/worker.ts` registers them. */
export function createActivities(given: ActivityDeps) {
  // The shop's own fleet is a courier on the read model: every worker has it.
  const deps = { ...given, couriers: { fleet: createFleetAdapter(given.db), ...given.couriers } };
  return {
    ...createShipmentActivities(deps),
    ...createInventoryActivities(deps),
    ...createOrderActivities(deps),
    ...createBookingActivities(deps),
    ...createPaymentActivities({ ...deps, providerName: deps.paymentProviderName ?? 'http' }),
    ...createReportActivities(deps),
    ...createHousekeepingActivities(deps),
    ...createImportActivities(deps),
    ...createFleetActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
