/**
 * An open-loop load at a steady rate, for latency at a given throughput: request k is due at
 * start + k / rate, whatever happened to the ones before it, and its latency counts from
 * that due time (so a server that stalls is charged for every request it held up, the
 * "coordinated omission" a closed loop hides). Requests go over a fixed set of keep-alive
 * HTTP/1.1 connections, one at a time on each; a due request waits for the first free one.
 *
 * Why not autocannon's `overallRate`: it does not pace. Each connection sends back to back at
 * full speed until it has made its share of the second, then waits for the next second, so
 * the server sees bursts at its maximum rate. And its correction for coordinated omission
 * (lib/run.js in 9.0.0) takes the expected interval as `Math.ceil(1 / rate)` with `rate` in
 * requests per second per connection, which is 1 ms whatever the rate: an answer of x ms
 * adds x - 1 made-up ones of x - 1, x - 2, … 1 ms.
 *
 * Plain sockets rather than an HTTP client, to keep the load generator's own CPU small on a
 * machine it shares with the server: it handles answers with a Content-Length (what Fastify
 * sends for JSON) and fails on anything else.
 */
import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { percentile } from './measure';

export interface PacedRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PacedResult {
  rate: number;
  /** Requests answered, and of them not 2xx. */
  requests: number;
  bad: number;
  /** Latency from each request's due time to its whole answer (ms). */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** From the moment the request was written (what the server and the network took), p99 (ms). */
  serviceP99: number;
  /** Requests written more than 1 ms after they were due (no connection free, or this process late). */
  sentLate: number;
  /** Requests that fell due while every connection was busy (a queue on the load's side). */
  dueWhileAllBusy: number;
  /** How late this process's own event loop ran (ms), p99 and max: the load generator's part in `sentLate`. */
  clientLoopDelayP99: number;
  clientLoopDelayMax: number;
}

interface Connection {
  socket: net.Socket;
  /** The request on it: due and written times (ms, performance clock), or null when free. */
  inFlight: { due: number; sent: number } | null;
  buffer: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n');

function encode(port: number, request: PacedRequest): Buffer {
  const body = request.body === undefined ? null : Buffer.from(request.body);
  const lines = [`${request.method} ${request.path} HTTP/1.1`, `host: 127.0.0.1:${port}`];
  for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`${name}: ${value}`);
  if (body) lines.push(`content-length: ${body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
  return body ? Buffer.concat([head, body]) : head;
}

/** The status and total length of the first whole answer in `buffer`, or null while it is incomplete. */
function answerIn(buffer: Buffer): { status: number; length: number } | null {
  const end = buffer.indexOf(HEADER_END);
  if (end < 0) return null;
  const head = buffer.subarray(0, end).toString('latin1');
  const status = Number(head.slice(9, 12));
  const match = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (!match)
    throw new Error(`an answer without Content-Length (status ${status}): the paced load reads only those`);
  const length = end + HEADER_END.length + Number(match[1]);
  return buffer.length >= length ? { status, length } : null;
}

export async function pacedLoad(opts: {
  port: number;
  rate: number;
  seconds: number;
  connections: number;
  request: () => PacedRequest;
}): Promise<PacedResult> {
  const latencies: number[] = [];
  const services: number[] = [];
  let bad = 0;
  let sentLate = 0;
  let dueWhileAllBusy = 0;
  const waiting: number[] = []; // due times of requests not yet written, oldest first
  let failure: Error | null = null;

  // Every connection opened before the load starts; one that fails closes the others.
  const opened = await Promise.allSettled(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port: opts.port, noDelay: true }, () =>
            resolve({ socket, inFlight: null, buffer: Buffer.alloc(0) }),
          );
          socket.once('error', reject);
        }),
    ),
  );
  const connections = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const refused = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (refused) {
    for (const connection of connections) connection.socket.destroy();
    throw refused.reason;
  }
  const idle: Connection[] = [...connections];
  let stopping = false;

  const dispatch = () => {
    while (waiting.length > 0 && idle.length > 0) {
      const due = waiting.shift()!;
      const connection = idle.pop()!;
      const sent = performance.now();
      if (sent - due > 1) sentLate += 1;
      connection.inFlight = { due, sent };
      connection.socket.write(encode(opts.port, opts.request()));
    }
  };

  for (const connection of connections) {
    connection.socket.removeAllListeners('error');
    connection.socket.on('error', (err) => (failure ??= err));
    // A connection the server closes would hold its request for ever, and the load would
    // lose a connection unseen: the run fails instead.
    connection.socket.on('close', () => {
      if (!stopping) failure ??= new Error('the server closed a connection during the load');
    });
    connection.socket.on('data', (chunk: Buffer) => {
      connection.buffer = connection.buffer.length === 0 ? chunk : Buffer.concat([connection.buffer, chunk]);
      for (;;) {
        let answer: { status: number; length: number } | null;
        try {
          answer = answerIn(connection.buffer);
        } catch (err) {
          failure ??= err as Error;
          return;
        }
        if (!answer) return;
        if (!connection.inFlight) {
          failure ??= new Error('an answer came on a connection with no request on it');
          return;
        }
        const now = performance.now();
        latencies.push(now - connection.inFlight.due);
        services.push(now - connection.inFlight.sent);
        if (!(answer.status >= 200 && answer.status <= 299)) bad += 1;
        connection.buffer = connection.buffer.subarray(answer.length);
        connection.inFlight = null;
        idle.push(connection);
        dispatch();
      }
    });
  }

  // This process's own lateness: a request written late because the load generator was
  // busy counts against the server like any other wait, so it is reported beside it.
  const clientLoop = monitorEventLoopDelay({ resolution: 1 });
  clientLoop.enable();
  const interval = 1000 / opts.rate;
  const total = Math.floor(opts.rate * opts.seconds);
  const start = performance.now();
  let scheduled = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (scheduled < total && start + scheduled * interval <= now) {
        if (waiting.length >= idle.length) dueWhileAllBusy += 1; // the ones waiting take the free ones first
        waiting.push(start + scheduled * interval);
        scheduled += 1;
      }
      dispatch();
      if (scheduled < total && failure === null)
        setTimeout(tick, Math.max(0, start + scheduled * interval - now));
      else resolve();
    };
    tick();
  });
  // The last ones answered, within reason.
  const deadline = performance.now() + 10_000;
  while ((waiting.length > 0 || idle.length < connections.length) && failure === null) {
    if (performance.now() > deadline) {
      failure = new Error(
        `${waiting.length + connections.length - idle.length} requests unanswered 10 s after the last was due`,
      );
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  stopping = true;
  for (const connection of connections) connection.socket.destroy();
  clientLoop.disable();
  if (failure) throw failure;

  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    rate: opts.rate,
    requests: latencies.length,
    bad,
    p50: round(percentile(latencies, 50)),
    p90: round(percentile(latencies, 90)),
    p99: round(percentile(latencies, 99)),
    max: round(latencies.reduce((a, b) => Math.max(a, b), 0)),
    serviceP99: round(percentile(services, 99)),
    sentLate,
    dueWhileAllBusy,
    // The monitor's own resolution (1 ms) is in every sample: what is above it is delay.
    clientLoopDelayP99: Math.max(0, round(clientLoop.percentile(99) / 1e6 - 1)),
    clientLoopDelayMax: Math.max(0, round(clientLoop.max / 1e6 - 1)),
  };
}
