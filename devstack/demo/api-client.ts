/**
 * The demo's HTTP client: the API as a shop's front end calls it, with a customer token,
 * retrying what a front end would retry (429 and 503, with the same idempotency key).
 */
import { sleep } from './settings';

// ---------------------------------------------------------------------------------------
// The API, as a shop's front end calls it

/** What the demo reads of `GET /v1/orders/:orderId`. */
export interface OrderRead {
  status: string;
  failure: { code: string; message: string } | null;
  totalAmount: number;
  shipments: { shipmentId: string; trackingNumber: string; status: string }[];
  payment: { status: string; amountCaptured: number; amountRefunded: number } | null;
}
/** What the demo reads of `GET /v1/orders/:orderId/tracking`. */
export interface TrackingRead {
  shipments: { shipmentId: string; dataSource: { unavailable: boolean }; events: { status: string }[] }[];
}
interface Answer<T = unknown> {
  status: number;
  body: T;
  code: string | null;
}

export class ApiClient {
  /** Requests per minute the API allows this client (from its rate-limit headers), once known. */
  rateLimitPerMinute: number | null = null;

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<T>(
    method: 'GET' | 'POST',
    url: string,
    opts: { body?: unknown; key?: string } = {},
  ): Promise<Answer<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(`${this.baseUrl}${url}`, {
          method,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(opts.key ? { 'idempotency-key': opts.key } : {}),
          },
          ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
          signal: AbortSignal.timeout(15_000),
        });
        const limit = Number(res.headers.get('ratelimit-limit'));
        if (limit > 0) this.rateLimitPerMinute = limit;
        const text = await res.text();
        const body = (text ? JSON.parse(text) : null) as T & { error?: { code?: string } };
        // Rate limited, or Postgres/Temporal briefly unavailable: ask again (a POST with the same
        // idempotency key, so never a second order).
        if ((res.status === 429 || res.status === 503) && attempt < 5) {
          await sleep(Number(res.headers.get('retry-after') ?? 2) * 1000);
          continue;
        }
        return { status: res.status, body, code: body?.error?.code ?? null };
      } catch (err) {
        if (attempt >= 3) throw err;
        await sleep(1_000 * attempt);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// One order through the run
