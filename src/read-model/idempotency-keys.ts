/**
 * The API's `Idempotency-Key`s (`api_idempotency_keys`): one row per scope and key, holding
 * the request's hash, the resource id it reserved, a lock while its request runs and the
 * final response once done. The API decides what a claim means (src/api/idempotency.ts);
 * these functions run its statements, on `db` or in its transaction.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/database';

export interface KeyRef {
  scope: string;
  key: string;
}

/** The key's lock, `ms` from the database's now. */
const lockFor = (ms: number) => sql<Date>`now() + ${`${ms} milliseconds`}::interval`;

/** Inserts the key, locked for `lockMs`; false when it exists already (nothing written). */
export async function insertKey(
  db: Kysely<Database>,
  opts: KeyRef & { hash: string; resourceId: string; lockMs: number },
): Promise<boolean> {
  const inserted = await db
    .insertInto('api_idempotency_keys')
    .values({
      scope: opts.scope,
      key: opts.key,
      request_hash: opts.hash,
      state: 'IN_PROGRESS',
      response_status: null,
      response_body: null,
      resource_id: opts.resourceId,
      locked_until: lockFor(opts.lockMs),
    })
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .returning('resource_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** The key's row, locked for update (run it in a transaction), with whether its lock still holds. */
export async function lockKeyRow(db: Kysely<Database>, ref: KeyRef) {
  return db
    .selectFrom('api_idempotency_keys')
    .select([
      'request_hash',
      'state',
      'response_status',
      'response_body',
      'resource_id',
      sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'),
    ])
    .where('scope', '=', ref.scope)
    .where('key', '=', ref.key)
    .forUpdate()
    .executeTakeFirstOrThrow();
}

/** Locks the key again for `lockMs` (a retry taking over a dead or released attempt). */
export async function relockKey(db: Kysely<Database>, ref: KeyRef & { lockMs: number }): Promise<void> {
  await db
    .updateTable('api_idempotency_keys')
    .set({ locked_until: lockFor(ref.lockMs) })
    .where('scope', '=', ref.scope)
    .where('key', '=', ref.key)
    .execute();
}

/** Stores the final response: later requests with this key replay it. */
export async function completeKey(
  db: Kysely<Database>,
  opts: KeyRef & { status: number; body: unknown },
): Promise<void> {
  await db
    .updateTable('api_idempotency_keys')
    .set({
      state: 'DONE',
      response_status: opts.status,
      response_body: JSON.stringify(opts.body),
      locked_until: null,
    })
    .where('scope', '=', opts.scope)
    .where('key', '=', opts.key)
    .execute();
}

/** Lets the next retry take over at once (the request failed on an outage, not on its input). */
export async function releaseKey(db: Kysely<Database>, ref: KeyRef): Promise<void> {
  await db
    .updateTable('api_idempotency_keys')
    .set({ locked_until: null })
    .where('scope', '=', ref.scope)
    .where('key', '=', ref.key)
    .where('state', '=', 'IN_PROGRESS')
    .execute();
}
