/**
 * The API's request log: one line per request at `info`, written when the answer has gone
 * ("request completed", with the method, the url (secret query values redacted: ./log-redact.ts),
 * the client's address, the status and the time taken), under the request's id (`reqId`).
 * Fastify's "incoming request" line is kept at `debug`, for tracing a request that never ends.
 *
 * Each request's logger is a child of the API's logger bound to the request id; it is built
 * only when something logs through it, so a request that logs nothing (every request when
 * the level is above `info`) builds none.
 */
import {
  LogController,
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilent } from 'pino';
import { redactUrl } from './log-redact';

/** Request lines at info, Fastify's own incoming line at debug (see above). */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    const line = {
      method: request.method,
      url: redactUrl(request.url),
      remoteAddress: request.ip,
      statusCode: reply.statusCode,
      responseTime: reply.elapsedTime,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/** Numeric pino levels, as `levelVal` holds them. */
const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type LogMethod = keyof typeof LEVEL;

type PinoLike = FastifyBaseLogger & { levelVal?: number };

/**
 * A request's logger that becomes `parent.child(bindings, options)` on its first line (or
 * child, or level change); a line below the parent's level is dropped without building it.
 */
class LazyChildLogger {
  #child: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: PinoLike,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The child itself, built on first use. */
  get real(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options));
  }

  /** Whether a line at this level would be written (without building the child to know). */
  enabled(method: LogMethod): boolean {
    if (this.#child !== null) return true;
    const { levelVal } = this.parent;
    return levelVal === undefined || levelVal <= LEVEL[method];
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level;
  }

  set level(level: LevelWithSilent | string) {
    this.real.level = level;
  }

  // One method per level (set on the prototype below): `(obj, msg, ...args)` as pino takes them.
  declare trace: FastifyBaseLogger['trace'];
  declare debug: FastifyBaseLogger['debug'];
  declare info: FastifyBaseLogger['info'];
  declare warn: FastifyBaseLogger['warn'];
  declare error: FastifyBaseLogger['error'];
  declare fatal: FastifyBaseLogger['fatal'];
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }
}

for (const method of Object.keys(LEVEL) as LogMethod[]) {
  Object.defineProperty(LazyChildLogger.prototype, method, {
    value: function (this: LazyChildLogger, ...args: unknown[]) {
      if (this.enabled(method)) (this.real[method] as (...line: unknown[]) => void)(...args);
    },
  });
}

/**
 * Fastify's `childLoggerFactory`: a lazy child per request. A route with a log level of its
 * own gets its child at once (its level decides what is dropped, not the parent's).
 */
export const lazyRequestLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (
  logger,
  bindings,
  options,
) =>
  options.level !== undefined
    ? logger.child(bindings, options)
    : (new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger);
