/**
 * EasyParcel's rotating refresh tokens with several workers: two adapters (two workers) on one
 * database share the token pair in Postgres, refresh it under the row lock one at a time, and
 * both keep working through expiries; the simulator spends each refresh token on use, as
 * EasyParcel does. Without the shared store the second worker's refresh is refused.
 */
import { registerEasyParcelRoutes } from '../../simulators/courier/formats/easyparcel';
import { createEasyParcelAdapter } from '../../src/couriers/easyparcel';
import { CourierRejectedError, CourierRefusal } from '../../src/couriers/types';
import { postgresTokenStore } from '../../src/read-model/courier-tokens';
import { freshDatabase, type TestDatabase } from '../support/db';
import { serve, stubBackend, view } from '../simulators/courier/formats/sim-views';

const ACCOUNT = { clientId: 'c', clientSecret: 's', refreshToken: 'configured-refresh-token' };
const PARCEL = view({
  trackingNumber: 'EP5000000001',
  region: 'MY',
  start: new Date('2026-12-01T01:00:00Z'),
  steps: [],
});

let database: TestDatabase;
let simNow = Date.parse('2026-12-05T01:00:00Z');
let server: Awaited<ReturnType<typeof serve>>;
const tokenRequests: string[] = [];

beforeAll(async () => {
  database = await freshDatabase();
  server = await serve('/easyparcel', (scope) => {
    scope.addHook('onRequest', async (request) => {
      if (request.url.endsWith('/oauth/token')) tokenRequests.push(request.url);
    });
    registerEasyParcelRoutes(scope, stubBackend([PARCEL]), {
      ...ACCOUNT,
      tokenTtlSeconds: 600,
      now: () => simNow,
      rotateRefreshTokens: true,
    });
  });
});
afterAll(async () => {
  await server.app.close();
  await database.drop();
});

function worker() {
  return createEasyParcelAdapter({
    ...ACCOUNT,
    apiVersion: '2026-06',
    baseUrl: server.url,
    now: () => simNow,
    tokens: postgresTokenStore(database.db, 'easyparcel', ACCOUNT.refreshToken),
  });
}

describe("EasyParcel's token pair shared by workers", () => {
  it('lets two workers on one database refresh in turn, each using the token the other stored', async () => {
    const [a, b] = [worker(), worker()];
    // Both at once, on an empty store: one refresh, under the lock; the other takes its token.
    const first = await Promise.all([a.track([PARCEL.trackingNumber]), b.track([PARCEL.trackingNumber])]);
    expect(first.map(([r]) => r!.kind)).toEqual(['found', 'found']);
    expect(tokenRequests).toHaveLength(1);

    // Past the access token's life, twice over: each expiry costs one refresh, whoever makes it,
    // and the rotated refresh token is always the one stored.
    for (const round of [1, 2]) {
      simNow += 11 * 60_000;
      const answers = await Promise.all([b.track([PARCEL.trackingNumber]), a.track([PARCEL.trackingNumber])]);
      expect(answers.map(([r]) => r!.kind)).toEqual(['found', 'found']);
      expect(tokenRequests).toHaveLength(1 + round);
    }
    const row = await database.db
      .selectFrom('courier_tokens')
      .selectAll()
      .where('courier', '=', 'easyparcel')
      .executeTakeFirstOrThrow();
    expect(row.refresh_token).not.toBe(ACCOUNT.refreshToken);
    expect(row.configured_refresh_token).toBe(ACCOUNT.refreshToken);

    // A third worker started later (a restart) starts from the stored pair, not the configured token.
    expect((await worker().track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
    expect(tokenRequests).toHaveLength(3);
  });

  it('without the shared store, the second worker finds its refresh token spent by the first', async () => {
    const own = await serve('/easyparcel', (scope) =>
      registerEasyParcelRoutes(scope, stubBackend([PARCEL]), {
        ...ACCOUNT,
        tokenTtlSeconds: 600,
        now: () => simNow,
        rotateRefreshTokens: true,
      }),
    );
    try {
      const alone = () =>
        createEasyParcelAdapter({ ...ACCOUNT, apiVersion: '2026-06', baseUrl: own.url, now: () => simNow });
      expect((await alone().track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
      await expect(alone().track([PARCEL.trackingNumber])).rejects.toMatchObject({
        name: CourierRejectedError.name,
        reason: CourierRefusal.CREDENTIALS,
      });
    } finally {
      await own.app.close();
    }
  });

  it('starts again from a refresh token the operator configured since (the app authorised again)', async () => {
    simNow += 60 * 60_000;
    const stale = postgresTokenStore(database.db, 'easyparcel', 'a-newer-configured-token');
    expect(await stale.current()).toEqual({
      accessToken: null,
      refreshAt: null,
      refreshToken: 'a-newer-configured-token',
    });
  });
});
