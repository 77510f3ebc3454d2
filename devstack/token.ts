/**
 * `npm run token -- <customer|support|ops|admin> <id> [hours]` prints a bearer token:
 * a customer token signed with WAYBILL_JWT_SECRET, or a staff token with that role signed
 * with WAYBILL_STAFF_JWT_SIGNING_KEY (both the published development values unless set).
 * Hours default to the configured maximum age and may not exceed it.
 *
 * `npm run token -- keygen [kid]` prints a new staff key pair (EC P-256, ES256): the private
 * JWK for whatever signs staff tokens, and the public JWKS for the API's WAYBILL_STAFF_JWKS.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { STAFF_ROLES, isStaffRole } from '../src/api/access';
import { customerToken, staffToken } from '../src/api/tokens';
import { loadConfig } from '../src/config';
import { runMain, StartupError } from '../src/main-helpers';

const USAGE = `usage: npm run token -- <customer|${STAFF_ROLES.join('|')}> <id> [hours]  |  npm run token -- keygen [kid]`;

function keygen(kid: string): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const meta = { kid, alg: 'ES256', use: 'sig' };
  return [
    `WAYBILL_STAFF_JWT_SIGNING_KEY='${JSON.stringify({ ...privateKey.export({ format: 'jwk' }), ...meta })}'`,
    `WAYBILL_STAFF_JWKS='${JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), ...meta }] })}'`,
  ].join('\n');
}

runMain(async () => {
  const [role, subject, hours] = process.argv.slice(2);
  if (role === 'keygen') {
    process.stdout.write(`${keygen(subject ?? `staff-${randomBytes(4).toString('hex')}`)}\n`);
    return;
  }
  if (
    (role !== 'customer' && !isStaffRole(role)) ||
    !subject ||
    (hours !== undefined && !/^\d+$/.test(hours))
  ) {
    throw new StartupError(USAGE);
  }
  const config = loadConfig();
  const maxAgeMs = role === 'customer' ? config.api.jwtMaxAgeMs : config.api.staffJwtMaxAgeMs;
  const ttlMs = hours === undefined ? maxAgeMs : Number(hours) * 3_600_000;
  if (ttlMs > maxAgeMs || ttlMs <= 0) {
    throw new StartupError(
      `hours must be from 1 to ${maxAgeMs / 3_600_000}: the API refuses ${role} tokens older than ${
        role === 'customer' ? 'WAYBILL_JWT_MAX_AGE' : 'WAYBILL_STAFF_JWT_MAX_AGE'
      }`,
    );
  }
  try {
    const token =
      role === 'customer' ? customerToken(config, subject, ttlMs) : staffToken(config, subject, role, ttlMs);
    process.stdout.write(`${token}\n`);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
});
