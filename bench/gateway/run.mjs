#!/usr/bin/env node
// Gateway overhead: GET /api/webhooks through the api-gateway, against the same request sent
// straight over NATS to the dispatcher, and through a bare HTTP→NATS forwarder (the floor), in one
// run on one stack. Prints p50/p99 at concurrency 1 (latency) and req/s at concurrency C (throughput),
// and the ratios. Goal: the gateway adds under 1 ms at p50 over the direct NATS request.
//
// Usage: npm run build && node bench/gateway/run.mjs [--requests 3000] [--concurrency 32] [--webhooks 10] [--log-level info]
// Needs Postgres (BENCH_DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres) and NATS
// (BENCH_NATS_URL, default nats://127.0.0.1:4222); makes its own database, stream and prefixes, removes them after.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import pg from 'pg';
import { Pool } from 'undici';
import { ADMIN_URL, NATS_URL, benchNames, root } from '../env.mjs';

const { values: opt } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
    webhooks: { type: 'string', default: '10' },
    'log-level': { type: 'string', default: 'info' },
    // Writes a V8 CPU profile of the gateway to this directory (open it in Chrome DevTools).
    profile: { type: 'string' },
  },
});
const REQUESTS = Number(opt.requests);
const CONCURRENCY = Number(opt.concurrency);
const { id, dbName, vars: names } = benchNames();
const vars = {
  ...names,
  PATH: process.env.PATH ?? '',
  NODE_ENV: 'development',
  LOG_LEVEL: opt['log-level'],
  WEBHOOKS_ALLOW_PRIVATE_URLS: 'true',
  DATA_DIR: `/tmp/herald-${id}`,
  RATE_LIMIT_MAX: '0',
};
const children = [];
const pids = {};

/** CPU time (user + system, ms) a child has used so far: less sensitive to noisy neighbours than latency. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function start(name, script, extra = {}, nodeArgs = []) {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, script], { env: { ...vars, ...extra, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  children.push(child);
  pids[name] = child.pid;
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${url}${name === 'forwarder' ? '/api/webhooks' : '/readyz'}`);
      if (r.ok) return url;
    } catch {}
    if (child.exitCode !== null) throw new Error(`${name} exited: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready: ${err}`);
}

function stats(samples, wallMs) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p99: q(0.99), rps: (samples.length / wallMs) * 1000 };
}

/** Runs `one()` REQUESTS times with `concurrency` in flight; returns per-request latencies (ms). */
async function load(one, concurrency, requests) {
  const samples = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < requests) {
        const t = performance.now();
        await one();
        samples.push(performance.now() - t);
      }
    }),
  );
  return stats(samples, performance.now() - t0);
}

async function main() {
  spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const mig = spawnSync(process.execPath, [join(root, 'dist/tools/migrate.js')], { env: vars, encoding: 'utf8' });
  if (mig.status !== 0) throw new Error(`migrate failed: ${mig.stderr}`);

  await start('dispatcher', join(root, 'dist/apps/dispatcher/main.js'));
  const gatewayUrl = await start('api-gateway', join(root, 'dist/apps/api-gateway/main.js'), {}, opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${opt.profile}`] : []);
  const forwarderUrl = await start('forwarder', join(root, 'bench/gateway/forwarder.mjs'));

  const KEY = { 'x-api-key': 'dev-staff-key' };
  for (let i = 0; i < Number(opt.webhooks); i++) {
    const r = await fetch(`${gatewayUrl}/api/webhooks`, {
      method: 'POST',
      headers: { ...KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:9/hook-${i}`, events: ['orders.create', 'cart.*'], metadata: { team: `team-${i}` } }),
    });
    if (r.status !== 201) throw new Error(`seeding failed: ${r.status} ${await r.text()}`);
  }

  const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  const subject = `${vars.RPC_SUBJECT_PREFIX}.dispatcher.webhooks.list`;
  let n = 0;
  const viaNats = async () => {
    const requestId = `req_bench_${++n}`;
    const h = headers();
    h.set('x-request-id', requestId);
    const msg = await nc.request(subject, JSON.stringify({ context: { organizationId: 'default', actorId: 'dev-staff-key', requestId }, payload: {} }), { timeout: 5000, headers: h });
    const reply = JSON.parse(msg.string());
    if (!reply.data) throw new Error(`NATS reply without data: ${msg.string()}`);
  };
  const http = (base) => {
    const pool = new Pool(base, { connections: CONCURRENCY, pipelining: 1 });
    const fn = async () => {
      const r = await pool.request({ path: '/api/webhooks', method: 'GET', headers: KEY });
      const body = await r.body.json();
      if (r.statusCode !== 200 || !body.data) throw new Error(`HTTP ${r.statusCode}`);
    };
    fn.close = () => pool.close();
    return fn;
  };
  const viaGateway = http(gatewayUrl);
  const viaForwarder = http(forwarderUrl);
  const paths = { 'NATS direct': viaNats, 'HTTP→NATS forwarder': viaForwarder, gateway: viaGateway };
  // The process whose CPU a path adds in front of the dispatcher.
  const front = { 'NATS direct': null, 'HTTP→NATS forwarder': pids.forwarder, gateway: pids['api-gateway'] };

  // Warm-up: JIT, connection pools, Postgres plans.
  for (const fn of Object.values(paths)) await load(fn, 8, 500);

  // Interleave the paths in rounds so a burst of load from the neighbours hits all of them alike.
  const rounds = 3;
  const lat = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const thr = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(paths).map((k) => [k, { front: 0, dispatcher: 0, requests: 0 }]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(paths)) lat[name].push(await load(fn, 1, Math.ceil(REQUESTS / rounds / 3)));
    for (const [name, fn] of Object.entries(paths)) {
      const f0 = front[name] ? cpuMs(front[name]) : 0;
      const d0 = cpuMs(pids.dispatcher);
      const count = Math.ceil(REQUESTS / rounds);
      thr[name].push(await load(fn, CONCURRENCY, count));
      cpu[name].front += front[name] ? cpuMs(front[name]) - f0 : 0;
      cpu[name].dispatcher += cpuMs(pids.dispatcher) - d0;
      cpu[name].requests += count;
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = Object.fromEntries(
    Object.keys(paths).map((k) => [k, { p50: median(lat[k].map((s) => s.p50)), p99: median(lat[k].map((s) => s.p99)), rps: median(thr[k].map((s) => s.rps)), p50Loaded: median(thr[k].map((s) => s.p50)) }]),
  );

  const f = (x) => x.toFixed(2);
  console.log(`\nGET /api/webhooks (${opt.webhooks} webhooks in the list), LOG_LEVEL=${opt['log-level']}, ${rounds} interleaved rounds, median of rounds`);
  console.log(`${'path'.padEnd(22)} ${'p50 ms (c=1)'.padStart(13)} ${'p99 ms (c=1)'.padStart(13)} ${`req/s (c=${CONCURRENCY})`.padStart(14)} ${`p50 ms (c=${CONCURRENCY})`.padStart(15)}`);
  for (const [k, s] of Object.entries(summary)) console.log(`${k.padEnd(22)} ${f(s.p50).padStart(13)} ${f(s.p99).padStart(13)} ${s.rps.toFixed(0).padStart(14)} ${f(s.p50Loaded).padStart(15)}`);
  console.log(`\nCPU per request (c=${CONCURRENCY}), from /proc: ${Object.entries(cpu)
    .map(([k, c]) => `${k}: front ${((c.front / c.requests) * 1000).toFixed(0)} µs + dispatcher ${((c.dispatcher / c.requests) * 1000).toFixed(0)} µs`)
    .join('; ')}`);
  const g = summary.gateway;
  const d = summary['NATS direct'];
  const w = summary['HTTP→NATS forwarder'];
  console.log(`\ngateway adds at p50 (c=1): ${f(g.p50 - d.p50)} ms over NATS direct (goal < 1 ms: ${g.p50 - d.p50 < 1 ? 'met' : 'NOT met'}), ${f(g.p50 - w.p50)} ms over the bare forwarder`);
  console.log(`throughput ratio gateway / NATS direct: ${(g.rps / d.rps).toFixed(2)}; gateway / forwarder: ${(g.rps / w.rps).toFixed(2)}`);
  console.log(`latency ratio p50 gateway / NATS direct: ${(g.p50 / d.p50).toFixed(2)}`);

  await viaGateway.close();
  await viaForwarder.close();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(vars.EVENTS_STREAM).catch(() => undefined);
  await nc.close();
  await cleanup(admin);
}

async function cleanup(admin) {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await admin.query(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}

main().catch(async (err) => {
  console.error(err);
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  process.exit(1);
});
