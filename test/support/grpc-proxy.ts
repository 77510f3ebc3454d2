/**
 * A plain-text gRPC proxy in front of a real Temporal server that refuses chosen methods the
 * way an authorizer does (e.g. PERMISSION_DENIED for the operator API), and passes every other
 * call through unchanged. It stands in for the part we don't own: a server whose owner did
 * not grant the worker operator rights, or Temporal Cloud.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface Refusal {
  /** gRPC status code, e.g. 7 PERMISSION_DENIED. */
  code: number;
  message: string;
}

export interface RunningGrpcProxy {
  address: string;
  /** Full method paths refused so far, e.g. /temporal.api.operatorservice.v1.OperatorService/AddSearchAttributes. */
  refused: string[];
  close(): Promise<void>;
}

export async function startGrpcProxy(opts: {
  target: string;
  /** Whether to refuse a call, from its method path and request headers (its credentials). */
  refuse: (method: string, headers: http2.IncomingHttpHeaders) => Refusal | null;
}): Promise<RunningGrpcProxy> {
  const upstream = http2.connect(`http://${opts.target}`);
  upstream.on('error', () => undefined);
  const refused: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const method = String(headers[':path']);
    const refusal = opts.refuse(method, headers);
    if (refusal) {
      refused.push(method);
      // A trailers-only answer, as a server's interceptor gives it.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': String(refusal.code),
          'grpc-message': encodeURIComponent(refusal.message),
        },
        { endStream: true },
      );
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name === ':authority' || name === ':scheme' || name === 'connection') continue;
      forwarded[name] = value;
    }
    const call = upstream.request(forwarded);
    call.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on('trailers', (t) => {
      trailers = {};
      for (const [name, value] of Object.entries(t)) {
        if (!name.startsWith(':')) trailers[name] = value as string | string[];
      }
    });
    call.on('response', (response) => {
      const { ':status': status, ...rest } = response;
      if (rest['grpc-status'] !== undefined) {
        // Trailers-only: the server's answer is an error and ends here.
        stream.respond({ ':status': status ?? 200, ...rest }, { endStream: true });
        return;
      }
      stream.respond({ ':status': status ?? 200, ...rest }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      call.pipe(stream);
    });
    stream.pipe(call);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    refused,
    async close() {
      upstream.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
