/**
 * The payment simulator on its own: `node --import tsx simulators/payment/main.ts` in development,
 * `node dist/simulators/payment/main.js` in the container. Listens on PAYMENT_SIMULATOR_HOST /
 * PAYMENT_SIMULATOR_PORT and stops on SIGINT / SIGTERM.
 */
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { runMain, StartupError } from '../../src/main-helpers';
import { startPaymentSimulator } from './server';

if (require.main === module) {
  runMain(async () => {
    const config = loadConfig();
    const log = createLogger(config).child({ component: 'payment-simulator' });
    const { host, simulatorPort: port } = config.payments;
    const simulator = await startPaymentSimulator({ host, port, log }).catch((err: unknown) => {
      throw new StartupError(
        `the payment simulator could not listen on ${host}:${port}: ${(err as Error).message}`,
      );
    });
    log.info({ url: simulator.url }, `payment simulator listening on ${simulator.url}`);
    const stop = () => void simulator.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
