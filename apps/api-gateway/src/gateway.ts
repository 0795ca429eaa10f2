import { INestApplication } from '@nestjs/common';
import { ErrorCode, HeraldError, REQUEST_ID_HEADER } from '@herald/contracts';
import { fastifyRequestLogging, startApp } from '@herald/observability';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppModule, createKeyStore } from './app.module';
import { GatewayConfig } from './config';
import { setupOpenApi } from './docs/openapi';
import { HTTP_EDGE_OPTIONS, MAX_PARAM_LENGTH, answerAfterBody, answerOutsideFastify } from './errors/http-edge';
import { serializeReply } from './rpc/rpc-reply.serializer';
import { depthProblem, refuseUnstorableInput, unstorableAt } from './validation/storable-input';

/** 1 MiB: a larger body is a 413 before it is read (Fastify checks content-length, then counts). */
export const BODY_LIMIT_BYTES = 1024 * 1024;
export const VERSION = '0.1.0';
/** Request lines are buffered and written at least this often (one synchronous write per request cost ~8% CPU). */
const LOG_FLUSH_MS = 200;

/**
 * Every body is read as JSON, whatever its content-type (SPEC 2): an object or an array, or an
 * empty body as `{}`; anything else is a 400. Strict like Express's JSON parser was: a bare string
 * or number is not a request body. A body Herald cannot store (too deep, or U+0000 or a lone
 * surrogate in a key or string: `validation/storable-input.ts`) is a 422.
 */
export function parseJsonBody(_req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void {
  if (body.length === 0) return done(null, {});
  const first = /\S/.exec(body)?.[0];
  let value: unknown;
  try {
    if (first !== '{' && first !== '[') throw new SyntaxError('not an object or an array');
    value = JSON.parse(body);
  } catch {
    return done(new HeraldError(ErrorCode.BadRequest, 'The request body is not valid JSON.'));
  }
  const problem = depthProblem(body) ?? unstorableAt(value);
  if (problem) return done(HeraldError.validation([problem]));
  done(null, value);
}

/** Builds and starts the gateway; tests call this too, with their own config. */
export async function startGateway(config: GatewayConfig): Promise<INestApplication> {
  const keys = createKeyStore(config);
  const logging = fastifyRequestLogging('api-gateway', config.LOG_LEVEL, { flushEveryMs: LOG_FLUSH_MS });
  return startApp(AppModule.register(config, keys, logging.params), {
    port: config.PORT,
    // `/api/webhooks/` is `/api/webhooks`, as it was on Express. A longer parameter is a 404: no id is longer.
    fastify: { ...logging.fastify, ...HTTP_EDGE_OPTIONS, bodyLimit: BODY_LIMIT_BYTES, routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH } },
    configure: (app) => {
      const fastify = app.getHttpAdapter().getInstance();
      // The request id is set before anything can fail, so every response carries it (404s too).
      fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
        reply.header(REQUEST_ID_HEADER, request.id);
        done();
      });
      // A body not read (over the limit, or sent where none is taken) is read before the answer goes out.
      fastify.addHook('onSend', answerAfterBody);
      answerOutsideFastify(fastify.server);
      fastify.addHook('preValidation', refuseUnstorableInput);
      // Set by the auth guard; declared up front so every request object keeps one shape.
      fastify.decorateRequest('principal', null);
      // Before the routes exist (they are registered at listen): each route keeps the serializer it was made with.
      fastify.setReplySerializer(serializeReply);
      fastify.removeAllContentTypeParsers();
      fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, parseJsonBody);
      setupOpenApi(app, VERSION);
    },
  });
}
