/**
 * The courier simulator on its own: `tsx simulators/courier/main.ts` in development,
 * `node dist/simulators/courier/main.js` in the container. Listens on COURIER_SIMULATOR_HOST /
 * COURIER_SIMULATOR_PORT; takes `--time-scale <n>` (default COURIER_SIMULATOR_TIME_SCALE, 1: real time) and
 * `--seed <n>` on the command line. With COURIER_SIMULATOR_EASYPARCEL_PUSH_URL set (Waybill's
 * `/v1/webhooks/easyparcel/native?token=…`), it also pushes EasyParcel's own webhooks there,
 * losing the share COURIER_SIMULATOR_EASYPARCEL_PUSH_LOSS (0 to 1, default 0) of them.
 * Stops on SIGINT / SIGTERM.
 */
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { runMain, StartupError } from '../../src/main-helpers';
import { startSimulator } from './server';

function numberArg(args: string[], name: string): number | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = Number(args[index + 1]);
  if (!Number.isFinite(value) || value <= 0)
    throw new StartupError(`${name} needs a positive number (got "${args[index + 1] ?? ''}")`);
  return value;
}

if (require.main === module) {
  runMain(async () => {
    const config = loadConfig();
    const log = createLogger(config).child({ component: 'simulator' });
    const args = process.argv.slice(2);
    const timeScale = numberArg(args, '--time-scale') ?? config.courier.simulatorTimeScale;
    const seed = numberArg(args, '--seed');
    const { host, port } = { host: config.courier.simulatorHost, port: config.courier.simulatorPort };
    let simulator: Awaited<ReturnType<typeof startSimulator>>;
    try {
      simulator = await startSimulator({
        host,
        port,
        timeScale,
        ...(seed !== undefined ? { seed } : {}),
        log,
        easyParcel: {
          clientId: config.courier.easyParcel.clientId,
          clientSecret: config.courier.easyParcel.clientSecret,
          refreshToken: config.courier.easyParcel.refreshToken,
          tokenTtlSeconds: 3600,
        },
        blueDart: {
          loginId: config.courier.blueDart.loginId,
          licenceKey: config.courier.blueDart.licenceKey,
        },
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new StartupError(
        e.code === 'EADDRINUSE'
          ? `port ${port} is in use (set COURIER_SIMULATOR_PORT to another port)`
          : `the simulator could not listen on ${host}:${port}: ${e.message}`,
      );
    }
    log.info({ url: simulator.url, timeScale }, `courier simulator listening on ${simulator.url}`);
    const pushUrl = process.env.COURIER_SIMULATOR_EASYPARCEL_PUSH_URL;
    if (pushUrl) {
      const lossRate = Number(process.env.COURIER_SIMULATOR_EASYPARCEL_PUSH_LOSS ?? 0);
      if (!(lossRate >= 0 && lossRate <= 1))
        throw new StartupError('COURIER_SIMULATOR_EASYPARCEL_PUSH_LOSS must be a number from 0 to 1');
      simulator.startEasyParcelPush({ url: pushUrl, lossRate });
      log.info({ lossRate }, 'pushing EasyParcel webhooks (topic Tracking Status Update)');
    }
    const stop = () => {
      log.info('courier simulator stopping');
      void simulator.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
