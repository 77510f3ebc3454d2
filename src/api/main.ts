/**
 * The API process: `node dist/src/api/main.js` in production; the dev stack runs it in-process.
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { createDb } from '../../db/client';
import type { Database } from '../../db/database';
import { assertApiCredentials, developmentCredentialsInUse, loadConfig, type Config } from '../config';
import { createLogger, type Logger } from '../logger';
import { assertDatabaseReachable, runMain, StartupError } from '../main-helpers';
import { createTemporalClient } from '../temporal';
import { buildApi } from './app';

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startApi(opts: {
  config: Config;
  db: Kysely<Database>;
  log: Logger;
}): Promise<RunningApi> {
  assertApiCredentials(opts.config);
  const published = developmentCredentialsInUse(opts.config);
  if (published.length > 0) {
    opts.log.warn(
      `the API accepts the published development credentials of ${published.join(', ')}: set your own and WAYBILL_ENV=production before exposing it`,
    );
  }
  const temporal = createTemporalClient(opts.config.temporal);
  const app = await buildApi({ config: opts.config, db: opts.db, temporal, log: opts.log });
  try {
    await app.listen({ host: opts.config.api.host, port: opts.config.api.port });
  } catch (err) {
    await temporal.connection.close().catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw new StartupError(
      e.code === 'EADDRINUSE'
        ? `port ${opts.config.api.port} is in use (set WAYBILL_PORT to another port)`
        : `the API could not listen on ${opts.config.api.host}:${opts.config.api.port}: ${e.message}`,
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.config.api.port;
  const host =
    opts.config.api.host === '0.0.0.0' || opts.config.api.host === '127.0.0.1'
      ? 'localhost'
      : opts.config.api.host;
  return {
    app,
    url: `http://${host}:${port}`,
    async close() {
      await app.close();
      await temporal.connection.close();
    },
  };
}

if (require.main === module) {
  runMain(async () => {
    const config = loadConfig();
    // Before anything is opened: a misconfigured API stops with one line, not a DB timeout.
    assertApiCredentials(config);
    const log = createLogger(config).child({ component: 'api' });
    const db = createDb({
      url: config.database.url,
      poolMax: config.database.poolMax,
      onError: (err) => log.warn({ err }, 'idle Postgres client failed'),
    });
    await assertDatabaseReachable(db, config.database.url);
    const api = await startApi({ config, db, log });
    log.info({ url: api.url }, 'API listening');
    const stop = async () => {
      await api.close();
      await db.destroy();
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
  });
}
