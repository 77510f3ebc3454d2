/**
 * The saga benchmark's shop (bench/saga.ts): one order placed through POST /v1/orders as a
 * shopper would, and the durable timestamps of placed orders read back from Postgres.
 */
import { sql } from 'kysely';
import type { ProcessStack } from './stack';

const SKUS = ['KETTLE-1L', 'MUG-SET-4', 'TEA-SAMPLER', 'TRIVET-OAK'];
const REQUEST_TIMEOUT_MS = 30_000;

/** One benchmark run: its stack, the shopper's token, the run's id (in every idempotency key). */
export interface Run {
  stack: ProcessStack;
  token: string;
  runId: string;
  serverPid: number | null;
  /** The real server's own Postgres (null on the dev server, whose SQLite is in its process). */
  serverDbPid: number | null;
  say: (line: string) => void;
}

export interface Placed {
  /** Epoch ms the request was sent. */
  sentAt: number;
  /** HTTP status; 0 when no answer came. */
  status: number;
  apiMs: number;
  orderId: string | null;
  /** The error code and message of an answer other than 202. */
  error?: string;
}

export async function placeOrder(
  stack: ProcessStack,
  token: string,
  key: string,
  n: number,
): Promise<Placed> {
  const sentAt = Date.now();
  const t0 = performance.now();
  try {
    const res = await fetch(`${stack.apiUrl}/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify({
        email: `saga${n}@example.com`,
        shippingAddress: {
          name: `Saga Shopper ${n} [scenario:delivered]`,
          line1: `${n} Jalan Ampang`,
          city: 'Kuala Lumpur',
          postcode: '50450',
          country: 'MY',
        },
        lines: [{ sku: SKUS[n % SKUS.length]!, quantity: 1 }],
        payment: { token: 'tok_visa' },
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => null)) as {
      orderId?: string;
      error?: { code: string; message: string };
    } | null;
    return {
      sentAt,
      status: res.status,
      apiMs: performance.now() - t0,
      orderId: body?.orderId ?? null,
      ...(body?.error ? { error: `${body.error.code}: ${body.error.message}` } : {}),
    };
  } catch {
    return { sentAt, status: 0, apiMs: performance.now() - t0, orderId: null };
  }
}

export interface Timeline {
  orderId: string;
  status: string;
  createdAt: number;
  bookedAt: number | null;
  confirmedAt: number | null;
}

/** Each order's durable timestamps (epoch ms, Postgres clock). */
export async function timelines(stack: ProcessStack, orderIds: string[]): Promise<Timeline[]> {
  if (orderIds.length === 0) return [];
  const { rows } = await sql<Timeline>`
    select o.id as "orderId", o.status,
           (extract(epoch from o.created_at) * 1000)::float8 as "createdAt",
           (select (extract(epoch from min(s.created_at)) * 1000)::float8
              from shipments s where s.order_id = o.id) as "bookedAt",
           (select (extract(epoch from min(n.created_at)) * 1000)::float8
              from notifications n where n.order_id = o.id and n.kind = 'confirmed') as "confirmedAt"
    from orders o where o.id = any(${orderIds})`.execute(stack.db);
  return rows;
}
