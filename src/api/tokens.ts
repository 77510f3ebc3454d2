/**
 * Bearer tokens the API accepts, and how they are made (`npm run token` and the tests use
 * these functions; in production the shop's login and the staff identity provider do).
 *
 * - Customer tokens: HS256 with `WAYBILL_JWT_SECRET`; `iss` WAYBILL_JWT_ISSUER, `aud`
 *   WAYBILL_JWT_AUDIENCE, `sub` the customer id, `iat`, `exp`. No `role`.
 * - Staff tokens: signed with the staff identity provider's private key (ES256, RS256 or
 *   EdDSA), its `kid` in the header; `iss` WAYBILL_STAFF_JWT_ISSUER, `aud`, `sub` the staff
 *   member's id, `role` admin | ops | support, `iat`, `exp`. The API holds only the public
 *   keys (WAYBILL_STAFF_JWKS), so nothing that reaches its configuration can mint one.
 */
import { createSigner } from 'fast-jwt';
import { DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER, type Config, type StaffKey } from '../config';
import type { StaffRole } from './access';

const HOUR_MS = 3_600_000;

export interface TokenOptions {
  issuer?: string;
  audience?: string;
}

/**
 * A customer-shaped HS256 token with exactly these claims plus `iss`, `aud`, `iat` and (unless
 * `expiresInMs` is null) `exp`. Claims given win over the options, so tests can forge any shape.
 */
export function signToken(
  secret: string,
  claims: Record<string, unknown>,
  expiresInMs: number | null = HOUR_MS,
  options: TokenOptions = {},
): string {
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    ...(expiresInMs === null ? {} : { expiresIn: expiresInMs }),
  });
  return sign({
    iss: options.issuer ?? DEFAULT_JWT_ISSUER,
    aud: options.audience ?? DEFAULT_JWT_AUDIENCE,
    ...claims,
  });
}

/** A staff-shaped token signed with `key` (its kid in the header); same rules as {@link signToken}. */
export function signStaffToken(
  key: StaffKey,
  claims: Record<string, unknown>,
  expiresInMs: number | null,
  options: Required<TokenOptions>,
): string {
  const sign = createSigner({
    key: key.pem,
    algorithm: key.alg,
    kid: key.kid,
    ...(expiresInMs === null ? {} : { expiresIn: expiresInMs }),
  });
  return sign({ iss: options.issuer, aud: options.audience, ...claims });
}

/** The token a shop's login would give this customer, accepted by an API with this configuration. */
export function customerToken(config: Config, customerId: string, expiresInMs = HOUR_MS): string {
  if (config.api.jwtSecret === '') {
    throw new Error('WAYBILL_JWT_SECRET is not set: customer tokens cannot be signed');
  }
  return signToken(config.api.jwtSecret, { sub: customerId }, expiresInMs, {
    issuer: config.api.jwtIssuer,
    audience: config.api.jwtAudience,
  });
}

/** A staff token for this role, signed with WAYBILL_STAFF_JWT_SIGNING_KEY (the development key by default). */
export function staffToken(config: Config, staffId: string, role: StaffRole, expiresInMs = HOUR_MS): string {
  const key = config.tokens.staffSigningKey;
  if (key === null) {
    throw new Error('WAYBILL_STAFF_JWT_SIGNING_KEY is not set: staff tokens cannot be signed');
  }
  return signStaffToken(key, { sub: staffId, role }, expiresInMs, {
    issuer: config.api.staffJwtIssuer,
    audience: config.api.jwtAudience,
  });
}
