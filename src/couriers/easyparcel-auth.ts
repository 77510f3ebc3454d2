/**
 * EasyParcel's access tokens and authorised calls, for the adapter in easyparcel.ts. Tokens
 * come from EasyParcel's OAuth token endpoint with the refresh token an operator obtained
 * once through the authorisation-code flow; one token is kept, refreshed a little before
 * expiry and once more on a 401.
 *
 * EasyParcel rotates refresh tokens: each refresh answers a new one, and the one used is spent.
 * Several workers each keeping their own in memory would spend each other's, so the pair lives
 * in a {@link TokenStore} they share (Postgres: src/read-model/courier-tokens.ts), and a refresh
 * runs under the store's lock: one worker refreshes, the others take the token it stored.
 */
import {
  bodySnippet,
  courierRequest,
  isObject,
  parseJson,
  rejected,
  statusError,
  unavailable,
  type HttpAnswer,
  type HttpContext,
} from './http';
import type { TextSealer } from '../codec/sealed-text';
import { CourierRefusal } from './types';

/** An access token and the refresh token that comes with it; times in ms since the epoch. */
export interface TokenPair {
  accessToken: string | null;
  /** When the access token should be refreshed (a little before it expires). */
  refreshAt: number | null;
  refreshToken: string;
}

/** Where the token pair is kept, shared by every adapter that speaks for the same account. */
export interface TokenStore {
  /** The pair stored now; null before the first refresh. */
  current(): Promise<TokenPair | null>;
  /**
   * Runs `refresh` on the stored pair (the configured refresh token before any) while holding
   * the store's lock, stores what it returns and gives it back. Another worker's `refreshing`
   * waits for the lock and then sees the new pair.
   */
  refreshing(refresh: (stored: TokenPair) => Promise<TokenPair>): Promise<TokenPair>;
}

/** A store in this process only (one worker, or tests): the configured refresh token to start. */
export function memoryTokenStore(refreshToken: string): TokenStore {
  let pair: TokenPair = { accessToken: null, refreshAt: null, refreshToken };
  let queue: Promise<unknown> = Promise.resolve();
  return {
    current: async () => pair,
    refreshing(refresh) {
      const run = queue.then(async () => (pair = await refresh(pair)));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

/**
 * `store` with the pair sealed at rest (src/codec/sealed-text.ts): the store keeps ciphertext,
 * the session sees tokens. A pair written before sealing, or sealed with a key that is no
 * longer the active one, is not handed out as it is: `current` answers none, so the session
 * takes the store's lock, finds the pair still usable (no token request) and it is written back
 * sealed with the active key.
 */
export function sealedTokenStore(store: TokenStore, sealer: TextSealer): TokenStore {
  const current = (pair: TokenPair) =>
    sealer.isCurrent(pair.refreshToken) && (pair.accessToken === null || sealer.isCurrent(pair.accessToken));
  const open = async (pair: TokenPair): Promise<TokenPair> => ({
    ...pair,
    refreshToken: await sealer.open(pair.refreshToken),
    accessToken: pair.accessToken === null ? null : await sealer.open(pair.accessToken),
  });
  const seal = async (pair: TokenPair): Promise<TokenPair> => ({
    ...pair,
    refreshToken: await sealer.seal(pair.refreshToken),
    accessToken: pair.accessToken === null ? null : await sealer.seal(pair.accessToken),
  });
  return {
    async current() {
      const pair = await store.current();
      return pair === null || !current(pair) ? null : open(pair);
    },
    async refreshing(refresh) {
      return open(await store.refreshing(async (stored) => seal(await refresh(await open(stored)))));
    },
  };
}

/** What {@link easyParcelSession} needs: the adapter's HTTP context, its URLs and its app's credentials. */
export interface EasyParcelSessionOptions {
  ctx: HttpContext;
  /** EasyParcel's root: the token endpoint is `/oauth/token` under it. */
  root: string;
  /** The API root of the version spoken, `<root>/open_api/<apiVersion>`. */
  api: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  now: () => number;
  /** Where the token pair is shared; default: this process only. */
  tokens?: TokenStore;
}

/** The adapter's session: `authorised(path, payload)` makes a bearer call to the API. */
export function easyParcelSession(opts: EasyParcelSessionOptions): {
  authorised: (path: string, payload: unknown, beforeSend?: () => Promise<void>) => Promise<HttpAnswer>;
} {
  const { ctx, root, api, now } = opts;

  const store = opts.tokens ?? memoryTokenStore(opts.refreshToken);
  /** The access token this process last used, and when to stop using it. */
  let cached: { token: string; refreshAt: number } | null = null;
  /** A token EasyParcel refused (401): never taken from the store again. */
  let refused: string | null = null;
  /** One token request at a time in this process: concurrent calls wait for the same answer. */
  let fetching: Promise<string> | null = null;

  const usable = (pair: TokenPair | null): pair is TokenPair & { accessToken: string; refreshAt: number } =>
    pair !== null &&
    pair.accessToken !== null &&
    pair.accessToken !== refused &&
    pair.refreshAt !== null &&
    now() < pair.refreshAt;

  /**
   * A new access token from the refresh token (OAuth `refresh_token` grant, client id and
   * secret as HTTP Basic, form-encoded, as EasyParcel's own CLI sends it).
   */
  async function requestToken(refreshToken: string): Promise<TokenPair> {
    const basic = Buffer.from(`${opts.clientId}:${opts.clientSecret}`).toString('base64');
    const answer = await courierRequest(ctx, `${root}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    });
    if (answer.status === 429 || answer.status >= 500) throw statusError(ctx, answer, 'the token request');
    if (answer.status < 200 || answer.status >= 300) {
      // A refused refresh (400 invalid grant, 401 bad client) is about our credentials: the app
      // must be authorised again on the EasyParcel account.
      throw statusError(
        ctx,
        answer,
        'the token request',
        'check EASYPARCEL_CLIENT_ID and EASYPARCEL_CLIENT_SECRET, or authorise the app again and set EASYPARCEL_REFRESH_TOKEN',
        CourierRefusal.CREDENTIALS,
      );
    }
    const parsed = parseJson(answer.text);
    // EasyParcel's CLI notes that some answers wrap the payload in `data`.
    const body = isObject(parsed) && isObject(parsed.data) ? parsed.data : parsed;
    const token = isObject(body) ? body.access_token : undefined;
    if (typeof token !== 'string' || token === '') {
      throw unavailable(ctx, 'EasyParcel token answer has no access_token', {
        status: answer.status,
        bodySnippet: bodySnippet(ctx, answer.text),
      });
    }
    const next =
      isObject(body) && typeof body.refresh_token === 'string' && body.refresh_token !== ''
        ? body.refresh_token
        : refreshToken;
    const expiresIn = isObject(body) ? Number(body.expires_in) : NaN;
    // expires_in is in seconds; without a usable one, assume a short life rather than a long one.
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : 300_000;
    // Refresh shortly before expiry (a minute, or a tenth of a short lifetime), so a call
    // never leaves with a token that dies in flight.
    const marginMs = Math.min(60_000, lifetimeMs / 10);
    return { accessToken: token, refreshAt: now() + lifetimeMs - marginMs, refreshToken: next };
  }

  /** A token from the store if another worker stored a usable one, else a refresh under its lock. */
  async function sharedToken(): Promise<string> {
    let pair = await store.current();
    if (!usable(pair)) {
      // Under the lock, look again: the worker that held it may just have refreshed.
      pair = await store.refreshing(async (stored) =>
        usable(stored) ? stored : requestToken(stored.refreshToken),
      );
    }
    if (!usable(pair)) throw unavailable(ctx, 'EasyParcel gave an access token that is already due');
    cached = { token: pair.accessToken, refreshAt: pair.refreshAt };
    return pair.accessToken;
  }

  async function accessToken(): Promise<string> {
    if (cached && now() < cached.refreshAt) return cached.token;
    fetching ??= sharedToken().finally(() => {
      fetching = null;
    });
    return fetching;
  }

  /**
   * A bearer call to `/open_api/<version><path>`. A 401 means the token died early (revoked,
   * server restarted): fetch a new one and try once more. A second 401 with a fresh token is
   * a real refusal. `beforeSend` runs once a token is in hand, right before each send (a
   * booking records there that it is about to go out).
   */
  async function authorised(
    path: string,
    payload: unknown,
    beforeSend?: () => Promise<void>,
  ): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      const token = await accessToken();
      await beforeSend?.();
      const answer = await courierRequest(ctx, `${api}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(payload),
      });
      if (answer.status !== 401) return answer;
      refused = token;
      if (cached?.token === token) cached = null;
      if (attempt >= 2) {
        throw rejected(
          ctx,
          `EasyParcel refused a fresh access token for ${path} (401)`,
          { status: 401, bodySnippet: bodySnippet(ctx, answer.text) },
          CourierRefusal.CREDENTIALS,
        );
      }
    }
  }

  return { authorised };
}
