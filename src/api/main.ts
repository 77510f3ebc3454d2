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
  /** Where Prometheus scrapes the API (its own listener), or null when WAYBILL_METRICS_PORT is 0. */
  metricsUrl: string | null;
  close(): Promise<void>;
}

/** Listens and names the variable to change when the address cannot be had. */
async function listenOn(
  app: FastifyInstance,
  what: string,
  host: string,
  port: number,
  variable: string,
): Promise<string> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StartupError(
      e.code === 'EADDRINUSE'
        ? `port ${port} is in use (set ${variable} to another port)`
        : `${what} could not listen on ${host}:${port}: ${e.message}`,
    );
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return `http://${host === '0.0.0.0' || host === '127.0.0.1' ? 'localhost' : host}:${bound}`;
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
  const temporal = createTemporalClient(opts.config);
  const app = await buildApi({ config: opts.config, db: opts.db, temporal, log: opts.log });
  const { api } = opts.config;
  let url: string;
  let metricsUrl: string | null = null;
  try {
    url = await listenOn(app, 'the API', api.host, api.port, 'WAYBILL_PORT');
    if (api.metricsPort !== null) {
      metricsUrl = `${await listenOn(app.metricsServer, 'the API metrics endpoint', api.metricsHost, api.metricsPort, 'WAYBILL_METRICS_PORT')}/metrics`;
    }
  } catch (err) {
    await app.close().catch(() => undefined);
    await temporal.connection.close().catch(() => undefined);
    throw err;
  }
  return {
    app,
    url,
    metricsUrl,
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
