import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { CourierAdapter, CourierCode } from '../couriers/types';
import type { Logger } from '../logger';
import { createShipmentActivities } from './shipments';

export interface ActivityDeps {
  db: Kysely<Database>;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  dailyBudget: number;
  log: Logger;
  now?: () => number;
}

/** Every activity, wired with its dependencies. `src/worker.ts` registers them. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createShipmentActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
