/**
 * The API's request log: one line per request at info, written once the answer has gone,
 * with the request id, method, url (secrets redacted), status and time; Fastify's
 * "incoming request" line only at debug.
 */
import pino from 'pino';
import { useStack } from '../support/stack';

describe('request log', () => {
  const stack = useStack({ worker: false, payments: false });

  async function logOf(level: pino.Level, url: string, headers: Record<string, string> = {}) {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const api = await stack.anotherApi({ log });
    const res = await api.app.inject({ method: 'GET', url, headers });
    await api.close();
    const ours = lines.filter((l) => l.reqId === res.headers['x-request-id']);
    return { res, lines, ours };
  }

  it('writes one line per request at info, when it is answered, with its id, method, url, status and time', async () => {
    const { res, ours } = await logOf('info', '/v1/tracking/NOSUCH0001', { 'x-request-id': 'req-log-1' });
    expect(res.statusCode).toBe(404);
    expect(ours).toEqual([
      expect.objectContaining({
        level: 30,
        msg: 'request completed',
        reqId: 'req-log-1',
        method: 'GET',
        url: '/v1/tracking/NOSUCH0001',
        remoteAddress: '127.0.0.1',
        statusCode: 404,
        responseTime: expect.any(Number),
      }),
    ]);
  });

  it('redacts a secret in the query string of the line', async () => {
    const { ours } = await logOf('info', '/health/live?token=s3cr3t-value&x=1');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.url).toBe('/health/live?token=[redacted]&x=1');
    expect(JSON.stringify(ours)).not.toContain('s3cr3t-value');
  });

  it('adds the incoming line at debug, and writes nothing for an answered request above info', async () => {
    const debug = await logOf('debug', '/health/live');
    expect(debug.ours.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect(debug.ours[0]).toMatchObject({ level: 20, req: { method: 'GET', url: '/health/live' } });

    const warn = await logOf('warn', '/health/live');
    expect(warn.res.statusCode).toBe(200);
    expect(warn.ours).toEqual([]);
  });
});
