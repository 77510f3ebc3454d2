/**
 * Whose address a request comes from (rate limits, logs): the socket's, unless
 * WAYBILL_TRUST_PROXY names the proxy in front of the API; then the client's from
 * X-Forwarded-For, so customers behind one load balancer do not share one bucket.
 */
import { ConfigError, loadConfig } from '../../src/config';
import type { TestApi } from '../support/api';
import { useStack } from '../support/stack';

describe('client address behind a proxy', () => {
  const stack = useStack({ worker: false, payments: false });

  /** Statuses of three requests from one client, then one from another, all through the same proxy (127.0.0.1). */
  async function twoClients(api: TestApi): Promise<number[]> {
    const from = async (client: string) =>
      (
        await api.app.inject({
          url: '/openapi.json',
          remoteAddress: '127.0.0.1',
          headers: { 'x-forwarded-for': client },
        })
      ).statusCode;
    return [
      await from('203.0.113.7'),
      await from('203.0.113.7'),
      await from('203.0.113.7'),
      await from('198.51.100.9'),
    ];
  }

  it.each([
    ['untrusted (default): everyone behind the proxy shares its bucket', {}, [200, 200, 429, 429]],
    [
      'trusted by address: each client has its own bucket',
      { WAYBILL_TRUST_PROXY: '127.0.0.1' },
      [200, 200, 429, 200],
    ],
    ['trusted by CIDR range', { WAYBILL_TRUST_PROXY: '10.0.0.0/8,127.0.0.0/8' }, [200, 200, 429, 200]],
    ['trusted by hop count', { WAYBILL_TRUST_PROXY: '1' }, [200, 200, 429, 200]],
    [
      'a proxy other than the one in front: not believed',
      { WAYBILL_TRUST_PROXY: '10.1.2.3' },
      [200, 200, 429, 429],
    ],
  ])('%s', async (_name, env: Record<string, string>, expected) => {
    const api = await stack.anotherApi({ env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '2', ...env } });
    expect(await twoClients(api)).toEqual(expected);
  });

  it('never limits the health checks (the orchestrator polls them), and limits the routes beside them', async () => {
    const api = await stack.anotherApi({ env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '2' } });
    for (let i = 0; i < 4; i++) {
      const live = await api.app.inject({ url: '/health/live' });
      expect({ status: live.statusCode, limit: live.headers['ratelimit-limit'] }).toEqual({
        status: 200,
        limit: undefined,
      });
    }
    const documents = [];
    for (let i = 0; i < 3; i++) documents.push((await api.app.inject({ url: '/openapi.json' })).statusCode);
    expect(documents).toEqual([200, 200, 429]);
  });

  it.each([
    ['every route (the global limit)', '/openapi.json', 2],
    ["a route's own limit (guest tracking by number: 6 × the guest limit)", '/v1/tracking/!', 6],
  ])(
    'remembers WAYBILL_RATE_LIMIT_CLIENTS clients for %s: a limited client stays limited until that many others have called',
    async (_name, url, limit) => {
      const api = await stack.anotherApi({
        env: {
          WAYBILL_RATE_LIMIT_PER_MINUTE: '2',
          WAYBILL_GUEST_RATE_LIMIT_PER_MINUTE: '1',
          WAYBILL_RATE_LIMIT_CLIENTS: '100',
        },
      });
      const from = async (remoteAddress: string) => (await api.app.inject({ url, remoteAddress })).statusCode;
      const limited = '203.0.113.7';
      for (let i = 0; i < limit; i++) expect(await from(limited)).not.toBe(429);
      expect(await from(limited)).toBe(429);
      // 99 others: the limited client is still among the 100 remembered.
      for (let i = 0; i < 99; i++) await from(`10.0.0.${i}`);
      expect(await from(limited)).toBe(429);
      // 100 more: it is the least recently seen, so forgotten, and its count starts again.
      for (let i = 0; i < 100; i++) await from(`10.0.1.${i}`);
      expect(await from(limited)).not.toBe(429);
    },
  );

  it('names a WAYBILL_TRUST_PROXY it cannot read', () => {
    expect(() => loadConfig({ WAYBILL_TRUST_PROXY: 'the load balancer' })).toThrow(ConfigError);
    expect(() => loadConfig({ WAYBILL_TRUST_PROXY: '10.0.0.0/40' })).toThrow(
      /WAYBILL_TRUST_PROXY must be false, true, a hop count or comma-separated proxy addresses/,
    );
  });
});
