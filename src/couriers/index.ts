import type { Config } from '../config';
import type { Logger } from '../logger';
import { createBlueDartAdapter } from './bluedart';
import { createEasyParcelAdapter } from './easyparcel';
import type { TokenStore } from './easyparcel-auth';
import { createSimulatorAdapter } from './simulator';
import { CourierCode, type CourierAdapter } from './types';

/** The most numbers any courier's tracking call takes (EasyParcel's documented 100). */
export const LARGEST_TRACKING_BATCH = 100;

/**
 * Every configured courier adapter reached over HTTP, by code. The shop's own fleet is no
 * HTTP courier: its adapter works on the read model and the activities add it (./fleet.ts).
 * `tokens.easyParcel` shares EasyParcel's rotating token pair between workers (the worker
 * passes the Postgres store); without it the pair lives in this process only.
 */
export function createCouriers(
  config: Config['courier'],
  log: Logger,
  tokens: { easyParcel?: TokenStore } = {},
): Record<Exclude<CourierCode, 'fleet'>, CourierAdapter> {
  const timeoutMs = config.timeoutMs;
  return {
    [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: config.simulatorUrl, timeoutMs, log }),
    [CourierCode.EASYPARCEL]: createEasyParcelAdapter({
      ...config.easyParcel,
      timeoutMs,
      log,
      ...(tokens.easyParcel ? { tokens: tokens.easyParcel } : {}),
    }),
    [CourierCode.BLUEDART]: createBlueDartAdapter({ ...config.blueDart, timeoutMs, log }),
  };
}
