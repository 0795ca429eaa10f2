import { DynamicModule, INestApplication, Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyServerOptions } from 'fastify';
import type { Server } from 'node:http';
import { Logger } from 'nestjs-pino';
import { ErrorBody, ErrorCode } from '@herald/contracts';

export interface StartOptions {
  port: number;
  /** Options of the Fastify instance (the gateway's request ids, request log and body limit). */
  fastify?: FastifyServerOptions;
  /** Body parsing is the gateway's business; services only serve probes and metrics. */
  configure?: (app: NestFastifyApplication) => void | Promise<void>;
}

/** What a request that arrives while the server closes gets: SPEC 2's envelope, not a bare 503. */
const CLOSING_BODY: { error: ErrorBody } = { error: { code: ErrorCode.ServiceUnavailable, message: 'The service is shutting down; retry on another replica.' } };

/**
 * Nest's Fastify adapter, answering every request that arrives once closing has begun with a 503 in
 * SPEC 2's envelope and `connection: close`. Nest's own `return503OnClosing` (and Fastify's, once
 * `close()` runs) answer with a body of their own, so both are off and this one hook covers both
 * phases: Nest calls `beforeClose()` when the application starts closing.
 */
class ClosingAwareFastifyAdapter extends FastifyAdapter {
  private closing = false;

  constructor(options: FastifyServerOptions) {
    super({ ...options, return503OnClosing: false });
    this.getInstance().addHook('onRequest', (_request, reply, done) => {
      if (!this.closing) return done();
      reply.header('connection', 'close').code(503).send(CLOSING_BODY);
    });
  }

  override beforeClose(): void {
    this.closing = true;
    super.beforeClose();
  }
}

/**
 * Creates a Nest application on Fastify with pino logs, and listens. Once closing begins, every new
 * request (including /readyz) gets a 503 with `connection: close`, so a load balancer stops sending
 * work, while requests already in flight run to their end.
 */
export async function startApp(module: DynamicModule, options: StartOptions): Promise<INestApplication> {
  // Node's keep-alive timeout (5 s, as on Express) rather than Fastify's 72 s: a keep-alive
  // connection that goes idle after closing began is not closed by `close()`, and holds the
  // server open until it times out (and clients keep idle sockets as long as the server says).
  const adapter = new ClosingAwareFastifyAdapter({ keepAliveTimeout: 5000, ...options.fastify });
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(Logger));
  await options.configure?.(app);
  await app.listen(options.port, '0.0.0.0');
  return app;
}

/** What a `main` hands back: the running app and how long its shutdown may take. */
export interface RunningApp {
  app: INestApplication;
  shutdownTimeoutMs: number;
}

/** The signals an orchestrator (SIGTERM) or a terminal (SIGINT, Ctrl-C) sends to stop a service. */
export const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Stops the app when the process is asked to: in Nest's order, consumers stop pulling and commit
 * and ack what they hold, RPC servers answer what is in flight, the sender hands back or finishes
 * its claimed deliveries (their `beforeApplicationShutdown` hooks), then the HTTP server closes
 * after its in-flight requests, then NATS is drained and Postgres closed (`onApplicationShutdown`).
 * Exits 0 when all of that is done, 1 when it is not done within `shutdownTimeoutMs` (whatever is
 * unacked then is redelivered by JetStream, and claimed deliveries are taken over after their lease)
 * or when the same signal arrives a second time.
 *
 * Written here instead of Nest's `enableShutdownHooks`, which re-raises the signal after closing
 * (the process then ends "killed by SIGTERM", not 0) and has no deadline.
 */
export function exitOnSignals(service: string, running: RunningApp): void {
  const logger = new NestLogger(service);
  let closingOn: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // Ctrl-C under `npm start` reaches a service twice, as SIGINT from the terminal and SIGTERM from
    // the launcher: only the same signal again (a second Ctrl-C) means "stop waiting".
    if (closingOn === signal) {
      logger.warn(`${signal} again while shutting down: exiting now`);
      process.exit(1);
    }
    if (closingOn) return;
    closingOn = signal;
    logger.log(`${signal}: shutting down, finishing in-flight work (at most ${running.shutdownTimeoutMs} ms)`);
    const deadline = setTimeout(() => {
      logger.error(`Shutdown did not finish within ${running.shutdownTimeoutMs} ms (SHUTDOWN_TIMEOUT_MS); exiting with unfinished work, which is redelivered`);
      process.exit(1);
    }, running.shutdownTimeoutMs);
    deadline.unref();
    // A response finished while closing ends its connection, so keep-alive clients do not hold the server open.
    const server = running.app.getHttpServer() as Server;
    server.on('request', (_req, res) => res.on('finish', () => server.closeIdleConnections()));
    const idle = setInterval(() => server.closeIdleConnections(), 200);
    idle.unref();
    running.app.close().then(
      () => {
        logger.log('Shut down cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error(`Shutdown failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        process.exit(1);
      },
    );
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
}

/**
 * Runs a `main`: a configuration error is printed plainly (it names the variable) and exits 1; once
 * the app runs, SIGTERM and SIGINT shut it down gracefully (see `exitOnSignals`).
 */
export function runMain(service: string, main: () => Promise<RunningApp>): void {
  main().then(
    (running) => exitOnSignals(service, running),
    (err: unknown) => {
      if (err instanceof Error && err.name === 'ConfigError') {
        process.stderr.write(`${service}: ${err.message}\n`);
      } else {
        new NestLogger(service).error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      }
      process.exit(1);
    },
  );
}
