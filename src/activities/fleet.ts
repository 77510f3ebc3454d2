/**
 * The fleet run watch's one activity (src/workflows/fleet-run.ts): look at a run by
 * Postgres's clock and raise the silent-run alarm when it has gone quiet. Safe to run twice:
 * an alarm already raised is not raised again until the driver's next report clears it.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { Logger } from '../logger';
import { count, Metrics } from '../metrics';
import { checkSilentRun, type SilentRunCheck } from '../read-model/fleet';
import { activityMeter } from './meter';

export function createFleetActivities(deps: { db: Kysely<Database>; log: Logger }) {
  return {
    async checkFleetRun(input: { runId: string; silentAfterMs: number }): Promise<SilentRunCheck> {
      const result = await checkSilentRun(deps.db, input.runId, input.silentAfterMs);
      if (result.state === 'silent' && result.raised) {
        count(activityMeter(), Metrics.fleetSilentRuns, {});
        deps.log.warn({ runId: input.runId, alarm: result.alarms }, 'fleet run silent: no driver report');
      }
      return result;
    },
  };
}

export type FleetActivities = ReturnType<typeof createFleetActivities>;
