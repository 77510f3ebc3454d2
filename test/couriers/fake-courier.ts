/**
 * A stand-in for a courier's HTTP API in adapter unit tests: the courier's API is not ours,
 * so its answers are scripted here (fixtures in test/fixtures/couriers) and every request
 * the adapter made is recorded for the test to inspect.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CourierRejectedError, type BookingRequest } from '../../src/couriers/types';

export interface RecordedRequest {
  method: string;
  url: URL;
  headers: Headers;
  /** The JSON body, parsed; the raw text when it is not JSON; null without a body. */
  body: unknown;
}

export type Answer = {
  status?: number;
  body: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
};

/** Answers each request with what `route` returns; a thrown error is a network failure. */
export function fakeCourier(route: (request: RecordedRequest) => Answer | Promise<Answer>): {
  fetch: typeof fetch;
  requests: RecordedRequest[];
} {
  const requests: RecordedRequest[] = [];
  const fake = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const text = typeof init.body === 'string' ? init.body : null;
    let body: unknown = text;
    try {
      body = text === null ? null : JSON.parse(text);
    } catch {
      // keep the text
    }
    const request: RecordedRequest = {
      method: init.method ?? 'GET',
      url: new URL(String(input)),
      headers: new Headers(init.headers),
      body,
    };
    requests.push(request);
    const answer = await route(request);
    return new Response(answer.body, {
      status: answer.status ?? 200,
      headers: { 'content-type': answer.contentType ?? 'application/json', ...answer.headers },
    });
  };
  return { fetch: fake as typeof fetch, requests };
}

/** A fetch that never answers until the adapter's time limit aborts it. */
export function hangingFetch(): typeof fetch {
  return ((_input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((_resolve, reject) => {
      init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
    })) as typeof fetch;
}

/** A fetch whose connection is refused, the way undici reports it. */
export function refusedFetch(): typeof fetch {
  return (async () => {
    throw Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
  }) as typeof fetch;
}

/** Collects what an adapter logs at warn level. */
export function captureLog(): {
  log: { warn(obj: object, msg: string): void };
  warnings: { obj: object; msg: string }[];
} {
  const warnings: { obj: object; msg: string }[] = [];
  return { log: { warn: (obj, msg) => warnings.push({ obj, msg }) }, warnings };
}

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'couriers');

/** A fixture file's text: `fixture('easyparcel', 'token.json')`. */
export function fixture(courier: 'easyparcel' | 'bluedart', name: string): string {
  return fs.readFileSync(path.join(FIXTURES, courier, name), 'utf8');
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** The CourierRejectedError a promise rejects with (fails the test on anything else). */
export async function refusal(promise: Promise<unknown>): Promise<CourierRejectedError> {
  const err = await failure(promise);
  expect(err).toBeInstanceOf(CourierRejectedError);
  return err as CourierRejectedError;
}

/** A booking in Malaysia, as the EasyParcel tests send it (reference `shp_123`, as in the fixtures). */
export const MY_BOOKING: BookingRequest = {
  reference: 'shp_123',
  sender: { name: 'Kedai Batik', city: 'Shah Alam', postcode: '40150', country: 'MY' },
  recipient: {
    name: 'Tan Wei Ming',
    line1: '12 Jalan Ampang',
    city: 'Kuala Lumpur',
    state: 'Kuala Lumpur',
    postcode: '50450',
    country: 'MY',
    phone: '+60123456789',
  },
  parcel: { weightGrams: 700, description: 'Batik scarf' },
};
