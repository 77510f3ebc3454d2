/**
 * Freshness is judged from the `next_poll_at` a parcel's workflow stores, the same in the
 * three places that tell it: the tracking view, the admin queue (and its `stale` filter) and
 * the stale gauge. An EasyParcel parcel on its 3 h quiet interval is on schedule, hence
 * fresh, long after the general interval of its status (30 min out for delivery) has passed.
 */
import { useStack } from '../support/stack';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('freshness from the next poll the workflow planned', () => {
  const stack = useStack({ payments: false, worker: false, api: {} });
  const now = Date.now();
  const at = (offsetMs: number) => new Date(now + offsetMs);

  beforeAll(async () => {
    await stack.database.db
      .insertInto('shipments')
      .values([
        // Out for delivery but without a new scan for a day: EasyParcel's quiet rule polls it
        // every 3 h. Polled an hour ago, next poll in 2 h: on schedule.
        {
          id: 'shp_quiet',
          courier: 'easyparcel',
          tracking_number: 'EP000QUIET',
          status: 'OUT_FOR_DELIVERY',
          created_at: at(-3 * 24 * HOUR),
          last_synced_at: at(-HOUR),
          last_event_at: at(-26 * HOUR),
          next_poll_at: at(2 * HOUR),
        },
        // Same status, its workflow's next poll due an hour ago and not done: behind.
        {
          id: 'shp_behind',
          courier: 'easyparcel',
          tracking_number: 'EP00BEHIND',
          status: 'OUT_FOR_DELIVERY',
          created_at: at(-3 * 24 * HOUR),
          last_synced_at: at(-2 * HOUR),
          last_event_at: at(-2 * HOUR),
          next_poll_at: at(-HOUR),
        },
      ])
      .execute();
  });

  it('reads the quiet EasyParcel parcel as fresh in tracking, and the one behind as stale', async () => {
    const freshnessOf = async (trackingNumber: string) => {
      const res = await stack.api.app.inject({ method: 'GET', url: `/v1/tracking/${trackingNumber}` });
      expect(res.statusCode).toBe(200);
      return res.json().freshness as string;
    };
    expect(await freshnessOf('EP000QUIET')).toBe('fresh');
    expect(await freshnessOf('EP00BEHIND')).toBe('stale');
  });

  it('reads them the same in the admin queue and its stale filter', async () => {
    const get = async (query: string) => {
      const res = await stack.api.app.inject({
        method: 'GET',
        url: `/v1/admin/shipments${query}`,
        headers: stack.api.admin(),
      });
      expect(res.statusCode).toBe(200);
      return res.json().items as { shipmentId: string; freshness: string }[];
    };
    const all = await get('');
    expect(Object.fromEntries(all.map((i) => [i.shipmentId, i.freshness]))).toEqual({
      shp_quiet: 'fresh',
      shp_behind: 'stale',
    });
    expect((await get('?stale=true')).map((i) => i.shipmentId)).toEqual(['shp_behind']);
    expect((await get('?stale=false')).map((i) => i.shipmentId)).toEqual(['shp_quiet']);
  });

  it('counts only the one behind in the stale gauge', async () => {
    const res = await stack.api.app.metricsServer.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(/^waybill_shipments_stale (\d+)$/m.exec(res.body)?.[1]).toBe('1');
  });
});
