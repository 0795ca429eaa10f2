import { ChildProcess, spawn } from 'node:child_process';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { loadConfig } from '@herald/config';
import { migrateSchema } from '@herald/database';
import { startApp } from '@herald/observability';
import { TestEnv, createTestEnv, waitFor } from '@herald/testing';
import { AppModule as AuditWriterModule } from '../apps/audit-writer/src/app.module';
import { AuditWriterConfig } from '../apps/audit-writer/src/config';
import { auditSchema } from '../apps/audit-writer/src/migrate';
import { AppModule as DispatcherModule } from '../apps/dispatcher/src/app.module';
import { DispatcherConfig } from '../apps/dispatcher/src/config';
import { dispatchSchema } from '../apps/dispatcher/src/migrate';
import { GatewayConfig } from '../apps/api-gateway/src/config';
import { startGateway } from '../apps/api-gateway/src/gateway';

export type AppName = 'api-gateway' | 'dispatcher' | 'audit-writer';

export function urlOf(app: INestApplication): string {
  const addr = app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${addr.port}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function migrate(env: TestEnv): Promise<void> {
  for (const s of [dispatchSchema, auditSchema]) await migrateSchema({ url: env.databaseUrl, ...s });
}

/** Starts one app inside the test process with the env's variables plus `overrides`. */
export async function startInProcess(name: AppName, env: TestEnv, overrides: Record<string, string> = {}): Promise<INestApplication> {
  const vars = { ...env.vars, ...overrides };
  switch (name) {
    case 'api-gateway':
      return startGateway(loadConfig(GatewayConfig, vars));
    case 'dispatcher':
      return startApp(DispatcherModule.register(loadConfig(DispatcherConfig, { DATA_DIR: join('/tmp', `herald-${env.id}`), ...vars })), { port: 0 });
    case 'audit-writer':
      return startApp(AuditWriterModule.register(loadConfig(AuditWriterConfig, vars)), { port: 0 });
  }
}

/** A built app (`dist/apps/<name>/main.js`) as its own process, as the images run it. */
export class ServiceProcess {
  child?: ChildProcess;
  output = '';
  exit?: Promise<number | null>;

  constructor(
    readonly name: AppName,
    readonly vars: Record<string, string>,
    readonly port: number,
  ) {}

  static async start(name: AppName, env: TestEnv, overrides: Record<string, string> = {}): Promise<ServiceProcess> {
    const port = await freePort();
    const p = new ServiceProcess(name, { DATA_DIR: join('/tmp', `herald-${env.id}`), ...env.vars, ...overrides, PORT: String(port) }, port);
    await p.launch();
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async launch(): Promise<void> {
    const child = spawn(process.execPath, [join(__dirname, `../dist/apps/${this.name}/main.js`)], {
      env: { PATH: process.env.PATH ?? '', ...this.vars },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(async () => (await fetch(`${this.url}/readyz`)).ok, 20_000, `${this.name} to be ready\n${this.output}`);
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    this.child?.kill(signal);
    return this.exit!;
  }
}

/** A publisher on the env's stream, as another service would use it. */
export async function publisherFor(env: TestEnv): Promise<{ publisher: EventPublisher; nc: NatsConnection }> {
  const nc = await connect({ servers: env.vars.NATS_URL });
  return { publisher: new EventPublisher(jetstream(nc), env.vars.EVENTS_SUBJECT_PREFIX), nc };
}

export interface Stack {
  env: TestEnv;
  gateway: INestApplication;
  dispatcher: INestApplication;
  auditWriter: INestApplication;
  url: string;
  close(): Promise<void>;
}

/** The three apps in this process, on a fresh database and stream of their own. */
export async function startStack(overrides: Partial<Record<AppName, Record<string, string>>> = {}): Promise<Stack> {
  const env = await createTestEnv();
  await migrate(env);
  const dispatcher = await startInProcess('dispatcher', env, overrides.dispatcher);
  const auditWriter = await startInProcess('audit-writer', env, overrides['audit-writer']);
  const gateway = await startInProcess('api-gateway', env, overrides['api-gateway']);
  return {
    env,
    gateway,
    dispatcher,
    auditWriter,
    url: urlOf(gateway),
    async close() {
      for (const app of [gateway, dispatcher, auditWriter]) await app.close();
      await env.cleanup();
    },
  };
}

export { createTestEnv, waitFor };
export type { TestEnv };
