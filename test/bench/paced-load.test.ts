import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { pacedLoad } from '../../bench/support/paced-load';

/** The read benchmark's p99 step is judged with this load: what it reports must be what happened. */
describe('the paced load (bench/support/paced-load.ts)', () => {
  let server: http.Server;
  let port: number;
  /** Answers are held until this moment (ms since epoch) while it is in the future. */
  let holdUntil = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const answer = () => {
        const body = JSON.stringify({ path: req.url });
        res.writeHead(req.url === '/missing' ? 404 : 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      };
      req.resume();
      req.on('end', () => {
        const wait = holdUntil - Date.now();
        if (wait > 0) setTimeout(answer, wait);
        else answer();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends every request due at the rate, and counts answers that are not 2xx', async () => {
    holdUntil = 0;
    let n = 0;
    const result = await pacedLoad({
      port,
      rate: 200,
      seconds: 1,
      connections: 4,
      request: () => ({ method: 'GET', path: n++ % 10 === 0 ? '/missing' : '/found' }),
    });
    expect(result.requests).toBe(200);
    expect(result.bad).toBe(20);
    expect(result.p50).toBeLessThan(50);
  });

  it('charges a stall to every request due during it, not only to the ones in flight', async () => {
    // 100 requests over a second on 2 connections; answers held for 300 ms from 200 ms in.
    // The ~30 requests due in those 300 ms wait: a closed loop would time only the 2 in
    // flight, and its p90 would not show the stall.
    holdUntil = 0;
    // The 300 ms count from when the timer runs, however late a loaded machine runs it.
    const timer = setTimeout(() => (holdUntil = Date.now() + 300), 200);
    const result = await pacedLoad({
      port,
      rate: 100,
      seconds: 1,
      connections: 2,
      request: () => ({ method: 'POST', path: '/found', body: '{"a":1}' }),
    });
    clearTimeout(timer);
    expect(result.requests).toBe(100);
    expect(result.bad).toBe(0);
    expect(result.max).toBeGreaterThanOrEqual(250);
    expect(result.p90).toBeGreaterThanOrEqual(100);
    expect(result.sentLate).toBeGreaterThanOrEqual(20);
    expect(result.dueWhileAllBusy).toBeGreaterThanOrEqual(20);
  });

  describe('on a server that answers in ways it must not miss', () => {
    /** A raw TCP server: `answer` writes whatever it likes for each request it reads. */
    async function rawServer(answer: (socket: net.Socket, requestNumber: number) => void) {
      let requests = 0;
      const sockets = new Set<net.Socket>();
      const raw = net.createServer((socket) => {
        sockets.add(socket);
        // The load drops its connections when it fails on purpose: a write then may meet a reset.
        socket.on('error', () => undefined);
        socket.on('data', (chunk) => {
          // One request per chunk: the paced load writes each request whole, one at a time.
          if (chunk.includes('\r\n\r\n')) answer(socket, ++requests);
        });
      });
      await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
      const close = async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => raw.close(resolve));
      };
      return { close, port: (raw.address() as AddressInfo).port };
    }
    const load = (rawPort: number) =>
      pacedLoad({
        port: rawPort,
        rate: 50,
        seconds: 0.4,
        connections: 2,
        request: () => ({ method: 'GET', path: '/' }),
      });
    const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}';

    it('reads an answer that comes in pieces', async () => {
      const { close, port: rawPort } = await rawServer((socket) => {
        socket.write(ok.slice(0, 20));
        setTimeout(() => socket.write(ok.slice(20, -1)), 5);
        setTimeout(() => socket.write(ok.slice(-1)), 10);
      });
      try {
        const result = await load(rawPort);
        expect(result.requests).toBe(20);
        expect(result.bad).toBe(0);
        expect(result.p50).toBeGreaterThanOrEqual(9);
      } finally {
        await close();
      }
    });

    it('fails when the server closes a connection during the load', async () => {
      const { close, port: rawPort } = await rawServer((socket, n) =>
        n === 5 ? socket.destroy() : socket.write(ok),
      );
      try {
        await expect(load(rawPort)).rejects.toThrow('the server closed a connection during the load');
      } finally {
        await close();
      }
    });

    it('fails on an answer no request asked for (two answers in one chunk)', async () => {
      const { close, port: rawPort } = await rawServer((socket, n) => socket.write(n === 3 ? ok + ok : ok));
      try {
        await expect(load(rawPort)).rejects.toThrow('an answer came on a connection with no request on it');
      } finally {
        await close();
      }
    });

    it('fails on an answer without a Content-Length, which it cannot read', async () => {
      const { close, port: rawPort } = await rawServer((socket) =>
        socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'),
      );
      try {
        await expect(load(rawPort)).rejects.toThrow('an answer without Content-Length (status 200)');
      } finally {
        await close();
      }
    });
  });
});
