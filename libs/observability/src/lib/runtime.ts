import { DynamicModule, INestApplication, Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';

export interface StartOptions {
  port: number;
  /** Body parsing is the gateway's business; services only serve probes and metrics. */
  configure?: (app: NestExpressApplication) => void | Promise<void>;
}

/** Creates a Nest application with pino logs and shutdown hooks, and listens. */
export async function startApp(module: DynamicModule, options: StartOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(module, { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await options.configure?.(app);
  await app.listen(options.port, '0.0.0.0');
  return app;
}

/** Runs a `main`: a configuration error is printed plainly (it names the variable) and exits 1. */
export function runMain(service: string, main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    if (err instanceof Error && err.name === 'ConfigError') {
      process.stderr.write(`${service}: ${err.message}\n`);
    } else {
      new NestLogger(service).error(err instanceof Error ? err.stack ?? err.message : String(err));
    }
    process.exit(1);
  });
}
