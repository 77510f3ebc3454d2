/**
 * Development only: the codec endpoint `npm start` gives the Temporal dev server's UI.
 *
 * The UI calls a codec server without our staff token (it can pass only its own OIDC login's
 * token, over HTTPS, and the dev server's UI has no login), so the API's codec server would
 * answer it 401. This loopback-only relay adds an ops token signed with the published
 * development staff key and forwards to the API's `/codec/decode` / `/codec/encode`, so a
 * developer opening the UI sees decoded histories. It grants nothing new: anyone on this
 * machine can mint that token with `npm run token -- ops <id>`. The stack starts it only while
 * the API accepts the published development staff key; with real staff keys the UI talks to
 * the API's codec server directly and shows ciphertext to anyone without a token
 * (docs/operations.md says how ops read histories then).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { staffToken } from '../src/api/tokens';
import type { Config } from '../src/config';

export interface RunningCodecProxy {
  /** What to give the UI as its codec endpoint. */
  url: string;
  stop(): Promise<void>;
}

/** The staff id the relay's requests carry: the API's codec log names it. */
export const UI_CODEC_STAFF_ID = 'temporal-ui-dev';

export async function startUiCodecProxy(config: Config, apiUrl: string): Promise<RunningCodecProxy> {
  const origins = new Set(config.payloads.codecCorsOrigins);
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) {
      res.writeHead(403).end();
      return;
    }
    if (origin !== undefined) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    // The protocol: only the last path segment says which operation.
    const operation = (req.url ?? '').split('?')[0]!.split('/').pop();
    if (operation !== 'decode' && operation !== 'encode') {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'OPTIONS') {
      res
        .writeHead(204, {
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': 'authorization, content-type, x-namespace',
          'access-control-max-age': '600',
        })
        .end();
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        try {
          const answer = await fetch(`${apiUrl}/codec/${operation}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${staffToken(config, UI_CODEC_STAFF_ID, 'ops')}`,
              ...(typeof req.headers['x-namespace'] === 'string'
                ? { 'x-namespace': req.headers['x-namespace'] }
                : {}),
            },
            body: Buffer.concat(chunks),
            signal: AbortSignal.timeout(10_000),
          });
          res
            .writeHead(answer.status, { 'content-type': 'application/json' })
            .end(Buffer.from(await answer.arrayBuffer()));
        } catch (err) {
          res.writeHead(502, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              error: {
                code: 'API_UNREACHABLE',
                message: `the API's codec server: ${(err as Error).message}`,
              },
            }),
          );
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
