import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_ID_HEADER } from '@herald/contracts';
import type { Params } from 'nestjs-pino';
import { requestContextFields } from './request-context';

/** A request id from a client is kept when it is short and printable; otherwise Herald makes one. */
const ACCEPTABLE_REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(given) ? given[0] : given;
  return value && ACCEPTABLE_REQUEST_ID.test(value) ? value : `req_${randomUUID()}`;
}

/** pino settings shared by every service: JSON lines, the request id on every line, no secrets. */
export function loggerParams(service: string, level: string): Params {
  return {
    pinoHttp: {
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
      redact: { paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'req.headers.cookie'], censor: '[REDACTED]' },
      autoLogging: { ignore: (req: IncomingMessage) => ['/healthz', '/readyz', '/metrics'].includes(req.url ?? '') },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ method: req.method, url: req.url }),
      },
    },
  };
}
