import type { Config } from '../config';
import type { Logger } from '../logger';
import { createBlueDartAdapter } from './bluedart';
import { createEasyParcelAdapter } from './easyparcel';
import { createSimulatorAdapter } from './simulator';
import { CourierCode, type CourierAdapter } from './types';

/** The most numbers any courier's tracking call takes (EasyParcel's documented 100). */
export const LARGEST_TRACKING_BATCH = 100;

/**
 * Every configured courier adapter reached over HTTP, by code. The shop's own fleet is no
 * HTTP courier: its adapter works on the read model and the activities add it (./fleet.ts).
 */
export function createCouriers(
  config: Config['courier'],
  log: Logger,
): Record<Exclude<CourierCode, 'fleet'>, CourierAdapter> {
  const timeoutMs = config.timeoutMs;
  return {
    [CourierCode.SIMULATOR]: createSimulatorAdapter({ baseUrl: config.simulatorUrl, timeoutMs, log }),
    [CourierCode.EASYPARCEL]: createEasyParcelAdapter({ ...config.easyParcel, timeoutMs, log }),
    [CourierCode.BLUEDART]: createBlueDartAdapter({ ...config.blueDart, timeoutMs, log }),
  };
}
