/**
 * The real Temporal server (the shape production runs, not the CLI's one-process dev server
 * on SQLite), as a second target for the benchmarks, the fault suites and a smoke test:
 *
 * - built from its Go module at the server version the CLI embeds ({@link TEMPORAL_SERVER_VERSION};
 *   `temporal --version` of CLI v1.5.1 says "Server 1.29.1"), together with its SQL schema tool,
 *   into `<cacheDir>/temporal-server-<version>/` the first time (`go install`, minutes), found
 *   there after; neither binary is ever committed. v1.29.1's go.mod has no `replace`, so
 *   `go install module@version` builds it;
 * - on Postgres: two databases of its own (persistence and visibility) on the server a URL
 *   names, created and brought to the latest schema by the SQL tool (`--plugin postgres12`,
 *   the schemas embedded in the tool);
 * - from a config file generated here in the shape of the module's
 *   config/development-postgres12.yaml: {@link TEMPORAL_HISTORY_SHARDS} history shards, every
 *   service (frontend, history, matching, worker) in the one process on free loopback ports,
 *   and a dynamic config file beside it; its own Prometheus metrics on a loopback port when asked;
 * - with the namespace created through the API (as `temporal operator namespace create` does).
 *   Search attributes are not registered here: Waybill's worker adds its own at start
 *   (src/search-attributes.ts), as it must on any Temporal a user points it at.
 *
 * The server has no web UI (the Temporal UI is a separate program); the CLI reads it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { stringify } from 'yaml';
import { StartupError } from '../src/main-helpers';
import { findGo, goInstall, goVersionAtLeast, isExecutable } from './temporal-cli';
import { superviseTemporal, TEMPORAL_START_DEADLINE_MS } from './temporal-process';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
/** The SQL plugin for Postgres 12 and later (docker-compose.yml's `DB: postgres12`). */
export const TEMPORAL_SQL_PLUGIN = 'postgres12';
/**
 * History shards: fixed for the life of a cluster. Each shard writes its workflows one at a time
 * (`history.shardIOConcurrency` 1), so the shard count caps how many workflow writes run at once:
 * in a bench:scale run of 10,000 parcels with 4, writes waited 461 ms on average for their
 * shard, and 16 raised the ramp from 33 to 51 starts/s and the polls from 6.2 to 14.2 a second
 * (one run each, back to back, the server's metrics on in both: docs/benchmarks.md#scale). A
 * production cluster sizes them from docs/capacity.md.
 */
export const TEMPORAL_HISTORY_SHARDS = 16;
export const TEMPORAL_DATABASES = { persistence: 'temporal', visibility: 'temporal_visibility' } as const;
const SCHEMAS = { persistence: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;
/** How long a finished workflow's history is kept (the dev server's default). */
const RETENTION_SECONDS = 24 * 3_600;

const execFileAsync = promisify(execFile);

export class TemporalServerError extends Error {
  override name = 'TemporalServerError';
}

export interface TemporalServerBinaries {
  /** `temporal-server` (go.temporal.io/server/cmd/server). */
  server: string;
  /** `temporal-sql-tool` (go.temporal.io/server/cmd/tools/sql). */
  sqlTool: string;
  source: 'cache' | 'go install';
}

export function cachedServerBinaries(cacheDir: string): { server: string; sqlTool: string } {
  const dir = path.join(cacheDir, `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  return { server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool') };
}

/** The cached build, or a `go install` of both binaries into the cache (the first time: minutes). */
export async function resolveTemporalServer(opts: {
  cacheDir: string;
  log: (line: string) => void;
}): Promise<TemporalServerBinaries> {
  const cached = cachedServerBinaries(opts.cacheDir);
  if ((await isExecutable(cached.server)) && (await isExecutable(cached.sqlTool))) {
    return { ...cached, source: 'cache' };
  }
  const go = await findGo();
  if (!go || !goVersionAtLeast(go.version)) {
    throw new TemporalServerError(
      `the Temporal server ${TEMPORAL_SERVER_VERSION} is not in ${path.dirname(cached.server)} and ` +
        (go ? `${go.version} is too old to build it (Go >= 1.25 is)` : 'no Go is on PATH to build it') +
        `: install Go, or build it with \`GOBIN=${path.dirname(cached.server)} go install ${TEMPORAL_SERVER_MODULE}/cmd/server@${TEMPORAL_SERVER_VERSION} ${TEMPORAL_SERVER_MODULE}/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}\` and rename server and sql to temporal-server and temporal-sql-tool`,
    );
  }
  await goInstall(
    go.go,
    {
      label: `the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool`,
      packages: ['cmd/server', 'cmd/tools/sql'].map(
        (pkg) => `${TEMPORAL_SERVER_MODULE}/${pkg}@${TEMPORAL_SERVER_VERSION}`,
      ),
      outputs: { server: cached.server, sql: cached.sqlTool },
    },
    opts.log,
  );
  return { ...cached, source: 'go install' };
}

/** Where the server keeps its data: a Postgres server and a user that may create databases. */
export interface TemporalPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** The host, port and credentials of a `postgres://` URL (its database is not used). */
export function temporalPostgresFromUrl(url: string): TemporalPostgres {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  /** The server's Prometheus endpoint, used only when metrics are asked for. */
  metrics: number;
}

/**
 * The highest port the server can use: it records each service's gRPC and membership ports in
 * Postgres as `smallint` (cluster_membership), and refuses to start on one above this. The
 * kernel's ephemeral ports (port 0) are mostly above it, so ports are drawn from below.
 */
export const MAX_SERVER_PORT = 32_767;
const MIN_DRAWN_PORT = 20_000;

function listen(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** Distinct free loopback ports in 20000–32767, all held open at once so no two are the same. */
async function freeServerPorts(count: number): Promise<number[]> {
  const held: net.Server[] = [];
  try {
    for (let tries = 0; held.length < count; tries++) {
      if (tries > 1_000)
        throw new StartupError(
          `found no ${count} free ports between ${MIN_DRAWN_PORT} and ${MAX_SERVER_PORT}`,
        );
      const port = MIN_DRAWN_PORT + Math.floor(Math.random() * (MAX_SERVER_PORT - MIN_DRAWN_PORT + 1));
      const server = await listen(port);
      if (server) held.push(server);
    }
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

async function allocatePorts(frontend?: number): Promise<TemporalServerPorts> {
  if (frontend !== undefined && frontend > MAX_SERVER_PORT) {
    throw new StartupError(
      `the Temporal server cannot listen on port ${frontend}: it stores its ports as smallint, so at most ${MAX_SERVER_PORT}`,
    );
  }
  const p = await freeServerPorts(10);
  return {
    frontend: frontend ?? p[0]!,
    frontendHttp: p[1]!,
    frontendMembership: p[2]!,
    history: p[3]!,
    historyMembership: p[4]!,
    matching: p[5]!,
    matchingMembership: p[6]!,
    worker: p[7]!,
    workerMembership: p[8]!,
    metrics: p[9]!,
  };
}

export interface ServerConfigInput {
  postgres: TemporalPostgres;
  databases: { persistence: string; visibility: string };
  ports: TemporalServerPorts;
  shards: number;
  dynamicConfigFile: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Serve the server's own Prometheus metrics on this loopback port (none when omitted). */
  metricsPort?: number;
}

/**
 * The server's static config, in the shape of config/development-postgres12.yaml of the
 * module: Postgres persistence and visibility, the shards, each service's ports, one cluster
 * named "active", archival off.
 */
export function temporalServerConfig(input: ServerConfigInput): string {
  const { postgres, ports } = input;
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: TEMPORAL_SQL_PLUGIN,
      databaseName,
      connectAddr: `${postgres.host}:${postgres.port}`,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: postgres.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: {
      grpcPort,
      membershipPort,
      bindOnLocalHost: true,
      ...(httpPort !== undefined ? { httpPort } : {}),
    },
  });
  const archivalOff = { state: 'disabled', enableRead: false };
  return stringify({
    log: { stdout: true, level: input.logLevel, format: 'json' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: input.shards,
      datastores: {
        'postgres-default': store(input.databases.persistence, 20),
        'postgres-visibility': store(input.databases.visibility, 10),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      ...(input.metricsPort !== undefined
        ? {
            metrics: {
              prometheus: {
                framework: 'tally',
                timerType: 'histogram',
                listenAddress: `127.0.0.1:${input.metricsPort}`,
              },
            },
          }
        : {}),
    },
    services: {
      frontend: service(ports.frontend, ports.frontendMembership, ports.frontendHttp),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${ports.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: archivalOff, visibility: archivalOff },
    namespaceDefaults: {
      archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    },
    dynamicConfigClient: { filepath: input.dynamicConfigFile, pollInterval: '10s' },
  });
}

/**
 * Dynamic config: the overrides the CLI's dev server applies to the same server code, so the
 * two targets differ in storage and process shape, not in limits. Search attributes are read
 * fresh (the worker adds them at start and starts workflows that use them seconds later;
 * without this the server's cache may not know them yet), so persistence QPS is raised as the
 * CLI does; the host's mutable-state cache and the visibility RPS are the CLI's too.
 */
export const SERVER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'system.forceSearchAttributesCacheRefreshOnRead': true,
  'frontend.persistenceMaxQPS': 10_000,
  'history.persistenceMaxQPS': 45_000,
  'history.hostLevelCacheMaxSize': 8_096,
  'frontend.namespaceRPS.visibility': 100,
};

/** `{ key: value }` as the file-based dynamic config wants it: `key: [{ value }]` (no constraints). */
export function dynamicConfigYaml(values: Readonly<Record<string, unknown>>): string {
  return stringify(Object.fromEntries(Object.entries(values).map(([key, value]) => [key, [{ value }]])));
}

async function databaseExists(postgres: TemporalPostgres, name: string): Promise<boolean> {
  const client = new pg.Client({ ...postgres, database: 'postgres' });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    return (found.rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}

/**
 * Creates the database when it is missing and brings its schema to the tool's latest
 * (`update-schema` from the schema embedded in the tool; a no-op when it is there already).
 */
export async function setUpTemporalSchema(opts: {
  sqlTool: string;
  postgres: TemporalPostgres;
  database: string;
  schema: 'persistence' | 'visibility';
  log: (line: string) => void;
}): Promise<void> {
  const { postgres } = opts;
  // Credentials through the tool's own variables, so they never show in a process list.
  const env = {
    ...process.env,
    SQL_HOST: postgres.host,
    SQL_PORT: String(postgres.port),
    SQL_USER: postgres.user,
    SQL_PASSWORD: postgres.password,
    SQL_PLUGIN: TEMPORAL_SQL_PLUGIN,
    SQL_DATABASE: opts.database,
  };
  const tool = async (...args: string[]) => {
    try {
      await execFileAsync(opts.sqlTool, args, { env });
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string };
      const detail = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
      throw new StartupError(
        `temporal-sql-tool ${args.join(' ')} failed on ${postgres.host}:${postgres.port}/${opts.database}: ${detail || e.message}`,
      );
    }
  };
  if (!(await databaseExists(postgres, opts.database))) {
    opts.log(`creating the Temporal database ${opts.database} (${TEMPORAL_SQL_PLUGIN})`);
    await tool('create-database');
    await tool('setup-schema', '-v', '0.0');
  }
  await tool('update-schema', '--schema-name', SCHEMAS[opts.schema]);
}

export interface TemporalServerOptions {
  binaries: Pick<TemporalServerBinaries, 'server' | 'sqlTool'>;
  postgres: TemporalPostgres;
  /** Its own two databases (default `temporal` and `temporal_visibility`). */
  databases?: { persistence: string; visibility: string };
  /** Folder for the generated config files and the server's log. */
  dir: string;
  /** Created at start when missing. */
  namespace: string;
  /** Frontend gRPC port (at most {@link MAX_SERVER_PORT}); a free one when omitted. */
  port?: number;
  shards?: number;
  /** Added to (and overriding) {@link SERVER_DYNAMIC_CONFIG}. */
  dynamicConfig?: Record<string, unknown>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  log?: (line: string) => void;
  /** Serve the server's own Prometheus metrics (for the benchmarks: where its time goes). */
  metrics?: boolean;
}

export interface RunningTemporalServer {
  /** `127.0.0.1:<frontend port>`. */
  address: string;
  /** The server's Prometheus endpoint, when asked for. */
  metricsUrl: string | null;
  logFile: string;
  pid(): number | null;
  /** Starts the process again on the same config, data and ports, and waits until the namespace serves. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 20 s); the data stays in Postgres. */
  stop(): Promise<void>;
}

const GRPC_ALREADY_EXISTS = 6;

/**
 * Registers the namespace (as `temporal operator namespace create` does) and waits until the
 * frontend serves requests in it: a new namespace is only known once its cache refreshes.
 */
async function ensureNamespace(address: string, namespace: string, deadlineMs: number): Promise<void> {
  const connection = await Connection.connect({ address });
  let last: unknown = null;
  try {
    while (Date.now() < deadlineMs) {
      try {
        await connection.workflowService.registerNamespace({
          namespace,
          workflowExecutionRetentionPeriod: msToTs(RETENTION_SECONDS * 1000),
        });
      } catch (err) {
        if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) {
          last = err;
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
      }
      try {
        await connection.workflowService.countWorkflowExecutions({ namespace });
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
  throw new StartupError(
    `the Temporal server on ${address} did not serve the namespace ${namespace} in time: ${(last as Error | null)?.message ?? 'no answer'}`,
  );
}

/**
 * Sets up the schema, writes the config, starts the server and creates the namespace. Stop it
 * with `stop()`; `start()` brings it back on the same data (a restart).
 */
export async function startTemporalServer(opts: TemporalServerOptions): Promise<RunningTemporalServer> {
  const log = opts.log ?? (() => undefined);
  const databases = opts.databases ?? TEMPORAL_DATABASES;
  await fs.mkdir(opts.dir, { recursive: true });
  for (const schema of ['persistence', 'visibility'] as const) {
    await setUpTemporalSchema({
      sqlTool: opts.binaries.sqlTool,
      postgres: opts.postgres,
      database: databases[schema],
      schema,
      log,
    });
  }

  const ports = await allocatePorts(opts.port);
  const metricsPort = opts.metrics ? ports.metrics : undefined;
  const dynamicConfigFile = path.join(opts.dir, 'dynamic-config.yaml');
  await fs.writeFile(
    dynamicConfigFile,
    dynamicConfigYaml({ ...SERVER_DYNAMIC_CONFIG, ...opts.dynamicConfig }),
  );
  // The server reads `<config dir>/<env>.yaml`: env "waybill" is this file.
  await fs.writeFile(
    path.join(opts.dir, 'waybill.yaml'),
    temporalServerConfig({
      postgres: opts.postgres,
      databases,
      ports,
      shards: opts.shards ?? TEMPORAL_HISTORY_SHARDS,
      dynamicConfigFile,
      logLevel: opts.logLevel ?? 'warn',
      ...(metricsPort !== undefined ? { metricsPort } : {}),
    }),
    { mode: 0o600 },
  );

  const address = `127.0.0.1:${ports.frontend}`;
  const logFile = path.join(opts.dir, 'temporal-server.log');
  const proc = superviseTemporal({
    label: `the Temporal server ${TEMPORAL_SERVER_VERSION}`,
    executable: opts.binaries.server,
    args: ['--root', opts.dir, '--config', '.', '--env', 'waybill', '--allow-no-auth', 'start'],
    address,
    logFile,
  });
  const start = async () => {
    const started = Date.now();
    await proc.start();
    try {
      await ensureNamespace(address, opts.namespace, started + TEMPORAL_START_DEADLINE_MS);
    } catch (err) {
      await proc.stop();
      throw err;
    }
  };
  await start();
  const metricsUrl = metricsPort !== undefined ? `http://127.0.0.1:${metricsPort}/metrics` : null;
  return { address, metricsUrl, logFile, pid: proc.pid, start, stop: proc.stop };
}
