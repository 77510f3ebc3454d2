/**
 * How a customer notification leaves Waybill: the log transport (a structured log line,
 * the default), or an outbound webhook to the shop's own system, signed with HMAC-SHA256
 * so the receiver can trust it. The receiver dedupes by `x-waybill-event-id` (the
 * notification's dedupe key): a retried delivery carries the same id.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../logger';

export interface NotificationMessage {
  eventId: string;
  kind: string;
  recipient: string;
  payload: Record<string, unknown>;
}

export interface NotificationTransport {
  readonly channel: 'log' | 'webhook';
  send(message: NotificationMessage): Promise<void>;
}

/** The endpoint refused the message for good (a 4xx other than 408 / 429): not retried. */
export class NotificationRejectedError extends Error {
  override name = 'NotificationRejectedError';
}

/**
 * `sha256=<hex>` over `<timestamp>.<raw body>`: what a receiver recomputes with the shared
 * secret. The same recipe signs our outbound webhooks and verifies couriers' pushes; a
 * received body is passed as the bytes that arrived (a string is signed as its UTF-8).
 */
export function signWebhook(secret: string, timestamp: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * An e-mail address as logs may show it: the first character of the local part and the
 * domain (`a***@example.com`), enough to tell two customers apart in a support case, not
 * enough to write to them. Anything else is fully masked.
 */
export function maskRecipient(recipient: string): string {
  const at = recipient.lastIndexOf('@');
  if (at < 1 || at === recipient.length - 1) return '***';
  return `${recipient[0]}***${recipient.slice(at)}`;
}

/**
 * Logs the notification, never the address (logs are kept and shipped further than the
 * database row that holds it): the notification id finds the row, the masked address tells
 * a support case which customer it was.
 */
export function createLogTransport(log: Logger): NotificationTransport {
  return {
    channel: 'log',
    async send(message) {
      log.info(
        {
          notification: {
            eventId: message.eventId,
            kind: message.kind,
            recipient: maskRecipient(message.recipient),
            payload: message.payload,
          },
        },
        `notify ${message.eventId}: ${message.kind}`,
      );
    },
  };
}

/**
 * POSTs a JSON body signed as docs/security.md describes (`x-waybill-signature` over
 * `<timestamp>.<body>`, `x-waybill-event-id` for the receiver to dedupe); answers the
 * receiver's HTTP status. Throws when the receiver cannot be reached in time.
 */
export async function postSigned(opts: {
  url: string;
  secret: string;
  eventId: string;
  body: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  now?: () => number;
}): Promise<number> {
  const timestamp = String(Math.floor((opts.now ?? Date.now)() / 1000));
  try {
    const response = await fetch(opts.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...opts.headers,
        'x-waybill-event-id': opts.eventId,
        'x-waybill-timestamp': timestamp,
        'x-waybill-signature': signWebhook(opts.secret, timestamp, opts.body),
      },
      body: opts.body,
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    // The answer's body is not read: drop it so the connection goes back to the pool.
    await response.body?.cancel().catch(() => undefined);
    return response.status;
  } catch (err) {
    throw new Error(`unreachable: ${(err as Error).message}`);
  }
}

export function createWebhookTransport(opts: {
  url: string;
  secret: string;
  timeoutMs?: number;
  now?: () => number;
}): NotificationTransport {
  return {
    channel: 'webhook',
    async send(message) {
      let status: number;
      try {
        status = await postSigned({
          url: opts.url,
          secret: opts.secret,
          eventId: message.eventId,
          body: JSON.stringify(message),
          timeoutMs: opts.timeoutMs ?? 10_000,
          ...(opts.now ? { now: opts.now } : {}),
        });
      } catch (err) {
        throw new Error(`notification webhook ${(err as Error).message}`);
      }
      if (status < 200 || status >= 300) {
        const message = `notification webhook answered ${status}`;
        // A 4xx says the shop's endpoint will not take this message as sent: resending the
        // same bytes cannot help. 408 and 429 are "later", like a 5xx.
        const final = status >= 400 && status < 500 && ![408, 429].includes(status);
        throw final ? new NotificationRejectedError(message) : new Error(message);
      }
    },
  };
}
