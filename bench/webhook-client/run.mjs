#!/usr/bin/env node
// Webhook HTTP client benchmark: the client CPU per POST (process.cpuUsage, 64 in flight) to a
// receiver in another process, three ways in alternating rounds:
//   - Herald's WebhookHttpClient.send (URL check, HMAC, headers, undici dispatch API, one timer);
//   - the way it sent before 2026-11-29 11:30: undici `request()` with `AbortSignal.timeout` and an
//     async iterator over the body (plus the same HMAC and headers);
//   - a bare undici `request()` with no signal, its body dumped: the floor of the request API.
// Usage: npm run build && node bench/webhook-client/run.mjs [requests per round, default 20000]
import { fork } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Agent } from 'undici';
import { root } from '../env.mjs';

const require = createRequire(import.meta.url);
const { WebhookHttpClient } = require(join(root, 'dist/out-tsc/apps/dispatcher/src/delivery/webhook-http-client.js'));

const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = 3;
const receiver = fork(new URL('./receiver.mjs', import.meta.url));
const { port } = await new Promise((r) => receiver.once('message', r));
const url = `http://127.0.0.1:${port}/hooks`;
const body = Buffer.from(JSON.stringify({ id: 'evt_01JABCDEFGHJKMNPQRSTVWXYZ0', type: 'orders.create', timestamp: new Date().toISOString(), data: { id: 'ord-1', grandTotal: 4999, currency: 'USD' } }));
const headers = { 'x-commerce-event': 'orders.create', 'x-commerce-event-id': 'evt_01JABCDEFGHJKMNPQRSTVWXYZ0', 'x-commerce-delivery': 'dlv_01JABCDEFGHJKMNPQRSTVWXYZ0', 'x-commerce-attempt': '1' };

const herald = new WebhookHttpClient({ policy: { allowPrivate: true, httpsOnly: false }, timeoutMs: 10_000, connections: 64, userAgent: 'Herald-Webhooks/bench' });
const agent = new Agent({ connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 4000 });
const allHeaders = () => ({ ...headers, 'content-type': 'application/json', 'x-commerce-signature': createHmac('sha256', 'whsec_bench').update(body).digest('hex'), 'user-agent': 'Herald-Webhooks/bench' });

const ways = {
  'WebhookHttpClient.send': async () => (await herald.send({ url, secret: 'whsec_bench', body, headers })).statusCode,
  'request + AbortSignal (before)': async () => {
    const u = new URL(url);
    const res = await agent.request({ origin: u.origin, path: u.pathname, method: 'POST', headers: allHeaders(), body, signal: AbortSignal.timeout(10_000) });
    const kept = [];
    for await (const chunk of res.body) kept.push(chunk);
    Buffer.concat(kept).toString('utf8');
    return res.statusCode;
  },
  'bare request, body dumped': async () => {
    const res = await agent.request({ origin: `http://127.0.0.1:${port}`, path: '/hooks', method: 'POST', body });
    await res.body.dump();
    return res.statusCode;
  },
};

async function round(send) {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next++ < N) if ((await send()) !== 200) throw new Error('receiver did not answer 200');
  }));
  const c = process.cpuUsage(c0);
  return { us: (c.user + c.system) / N, rps: N / ((performance.now() - t0) / 1000) };
}

for (const send of Object.values(ways)) await round(send); // warm-up
const results = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, send] of Object.entries(ways)) results[name].push(await round(send));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`webhook client: client CPU per POST, ${N} POSTs per round, 64 in flight, median of ${ROUNDS} rounds`);
for (const [name, xs] of Object.entries(results)) {
  console.log(`  ${name.padEnd(32)} ${median(xs.map((x) => x.us)).toFixed(1)} µs  (rounds ${xs.map((x) => x.us.toFixed(1)).join(', ')}; ${Math.round(median(xs.map((x) => x.rps)))} req/s)`);
}
await herald.close();
await agent.close();
receiver.disconnect();
