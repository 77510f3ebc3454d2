/**
 * Who is calling. Every request gets a {@link Principal} from its credentials:
 * - `Authorization: Bearer <JWT>` (HS256, config secret): `sub` is the customer id, or the
 *   admin's id when the token carries `role: "admin"`;
 * - `x-api-key: <key>`: an admin whose key's SHA-256 is in config;
 * - nothing: a guest.
 * Credentials that are present but wrong answer 401 on every route (never silently a
 * guest). Routes then say what they need with {@link requireAdmin} / {@link requireSignedIn}.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import jwt from '@fastify/jwt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config';
import { ApiError } from './errors';

export type Principal =
  { kind: 'customer'; customerId: string } | { kind: 'admin'; adminId: string } | { kind: 'guest' };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** Subjects are ids, not free text: they end up in audit rows and search attributes. */
const SUBJECT = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** What a token carries. `exp` is checked when present; tokens without one do not expire. */
export interface TokenClaims {
  sub: string;
  role?: 'admin';
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
  return { kind: 'admin', adminId: `key:${match.toString('hex').slice(0, 12)}` };
}

export const authPlugin = fp<{ config: Config }>(async (app: FastifyInstance, { config }) => {
  await app.register(jwt, {
    secret: config.api.jwtSecret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] },
  });
  const keyHashes = config.api.adminApiKeyHashes.map((h) => Buffer.from(h, 'hex'));

  app.decorateRequest('principal', null as never);
  app.addHook('onRequest', async (request) => {
    const apiKey = request.headers['x-api-key'];
    const authorization = request.headers.authorization;
    if (apiKey !== undefined && authorization !== undefined) {
      throw new ApiError(400, 'AMBIGUOUS_CREDENTIALS', 'send either x-api-key or Authorization, not both');
    }
    if (apiKey !== undefined) {
      if (typeof apiKey !== 'string' || apiKey.length > 256) {
        throw unauthorized('INVALID_API_KEY', 'x-api-key must be one key of at most 256 characters');
      }
      request.principal = adminFromKey(apiKey, keyHashes);
      return;
    }
    if (authorization === undefined) {
      request.principal = { kind: 'guest' };
      return;
    }
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization);
    if (!match) {
      throw unauthorized('INVALID_TOKEN', 'the Authorization header must be "Bearer <JWT>"');
    }
    let claims: Partial<TokenClaims> & Record<string, unknown>;
    try {
      claims = app.jwt.verify(match[1]!);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw unauthorized(
        'INVALID_TOKEN',
        code === 'FAST_JWT_EXPIRED' ? 'the bearer token has expired' : 'the bearer token is not valid',
      );
    }
    if (typeof claims.sub !== 'string' || !SUBJECT.test(claims.sub)) {
      throw unauthorized('INVALID_TOKEN', 'the bearer token has no usable subject (sub)');
    }
    request.principal =
      claims.role === 'admin'
        ? { kind: 'admin', adminId: claims.sub }
        : { kind: 'customer', customerId: claims.sub };
  });
});

/** Route onRequest hook (credentials before validation): admins only. A signed-in customer gets 403; nobody signed in gets 401. */
export async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.principal.kind === 'admin') return;
  if (request.principal.kind === 'customer') {
    throw new ApiError(403, 'FORBIDDEN', 'this route is for admins');
  }
  void reply.header('www-authenticate', 'Bearer');
  throw unauthorized('AUTH_REQUIRED', 'send an admin bearer token or an x-api-key');
}

/** Route onRequest hook: a customer or an admin (admins can read any order, e.g. for support). */
export async function requireSignedIn(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.principal.kind !== 'guest') return;
  void reply.header('www-authenticate', 'Bearer');
  throw unauthorized('AUTH_REQUIRED', 'send a bearer token (Authorization: Bearer <JWT>)');
}

/** The audit-log name of whoever is calling. */
export function actorOf(principal: Principal): string {
  switch (principal.kind) {
    case 'admin':
      return `admin:${principal.adminId}`;
    case 'customer':
      return `customer:${principal.customerId}`;
    default:
      return 'guest';
  }
}
