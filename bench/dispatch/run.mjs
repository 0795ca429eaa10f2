#!/usr/bin/env node
// Dispatch benchmark: the built dispatcher (and gateway, to register the webhook) against a local
// receiver, on a database and stream of its own, compared with raw pooled undici POSTs to the same
// receiver in the same run.
//   1. throughput, in BENCH_ROUNDS alternating rounds (medians compared):
//      a. raw: BENCH_EVENTS POSTs through an undici Pool of 64 connections (this machine's ceiling, now);
//      b. backlog: BENCH_EVENTS events published while the dispatcher is paused (SIGSTOP), then
//         delivered: deliveries/s from its resumption to the last receipt (ratio to a; goal ≥ 0.25);
//      c. burst: BENCH_EVENTS events published at once by a publisher thread while the dispatcher
//         runs: deliveries/s from the first publish to the last receipt (publishing included);
//   2. latency: BENCH_RATE events/s for BENCH_SECONDS s → publish-to-receipt p50/p99 (goal p99 < 50 ms).
// CPU time per process (/proc/<pid>/stat) is printed for the backlog and burst rounds.
// Usage: npm run build && node bench/dispatch/run.mjs   (needs Postgres and NATS, as npm test does)
//   BENCH_WARMUP=1000: events through the whole path before measuring.
//   BENCH_ROUNDS=3: alternating rounds; the medians are compared.
//   BENCH_PROFILE=<dir>: CPU profiles of the dispatcher and the gateway (the backlog rounds' pauses
//   show up in them as long samples).
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { ulid } from 'ulid';
import { Pool } from 'undici';
import { ADMIN_URL, NATS_URL, benchNames, root } from '../env.mjs';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
/** Events sent through the whole path before measuring. With 200, half of the dispatcher's CPU in the first round is V8 still optimizing its code (docs/benchmarks.md). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1000);
/** Alternating rounds of the throughput comparison; the medians are compared. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const { id, dbName, vars: names } = benchNames();
const vars = {
  ...names,
  WEBHOOKS_ALLOW_PRIVATE_URLS: 'true',
  WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
  DATA_DIR: `/tmp/herald-${id}`,
};

// The receiver: answers 200 at once and notes when each event arrived.
const arrived = new Map();
let onArrival = () => {};
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const eventId = req.headers['x-commerce-event-id'];
    if (eventId && !arrived.has(eventId)) arrived.set(eventId, performance.now());
    res.writeHead(200).end('OK');
    onArrival();
  });
});
receiver.keepAliveTimeout = 10_000;
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const receiverUrl = `http://127.0.0.1:${receiver.address().port}`;

function start(app, port) {
  // BENCH_PROFILE=<dir>: V8 CPU profiles of the services, written when they exit.
  const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...prof, join(root, `dist/apps/${app}/main.js`)], { env: { PATH: process.env.PATH, ...vars, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] });
  return child;
}

async function ready(port) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never became ready`);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`create database ${dbName}`);
const children = [];
// Ctrl-C: the children get SIGINT too, but a paused dispatcher would keep it pending forever.
process.once('SIGINT', () => {
  for (const c of children) {
    c.kill('SIGCONT');
    c.kill('SIGTERM');
  }
  admin.query(`drop database if exists ${dbName} with (force)`).finally(() => process.exit(130));
});
let nc;
try {
  execFileSync(process.execPath, [join(root, 'dist/tools/migrate.js')], { env: { PATH: process.env.PATH, DATABASE_URL: vars.DATABASE_URL }, stdio: 'ignore' });
  const dispatcherPort = 4700 + Math.floor(Math.random() * 100);
  const gatewayPort = dispatcherPort + 100;
  children.push(start('dispatcher', dispatcherPort), start('api-gateway', gatewayPort));
  await Promise.all([ready(dispatcherPort), ready(gatewayPort)]);
  const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/webhooks`, {
    method: 'POST',
    headers: { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' },
    body: JSON.stringify({ url: `${receiverUrl}/hooks`, events: ['orders.create'] }),
  });
  if (res.status !== 201) throw new Error(`webhook not created: ${res.status} ${await res.text()}`);

  nc = await connect({ servers: NATS_URL });
  const js = jetstream(nc);
  const sentAt = new Map();
  const publish = (i) => {
    const event = { id: `evt_${ulid()}`, type: 'orders.create', timestamp: new Date().toISOString(), organizationId: 'default', data: { id: `ord-${i}`, grandTotal: 4999, currency: 'USD' } };
    const h = natsHeaders();
    h.set('Nats-Msg-Id', event.id);
    sentAt.set(event.id, performance.now());
    return js.publish(`${vars.EVENTS_SUBJECT_PREFIX}.orders.create`, JSON.stringify(event), { headers: h, timeout: 30_000 });
  };
  // Bursts come from a thread of their own (publisher.mjs): 500 publishes in flight would keep this
  // thread busy, and the receiver on it would answer late.
  const publisher = new Worker(new URL('./publisher.mjs', import.meta.url), { workerData: { natsUrl: NATS_URL, subject: `${vars.EVENTS_SUBJECT_PREFIX}.orders.create` } });
  const publisherDied = new Promise((_, reject) => {
    publisher.once('error', reject);
    publisher.once('exit', (code) => reject(new Error(`publisher thread exited (${code})`)));
  });
  publisherDied.catch(() => undefined);
  await Promise.race([new Promise((r) => publisher.once('message', r)), publisherDied]);
  const publishBurst = (count) => Promise.race([
    new Promise((resolve, reject) => {
      publisher.once('message', (m) => (m.error ? reject(new Error(`publishing failed: ${m.error}`)) : resolve()));
      publisher.postMessage({ count });
    }),
    publisherDied,
  ]);
  const until = (n) => new Promise((resolve) => {
    onArrival = () => arrived.size >= n && resolve();
    onArrival();
  });
  const dispatcher = children[0];

  /** CPU time (ms) of the processes that share this machine's cores, by name. */
  const cpuByProcess = () => {
    const named = new Map([[process.pid, 'bench'], [dispatcher.pid, 'dispatcher'], [children[1].pid, 'gateway']]);
    const out = {};
    for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const name = named.get(Number(pid)) ?? stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[/:].*$/, '');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
      } catch {} // the process ended meanwhile
    }
    return out;
  };
  const cpuSince = (before) => {
    const now = cpuByProcess();
    return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v >= 30).sort((x, y) => y[1] - x[1]));
  };

  // Warm-up: connections, JIT, caches.
  await publishBurst(WARMUP);
  await until(WARMUP);

  // 1. Throughput, in ROUNDS alternating rounds (this machine's neighbours move either side by
  // ±30% from one second to the next): the median of each side, and their ratio.
  const pool = new Pool(receiverUrl, { connections: 64 });
  const body = JSON.stringify({ id: 'evt_x', type: 'orders.create', timestamp: new Date().toISOString(), data: { id: 'ord-x', grandTotal: 4999 } });
  /** a. Raw pooled POSTs to the same receiver (the physical ceiling of this machine, measured now). */
  const rawRound = async () => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < EVENTS) {
        next++;
        const r = await pool.request({ path: '/raw', method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await r.body.dump();
      }
    }));
    return EVENTS / ((performance.now() - t0) / 1000);
  };
  /** b. A backlog: the events wait in the stream while the dispatcher is paused, then are delivered. */
  const backlogRound = async () => {
    arrived.clear();
    dispatcher.kill('SIGSTOP');
    let cpu;
    let t1;
    try {
      await publishBurst(EVENTS);
      cpu = cpuByProcess();
    } finally {
      t1 = performance.now();
      dispatcher.kill('SIGCONT');
    }
    await until(EVENTS);
    return { rate: EVENTS / ((performance.now() - t1) / 1000), cpu: cpuSince(cpu) };
  };
  /** c. A burst published while the dispatcher runs, publishing included. */
  const burstRound = async () => {
    arrived.clear();
    const cpu = cpuByProcess();
    const t1 = performance.now();
    await publishBurst(EVENTS);
    await until(EVENTS);
    return { rate: EVENTS / ((performance.now() - t1) / 1000), cpu: cpuSince(cpu) };
  };
  await rawRound(); // the raw client's first round is cold (~half the speed of the later ones)
  const raws = [];
  const backlogs = [];
  const bursts = [];
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(await rawRound());
    backlogs.push(await backlogRound());
    bursts.push(await burstRound());
  }
  await pool.close();
  publisher.postMessage({ close: true });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rawPerSec = median(raws);
  const backlogPerSec = median(backlogs.map((b) => b.rate));
  const burstPerSec = median(bursts.map((b) => b.rate));

  // 2. Steady rate: publish → receipt latency.
  arrived.clear();
  sentAt.clear();
  const total = RATE * SECONDS;
  const t2 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t2 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    publish(i).catch((err) => console.error('publish failed', err.message));
  }
  await until(total);
  const latencies = [...arrived].map(([eventId, at]) => at - sentAt.get(eventId)).sort((a, b) => a - b);
  // Where the time goes, from the database's clock: publish → delivery row → attempt start → receipt.
  const stages = await (async () => {
    const c = new pg.Client({ connectionString: vars.DATABASE_URL });
    await c.connect();
    try {
      const { rows } = await c.query(
        `select d.event_id, extract(epoch from d.created_at) * 1000 as created, extract(epoch from a.started_at) * 1000 as started
         from dispatch.deliveries d join dispatch.attempts a on a.delivery_id = d.id where d.event_id = any($1)`,
        [[...arrived.keys()]],
      );
      const perf0 = Date.now() - performance.now();
      const col = (f) => rows.map(f).sort((a, b) => a - b);
      const intake = col((r) => Number(r.created) - (perf0 + sentAt.get(r.event_id)));
      const queue = col((r) => Number(r.started) - Number(r.created));
      const send = col((r) => perf0 + arrived.get(r.event_id) - Number(r.started));
      return { intake, queue, send };
    } finally {
      await c.end();
    }
  })();

  const fmt = (n) => n.toFixed(1);
  console.log(`dispatch benchmark (${EVENTS} events burst; ${RATE}/s for ${SECONDS} s steady)`);
  console.log(`  raw undici Pool(64) POSTs to the receiver  : ${fmt(rawPerSec)} req/s (median of ${raws.map((x) => fmt(x)).join(', ')})`);
  console.log(`  backlog delivered (resume → last receipt)  : ${fmt(backlogPerSec)} deliveries/s (median of ${backlogs.map((x) => fmt(x.rate)).join(', ')})`);
  console.log(`  ratio backlog / raw                        : ${(backlogPerSec / rawPerSec).toFixed(3)} (goal >= 0.25)`);
  console.log(`  burst end to end (publish → last receipt)  : ${fmt(burstPerSec)} deliveries/s (median of ${bursts.map((x) => fmt(x.rate)).join(', ')}), ratio ${(burstPerSec / rawPerSec).toFixed(3)}`);
  const perThousand = (cpu) => Object.entries(cpu).map(([k, v]) => `${k} ${Math.round((v * 1000) / EVENTS)}`).join(', ');
  console.log(`  CPU ms per 1,000 deliveries, last backlog  : ${perThousand(backlogs.at(-1).cpu)}`);
  console.log(`  CPU ms per 1,000 deliveries, last burst    : ${perThousand(bursts.at(-1).cpu)}`);
  console.log(`  steady ${RATE}/s publish → receipt          : p50 ${fmt(percentile(latencies, 50))} ms, p99 ${fmt(percentile(latencies, 99))} ms, max ${fmt(latencies.at(-1))} ms (goal p99 < 50 ms)`);
  for (const [name, xs] of Object.entries(stages)) console.log(`    ${name.padEnd(7)} p50 ${fmt(percentile(xs, 50))} ms, p99 ${fmt(percentile(xs, 99))} ms`);
} finally {
  for (const c of children) {
    c.kill('SIGCONT'); // a paused dispatcher would never act on SIGTERM
    c.kill('SIGTERM');
  }
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))));
  if (nc) {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(vars.EVENTS_STREAM).catch(() => undefined);
    await nc.close();
  }
  await admin.query(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  receiver.close();
}
