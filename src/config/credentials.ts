/**
 * Credentials: the published development values, the staff keys (JWKS), the payload keys,
 * the admin API key digests and the courier webhook secrets, and the checks that keep the
 * development ones out of production.
 */
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import type { Reader } from './parse';
import { type Config, ConfigError, type StaffKey, type StaffKeyAlgorithm } from './types';

/**
 * Development defaults, published in the README so the dev stack works out of the box.
 * The API logs a warning at start while any is in use; with WAYBILL_ENV=production every
 * one of them is refused, whether it is a default or set explicitly.
 */
export const DEV_JWT_SECRET = 'waybill-dev-jwt-secret-not-for-production';
export const DEV_ADMIN_API_KEY = 'waybill-dev-admin-key';
export const DEV_SIMULATOR_WEBHOOK_SECRET = 'waybill-dev-simulator-webhook-secret';
/** The published development staff key pair (EC P-256, ES256): `npm run token` signs with it. */
export const DEV_STAFF_JWK = {
  kty: 'EC',
  crv: 'P-256',
  kid: 'waybill-dev-staff',
  x: 'DEb9WFYUyka5cIAXaBLcHdEreW1am09wXYWxADZG1f4',
  y: 'S_mUQ0BlvgEFqmzpdfRJBZSsOVXUGVLc_GNS3fUP7Uw',
  d: 's6OcH-Y9rYiNTY49bl0bVV3fq8DDLOL1NMt-RmeADd8',
} as const;
/** The published development payload key (AES-256, base64) and its id: refused in production. */
export const DEV_PAYLOAD_KEY_ID = 'waybill-dev-1';
export const DEV_PAYLOAD_KEY = 'Aqwpgfj43NtlhwQphSpVvHWc9Lkay8ydWMOpbQK/tdU=';
export const DEFAULT_JWT_ISSUER = 'waybill-dev-shop';
export const DEFAULT_STAFF_JWT_ISSUER = 'waybill-dev-staff';
export const DEFAULT_JWT_AUDIENCE = 'waybill-api';

export const EMBEDDED_PG = { user: 'waybill', password: 'waybill', database: 'waybill' } as const;

/** The algorithm a JWK's key type signs with; null for key types staff tokens do not use. */
function algorithmOf(jwk: JsonWebKey): StaffKeyAlgorithm | null {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return null;
}

/** The text of a JSON value given inline (starting with `{`) or as a path to a file holding it. */
function jsonValue(name: string, text: string, problems: string[]): unknown {
  let source = text;
  if (!text.startsWith('{')) {
    try {
      source = fs.readFileSync(text, 'utf8');
    } catch (err) {
      problems.push(
        `${name} must be inline JSON or a readable file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}: ${text})`,
      );
      return null;
    }
  }
  try {
    return JSON.parse(source);
  } catch {
    problems.push(`${name} is not valid JSON`);
    return null;
  }
}

/** One JWK as a {@link StaffKey}; names what is wrong with it otherwise. */
function staffKey(
  name: string,
  jwk: unknown,
  kind: 'public' | 'private',
  problems: string[],
): StaffKey | null {
  const key = (jwk ?? {}) as JsonWebKey & { kid?: unknown; alg?: unknown };
  const alg = typeof jwk === 'object' ? algorithmOf(key) : null;
  if (alg === null) {
    problems.push(`${name}: each key must be an EC P-256, RSA or Ed25519 JWK`);
    return null;
  }
  if (typeof key.kid !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(key.kid)) {
    problems.push(`${name}: each key needs a "kid" (letters, digits, . _ : -)`);
    return null;
  }
  if (key.alg !== undefined && key.alg !== alg) {
    problems.push(`${name}: key "${key.kid}" says alg ${String(key.alg)} but its key type signs ${alg}`);
    return null;
  }
  if (kind === 'public' && key.d !== undefined) {
    problems.push(`${name}: key "${key.kid}" is a private key; give the API public keys only (drop "d")`);
    return null;
  }
  try {
    const pem =
      kind === 'public'
        ? createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' })
        : createPrivateKey({ key, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
    return { kid: key.kid, alg, pem: String(pem) };
  } catch {
    problems.push(`${name}: key "${key.kid}" is not a valid ${kind} ${alg} key`);
    return null;
  }
}

/** A JWKS document (`{"keys":[…]}`) of public staff keys. */
function staffJwks(name: string, text: string, problems: string[]): StaffKey[] {
  const doc = jsonValue(name, text, problems) as { keys?: unknown } | null;
  if (doc === null) return [];
  if (!Array.isArray(doc.keys) || doc.keys.length === 0) {
    problems.push(`${name} must be a JWKS document: {"keys":[…]} with at least one key`);
    return [];
  }
  const keys = doc.keys.map((jwk) => staffKey(name, jwk, 'public', problems)).filter((k) => k !== null);
  const kids = keys.map((k) => k.kid);
  if (new Set(kids).size !== kids.length) problems.push(`${name}: every key needs its own kid`);
  return keys;
}

const DEV_STAFF_PUBLIC_JWKS = JSON.stringify({
  keys: [{ ...DEV_STAFF_JWK, d: undefined }],
});

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** WAYBILL_PAYLOAD_KEYS: `id:base64key,id:base64key`, each key 32 bytes (AES-256). */
function payloadKeys(text: string, problems: string[]): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const entry of text.split(',').map((e) => e.trim())) {
    const [id, key, ...rest] = entry.split(':');
    if (!id || !/^[A-Za-z0-9._-]{1,64}$/.test(id) || key === undefined || rest.length > 0) {
      problems.push(
        'WAYBILL_PAYLOAD_KEYS must be comma-separated id:base64key pairs (ids: letters, digits, . _ -)',
      );
      return {};
    }
    const bytes = Buffer.from(key, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== key) {
      problems.push(`WAYBILL_PAYLOAD_KEYS: key "${id}" must be 32 bytes in base64 (openssl rand -base64 32)`);
      continue;
    }
    if (id in keys) problems.push(`WAYBILL_PAYLOAD_KEYS: key id "${id}" is listed twice`);
    keys[id] = key;
  }
  return keys;
}

/** The credentials {@link readCredentials} reads, by the part of {@link Config} that holds them. */
export interface Credentials {
  readonly api: Pick<
    Config['api'],
    | 'jwtSecret'
    | 'jwtSecretIsDefault'
    | 'jwtIssuer'
    | 'staffJwtKeys'
    | 'staffJwtKeysAreDefault'
    | 'staffJwtIssuer'
    | 'adminApiKeyHashes'
    | 'adminApiKeyIsDefault'
    | 'courierWebhookSecrets'
    | 'easyParcelWebhookToken'
  >;
  readonly payloads: Pick<Config['payloads'], 'keys' | 'activeKeyId' | 'keysAreDefault'>;
  readonly tokens: Config['tokens'];
}

/** A published development value set explicitly in production: named, so the process stops. */
function refusePublished(r: Reader, name: string, what: string): void {
  r.problems.push(`${name} is the published development ${what}: set your own (WAYBILL_ENV=production)`);
}

/** Every credential. In production none has a default: unset means that way in is off (empty). */
export function readCredentials(r: Reader, production: boolean): Credentials {
  const { jwtSecret, jwtIssuer, staffJwtIssuer } = readCustomerTokens(r, production);
  const { staffJwtKeys, staffJwtKeysAreDefault, staffSigningKey } = readStaffKeys(r, production);
  const payloads = readPayloadKeys(r, production);
  const { adminApiKeyHashes, adminApiKeyIsDefault } = readAdminApiKeys(r, production);
  return {
    api: {
      jwtSecret,
      jwtSecretIsDefault: jwtSecret === DEV_JWT_SECRET,
      jwtIssuer,
      staffJwtKeys,
      staffJwtKeysAreDefault,
      staffJwtIssuer,
      adminApiKeyHashes,
      adminApiKeyIsDefault,
      courierWebhookSecrets: readCourierWebhookSecrets(r, production),
      easyParcelWebhookToken: readEasyParcelWebhookToken(r),
    },
    payloads,
    tokens: { staffSigningKey },
  };
}

/** The customer tokens' secret and the two issuers (customer and staff). */
function readCustomerTokens(r: Reader, production: boolean) {
  const jwtSecret = r.string('WAYBILL_JWT_SECRET', production ? '' : DEV_JWT_SECRET);
  if (jwtSecret !== '' && jwtSecret.length < 32)
    r.problems.push('WAYBILL_JWT_SECRET must be at least 32 characters');
  if (production && jwtSecret === DEV_JWT_SECRET) refusePublished(r, 'WAYBILL_JWT_SECRET', 'JWT secret');
  const jwtIssuer = r.string('WAYBILL_JWT_ISSUER', DEFAULT_JWT_ISSUER);
  const staffJwtIssuer = r.string('WAYBILL_STAFF_JWT_ISSUER', DEFAULT_STAFF_JWT_ISSUER);
  if (jwtIssuer === staffJwtIssuer) {
    r.problems.push(
      'WAYBILL_STAFF_JWT_ISSUER must differ from WAYBILL_JWT_ISSUER (staff and customer tokens are told apart by issuer)',
    );
  }
  return { jwtSecret, jwtIssuer, staffJwtIssuer };
}

/** The staff keys: public ones that verify (the API), the private one that signs (`npm run token`). */
function readStaffKeys(r: Reader, production: boolean) {
  const devStaffPublic = staffJwks('DEV_STAFF_JWK', DEV_STAFF_PUBLIC_JWKS, [])[0]!;
  const staffJwksText = r.optional('WAYBILL_STAFF_JWKS');
  const staffJwtKeys =
    staffJwksText !== null
      ? staffJwks('WAYBILL_STAFF_JWKS', staffJwksText, r.problems)
      : production
        ? []
        : [devStaffPublic];
  const staffJwtKeysAreDefault = staffJwtKeys.some((k) => k.pem === devStaffPublic.pem);
  if (production && staffJwtKeysAreDefault) refusePublished(r, 'WAYBILL_STAFF_JWKS', 'staff key');
  const signingKeyText = r.optional('WAYBILL_STAFF_JWT_SIGNING_KEY');
  const staffSigningKey =
    signingKeyText !== null
      ? staffKey(
          'WAYBILL_STAFF_JWT_SIGNING_KEY',
          jsonValue('WAYBILL_STAFF_JWT_SIGNING_KEY', signingKeyText, r.problems),
          'private',
          r.problems,
        )
      : production
        ? null
        : staffKey('DEV_STAFF_JWK', DEV_STAFF_JWK, 'private', []);
  const publicPemOf = (key: StaffKey) =>
    String(createPublicKey(key.pem).export({ type: 'spki', format: 'pem' }));
  if (production && staffSigningKey !== null && publicPemOf(staffSigningKey) === devStaffPublic.pem) {
    refusePublished(r, 'WAYBILL_STAFF_JWT_SIGNING_KEY', 'staff key');
  }
  return { staffJwtKeys, staffJwtKeysAreDefault, staffSigningKey };
}

/** The payload codec's keys and the one that seals new payloads. */
function readPayloadKeys(r: Reader, production: boolean): Credentials['payloads'] {
  const payloadKeysText = r.string(
    'WAYBILL_PAYLOAD_KEYS',
    production ? '' : `${DEV_PAYLOAD_KEY_ID}:${DEV_PAYLOAD_KEY}`,
  );
  const keys = payloadKeysText === '' ? {} : payloadKeys(payloadKeysText, r.problems);
  const keysAreDefault = Object.values(keys).includes(DEV_PAYLOAD_KEY);
  if (production && keysAreDefault) refusePublished(r, 'WAYBILL_PAYLOAD_KEYS', 'payload key');
  const keyIds = Object.keys(keys);
  const activeKeyId = r.string('WAYBILL_PAYLOAD_KEY_ACTIVE', keyIds.length === 1 ? keyIds[0]! : '');
  if (keyIds.length > 1 && !r.has('WAYBILL_PAYLOAD_KEY_ACTIVE')) {
    r.problems.push(
      `WAYBILL_PAYLOAD_KEY_ACTIVE must name the key that seals new payloads when WAYBILL_PAYLOAD_KEYS lists several (${keyIds.join(', ')})`,
    );
  } else if (keyIds.length > 0 && activeKeyId !== '' && !(activeKeyId in keys)) {
    r.problems.push(
      `WAYBILL_PAYLOAD_KEY_ACTIVE "${activeKeyId}" is not a key id of WAYBILL_PAYLOAD_KEYS (${keyIds.join(', ')})`,
    );
  }
  if (keyIds.length === 0 && r.has('WAYBILL_PAYLOAD_KEY_ACTIVE')) {
    r.problems.push('WAYBILL_PAYLOAD_KEY_ACTIVE is set but WAYBILL_PAYLOAD_KEYS lists no key');
  }
  return { keys, activeKeyId, keysAreDefault };
}

/** SHA-256 digests of the admin API keys. */
function readAdminApiKeys(r: Reader, production: boolean) {
  const adminApiKeyHashes = r
    .string('WAYBILL_ADMIN_API_KEY_SHA256', production ? '' : sha256Hex(DEV_ADMIN_API_KEY))
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (adminApiKeyHashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
    r.problems.push(
      'WAYBILL_ADMIN_API_KEY_SHA256 must be comma-separated SHA-256 hex digests (64 hex characters each)',
    );
  }
  const adminApiKeyIsDefault = adminApiKeyHashes.includes(sha256Hex(DEV_ADMIN_API_KEY));
  if (production && adminApiKeyIsDefault) refusePublished(r, 'WAYBILL_ADMIN_API_KEY_SHA256', 'admin key');
  return { adminApiKeyHashes, adminApiKeyIsDefault };
}

/** The HMAC secret of each courier's pushes; a courier without one is refused. */
function readCourierWebhookSecrets(r: Reader, production: boolean): Record<string, string> {
  const webhookSecrets: Record<string, string> = {};
  for (const [courier, variable, secret] of [
    ['easyparcel', 'COURIER_WEBHOOK_SECRET_EASYPARCEL', r.optional('COURIER_WEBHOOK_SECRET_EASYPARCEL')],
    ['bluedart', 'COURIER_WEBHOOK_SECRET_BLUEDART', r.optional('COURIER_WEBHOOK_SECRET_BLUEDART')],
    [
      'simulator',
      'COURIER_WEBHOOK_SECRET_SIMULATOR',
      production
        ? r.optional('COURIER_WEBHOOK_SECRET_SIMULATOR')
        : r.string('COURIER_WEBHOOK_SECRET_SIMULATOR', DEV_SIMULATOR_WEBHOOK_SECRET),
    ],
  ] as const) {
    if (secret === null) continue;
    if (secret.length < 16) r.problems.push(`${variable} must be at least 16 characters`);
    if (production && secret === DEV_SIMULATOR_WEBHOOK_SECRET) refusePublished(r, variable, 'webhook secret');
    webhookSecrets[courier] = secret;
  }
  return webhookSecrets;
}

/** Shortest EasyParcel webhook token: it is the only credential of that route (~190 bits as base64url). */
export const EASYPARCEL_WEBHOOK_TOKEN_MIN_LENGTH = 32;

/**
 * EasyParcel's webhooks carry no signature, so the secret is the URL's last segment; off
 * (null) unless set, in every environment. A short one is refused: it could be guessed.
 */
function readEasyParcelWebhookToken(r: Reader): string | null {
  const token = r.optional('EASYPARCEL_WEBHOOK_TOKEN');
  if (token === null) return null;
  if (token.length < EASYPARCEL_WEBHOOK_TOKEN_MIN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) {
    r.problems.push(
      `EASYPARCEL_WEBHOOK_TOKEN must be at least ${EASYPARCEL_WEBHOOK_TOKEN_MIN_LENGTH} characters of A-Z a-z 0-9 _ - (e.g. \`openssl rand -base64 32 | tr '+/' '-_' | tr -d =\`)`,
    );
  }
  return token;
}

/**
 * Throws a {@link ConfigError} naming each credential the API lacks (production only:
 * development always has its published defaults). Other processes do not hold API
 * credentials, so they are not asked for them.
 */
export function assertApiCredentials(config: Config): void {
  if (config.env !== 'production') return;
  const problems: string[] = [];
  if (config.api.jwtSecret === '') {
    problems.push('WAYBILL_JWT_SECRET must be set (32+ characters) when WAYBILL_ENV=production');
  }
  if (config.api.staffJwtKeys.length === 0 && config.api.adminApiKeyHashes.length === 0) {
    problems.push(
      'WAYBILL_STAFF_JWKS or WAYBILL_ADMIN_API_KEY_SHA256 must be set when WAYBILL_ENV=production: with neither, no staff member can sign in',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** The published development credentials this configuration accepts (for the start-up warning). */
export function developmentCredentialsInUse(config: Config): string[] {
  return [
    ...(config.api.jwtSecretIsDefault ? ['WAYBILL_JWT_SECRET'] : []),
    ...(config.api.staffJwtKeysAreDefault ? ['WAYBILL_STAFF_JWKS'] : []),
    ...(config.api.adminApiKeyIsDefault ? ['WAYBILL_ADMIN_API_KEY_SHA256'] : []),
    ...(config.payloads.keysAreDefault ? ['WAYBILL_PAYLOAD_KEYS'] : []),
    ...(config.api.courierWebhookSecrets.simulator === DEV_SIMULATOR_WEBHOOK_SECRET
      ? ['COURIER_WEBHOOK_SECRET_SIMULATOR']
      : []),
  ];
}
