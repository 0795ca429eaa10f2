import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER } from '@herald/contracts';
import type { Params } from 'nestjs-pino';
import { destination } from 'pino';
import { HttpLogger, Options, pinoHttp } from 'pino-http';
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
    autoLogging: { ignore: (req: IncomingMessage) => ['/healthz', '/readyz', '/metrics'].includes(req.url ?? '') },
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
 * For the gateway's hot path: request logging as a plain Express middleware, and nestjs-pino's
 * module bound to the same logger but with no routes. nestjs-pino's own middleware runs every
 * request inside an AsyncLocalStorage, which turns on async hooks for every promise of the request
 * (about 10% of the gateway's CPU per request); the gateway does not need it, since its log lines
 * outside pino-http are few and name the request id themselves.
 */
export function plainHttpLogging(service: string, level: string, options: LoggingOptions = {}): { middleware: HttpLogger; params: Params } {
  const out = stream(options);
  const middleware = out ? pinoHttp(pinoHttpOptions(service, level), out) : pinoHttp(pinoHttpOptions(service, level));
  return { middleware, params: { pinoHttp: { logger: middleware.logger }, forRoutes: [] } };
}
