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

export function createWebhookTransport(opts: {
  url: string;
  secret: string;
  timeoutMs?: number;
  now?: () => number;
}): NotificationTransport {
  const now = opts.now ?? Date.now;
  return {
    channel: 'webhook',
    async send(message) {
      const body = JSON.stringify(message);
      const timestamp = String(Math.floor(now() / 1000));
      let response: Response;
      try {
        response = await fetch(opts.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-waybill-event-id': message.eventId,
            'x-waybill-timestamp': timestamp,
            'x-waybill-signature': signWebhook(opts.secret, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
      } catch (err) {
        throw new Error(`notification webhook unreachable: ${(err as Error).message}`);
      }
      if (!response.ok) {
        const message = `notification webhook answered ${response.status}`;
        // A 4xx says the shop's endpoint will not take this message as sent: resending the
        // same bytes cannot help. 408 and 429 are "later", like a 5xx.
        const final =
          response.status >= 400 && response.status < 500 && ![408, 429].includes(response.status);
        throw final ? new NotificationRejectedError(message) : new Error(message);
      }
    },
  };
}
