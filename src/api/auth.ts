/**
 * Who is calling. Every request gets a {@link Principal} from its credentials:
 * - `Authorization: Bearer <JWT>` whose `iss` is the staff issuer: a staff member, verified
 *   with the staff public key its `kid` names, with a `role` (admin, ops, support);
 * - any other bearer token: a customer, verified with the customers' HS256 secret;
 * - `x-api-key: <key>`: an admin whose key's SHA-256 is in config;
 * - nothing: a guest.
 * Every token needs `sub`, `iat`, `exp`, the configured issuer and audience, and is refused
 * once older than its maximum age whatever its `exp` (src/api/tokens.ts says how they are made).
 * Credentials that are present but wrong answer 401 on every route (never silently a guest).
 * Routes then say what they need with {@link requireStaff} / {@link requireSignedIn}.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createDecoder, createVerifier } from 'fast-jwt';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config';
import { can, isStaffRole, Permission, rolesWith, type StaffRole } from './access';
import { ApiError } from './errors';

export type Principal =
  | { kind: 'customer'; customerId: string }
  | { kind: 'staff'; staffId: string; role: StaffRole }
  | { kind: 'guest' };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** Subjects are ids, not free text: they end up in audit rows and search attributes. */
const SUBJECT = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** How far apart our clock and the token issuer's may be (ms): `exp`, `nbf`, a future `iat`. */
export const TOKEN_CLOCK_SKEW_MS = 30_000;

/**
 * Verified bearer tokens kept, by the exact text of their Authorization header (a session
 * sends the same header with every request), so a kept one costs one lookup: no parsing, no
 * signature check. A kept token is trusted only until its `exp` or its maximum age, whichever
 * comes first, without the clock skew: after that it is verified again, which names what is
 * wrong. Only verified tokens are kept; when full, the oldest kept goes.
 */
export const VERIFIED_TOKENS_KEPT = 10_000;

interface VerifiedToken {
  principal: Principal;
  /** Epoch ms up to which the token is certainly still valid. */
  validUntilMs: number;
}

function unauthorized(code: string, message: string): ApiError {
  return new ApiError(401, code, message);
}

function adminFromKey(key: string, hashes: readonly Buffer[]): Principal {
  const digest = createHash('sha256').update(key).digest();
  // Compare against every hash (no early exit) so timing does not tell which one came close.
  let match: Buffer | null = null;
  for (const hash of hashes) if (timingSafeEqual(digest, hash)) match = hash;
  if (!match) throw unauthorized('INVALID_API_KEY', 'the x-api-key header does not hold a valid admin key');
  return { kind: 'staff', staffId: `key:${match.toString('hex').slice(0, 12)}`, role: 'admin' };
}

const GUEST: Principal = Object.freeze({ kind: 'guest' });

const hours = (ms: number) => `${Math.round((ms / 3_600_000) * 10) / 10} h`;

/** Verifies a token and names what is wrong with it (the message tells the caller what to fix). */
function verified(
  verify: (token: string) => unknown,
  token: string,
  payload: Record<string, unknown>,
  maxAgeMs: number,
): Record<string, unknown> {
  let claims: Record<string, unknown>;
  try {
    claims = verify(token) as Record<string, unknown>;
  } catch (err) {
    const { code, message } = err as { code?: string; message?: string };
    if (code === 'FAST_JWT_MISSING_REQUIRED_CLAIM') {
      const claim = /The (\w+) claim is required/.exec(message ?? '')?.[1] ?? 'a claim';
      throw unauthorized(
        'INVALID_TOKEN',
        `the bearer token has no "${claim}" claim; tokens need sub, iat and exp`,
      );
    }
    if (code === 'FAST_JWT_EXPIRED') {
      const expired =
        typeof payload.exp === 'number' && payload.exp * 1000 + TOKEN_CLOCK_SKEW_MS < Date.now();
      throw unauthorized(
        'INVALID_TOKEN',
        expired
          ? 'the bearer token has expired'
          : `the bearer token was issued more than ${hours(maxAgeMs)} ago (its iat); sign in again`,
      );
    }
    if (code === 'FAST_JWT_INVALID_CLAIM_VALUE') {
      throw unauthorized('INVALID_TOKEN', 'the bearer token was issued by or for someone else (iss / aud)');
    }
    if (code === 'FAST_JWT_INACTIVE')
      throw unauthorized('INVALID_TOKEN', 'the bearer token is not valid yet (nbf)');
    throw unauthorized('INVALID_TOKEN', 'the bearer token is not valid');
  }
  // The maximum age counts from iat: a token "issued" in the future would outlive it.
  if (typeof claims.iat !== 'number' || claims.iat * 1000 > Date.now() + TOKEN_CLOCK_SKEW_MS) {
    throw unauthorized(
      'INVALID_TOKEN',
      'the bearer token was issued in the future (iat); check the issuer’s clock',
    );
  }
  if (typeof claims.sub !== 'string' || !SUBJECT.test(claims.sub)) {
    throw unauthorized('INVALID_TOKEN', 'the bearer token has no usable subject (sub)');
  }
  return claims;
}

/** The end of a verified token's life: its `exp` or `iat` + the maximum age, whichever comes first. */
function validUntil(claims: Record<string, unknown>, maxAgeMs: number): number {
  return Math.min((claims.exp as number) * 1000, (claims.iat as number) * 1000 + maxAgeMs);
}

export const authPlugin = fp<{ config: Config }>(async (app: FastifyInstance, { config }) => {
  const { api } = config;
  const common = { clockTolerance: TOKEN_CLOCK_SKEW_MS, allowedAud: api.jwtAudience, cache: false };
  const customerVerifier =
    api.jwtSecret === ''
      ? null
      : createVerifier({
          ...common,
          key: api.jwtSecret,
          algorithms: ['HS256'],
          allowedIss: api.jwtIssuer,
          requiredClaims: ['sub', 'iat', 'exp'],
          maxAge: api.jwtMaxAgeMs,
        });
  const staffVerifiers = new Map(
    api.staffJwtKeys.map((key) => [
      key.kid,
      createVerifier({
        ...common,
        key: key.pem,
        algorithms: [key.alg],
        allowedIss: api.staffJwtIssuer,
        requiredClaims: ['sub', 'iat', 'exp', 'role'],
        maxAge: api.staffJwtMaxAgeMs,
      }),
    ]),
  );
  const decode = createDecoder({ complete: true });
  const keyHashes = api.adminApiKeyHashes.map((h) => Buffer.from(h, 'hex'));

  function fromToken(token: string): VerifiedToken {
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      ({ header, payload } = decode(token) as {
        header: Record<string, unknown>;
        payload: Record<string, unknown>;
      });
    } catch {
      throw unauthorized('INVALID_TOKEN', 'the bearer token is not valid');
    }
    // The issuer only picks the key; the signature and every claim are checked by that key's verifier.
    if (payload.iss === api.staffJwtIssuer) {
      const verify = typeof header.kid === 'string' ? staffVerifiers.get(header.kid) : undefined;
      if (!verify) {
        throw unauthorized(
          'INVALID_TOKEN',
          'the staff token is signed with a key this API does not know (kid)',
        );
      }
      const claims = verified(verify, token, payload, api.staffJwtMaxAgeMs);
      if (!isStaffRole(claims.role)) {
        throw unauthorized('INVALID_TOKEN', 'the staff token’s role must be admin, ops or support');
      }
      return {
        principal: { kind: 'staff', staffId: claims.sub as string, role: claims.role },
        validUntilMs: validUntil(claims, api.staffJwtMaxAgeMs),
      };
    }
    if (!customerVerifier) {
      throw unauthorized('INVALID_TOKEN', 'customer tokens are not accepted: WAYBILL_JWT_SECRET is not set');
    }
    const claims = verified(customerVerifier, token, payload, api.jwtMaxAgeMs);
    // A role in a customer token is an attempt to use the customers' key for staff rights.
    if (claims.role !== undefined) {
      throw unauthorized(
        'INVALID_TOKEN',
        'a customer token carries no role; staff tokens come from the staff issuer',
      );
    }
    return {
      principal: { kind: 'customer', customerId: claims.sub as string },
      validUntilMs: validUntil(claims, api.jwtMaxAgeMs),
    };
  }

  // Insertion order is age: when full, the oldest entry goes.
  const kept = new Map<string, VerifiedToken>();
  /** The principal of an `Authorization: Bearer <JWT>` header, verified (see {@link VERIFIED_TOKENS_KEPT}). */
  function bearerPrincipal(authorization: string): Principal {
    const hit = kept.get(authorization);
    if (hit !== undefined && Date.now() < hit.validUntilMs) return hit.principal;
    // The scheme in any case (RFC 9110: auth schemes are case-insensitive); the flag widens
    // nothing else, the token's characters already include both cases. A kept header, the
    // common case, never reaches this.
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i.exec(authorization);
    if (!match) {
      throw unauthorized('INVALID_TOKEN', 'the Authorization header must be "Bearer <JWT>"');
    }
    const fresh = fromToken(match[1]!);
    if (hit !== undefined) kept.delete(authorization);
    else if (kept.size >= VERIFIED_TOKENS_KEPT) kept.delete(kept.keys().next().value!);
    kept.set(authorization, fresh);
    return fresh.principal;
  }

  function credentials(request: FastifyRequest): Principal {
    const apiKey = request.headers['x-api-key'];
    const authorization = request.headers.authorization;
    if (apiKey !== undefined && authorization !== undefined) {
      throw new ApiError(400, 'AMBIGUOUS_CREDENTIALS', 'send either x-api-key or Authorization, not both');
    }
    if (apiKey !== undefined) {
      if (typeof apiKey !== 'string' || apiKey.length > 256) {
        throw unauthorized('INVALID_API_KEY', 'x-api-key must be one key of at most 256 characters');
      }
      return adminFromKey(apiKey, keyHashes);
    }
    return authorization === undefined ? GUEST : bearerPrincipal(authorization);
  }

  app.decorateRequest('principal', null as never);
  // A callback hook, not an async one: no promise per request (a throw answers with the error).
  app.addHook('onRequest', (request, _reply, done) => {
    request.principal = credentials(request);
    done();
  });
});

/** Who a route lets in; the OpenAPI document's security requirements are derived from it. */
export type Access =
  /** Staff holding the permission. */
  | { kind: 'staff'; permission: Permission }
  /** A customer (routes then show only their own data), or staff holding the permission. */
  | { kind: 'signed-in'; permission: Permission };

const guards = new WeakMap<object, Access>();

function guard(access: Access): onRequestHookHandler {
  // A callback hook (no promise per request); a throw answers with the error.
  const hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const { principal } = request;
    if (principal.kind === 'guest') {
      void reply.header('www-authenticate', 'Bearer');
      throw unauthorized(
        'AUTH_REQUIRED',
        access.kind === 'staff'
          ? 'send a staff bearer token or an x-api-key'
          : 'send a bearer token (Authorization: Bearer <JWT>)',
      );
    }
    if (principal.kind === 'customer') {
      if (access.kind !== 'signed-in') throw new ApiError(403, 'FORBIDDEN', 'this route is for staff');
    } else if (!can(principal.role, access.permission)) {
      throw new ApiError(
        403,
        'FORBIDDEN',
        `role ${principal.role} lacks ${access.permission}; it takes ${rolesWith(access.permission).join(' or ')}`,
      );
    }
    done();
  };
  guards.set(hook, access);
  return hook;
}

const staffGuards = new Map<Permission, onRequestHookHandler>();

/** Route onRequest hook (credentials before validation): staff holding `permission`. */
export function requireStaff(permission: Permission): onRequestHookHandler {
  let hook = staffGuards.get(permission);
  if (!hook) {
    hook = guard({ kind: 'staff', permission });
    staffGuards.set(permission, hook);
  }
  return hook;
}

/** Route onRequest hook: a customer (their own orders) or staff who may read any order. */
export const requireSignedIn = guard({ kind: 'signed-in', permission: Permission.READ_ORDERS });

/** The access rule of a route's onRequest hooks; null for routes open to anyone (or signed otherwise, e.g. webhooks). */
export function accessOf(onRequest: unknown): Access | null {
  for (const hook of [onRequest].flat()) {
    const access = typeof hook === 'function' ? guards.get(hook) : undefined;
    if (access) return access;
  }
  return null;
}

/** The audit-log name of whoever is calling, e.g. `admin:alice`, `support:sam`, `customer:cus_1`. */
export function actorOf(principal: Principal): string {
  switch (principal.kind) {
    case 'staff':
      return `${principal.role}:${principal.staffId}`;
    case 'customer':
      return `customer:${principal.customerId}`;
    default:
      return 'guest';
  }
}
