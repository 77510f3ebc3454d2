/**
 * Starts a Temporal dev server (the CLI's `server start-dev`) through the SDK's
 * ephemeral-server support, for the dev stack and the tests alike.
 */
import net from 'node:net';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';
import type { ServerExecutable } from './temporal-cli';

export interface DevServerOptions {
  executable: ServerExecutable;
  namespace: string;
  /** gRPC port; a free one when omitted. */
  port?: number;
  /** UI port; no UI when omitted. */
  uiPort?: number;
  /** SQLite file that keeps workflows across restarts; in memory when omitted. */
  dbFilename?: string;
  /** `--dynamic-config-value KEY=JSON` pairs, e.g. to make continue-as-new testable. */
  dynamicConfig?: Record<string, unknown>;
  /** The server's own log level (its lines go to stdout). Default 'error'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'never';
  /**
   * Register Waybill's search attributes at server start (default true); false gives a
   * server as a new user's would be, for the worker to register them itself.
   */
  searchAttributes?: boolean;
  /** Further namespaces to create besides `namespace`. */
  extraNamespaces?: string[];
  /** The codec server the UI sends payloads to for display (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
}

export interface RunningDevServer {
  address: string;
  env: TestWorkflowEnvironment;
  stop(): Promise<void>;
}

/**
 * How the dev server opens its SQLite file. Its defaults (a rollback journal, a full sync)
 * make every commit write and sync the journal and the file, on the server's one connection,
 * so workflow tasks queue behind each other's commits; a write-ahead log synced at checkpoints
 * loses nothing when the server process stops or is killed (only an operating-system crash
 * may lose the last commits), which is what a development server on a laptop needs.
 */
export const SQLITE_FILE_PRAGMA_ARGS: readonly string[] = ['journal_mode=WAL', 'synchronous=NORMAL'].flatMap(
  (pragma) => ['--sqlite-pragma', pragma],
);

/** A port the dev server was to listen on is another process's. */
export class PortTakenError extends Error {
  override name = 'PortTakenError';
}

/** Whether something already listens on 127.0.0.1:`port` (where the dev server listens). */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' ? resolve(true) : reject(err),
    );
    probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

export async function startTemporalDevServer(opts: DevServerOptions): Promise<RunningDevServer> {
  // A taken port makes the server exit at once, which the SDK reports only after its 5 s, and
  // as a server that did not start: said at once instead, naming the port.
  for (const [port, what] of [
    [opts.port, 'gRPC'],
    [opts.uiPort, 'UI'],
  ] as const) {
    if (port !== undefined && (await portTaken(port))) {
      throw new PortTakenError(`port ${port} (the dev server's ${what}) is taken by another process`);
    }
  }
  const extraArgs = [
    ...(opts.dbFilename !== undefined ? SQLITE_FILE_PRAGMA_ARGS : []),
    ...Object.entries(opts.dynamicConfig ?? {}).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
    ...(opts.extraNamespaces ?? []).flatMap((namespace) => ['--namespace', namespace]),
    ...(opts.uiCodecEndpoint !== undefined ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
  ];
  const start = () =>
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: opts.executable,
        namespace: opts.namespace,
        ip: '127.0.0.1',
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.uiPort !== undefined ? { ui: true, uiPort: opts.uiPort } : { ui: false }),
        ...(opts.dbFilename !== undefined ? { dbFilename: opts.dbFilename } : {}),
        searchAttributes: opts.searchAttributes === false ? [] : [...SEARCH_ATTRIBUTES],
        extraArgs,
        log: { format: 'json', level: opts.logLevel ?? 'error' },
      },
    });
  // The SDK gives the server 5 s to answer (fixed in its core), then kills it. A busy machine
  // (a cold page cache for the ~100 MB binary, a build beside it) has taken longer, and a fresh
  // clone's test run then failed before its first test: the start is tried again.
  for (let attempt = 1; ; attempt += 1) {
    try {
      const env = await start();
      return { address: env.address, env, stop: () => env.teardown() };
    } catch (err) {
      if (attempt >= DEV_SERVER_START_ATTEMPTS || !/did not start within/.test(String(err))) throw err;
      process.stderr.write(
        `[temporal] the dev server did not answer within the SDK's 5 s (attempt ${attempt} of ${DEV_SERVER_START_ATTEMPTS}); starting it again\n`,
      );
    }
  }
}

/** How many times the dev server is started before its start counts as failed. */
export const DEV_SERVER_START_ATTEMPTS = 3;
