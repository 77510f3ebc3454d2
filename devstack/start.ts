/**
 * `npm start`: the whole product on one machine with embedded defaults — a Temporal dev
 * server (SQLite under .data/, UI on), an embedded Postgres under .data/ (unless
 * DATABASE_URL is set), migrations, the courier simulator, the worker and the API.
 * Ctrl-C / SIGTERM stops everything in reverse order and leaves no process behind.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createDb } from '../db/client';
import { migrateToLatest } from '../db/migrator';
import { seedCatalogue } from '../db/seed';
import { startApi } from '../src/api/main';
import { DEV_ADMIN_API_KEY, EMBEDDED_PG, loadConfig, redactUrl, type Config } from '../src/config';
import { createLogger, type Logger } from '../src/logger';
import { assertDatabaseReachable, runMain, StartupError } from '../src/main-helpers';
import { startPaymentSimulator } from '../simulators/payment/server';
import { startSimulator } from '../simulators/courier/server';
import { installTemporalRuntime, startWorker, workerMetricsUrl } from '../src/worker';
import { startEmbeddedPostgres, takeOverShutdownSignals } from './embedded-postgres';
import { resolveTemporalCli } from './temporal-cli';
import { PortTakenError, startTemporalDevServer } from './temporal-server';
import { startUiCodecProxy } from './ui-codec-proxy';

type Stopper = { name: string; stop: () => Promise<void> };

async function startStack(
  config: Config,
  log: Logger,
  stoppers: Stopper[],
  onWorkerFailure: (err: unknown) => void,
): Promise<string[]> {
  const t0 = Date.now();
  await fs.mkdir(config.paths.dataDir, { recursive: true });
  const lines: string[] = [];

  // The UI shows histories decoded through the API's codec server. With the published
  // development staff key a loopback relay signs the UI's calls as ops (devstack/ui-codec-proxy.ts);
  // with real staff keys the UI reaches the codec server directly and, having no staff
  // token, shows ciphertext.
  const apiHost = ['0.0.0.0', '::'].includes(config.api.host) ? '127.0.0.1' : config.api.host;
  const apiUrl = `http://${apiHost.includes(':') ? `[${apiHost}]` : apiHost}:${config.api.port}`;
  let uiCodecEndpoint = `${apiUrl}/codec`;
  let codecLine = `${uiCodecEndpoint}  (staff token required: temporal workflow show --codec-endpoint ${uiCodecEndpoint} --codec-auth "Bearer $(npm run -s token -- ops <you>)")`;
  if (!config.temporal.external && config.api.staffJwtKeysAreDefault && config.tokens.staffSigningKey) {
    const proxy = await startUiCodecProxy(config, apiUrl);
    stoppers.push({ name: 'UI codec relay', stop: () => proxy.stop() });
    uiCodecEndpoint = proxy.url;
    codecLine = `the UI decodes histories as ops through ${proxy.url} → ${apiUrl}/codec  (development key)`;
  }

  // Temporal first: the worker and the API both need it.
  let temporalLine: string;
  if (config.temporal.external) {
    temporalLine = `${config.temporal.address}        (external: TEMPORAL_ADDRESS)`;
  } else {
    const cli = await resolveTemporalCli({
      cliPath: config.temporal.cliPath,
      cacheDir: config.paths.cacheDir,
      log: (line) => log.info(line),
    });
    log.info({ source: cli.source, executable: cli.executable }, 'starting the Temporal dev server');
    const dbFilename = path.join(config.paths.dataDir, 'temporal.sqlite');
    try {
      const server = await startTemporalDevServer({
        executable: cli.executable,
        namespace: config.temporal.namespace,
        port: config.temporal.devPort,
        uiPort: config.temporal.uiPort,
        dbFilename,
        uiCodecEndpoint,
        // At 'error' the dev server prints a few harmless "shard status unknown" lines on every
        // start; its real troubles show in the UI and to the worker and API anyway.
        logLevel: config.logLevel === 'debug' || config.logLevel === 'trace' ? 'warn' : 'never',
      });
      stoppers.push({ name: 'Temporal dev server', stop: () => server.stop() });
    } catch (err) {
      throw new StartupError(
        err instanceof PortTakenError
          ? `the Temporal dev server cannot start: ${err.message}. Is a Temporal server running there already? Set TEMPORAL_ADDRESS to use it, or TEMPORAL_DEV_PORT and TEMPORAL_UI_PORT to start this one elsewhere`
          : `the Temporal dev server did not start on ${config.temporal.address} (UI ${config.temporal.uiPort}); is another one running? ${(err as Error).message}`,
      );
    }
    temporalLine = `${config.temporal.address}               (UI: http://localhost:${config.temporal.uiPort})`;
  }
  lines.push(`  Temporal   ${temporalLine}`);
  lines.push(`  Codec      ${codecLine}`);

  let databaseUrl = config.database.url;
  if (config.database.embedded) {
    const dir = path.join(config.paths.dataDir, 'pg');
    const pg = await startEmbeddedPostgres({
      dir,
      port: config.database.embeddedPort,
      ...EMBEDDED_PG,
      log: (line) => log.debug({ component: 'postgres' }, line),
    });
    stoppers.push({ name: 'Postgres', stop: () => pg.stop() });
    databaseUrl = pg.url;
    lines.push(
      `  Postgres   embedded, ${path.relative(process.cwd(), dir) || dir} (port ${config.database.embeddedPort})`,
    );
  } else {
    lines.push(`  Postgres   ${redactUrl(databaseUrl)}`);
  }

  const db = createDb({
    url: databaseUrl,
    // The API and the worker share this process's pool: the API's connections plus one per
    // activity slot of the worker.
    poolMax: config.database.poolMax + config.workerSizing.dbPoolMax,
    onError: (err) => log.warn({ err }, 'idle Postgres client failed'),
  });
  stoppers.push({ name: 'database pool', stop: () => db.destroy() });
  await assertDatabaseReachable(db, databaseUrl);
  const applied = await migrateToLatest(db);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  const seeded = await seedCatalogue(db);
  if (seeded > 0) log.info({ skus: seeded }, 'demo catalogue added');

  let simulator: Awaited<ReturnType<typeof startSimulator>>;
  try {
    simulator = await startSimulator({
      host: config.courier.simulatorHost,
      port: config.courier.simulatorPort,
      timeScale: config.courier.simulatorTimeScale,
      log: log.child({ component: 'simulator' }),
      easyParcel: { ...config.courier.easyParcel, tokenTtlSeconds: 3600 },
      blueDart: { loginId: config.courier.blueDart.loginId, licenceKey: config.courier.blueDart.licenceKey },
    });
  } catch (err) {
    throw new StartupError(
      `the courier simulator could not listen on port ${config.courier.simulatorPort} (set COURIER_SIMULATOR_PORT): ${(err as Error).message}`,
    );
  }
  stoppers.push({ name: 'courier simulator', stop: () => simulator.stop() });

  const payments = await startPaymentSimulator({
    host: config.payments.host,
    port: config.payments.simulatorPort,
    log: log.child({ component: 'payment-simulator' }),
  }).catch((err: unknown) => {
    throw new StartupError(
      `the payment simulator could not listen on port ${config.payments.simulatorPort} (set PAYMENT_SIMULATOR_PORT): ${(err as Error).message}`,
    );
  });
  stoppers.push({ name: 'payment simulator', stop: () => payments.stop() });

  const worker = await startWorker({ config, db, log: log.child({ component: 'worker' }) });
  stoppers.push({ name: 'worker', stop: () => worker.shutdown().catch(() => undefined) });
  worker.done.catch((err: unknown) => onWorkerFailure(err));
  const metricsUrl = workerMetricsUrl(config);
  lines.push(`  Worker     metrics on ${metricsUrl ?? 'none (WAYBILL_WORKER_METRICS_PORT=0)'}`);
  lines.push(`  Schedules  ${worker.schedules.map((s) => s.scheduleId).join(', ')}`);

  const api = await startApi({ config, db, log: log.child({ component: 'api' }) });
  stoppers.push({ name: 'API', stop: () => api.close() });

  return [
    `Waybill is up (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    `  API        ${api.url}        (docs: ${api.url}/docs)`,
    `  API        metrics on ${api.metricsUrl ?? 'none (WAYBILL_METRICS_PORT=0)'}`,
    ...lines,
    `  Courier    simulator on ${simulator.url}`,
    `  Payments   simulator on ${payments.url}`,
    ...(config.api.adminApiKeyIsDefault
      ? [`  Admin      header x-api-key: ${DEV_ADMIN_API_KEY}  (development key)`]
      : []),
    ...(config.api.staffJwtKeysAreDefault
      ? ['  Staff      token: npm run token -- <admin|ops|support> alice  (development key)']
      : []),
    ...(config.api.jwtSecretIsDefault
      ? ['  Customer   token: npm run token -- customer cus_demo  (development secret)']
      : []),
    'Press Ctrl-C to stop everything.',
  ];
}

async function stopAll(stoppers: Stopper[], log: Logger): Promise<void> {
  for (const { name, stop } of [...stoppers].reverse()) {
    try {
      await stop();
      log.debug(`${name} stopped`);
    } catch (err) {
      log.warn({ err }, `${name} did not stop cleanly`);
    }
  }
  stoppers.length = 0;
}

runMain(async () => {
  const config = loadConfig();
  const log = createLogger(config).child({ component: 'stack' });
  // The SDK's info lines (bundler output, worker state changes) drown the stack's own.
  const temporalLog = log.child({ component: 'temporal' });
  if (config.logLevel === 'info') temporalLog.level = 'warn';
  installTemporalRuntime(temporalLog, { ownSignals: true, metrics: config.worker });
  takeOverShutdownSignals();

  const stoppers: Stopper[] = [];
  let stopping: Promise<void> | null = null;
  let firstSignalAt = 0;
  const shutdown = (signal: string, exitCode = 0) => {
    if (stopping) {
      // A terminal's Ctrl-C reaches this process twice: directly, and relayed by npm/tsx.
      // Only a second press, a moment later, means "force".
      if (Date.now() - firstSignalAt < 2_000) return;
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    firstSignalAt = Date.now();
    log.info(`${signal}: stopping (Ctrl-C again to force)`);
    stopping = stopAll(stoppers, log).then(() => {
      log.info('stopped');
      process.exit(exitCode);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    const banner = await startStack(config, log, stoppers, (err) => {
      log.error({ err }, 'the worker failed; stopping everything');
      shutdown('worker failure', 1);
    });
    process.stdout.write(`\n${banner.join('\n')}\n\n`);
  } catch (err) {
    await stopAll(stoppers, log);
    throw err;
  }
});
