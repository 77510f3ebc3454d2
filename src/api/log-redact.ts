/**
 * What the API's request log says about a request. Fastify logs `req.url` whole, query
 * included, and one route takes its credential there (EasyParcel's webhooks authenticate by
 * `?token=`, the only thing EasyParcel can send): the value of every query parameter named
 * below is replaced before the line is written, so logs never carry a credential.
 */
import type { FastifyRequest } from 'fastify';

const SECRET_QUERY_PARAMS = ['token', 'access_token', 'api_key', 'apikey', 'key', 'secret', 'signature'];
const SECRET_QUERY = new RegExp(`([?&](?:${SECRET_QUERY_PARAMS.join('|')})=)[^&#]*`, 'gi');

export const REDACTED = '[redacted]';

/** `url` with the values of secret query parameters replaced. */
export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY, `$1${REDACTED}`) : url;
}

/** Fastify's request serializer (method, url, host, remote address), with the url redacted. */
export function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
