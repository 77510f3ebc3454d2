/**
 * The Postgres a benchmark seeds: DATABASE_URL when set (its rows go into that database),
 * else an embedded server in a temporary folder, removed when the benchmark stops it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../devstack/embedded-postgres';
import { freePort } from '../../test/support/ports';

export interface BenchDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function benchDatabase(name: string): Promise<BenchDatabase> {
  const given = process.env.DATABASE_URL;
  if (given) return { url: given, stop: async () => undefined };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `waybill-bench-${name}-pg-`));
  const server = await startEmbeddedPostgres({
    dir,
    // Free, and below the ephemeral range (every outgoing connection's port is drawn there): a
    // port drawn blind in 55000-59999 was once in use, and the benchmark could not start.
    port: await freePort(),
    user: 'bench',
    password: 'bench',
    database: 'bench',
  });
  return {
    url: server.url,
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
