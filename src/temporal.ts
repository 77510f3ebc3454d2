/**
 * Connection settings shared by the API's client and the worker's native connection, so
 * the same code runs against the dev server, a self-hosted cluster or Temporal Cloud.
 */
import fs from 'node:fs';
import {
  Client,
  Connection,
  isRetryableError,
  makeGrpcRetryInterceptor,
  type GrpcRetryOptions,
} from '@temporalio/client';
import { google, temporal } from '@temporalio/proto';
import { createDataConverter } from './codec';
import type { Config } from './config';
import { StartupError } from './main-helpers';

export interface TemporalConnectionOptions {
  address: string;
  tls?: boolean | { clientCertPair: { crt: Buffer; key: Buffer } };
  apiKey?: string;
}

export function temporalConnectionOptions(config: Config['temporal']): TemporalConnectionOptions {
  const options: TemporalConnectionOptions = { address: config.address };
  if (config.tlsCertPath && config.tlsKeyPath) {
    try {
      options.tls = {
        clientCertPair: { crt: fs.readFileSync(config.tlsCertPath), key: fs.readFileSync(config.tlsKeyPath) },
      };
    } catch (err) {
      throw new StartupError(`cannot read the Temporal TLS client certificate: ${(err as Error).message}`);
    }
  } else if (config.tls) {
    options.tls = true;
  }
  if (config.apiKey) options.apiKey = config.apiKey;
  return options;
}

export interface TemporalClient {
  connection: Connection;
  client: Client;
}

/**
 * The API's retries of a Temporal call. Someone is waiting on the other end: two quick retries
 * within about half a second, not the SDK's default ten over ~35 s, then the API answers (503,
 * or 429 for one workflow's limit) and the caller retries. None when one workflow already has as
 * many updates in flight as it takes: those wait on their own work (a poll, a compensation),
 * which a retry within a second does not outlast. Written out rather than built with
 * `defaultGrpcRetryOptions`, which ignores its `maxIntervalMs` (1.24.0: a RESOURCE_EXHAUSTED
 * was retried for ~5 s).
 */
export const API_RETRIES: GrpcRetryOptions = {
  retryableDecider: (attempt, status) =>
    attempt < 3 && isRetryableError(status) && !updatesInFlightLimit(status),
  delayFunction: (attempt, status) =>
    (status.code === GRPC.RESOURCE_EXHAUSTED ? 250 : Math.min(250, 50 * 1.7 ** attempt)) *
    (0.8 + Math.random() * 0.4),
};

/**
 * A lazy client: the API starts (and serves reads from Postgres) even while Temporal is
 * down; calls that need Temporal fail fast and the API answers 503 for them.
 */
export function createTemporalClient(config: Pick<Config, 'temporal' | 'payloads'>): TemporalClient {
  const connection = Connection.lazy({
    ...temporalConnectionOptions(config.temporal),
    connectTimeout: '3s',
    interceptors: [makeGrpcRetryInterceptor(API_RETRIES)],
  });
  // Every payload is sealed by the payload codec before it reaches Temporal (src/codec).
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: createDataConverter(config.payloads),
  });
  return { connection, client };
}

/** The gRPC status codes Waybill tells apart in Temporal's answers. */
export const GRPC = {
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status code of an error from a Temporal call; null for any other error. */
export function grpcCode(err: unknown): number | null {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : null;
}

const { ResourceExhaustedCause } = temporal.api.enums.v1;
const RESOURCE_EXHAUSTED_FAILURE = 'temporal.api.errordetails.v1.ResourceExhaustedFailure';

/**
 * Why Temporal answered RESOURCE_EXHAUSTED (a gRPC error or status): the cause in the status
 * details it sends with it (`grpc-status-details-bin`); null when there is none to read.
 */
export function resourceExhaustedCause(err: unknown): temporal.api.enums.v1.ResourceExhaustedCause | null {
  if (grpcCode(err) !== GRPC.RESOURCE_EXHAUSTED) return null;
  const metadata = (err as { metadata?: { get?: (key: string) => unknown[] } }).metadata;
  const bin = metadata?.get?.('grpc-status-details-bin')?.[0];
  if (!(bin instanceof Uint8Array)) return null;
  try {
    for (const any of google.rpc.Status.decode(bin).details) {
      if (!any.type_url?.endsWith(`/${RESOURCE_EXHAUSTED_FAILURE}`) || !any.value) continue;
      return temporal.api.errordetails.v1.ResourceExhaustedFailure.decode(any.value).cause ?? null;
    }
  } catch {
    // Details we cannot read: still RESOURCE_EXHAUSTED, cause unknown.
  }
  return null;
}

/** A cause's name without its prefix: RPS_LIMIT, CONCURRENT_LIMIT, BUSY_WORKFLOW, …; UNSPECIFIED for none. */
export function resourceExhaustedCauseName(
  cause: temporal.api.enums.v1.ResourceExhaustedCause | null,
): string {
  const name = cause === null ? undefined : ResourceExhaustedCause[cause];
  return name === undefined ? 'UNSPECIFIED' : name.replace(/^RESOURCE_EXHAUSTED_CAUSE_/, '');
}

/**
 * True for a limit of the one workflow addressed (an order's or a parcel's), not of the
 * service: its history busy with other requests (BUSY_WORKFLOW), or its updates in flight (10
 * by default). The server gives the latter the cause it also gives a namespace's limit on
 * concurrent long requests (CONCURRENT_LIMIT, scope NAMESPACE for both), so its words decide.
 */
export function oneWorkflowLimit(err: unknown): boolean {
  return (
    resourceExhaustedCause(err) === ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW ||
    updatesInFlightLimit(err)
  );
}

/** One workflow's limit of updates in flight: CONCURRENT_LIMIT, in the server's words for it. */
function updatesInFlightLimit(err: unknown): boolean {
  const details = (err as { details?: unknown }).details;
  return (
    resourceExhaustedCause(err) === ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_CONCURRENT_LIMIT &&
    typeof details === 'string' &&
    /in-flight updates/i.test(details)
  );
}

const SERVING = 1;

/** True when the frontend answers its gRPC health check within `timeoutMs`. */
export async function temporalIsServing(connection: Connection, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' }),
    );
    return response.status === SERVING;
  } catch {
    return false;
  }
}
