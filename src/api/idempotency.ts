/**
 * `Idempotency-Key` for creating requests, kept in `api_idempotency_keys`:
 * - same key + same body → the first response, replayed;
 * - same key + another body → 422;
 * - same key while the first request is still running → 409;
 * - a request that died half-way (its lock expired) or hit an outage (lock released) is
 *   taken over by its retry, which reuses the resource id the first attempt reserved, so
 *   a retry never creates a second order.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { completeKey, insertKey, lockKeyRow, relockKey, releaseKey } from '../read-model/idempotency-keys';
import { ApiError } from './errors';

/** How long a request holds its key before a retry may take it over (ms). */
const LOCK_MS = 30_000;

export type KeyClaim =
  { kind: 'owner'; resourceId: string } | { kind: 'replay'; status: number; body: unknown };

/** A stable hash of a JSON body: key order does not matter. */
export function requestHash(body: unknown): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
          )
        : value;
  return createHash('sha256')
    .update(JSON.stringify(canonical(body)))
    .digest('hex');
}

/**
 * Claims the key for this request. Returns the resource id to create (fresh, or the one a
 * dead attempt reserved), or the stored response to replay; throws 409/422 otherwise.
 */
export async function claimKey(
  db: Kysely<Database>,
  opts: { scope: string; key: string; hash: string; newResourceId: string },
): Promise<KeyClaim> {
  return db.transaction().execute(async (trx) => {
    const ref = { scope: opts.scope, key: opts.key };
    const inserted = await insertKey(trx, {
      ...ref,
      hash: opts.hash,
      resourceId: opts.newResourceId,
      lockMs: LOCK_MS,
    });
    if (inserted) return { kind: 'owner', resourceId: opts.newResourceId };

    const existing = await lockKeyRow(trx, ref);
    if (existing.request_hash !== opts.hash) {
      throw new ApiError(
        422,
        'IDEMPOTENCY_KEY_REUSED',
        'this Idempotency-Key was used with a different request body; use a new key for a new request',
      );
    }
    if (existing.state === 'DONE') {
      return { kind: 'replay', status: existing.response_status!, body: existing.response_body };
    }
    if (existing.locked) {
      throw new ApiError(
        409,
        'IDEMPOTENCY_KEY_IN_USE',
        'a request with this Idempotency-Key is still being processed; retry in a few seconds',
      );
    }
    await relockKey(trx, { ...ref, lockMs: LOCK_MS });
    return { kind: 'owner', resourceId: existing.resource_id ?? opts.newResourceId };
  });
}

/**
 * Runs `apply` once per key for a change that answers 200: the same key and request again
 * answer the stored result (`replayed`, with its status), another request 422, one still
 * running 409 (see claimKey). An error releases the key (a change that failed applied
 * nothing, so its retry runs again) unless `settles` turns it into this key's answer (a
 * refusal a repeat should get again): then that answer is stored and the error rethrown.
 */
export async function oncePerKey<T>(
  db: Kysely<Database>,
  opts: {
    scope: string;
    key: string;
    request: unknown;
    /** The resource the key stands for, when there is one (default: the key). */
    resourceId?: string;
    settles?: (err: unknown) => Promise<{ status: number; body: unknown } | null>;
  },
  apply: () => Promise<T>,
): Promise<{ replayed: false; status: 200; body: T } | { replayed: true; status: number; body: T }> {
  const { scope, key } = opts;
  const claim = await claimKey(db, {
    scope,
    key,
    hash: requestHash(opts.request),
    newResourceId: opts.resourceId ?? key,
  });
  if (claim.kind === 'replay') return { replayed: true, status: claim.status, body: claim.body as T };
  try {
    const body = await apply();
    await completeKey(db, { scope, key, status: 200, body });
    return { replayed: false, status: 200, body };
  } catch (e) {
    const answer = opts.settles ? await opts.settles(e) : null;
    if (answer) await completeKey(db, { scope, key, ...answer });
    else await releaseKey(db, { scope, key }).catch(() => undefined);
    throw e;
  }
}
