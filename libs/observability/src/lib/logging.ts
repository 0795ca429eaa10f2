import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER } from '@herald/contracts';
import { FastifyReply, FastifyRequest, FastifyServerOptions, LogController } from 'fastify';
import type { Params } from 'nestjs-pino';
import { Logger, destination, pino } from 'pino';
import type { Options } from 'pino-http';
import { requestContextFields } from './request-context';

/** A request id from a client is kept when it is short and printable; otherwise Herald makes one. */
const ACCEPTABLE_REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(given) ? given[0] : given;
  return value && ACCEPTABLE_REQUEST_ID.test(value) ? value : `req_${randomUUID()}`;
}

export interface LoggingOptions {
  /**
   * Buffer log lines and write them at least every this many ms (and on exit) instead of one
   * synchronous write per line; 0 writes each line at once. The gateway writes a line per request,
   * and a synchronous write per line was ~8% of its CPU.
   */
  flushEveryMs?: number;
}

/** Probes and scrapes: frequent and uninteresting, so they write no request line. */
const UNLOGGED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

function pinoHttpOptions(service: string, level: string): Options {
  return {
    level,
    base: { service },
    messageKey: 'msg',
    // Work done for an RPC request (dispatcher, audit-writer) logs with the gateway's request id.
    mixin: requestContextFields,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const set = res.getHeader(REQUEST_ID_HEADER);
      const id = typeof set === 'string' ? set : requestIdOf(req);
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    customAttributeKeys: { reqId: 'requestId' },
    // The request line itself carries the id too (the serializer below leaves it out of `req`).
    customProps: (req: IncomingMessage & { id?: unknown }) => ({ requestId: req.id }),
    autoLogging: { ignore: (req: IncomingMessage) => UNLOGGED_PATHS.has(req.url ?? '') },
    // Only what an operator needs: no headers, so neither keys nor tokens can reach a line (this
    // replaces a redact list, which cost a pass over every line).
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({ method: req.method, url: req.url }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  };
}

function stream(options: LoggingOptions) {
  return options.flushEveryMs ? destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: options.flushEveryMs }) : undefined;
}

/** pino settings shared by every service: JSON lines, the request id on every line, no secrets. */
export function loggerParams(service: string, level: string, options: LoggingOptions = {}): Params {
  const out = stream(options);
  return { pinoHttp: out ? [pinoHttpOptions(service, level), out] : pinoHttpOptions(service, level) };
}

/**
 * Fastify's request logging, replaced through its `logController` extension point: one line per
 * request when it completes, in the shape pino-http writes in the services (`requestId`,
 * `req: {method, url}`, `res: {statusCode}`, `responseTime`, "request completed", or "request
 * errored" at level error for a 5xx), and never headers. Fastify's own would give every request a
 * child logger and a second line as it arrives; this one costs one `logger.info` per request.
 */
export class RequestLines extends LogController {
  constructor(private readonly logger: Logger) {
    super({ disableRequestLogging: (req: { url?: string }) => UNLOGGED_PATHS.has(req.url ?? '') });
  }

  override incomingRequest(): void {
    // One line per request, written when it completes.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const line = { requestId: request.id, req: { method: request.method, url: request.url }, res: { statusCode: reply.statusCode }, responseTime: Math.round(reply.elapsedTime * 1000) / 1000 };
    if (error || reply.statusCode >= 500) this.logger.error(error ? { ...line, err: error } : line, 'request errored');
    else this.logger.info(line, 'request completed');
  }
}

/**
 * For the gateway's hot path: Fastify options that take the request id from the client when
 * acceptable (`request.id`) and write the request lines (`RequestLines`), and nestjs-pino's module
 * bound to the same logger but with no routes. nestjs-pino's own middleware runs every request
 * inside an AsyncLocalStorage, which turns on async hooks for every promise of the request (about
 * 10% of the gateway's CPU per request); the gateway does not need it, since its log lines outside
 * the request line are few and name the request id themselves.
 */
export function fastifyRequestLogging(service: string, level: string, options: LoggingOptions = {}): { fastify: FastifyServerOptions; params: Params } {
  const out = stream(options);
  const settings = { level, base: { service }, messageKey: 'msg', mixin: requestContextFields };
  const logger = out ? pino(settings, out) : pino(settings);
  return {
    fastify: { genReqId: requestIdOf, logController: new RequestLines(logger) },
    params: { pinoHttp: { logger }, forRoutes: [] },
  };
}
