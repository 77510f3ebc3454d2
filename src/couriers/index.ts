import type { Config } from '../config';
import type { Logger } from '../logger';
import { createBlueDartAdapter } from './bluedart';
import { createEasyParcelAdapter } from './easyparcel';
import type { TokenStore } from './easyparcel-auth';
import type { SubmissionJournal } from './easyparcel-bookings';
import { createSimulatorAdapter } from './simulator';
import { CourierCode, type CourierAdapter } from './types';

/** The most numbers any courier's tracking call takes (EasyParcel's documented 100). */
export const LARGEST_TRACKING_BATCH = 100;

/**
 * Every configured courier adapter reached over HTTP, by code. The shop's own fleet is no
 * HTTP courier: its adapter works on the read model and the activities add it (./fleet.ts).
 * `shared.easyParcel` shares EasyParcel's rotating token pair between workers, and
 * `shared.easyParcelSubmissions` what EasyParcel answered to each booking (the worker passes
 * the Postgres stores); without them both live in this process only.
 */
export function createCouriers(
  config: Config['courier'],
  log: Logger,
  shared: { easyParcel?: TokenStore; easyParcelSubmissions?: SubmissionJournal } = {},
): Record<Exclude<CourierCode, 'fleet'>, CourierAdapter> {
  const timeoutMs = config.timeoutMs;
  return {
    [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: config.simulatorUrl, timeoutMs, log }),
    [CourierCode.EASYPARCEL]: createEasyParcelAdapter({
      ...config.easyParcel,
      timeoutMs,
      log,
      ...(shared.easyParcel ? { tokens: shared.easyParcel } : {}),
      ...(shared.easyParcelSubmissions ? { submissions: shared.easyParcelSubmissions } : {}),
    }),
    [CourierCode.BLUEDART]: createBlueDartAdapter({ ...config.blueDart, timeoutMs, log }),
  };
}
