import pino, { type Logger } from 'pino';
import type { Config } from './config';

export type { Logger };

/**
 * The one root logger. Components take a named child (`api`, `worker`, `db`, `courier`,
 * `temporal`, `stack`). Pretty output only when stdout is a terminal; JSON otherwise.
 */
export function createLogger(config: Pick<Config, 'logLevel'>, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  return pino({
    level: config.logLevel,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
