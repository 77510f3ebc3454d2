/**
 * Bearer tokens: what a customer token and a staff token must carry, that staff tokens
 * verify only with the staff public keys (the customers' secret mints none), and that
 * `npm run token` prints tokens the API accepts, one per role.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSigner } from 'fast-jwt';
import { TOKEN_CLOCK_SKEW_MS } from '../../src/api/auth';
import { signStaffToken, signToken } from '../../src/api/tokens';
import {
  DEFAULT_JWT_AUDIENCE,
  DEFAULT_JWT_ISSUER,
  DEFAULT_STAFF_JWT_ISSUER,
  DEV_JWT_SECRET,
  DEV_STAFF_JWK,
  type StaffKey,
} from '../../src/config';
import { useStack } from '../support/stack';

const ROOT = path.join(__dirname, '../..');
const HOUR = 3_600_000;
const now = () => Math.floor(Date.now() / 1000);

function newStaffKeyPair(kid: string): { signing: StaffKey; jwks: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    signing: { kid, alg: 'ES256', pem: String(privateKey.export({ type: 'pkcs8', format: 'pem' })) },
    jwks: JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid }] }),
  };
}

describe('bearer tokens', () => {
  const stack = useStack({ worker: false, payments: false, api: {} });

  const call = (token: string, url = '/v1/orders/ord_none') =>
    stack.api.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
  const refusal = async (token: string, url?: string) => {
    const res = await call(token, url);
    return { status: res.statusCode, ...res.json().error };
  };
  const staffOptions = { issuer: DEFAULT_STAFF_JWT_ISSUER, audience: DEFAULT_JWT_AUDIENCE };
  const devStaffKey = () => stack.api.config.tokens.staffSigningKey!;

  describe('customer tokens', () => {
    it('are accepted with sub, iat and exp from the configured issuer for the configured audience', async () => {
      expect((await call(signToken(DEV_JWT_SECRET, { sub: 'cus_1' }))).statusCode).toBe(404);
    });

    it.each([
      ['without exp', signToken(DEV_JWT_SECRET, { sub: 'cus_1' }, null), /no "exp" claim/],
      ['without sub', signToken(DEV_JWT_SECRET, {}), /no "sub" claim/],
      [
        'without iat',
        createSigner({ key: DEV_JWT_SECRET, noTimestamp: true })({
          sub: 'cus_1',
          iss: DEFAULT_JWT_ISSUER,
          aud: DEFAULT_JWT_AUDIENCE,
          exp: now() + 3600,
        }),
        /no "iat" claim/,
      ],
      ['expired', signToken(DEV_JWT_SECRET, { sub: 'cus_1' }, -60_000), /has expired/],
      [
        'issued longer ago than the maximum age, even with a far exp',
        signToken(DEV_JWT_SECRET, { sub: 'cus_1', iat: now() - 25 * 3600 }, 30 * 24 * HOUR),
        /issued more than 24 h ago/,
      ],
      [
        'issued in the future',
        signToken(DEV_JWT_SECRET, { sub: 'cus_1', iat: now() + 3600 }, HOUR),
        /issued in the future/,
      ],
      [
        'from another issuer',
        signToken(DEV_JWT_SECRET, { sub: 'cus_1' }, HOUR, { issuer: 'evil' }),
        /iss \/ aud/,
      ],
      [
        'for another audience',
        signToken(DEV_JWT_SECRET, { sub: 'cus_1' }, HOUR, { audience: 'other-api' }),
        /iss \/ aud/,
      ],
      [
        'signed with another secret',
        signToken('another-secret-that-is-long-enough-1234', { sub: 'cus_1' }),
        /not valid/,
      ],
    ])('are refused %s', async (_name, token, message) => {
      const answer = await refusal(token);
      expect(answer).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
      expect(answer.message).toMatch(message);
    });

    it('cannot carry a role: the customers’ secret mints no staff rights', async () => {
      const token = signToken(DEV_JWT_SECRET, { sub: 'mallory', role: 'admin' });
      expect(await refusal(token, '/v1/admin/stats')).toMatchObject({
        status: 401,
        code: 'INVALID_TOKEN',
        message: expect.stringContaining('carries no role'),
      });
    });

    it('cannot pass for a staff token by naming the staff issuer (HS256 is not a staff algorithm)', async () => {
      const token = signToken(DEV_JWT_SECRET, { sub: 'mallory', role: 'admin' }, HOUR, staffOptions);
      expect(await refusal(token, '/v1/admin/stats')).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
      // Even with the staff key's kid, signed with the public key as an HMAC secret.
      const confused = signStaffToken(
        { kid: DEV_STAFF_JWK.kid, alg: 'HS256' as never, pem: stack.api.config.api.staffJwtKeys[0]!.pem },
        { sub: 'mallory', role: 'admin' },
        HOUR,
        staffOptions,
      );
      expect(await refusal(confused, '/v1/admin/stats')).toMatchObject({
        status: 401,
        code: 'INVALID_TOKEN',
      });
    });
  });

  describe('a token accepted once', () => {
    afterEach(() => jest.restoreAllMocks());

    it('is refused once it has expired, though the API has seen it before', async () => {
      const token = signToken(DEV_JWT_SECRET, { sub: 'cus_kept' }, 60_000);
      expect((await call(token)).statusCode).toBe(404);
      expect((await call(token)).statusCode).toBe(404);
      const later = Date.now() + 60_000 + TOKEN_CLOCK_SKEW_MS + 1_000;
      jest.spyOn(Date, 'now').mockReturnValue(later);
      expect(await refusal(token)).toMatchObject({
        status: 401,
        code: 'INVALID_TOKEN',
        message: 'the bearer token has expired',
      });
    });

    it('is refused once older than the maximum age, whatever its exp', async () => {
      const maxAge = stack.api.config.api.jwtMaxAgeMs;
      const token = signToken(DEV_JWT_SECRET, { sub: 'cus_kept', exp: now() + (3 * maxAge) / 1000 }, null);
      expect((await call(token)).statusCode).toBe(404);
      jest.spyOn(Date, 'now').mockReturnValue(Date.now() + maxAge + TOKEN_CLOCK_SKEW_MS + 1_000);
      expect(await refusal(token)).toMatchObject({
        status: 401,
        message: expect.stringMatching(/issued more than .* ago/),
      });
    });

    it('is taken with the scheme in any case (RFC 9110), and refused in any other header but "Bearer <JWT>"', async () => {
      const token = signToken(DEV_JWT_SECRET, { sub: 'cus_kept' });
      expect((await call(token)).statusCode).toBe(404);
      for (const authorization of [`bearer ${token}`, `BEARER ${token}`, `bEaReR ${token}`]) {
        const res = await stack.api.app.inject({ url: '/v1/orders/ord_none', headers: { authorization } });
        expect({ authorization, status: res.statusCode, code: res.json().error.code }).toEqual({
          authorization,
          status: 404,
          code: 'NOT_FOUND',
        });
      }
      for (const authorization of [
        `Bearer  ${token}`,
        `Bearer ${token} `,
        `Bearer\t${token}`,
        `Bearers ${token}`,
        `Basic ${token}`,
      ]) {
        const res = await stack.api.app.inject({ url: '/v1/orders/ord_none', headers: { authorization } });
        expect({ status: res.statusCode, ...res.json().error }).toEqual({
          status: 401,
          code: 'INVALID_TOKEN',
          message: 'the Authorization header must be "Bearer <JWT>"',
        });
      }
    });
  });

  describe('staff tokens', () => {
    it('are accepted with a role, signed by a configured staff key', async () => {
      const token = signStaffToken(devStaffKey(), { sub: 'alice', role: 'admin' }, HOUR, staffOptions);
      expect((await call(token, '/v1/admin/stats')).statusCode).toBe(200);
    });

    it.each([
      ['without a role', { sub: 'alice' }, HOUR, /no "role" claim/],
      ['with a role that does not exist', { sub: 'alice', role: 'root' }, HOUR, /admin, ops or support/],
      ['without exp', { sub: 'alice', role: 'admin' }, null, /no "exp" claim/],
      [
        'issued longer ago than the staff maximum age',
        { sub: 'alice', role: 'admin', iat: now() - 13 * 3600 },
        24 * HOUR,
        /issued more than 12 h ago/,
      ],
    ] as const)('are refused %s', async (_name, claims, ttl, message) => {
      const token = signStaffToken(devStaffKey(), { ...claims }, ttl, staffOptions);
      const answer = await refusal(token, '/v1/admin/stats');
      expect(answer).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
      expect(answer.message).toMatch(message);
    });

    it('are refused when signed by a key the API does not know, whatever kid they name', async () => {
      const stranger = newStaffKeyPair(DEV_STAFF_JWK.kid).signing;
      const token = signStaffToken(stranger, { sub: 'alice', role: 'admin' }, HOUR, staffOptions);
      expect(await refusal(token, '/v1/admin/stats')).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
      const unknownKid = signStaffToken(
        { ...stranger, kid: 'someone-else' },
        { sub: 'alice', role: 'admin' },
        HOUR,
        staffOptions,
      );
      expect(await refusal(unknownKid, '/v1/admin/stats')).toMatchObject({
        status: 401,
        message: expect.stringContaining('does not know (kid)'),
      });
    });
  });

  it('follow the configured issuers, audience and staff keys (and then refuse the development ones)', async () => {
    const pair = newStaffKeyPair('shop-staff-2025');
    const custom = await stack.anotherApi({
      env: {
        WAYBILL_JWT_SECRET: 'a-shop-secret-of-at-least-32-characters!',
        WAYBILL_JWT_ISSUER: 'https://login.shop.example',
        WAYBILL_JWT_AUDIENCE: 'https://api.shop.example',
        WAYBILL_STAFF_JWT_ISSUER: 'https://staff.shop.example',
        WAYBILL_STAFF_JWKS: pair.jwks,
        WAYBILL_STAFF_JWT_SIGNING_KEY: JSON.stringify({
          ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
          kid: 'unused',
        }),
      },
    });
    const get = (token: string, url: string) =>
      custom.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
    const shop = { issuer: 'https://login.shop.example', audience: 'https://api.shop.example' };
    const staff = { issuer: 'https://staff.shop.example', audience: 'https://api.shop.example' };
    const secret = 'a-shop-secret-of-at-least-32-characters!';
    expect(
      (await get(signToken(secret, { sub: 'cus_1' }, HOUR, shop), '/v1/orders/ord_none')).statusCode,
    ).toBe(404);
    expect((await get(signToken(secret, { sub: 'cus_1' }), '/v1/orders/ord_none')).statusCode).toBe(401);
    const ops = signStaffToken(pair.signing, { sub: 'olga', role: 'ops' }, HOUR, staff);
    expect((await get(ops, '/v1/admin/attention')).statusCode).toBe(200);
    const devSigned = signStaffToken(devStaffKey(), { sub: 'olga', role: 'ops' }, HOUR, staff);
    expect((await get(devSigned, '/v1/admin/attention')).statusCode).toBe(401);
  });

  describe('npm run token', () => {
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'devstack/token.ts', ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
      });

    it('prints a token the API accepts for a customer and for each staff role', async () => {
      const [customer, support, ops, admin] = await Promise.all(
        ['customer', 'support', 'ops', 'admin'].map(async (role) =>
          (await run(role, `${role}-7`)).stdout.trim(),
        ),
      );
      const status = async (token: string, url: string) => (await call(token, url)).statusCode;
      expect({
        customerReadsAnOrder: await status(customer!, '/v1/orders/ord_none'),
        supportListsShipments: await status(support!, '/v1/admin/shipments'),
        supportReadsAttention: await status(support!, '/v1/admin/attention'),
        opsReadsAttention: await status(ops!, '/v1/admin/attention'),
        opsReadsStats: await status(ops!, '/v1/admin/stats'),
        opsListsEventEndpoints: await status(ops!, '/v1/admin/event-endpoints'),
        adminListsEventEndpoints: await status(admin!, '/v1/admin/event-endpoints'),
      }).toEqual({
        customerReadsAnOrder: 404,
        supportListsShipments: 200,
        supportReadsAttention: 403,
        opsReadsAttention: 200,
        opsReadsStats: 200,
        opsListsEventEndpoints: 403,
        adminListsEventEndpoints: 200,
      });
    });

    it('refuses a lifetime beyond the maximum age, and generates staff key pairs', async () => {
      await expect(run('admin', 'alice', '13')).rejects.toMatchObject({
        stderr: expect.stringContaining('hours must be from 1 to 12'),
      });
      const { stdout } = await run('keygen', 'kid-1');
      const lines = Object.fromEntries(
        stdout
          .trim()
          .split('\n')
          .map((line) => /^(\w+)='(.*)'$/.exec(line)!.slice(1, 3) as [string, string]),
      );
      const jwks = JSON.parse(lines.WAYBILL_STAFF_JWKS!);
      expect(jwks.keys).toEqual([expect.objectContaining({ kid: 'kid-1', kty: 'EC', crv: 'P-256' })]);
      expect(jwks.keys[0].d).toBeUndefined();
      expect(JSON.parse(lines.WAYBILL_STAFF_JWT_SIGNING_KEY!)).toMatchObject({
        kid: 'kid-1',
        d: expect.any(String),
      });
    });
  });
});
