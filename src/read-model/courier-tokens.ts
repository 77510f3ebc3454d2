/**
 * A courier account's OAuth token pair in Postgres (`courier_tokens`), shared by every worker:
 * EasyParcel rotates refresh tokens, so one refresh spends the token every other worker holds.
 * A refresh runs inside a transaction holding the account's row lock (`SELECT … FOR UPDATE`):
 * one worker refreshes, the others wait on the lock and then find the pair it stored. The token
 * request is made while the lock is held, so the wait is at most one token request (its
 * timeout, after its wait for the courier's next request slot: up to 4 s,
 * src/activities/courier-budget.ts); a failed refresh rolls back and leaves the stored pair as
 * it was. The adapter seals the tokens before they reach this store (`sealedTokenStore` in
 * src/couriers/easyparcel-auth.ts), and the configured refresh token is kept as its digest only.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import type { TokenPair, TokenStore } from '../couriers/easyparcel-auth';

interface Row {
  configured_refresh_token: string;
  refresh_token: string;
  access_token: string | null;
  refresh_at: Date | null;
}

/**
 * What the row keeps of the configured refresh token: its SHA-256, enough to tell that another
 * one was configured since, and no token text. Rows written before kept the token itself.
 */
const digestOf = (configured: string) => `sha256:${createHash('sha256').update(configured).digest('hex')}`;

/**
 * The pair of a row; a refresh token configured since the row was written (the operator
 * authorised the app again) starts a fresh pair.
 */
function pairOf(row: Row | undefined, configured: string): TokenPair | null {
  if (!row) return null;
  const kept = row.configured_refresh_token;
  if (kept !== digestOf(configured) && kept !== configured)
    return { accessToken: null, refreshAt: null, refreshToken: configured };
  return {
    accessToken: row.access_token,
    refreshAt: row.refresh_at?.getTime() ?? null,
    refreshToken: row.refresh_token,
  };
}

/** The Postgres token store of `courier`'s account, starting from the configured refresh token. */
export function postgresTokenStore(
  db: Kysely<Database>,
  courier: string,
  configuredRefreshToken: string,
): TokenStore {
  const columns = ['configured_refresh_token', 'refresh_token', 'access_token', 'refresh_at'] as const;
  return {
    async current() {
      const row = await db
        .selectFrom('courier_tokens')
        .select(columns)
        .where('courier', '=', courier)
        .executeTakeFirst();
      return pairOf(row, configuredRefreshToken);
    },

    async refreshing(refresh) {
      return db.transaction().execute(async (trx) => {
        await trx
          .insertInto('courier_tokens')
          // A placeholder, overwritten below in this transaction: the configured token starts the pair.
          .values({ courier, configured_refresh_token: '', refresh_token: '' })
          .onConflict((oc) => oc.column('courier').doNothing())
          .execute();
        const row = await trx
          .selectFrom('courier_tokens')
          .select(columns)
          .where('courier', '=', courier)
          .forUpdate()
          .executeTakeFirstOrThrow();
        const next = await refresh(pairOf(row, configuredRefreshToken)!);
        await trx
          .updateTable('courier_tokens')
          .set({
            configured_refresh_token: digestOf(configuredRefreshToken),
            refresh_token: next.refreshToken,
            access_token: next.accessToken,
            refresh_at: next.refreshAt === null ? null : new Date(next.refreshAt),
            updated_at: new Date(),
          })
          .where('courier', '=', courier)
          .execute();
        return next;
      });
    },
  };
}
