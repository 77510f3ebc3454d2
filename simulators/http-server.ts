/**
 * What the courier and the payment simulators' HTTP servers share: the sleeper their slow
 * answers wait on, and listening on `host:port` with a URL a client on this machine can use
 * and a stop that wakes every sleeper before it closes.
 */
import type { FastifyInstance } from 'fastify';

/** Delay faults sleep on real timers; stopping the server wakes every sleeper at once. */
export class Sleeper {
  private waiting = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiting.add(wake);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiting]) wake();
  }
}

export interface ListeningServer {
  /** Root URL, e.g. `http://127.0.0.1:4020` (a wildcard host is reached on loopback). */
  url: string;
  port: number;
  /** Wakes the sleepers, then closes the server; calling it again returns the same promise. */
  stop(): Promise<void>;
}

/** Listens on `host:port` (default host 127.0.0.1; port 0 picks a free one). */
export async function listen(
  app: FastifyInstance,
  opts: { host?: string | undefined; port: number; wakeSleepers: () => void },
): Promise<ListeningServer> {
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const urlHost =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    stop() {
      stopping ??= (async () => {
        opts.wakeSleepers();
        await app.close();
      })();
      return stopping;
    },
  };
}
