import net from 'node:net';

/**
 * Ports handed out by this function: below Linux's ephemeral range (32768–60999), which the
 * kernel gives to every outgoing connection and every `listen(0)`. A port picked there and
 * bound seconds later by a child process (npm start, a simulator) could be taken meanwhile by
 * any other test's connection; below it, only another caller of this function could.
 */
const FIRST = 20_000;
const LAST = 32_767;

/** Whether nothing listens on `port` on loopback right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port nobody listens on right now (loopback), outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST + 1));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${FIRST} and ${LAST} in 50 tries`);
}
