/**
 * Bearer tokens the API accepts (HS256 over the configured secret). The shop's own login
 * normally issues them; `npm run token` mints one for development and the tests use the same code.
 */
import { createSigner } from 'fast-jwt';
import type { TokenClaims } from './auth';

export function signToken(secret: string, claims: TokenClaims, expiresInMs = 60 * 60 * 1000): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: expiresInMs });
  return sign({ ...claims });
}
