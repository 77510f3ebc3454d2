/**
 * Connection settings shared by the API's client and the worker's native connection, so
 * the same code runs against the dev server, a self-hosted cluster or Temporal Cloud.
 */
import fs from 'node:fs';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
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
 * A lazy client: the API starts (and serves reads from Postgres) even while Temporal is
 * down; calls that need Temporal fail fast and the API answers 503 for them.
 */
export function createTemporalClient(config: Pick<Config, 'temporal' | 'payloads'>): TemporalClient {
  const connection = Connection.lazy({
    ...temporalConnectionOptions(config.temporal),
    connectTimeout: '3s',
    // Someone is waiting on the other end of an API call: a few quick retries, not the
    // SDK's default ten over ~20 s, then the API answers 503 and the caller retries.
    interceptors: [
      makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 3, maxIntervalMs: () => 500 })),
    ],
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
