/**
 * EasyParcel's access tokens and authorised calls, for the adapter in easyparcel.ts. Tokens
 * come from EasyParcel's OAuth token endpoint with the refresh token an operator obtained
 * once through the authorisation-code flow; one token is kept, refreshed a little before
 * expiry and once more on a 401.
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
import { CourierRefusal } from './types';

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
}

/** The adapter's session: `authorised(path, payload)` makes a bearer call to the API. */
export function easyParcelSession(opts: EasyParcelSessionOptions): {
  authorised: (path: string, payload: unknown) => Promise<HttpAnswer>;
} {
  const { ctx, root, api, now } = opts;

  let cached: { token: string; refreshAt: number } | null = null;
  /** The refresh token in use: EasyParcel may hand a new one back with each access token. */
  let refreshToken = opts.refreshToken;
  /** One token request at a time: concurrent calls wait for the same answer. */
  let fetching: Promise<string> | null = null;

  /**
   * A new access token from the refresh token (OAuth `refresh_token` grant, client id and
   * secret as HTTP Basic, form-encoded, as EasyParcel's own CLI sends it).
   */
  async function requestToken(): Promise<string> {
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
    if (isObject(body) && typeof body.refresh_token === 'string' && body.refresh_token !== '') {
      refreshToken = body.refresh_token;
    }
    const expiresIn = isObject(body) ? Number(body.expires_in) : NaN;
    // expires_in is in seconds; without a usable one, assume a short life rather than a long one.
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : 300_000;
    // Refresh shortly before expiry (a minute, or a tenth of a short lifetime), so a call
    // never leaves with a token that dies in flight.
    const marginMs = Math.min(60_000, lifetimeMs / 10);
    cached = { token, refreshAt: now() + lifetimeMs - marginMs };
    return token;
  }

  async function accessToken(): Promise<string> {
    if (cached && now() < cached.refreshAt) return cached.token;
    fetching ??= requestToken().finally(() => {
      fetching = null;
    });
    return fetching;
  }

  /**
   * A bearer call to `/open_api/<version><path>`. A 401 means the token died early (revoked,
   * server restarted): fetch a new one and try once more. A second 401 with a fresh token is
   * a real refusal.
   */
  async function authorised(path: string, payload: unknown): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      const token = await accessToken();
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
