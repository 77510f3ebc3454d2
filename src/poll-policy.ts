import type { Config } from './config';
import type { CourierPollPolicy, PollPolicy } from './workflows/contract';

const MINUTE = 60_000;

/**
 * EasyParcel answers up to 50 parcels per tracking call, so a poll costs a share of a call:
 * every parcel is asked every 30 minutes (a change seen within half an hour), on 15-minute
 * slots that gather the polls of every parcel falling due into the same bulk calls, and one
 * without a new scan for a day (stuck, lost, never collected) every 3 hours.
 * Measured by `npm run bench:courier` (docs/benchmarks.md).
 */
export const EASYPARCEL_POLLING: CourierPollPolicy = {
  slotMs: 15 * MINUTE,
  intervalMs: {
    PENDING: 30 * MINUTE,
    INFO_RECEIVED: 30 * MINUTE,
    IN_TRANSIT: 30 * MINUTE,
    OUT_FOR_DELIVERY: 30 * MINUTE,
    AVAILABLE_FOR_PICKUP: 30 * MINUTE,
    ATTEMPT_FAIL: 30 * MINUTE,
    EXCEPTION: 30 * MINUTE,
    RETURNING: 30 * MINUTE,
  },
  quiet: { afterMs: 24 * 60 * MINUTE, intervalMs: 3 * 60 * MINUTE },
};

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
    maxCyclesPerRun: 500,
    refreshCooldownMs: config.polling.refreshCooldownMs,
    couriers: { easyparcel: EASYPARCEL_POLLING },
  };
}
