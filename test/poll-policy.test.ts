/**
 * The worker's poll policy from its configuration (src/poll-policy.ts): EasyParcel's polls hours
 * apart on the quiet slot, and a shrunk policy (the demo's compressed clock) shrinking it too.
 */
import { loadConfig, POLLED_STATUSES } from '../src/config';
import { pollPolicyFromConfig } from '../src/poll-policy';

const HOUR = 3_600_000;

describe('EasyParcel poll policy from configuration', () => {
  it('puts polls hours apart on a 3-hour quiet slot and falls back to polling every 3 hours when pushed', () => {
    const ep = pollPolicyFromConfig(loadConfig({})).couriers!.easyparcel!;
    expect(ep).toMatchObject({
      slotMs: HOUR / 4,
      quietSlotMs: 3 * HOUR,
      quiet: { intervalMs: 3 * HOUR },
      push: { fallbackIntervalMs: 3 * HOUR, quietAfterMs: 24 * HOUR, fromStart: false },
    });
    const set = pollPolicyFromConfig(
      loadConfig({
        EASYPARCEL_POLL_QUIET_SLOT: '2h',
        EASYPARCEL_WEBHOOK_TOKEN: 'a-webhook-token-of-32-characters-at-least',
      }),
    ).couriers!.easyparcel!;
    expect(set).toMatchObject({ quietSlotMs: 2 * HOUR, push: { fromStart: true } });
  });

  it('shrinks the quiet slot with a shrunk general policy', () => {
    const shrunk = loadConfig(
      Object.fromEntries(POLLED_STATUSES.map((status) => [`WAYBILL_POLL_${status}`, '20s'])),
    );
    const ep = pollPolicyFromConfig(shrunk).couriers!.easyparcel!;
    expect(ep.quietSlotMs).toBe(20_000);
    expect(ep.night).toBeUndefined();
  });
});
