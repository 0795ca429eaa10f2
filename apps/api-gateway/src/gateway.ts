import { INestApplication } from '@nestjs/common';
import { REQUEST_ID_HEADER } from '@herald/contracts';
import { plainHttpLogging, requestIdOf, startApp } from '@herald/observability';
import type { NextFunction, Request, Response } from 'express';
import { AppModule, createKeyStore } from './app.module';
import { GatewayConfig } from './config';
import { setupOpenApi } from './docs/openapi';
import { expressErrorHandler } from './errors/error.filter';

export const BODY_LIMIT = '1mb';
export const VERSION = '0.1.0';
/** Request lines are buffered and written at least this often (one synchronous write per request cost ~8% CPU). */
const LOG_FLUSH_MS = 200;

/** Builds and starts the gateway; tests call this too, with their own config. */
export async function startGateway(config: GatewayConfig): Promise<INestApplication> {
  const keys = createKeyStore(config);
  const logging = plainHttpLogging('api-gateway', config.LOG_LEVEL, { flushEveryMs: LOG_FLUSH_MS });
  return startApp(AppModule.register(config, keys, logging.params), {
    port: config.PORT,
    configure: (app) => {
      // No ETag hashing of every JSON body (the API's lists change, clients do not revalidate) and no banner.
      app.set('etag', false);
      app.disable('x-powered-by');
      // The request id is set before anything can fail, so every response carries it.
      app.use((req: Request, res: Response, next: NextFunction) => {
        res.setHeader(REQUEST_ID_HEADER, requestIdOf(req));
        next();
      });
      app.use(logging.middleware);
      // Every body is read as JSON (whatever its content-type): anything else is a 400, over 1 MiB a 413.
      app.useBodyParser('json', { limit: BODY_LIMIT, strict: true, type: () => true });
      app.use(expressErrorHandler);
      setupOpenApi(app, VERSION);
    },
  });
}
