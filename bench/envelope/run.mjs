#!/usr/bin/env node
// Envelope validation benchmark: CPU per event of `parseEventMessage` (what the dispatcher and the
// audit-writer run on every bus message) against, in the same run, JSON.parse alone and the way it
// was done before: class-transformer's plainToInstance, then class-validator.
// Usage: npm run build && node bench/envelope/run.mjs [events per measurement, default 100000]
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root } from '../env.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { plainToInstance } = require('class-transformer');
const { validateSync } = require('class-validator');
const { parseEventMessage, EventEnvelope, EventActor } = require(join(root, 'dist/out-tsc/libs/contracts/src/lib/envelope.js'));

const N = Number(process.argv[2] ?? 100_000);
const small = { id: 'evt_01JABCDEFGHJKMNPQRSTVWXYZ0', type: 'orders.create', timestamp: new Date().toISOString(), organizationId: 'default', actor: { id: 'u1', type: 'user' }, data: { id: 'ord-1', grandTotal: 4999, currency: 'USD' } };
const order = {
  ...small,
  data: { id: 'ord-1', grandTotal: 4999, currency: 'USD', customer: { id: 'c1', email: 'a@example.com', address: { line1: '1 Main St', city: 'Springfield', country: 'US' } }, lines: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, price: 100 + i, title: `Item ${i}` })) },
};
const options = { whitelist: true, forbidUnknownValues: false, validationError: { target: false, value: false } };

/** CPU µs per call, the best of three measurements after one to warm up. */
function measure(fn) {
  let best = Infinity;
  for (let k = 0; k < 4; k++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) fn();
    const c = process.cpuUsage(c0);
    if (k) best = Math.min(best, (c.user + c.system) / N);
  }
  return best;
}

console.log(`envelope validation, CPU µs per event (best of 3 × ${N})`);
for (const [name, plain] of [['small event', small], ['order with 20 lines', order]]) {
  const body = Buffer.from(JSON.stringify(plain));
  const json = measure(() => JSON.parse(body.toString('utf8')));
  const before = measure(() => {
    // The nested classes as the @Type decorators gave them before.
    const p = JSON.parse(body.toString('utf8'));
    const instance = plainToInstance(EventEnvelope, p);
    if (p.actor) instance.actor = plainToInstance(EventActor, p.actor);
    if (validateSync(instance, options).length) throw new Error('invalid');
  });
  const now = measure(() => {
    if (!parseEventMessage('commerce.events', 'commerce.events.orders.create', body).ok) throw new Error('invalid');
  });
  console.log(`  ${name.padEnd(20)} JSON.parse ${json.toFixed(2)}, plainToInstance + validate ${before.toFixed(2)}, parseEventMessage ${now.toFixed(2)} (${(before / now).toFixed(1)}× less)`);
}
