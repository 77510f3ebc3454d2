/**
 * The worker's poll policy from its configuration: the edge where `WAYBILL_POLL_*` and
 * `EASYPARCEL_POLL_*` become the pure policy of src/domain/polling.ts. Read by the worker
 * (src/worker.ts), which hands it to its shipment workflows (the `pollPolicy` activity).
 */
import type { Config } from './config';
import { MYT_OFFSET_MINUTES } from './couriers/time';
import type { CourierPollPolicy, PollPolicy } from './domain/polling';

/**
 * EasyParcel answers up to 50 parcels per tracking call, so a poll costs a share of a call: a
 * moving parcel is asked every `EASYPARCEL_POLL_INTERVAL` (30 min: a change seen within half an
 * hour), on `EASYPARCEL_POLL_SLOT` slots (15 min) that gather the polls of every parcel falling
 * due into the same bulk calls; one held at a counter, under investigation, or without a new
 * scan for a seventh of the no-scan expiry (a day: stuck, lost, never collected) every
 * `EASYPARCEL_POLL_QUIET_INTERVAL` (3 h). A parcel EasyParcel pushed about within
 * `EASYPARCEL_PUSH_QUIET_AFTER` (1 day) is polled every `EASYPARCEL_PUSH_FALLBACK_INTERVAL`
 * (3 h) only, to catch a lost push. Polls hours apart fall on `EASYPARCEL_POLL_QUIET_SLOT`
 * slots (3 h), so they fill bulk calls. Measured by `npm run bench:courier`.
 *
 * A shrunk general policy (the demo polls every few seconds) shrinks this one with it: no
 * EasyParcel interval is longer than the general policy's longest, no slot than its shortest.
 */
export function easyParcelPolling(config: Config): CourierPollPolicy {
  const general = Object.values(config.polling.intervalMs);
  const ep = config.polling.easyParcel;
  const moving = Math.min(ep.intervalMs, Math.max(...general));
  const quiet = Math.min(ep.quietIntervalMs, Math.max(...general));
  // A shrunk policy (the demo, the tests) runs on a compressed clock: a night means nothing there.
  const shrunk = moving < ep.intervalMs || quiet < ep.quietIntervalMs;
  return {
    ...(ep.night && !shrunk ? { night: { ...ep.night, utcOffsetMinutes: MYT_OFFSET_MINUTES } } : {}),
    slotMs: Math.min(ep.slotMs, Math.min(...general)),
    intervalMs: {
      PENDING: moving,
      INFO_RECEIVED: moving,
      IN_TRANSIT: moving,
      OUT_FOR_DELIVERY: moving,
      ATTEMPT_FAIL: moving,
      RETURNING: moving,
      // Waiting for the recipient at a counter, or for the courier's investigation: hours.
      AVAILABLE_FOR_PICKUP: quiet,
      EXCEPTION: quiet,
    },
    quiet: { afterMs: config.polling.expireAfterNoScanMs / 7, intervalMs: quiet },
    // Polls hours apart (quiet parcels, pushed parcels' fallback) meet on few slots a day.
    quietSlotMs: shrunk ? Math.min(ep.quietSlotMs, Math.min(...general)) : ep.quietSlotMs,
    // EasyParcel pushes each scan (docs/couriers.md#easyparcel-webhooks): polling only catches lost ones.
    push: {
      // Longer than any general interval on purpose; a shrunk policy shrinks it to its longest.
      fallbackIntervalMs: shrunk
        ? Math.max(moving, Math.min(ep.push.fallbackIntervalMs, Math.max(...general)))
        : ep.push.fallbackIntervalMs,
      quietAfterMs: ep.push.quietAfterMs,
      // Subscribed to EasyParcel's webhooks (the URL's token is set): a new parcel waits for them too.
      fromStart: config.api.easyParcelWebhookToken !== null,
    },
  };
}

/** The worker's poll policy from its configuration (tests build shrunk ones directly). */
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
    couriers: { easyparcel: easyParcelPolling(config) },
  };
}
