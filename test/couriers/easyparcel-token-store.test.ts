/**
 * EasyParcel's rotating refresh tokens with several workers: two adapters (two workers) on one
 * database share the token pair in Postgres, refresh it under the row lock one at a time, and
 * both keep working through expiries; the simulator spends each refresh token on use, as
 * EasyParcel does. Without the shared store the second worker's refresh is refused.
 */
import { randomBytes } from 'node:crypto';
import { registerEasyParcelRoutes } from '../../simulators/courier/formats/easyparcel';
import { textSealer, type TextKeys } from '../../src/codec/sealed-text';
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

/** EasyParcel as the simulator plays it, spending each refresh token on use; token requests counted. */
const easyParcelServer = () =>
  serve('/easyparcel', (scope) => {
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

beforeAll(async () => {
  database = await freshDatabase();
  server = await easyParcelServer();
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
    expect(row.configured_refresh_token).toMatch(/^sha256:[0-9a-f]{64}$/);

    // A third worker started later (a restart) starts from the stored pair, not the configured token.
    expect((await worker().track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
    expect(tokenRequests).toHaveLength(3);
  });

  it('without the shared store, the second worker finds its refresh token spent by the first', async () => {
    const own = await easyParcelServer();
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

  it('keeps the pair sealed with the payload keys: no token text in the row; older rows are read, then sealed again', async () => {
    const own = await easyParcelServer();
    const keyA = { keys: { a: randomBytes(32).toString('base64') }, activeKeyId: 'a' };
    const keyB = randomBytes(32).toString('base64');
    const rotated = { keys: { ...keyA.keys, b: keyB }, activeKeyId: 'b' };
    const sealedWorker = (tokenKeys: TextKeys) =>
      createEasyParcelAdapter({
        ...ACCOUNT,
        apiVersion: '2026-06',
        baseUrl: own.url,
        now: () => simNow,
        tokens: postgresTokenStore(database.db, 'easyparcel-sealed', ACCOUNT.refreshToken),
        tokenKeys,
      });
    const row = () =>
      database.db
        .selectFrom('courier_tokens')
        .selectAll()
        .where('courier', '=', 'easyparcel-sealed')
        .executeTakeFirstOrThrow();
    const opened = async (keys: TextKeys) => {
      const sealer = textSealer(keys);
      const { refresh_token, access_token } = await row();
      return {
        refreshToken: await sealer.open(refresh_token),
        accessToken: await sealer.open(access_token!),
      };
    };
    const requests = () => tokenRequests.length;
    try {
      expect((await sealedWorker(keyA).track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
      const tokens = await opened(keyA);
      const sealed = await row();
      expect([sealed.refresh_token, sealed.access_token]).toEqual([
        expect.stringMatching(/^sealed:a:/),
        expect.stringMatching(/^sealed:a:/),
      ]);
      const text = JSON.stringify(sealed);
      for (const token of [tokens.refreshToken, tokens.accessToken, ACCOUNT.refreshToken]) {
        expect(token.length).toBeGreaterThan(8);
        expect(text).not.toContain(token);
      }

      // A row as the version before sealing wrote it: read as it is, no token request, sealed again.
      await database.db
        .updateTable('courier_tokens')
        .set({
          configured_refresh_token: ACCOUNT.refreshToken,
          refresh_token: tokens.refreshToken,
          access_token: tokens.accessToken,
        })
        .where('courier', '=', 'easyparcel-sealed')
        .execute();
      const before = requests();
      expect((await sealedWorker(keyA).track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
      expect(requests()).toBe(before);
      expect((await row()).refresh_token).toMatch(/^sealed:a:/);
      expect(await opened(keyA)).toEqual(tokens);

      // A new active key: the pair is sealed again with it at the next use, still without a token request.
      expect((await sealedWorker(rotated).track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
      expect(requests()).toBe(before);
      expect([(await row()).refresh_token, (await row()).access_token]).toEqual([
        expect.stringMatching(/^sealed:b:/),
        expect.stringMatching(/^sealed:b:/),
      ]);
      expect(await opened({ keys: { b: keyB }, activeKeyId: 'b' })).toEqual(tokens);
      // The next refresh (past the access token's life) is sealed too, and the pair still works.
      simNow += 11 * 60_000;
      expect((await sealedWorker(rotated).track([PARCEL.trackingNumber]))[0]!.kind).toBe('found');
      expect(requests()).toBe(before + 1);
      expect(JSON.stringify(await row())).not.toContain((await opened(rotated)).accessToken);
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
