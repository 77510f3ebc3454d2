import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
});
