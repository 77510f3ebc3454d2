import type { Config } from './config';
import type { PollPolicy } from './workflows/contract';

/** The shipment workflows' poll policy from configuration (tests build shrunk ones directly). */
export function pollPolicyFromConfig(config: Config): PollPolicy {
  const i = config.polling.intervalMs;
  return {
    intervalMs: {
      PENDING: i.PENDING,
      INFO_RECEIVED: i.INFO_RECEIVED,
      IN_TRANSIT: i.IN_TRANSIT,
      OUT_FOR_DELIVERY: i.OUT_FOR_DELIVERY,
      AVAILABLE_FOR_PICKUP: i.AVAILABLE_FOR_PICKUP,
      ATTEMPT_FAIL: i.ATTEMPT_FAIL,
      EXCEPTION: i.EXCEPTION,
      // A parcel on its way back moves like one in transit.
      RETURNING: i.IN_TRANSIT,
    },
    backoffBaseMs: 60_000,
    backoffCapMs: config.polling.backoffCapMs,
    expireAfterNoScanMs: config.polling.expireAfterNoScanMs,
    maxAgeMs: config.polling.maxAgeMs,
    notFoundLimit: 5,
    pollAttempts: 4,
    pollRetryInitialMs: 2_000,
    maxCyclesPerRun: config.workerSizing.shipmentPollsPerRun,
    refreshCooldownMs: config.polling.refreshCooldownMs,
  };
}
