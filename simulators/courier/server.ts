/**
 * The courier simulator: one small HTTP server speaking the native format (`/native`),
 * EasyParcel (`/easyparcel`) and Blue Dart (`/bluedart`), with a control API (`/control`)
 * that tests, the demo and the benchmarks use to script parcels, change the time scale,
 * inject faults and read call counts. State lives in memory; see README.md in this folder.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from '../../src/logger';
import { listen, Sleeper } from '../http-server';
import { controlRoutes } from './control';
import { SimRequestError, SimulatorCore } from './core';
import { spoilBody } from './faults';
import { registerBlueDartRoutes, type BlueDartRouteOptions } from './formats/bluedart';
import { registerEasyParcelRoutes } from './formats/easyparcel';
import type { SimFormat } from './model';
import { nativeRoutes, simError } from './native';
import { callKind } from './stats';

const FORMAT_PREFIX = /^\/(native|easyparcel|bluedart)(?:[/?]|$)/;

/** The format a request is addressed to, from its URL; null for control and anything else. */
export function formatOfRequest(url: string): SimFormat | null {
  return (FORMAT_PREFIX.exec(url)?.[1] as SimFormat | undefined) ?? null;
}

export interface EasyParcelCredentials {
  clientId: string;
  clientSecret: string;
  /** The refresh token the token endpoint accepts. */
  refreshToken: string;
  /** Lifetime of an issued access token, in real seconds. */
  tokenTtlSeconds: number;
}

/** Defaults match src/config's defaults, so `npm start` needs no extra settings. */
export const DEFAULT_EASYPARCEL: EasyParcelCredentials = {
  clientId: 'waybill-dev',
  clientSecret: 'waybill-dev-secret',
  refreshToken: 'waybill-dev-refresh-token',
  tokenTtlSeconds: 3600,
};

export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Courier ms per real ms: 1 real time, 1440 one courier day per real minute. Default 1. */
  timeScale?: number;
  log?: Logger;
  easyParcel?: EasyParcelCredentials;
  /** Blue Dart credentials the calls must carry; default: any are accepted. */
  blueDart?: BlueDartRouteOptions;
  /** Real clock (ms since the epoch); tests inject one to move time without sleeping. */
  now?: () => number;
  /** Seed of every fault PRNG. Default 1. */
  seed?: number;
}

export interface RunningSimulator {
  url: string;
  port: number;
  stop(): Promise<void>;
  backend: SimulatorCore;
}

/** Builds the simulator's Fastify app around a core (not listening). */
export async function buildSimulatorApp(
  core: SimulatorCore,
  opts: Pick<SimulatorOptions, 'log' | 'easyParcel' | 'blueDart'> & { sleeper?: Sleeper } = {},
): Promise<{ app: FastifyInstance; wakeSleepers: () => void }> {
  const sleeper = opts.sleeper ?? new Sleeper();
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log as FastifyBaseLogger } : { logger: false }),
    // Per-request lines would drown the stack's log: thousands of polls in a demo run.
    logController: new LogController({ disableRequestLogging: true }),
    // Coercion reaches query strings only in practice (`?parcels=true`); bodies are JSON.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Faults and counting come first, so they apply to every format's routes alike.
  const spoiled = new WeakMap<FastifyRequest, 'truncated' | 'gzipped'>();
  app.addHook('onRequest', async (request, reply) => {
    const format = formatOfRequest(request.url);
    if (!format) return;
    core.stats.call(format, callKind(request.url));
    const decision = core.faults.decide(format);
    if (decision.delayMs > 0) {
      core.stats.fault(format, 'latency');
      await sleeper.sleep(decision.delayMs);
    }
    if (decision.answer) {
      const { answer } = decision;
      core.stats.fault(format, answer.fault);
      request.log.debug({ format, fault: answer.fault, url: request.url }, 'simulated fault');
      void reply.code(answer.status).headers(answer.headers).type(answer.contentType).send(answer.body);
      return reply;
    }
    if (decision.malformed) spoiled.set(request, decision.malformed);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const format = formatOfRequest(request.url);
    if (!format) return payload;
    const mode = spoiled.get(request);
    let body = payload;
    if (mode && reply.statusCode < 300 && (typeof payload === 'string' || Buffer.isBuffer(payload))) {
      core.stats.fault(format, 'malformed');
      void reply.code(200);
      body = spoilBody(payload, mode);
    }
    core.stats.status(format, reply.statusCode);
    return body;
  });

  app.setErrorHandler((err: FastifyError | SimRequestError, request, reply) => {
    if (err instanceof SimRequestError)
      return reply.code(err.statusCode).send(simError(err.code, err.message));
    if (err.validation) {
      return reply.code(400).send(simError('VALIDATION_FAILED', err.message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500)
      return reply.code(status).send(simError(err.code ?? 'BAD_REQUEST', err.message));
    request.log.error({ err }, 'simulator request failed');
    return reply.code(500).send(simError('INTERNAL', 'simulator error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(simError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  await app.register(controlRoutes, { prefix: '/control', core });
  await app.register(nativeRoutes, { prefix: '/native', core });
  const easyParcel = opts.easyParcel ?? DEFAULT_EASYPARCEL;
  await app.register(
    async (scope) => registerEasyParcelRoutes(scope, core, { ...easyParcel, now: core.clock.now }),
    { prefix: '/easyparcel' },
  );
  await app.register(async (scope) => registerBlueDartRoutes(scope, core, opts.blueDart ?? {}), {
    prefix: '/bluedart',
  });

  return { app, wakeSleepers: () => sleeper.wakeAll() };
}

/** Starts the simulator listening on `host:port` (port 0 picks a free one). */
export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const core = new SimulatorCore({
    now: opts.now ?? Date.now,
    timeScale: opts.timeScale ?? 1,
    seed: opts.seed ?? 1,
  });
  const { app, wakeSleepers } = await buildSimulatorApp(core, opts);
  return { ...(await listen(app, { host: opts.host, port: opts.port, wakeSleepers })), backend: core };
}
