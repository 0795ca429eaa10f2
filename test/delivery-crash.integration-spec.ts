import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { Receiver, signatureValid } from './receiver';
import { ServiceProcess, TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from './stack';

const KEY = { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' };
const SECRET = 'whsec_crash_test_secret_0123456789';

/** Dispatchers as separate parts: replicas side by side, a built process killed mid-burst, a sender that refuses private addresses. */
describe('delivery across replicas and crashes', () => {
  let env: TestEnv;
  let gateway: INestApplication;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let receiver: Receiver;
  let db: Client;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    gateway = await startInProcess('api-gateway', env);
    ({ publisher, nc } = await publisherFor(env));
    receiver = await Receiver.start();
    db = new Client({ connectionString: env.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await gateway?.close();
    await db?.end();
    await receiver?.close();
    await nc?.close();
    await env?.cleanup();
  });

  async function webhook(path: string, events: string[]): Promise<string> {
    const res = await fetch(`${urlOf(gateway)}/api/webhooks`, { method: 'POST', headers: KEY, body: JSON.stringify({ url: receiver.url(path), events, secret: SECRET }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { data: { id: string } }).data.id;
  }

  async function statusCounts(webhookId: string): Promise<Record<string, number>> {
    const rows = (await db.query('select status, count(*)::int as n from dispatch.deliveries where webhook_id = $1 group by status', [webhookId])).rows as { status: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async function publishBurst(type: 'orders.create' | 'cart.afterAddItem' | 'orders.statusChange' | 'catalog.update', n: number): Promise<string[]> {
    const ids: string[] = [];
    const pending = [];
    for (let i = 0; i < n; i++) pending.push(publisher.publish({ type, data: { id: `item-${i}` } }).then(({ event }) => ids.push(event.id)));
    await Promise.all(pending);
    return ids;
  }

  it('JOBS_AUTORUN_ENABLED=false records deliveries as pending, sends nothing, and warns at start-up', async () => {
    const quiet = await ServiceProcess.start('dispatcher', env, { JOBS_AUTORUN_ENABLED: 'false', LOG_LEVEL: 'warn' });
    try {
      expect(quiet.output).toContain('JOBS_AUTORUN_ENABLED=false');
      const webhookId = await webhook('/autorun-off', ['orders.statusChange']);
      const [eventId] = await publishBurst('orders.statusChange', 1);
      const row = await waitFor(async () => (await db.query('select status, attempt_count from dispatch.deliveries where webhook_id = $1 and event_id = $2', [webhookId, eventId])).rows[0]);
      expect(row).toEqual({ status: 'pending', attempt_count: 0 });
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiver.at('/autorun-off')).toHaveLength(0);
      // The queue gauges show the delivery waiting.
      const metrics = await (await fetch(`${quiet.url}/metrics`)).text();
      expect(Number(/^herald_deliveries_due\{[^}]*\} (\S+)$/m.exec(metrics)?.[1])).toBe(1);
      expect(Number(/^herald_deliveries_oldest_due_age_seconds\{[^}]*\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      // Deleted (which cancels its pending delivery) so the next tests' senders leave it alone.
      expect((await fetch(`${urlOf(gateway)}/api/webhooks/${webhookId}`, { method: 'DELETE', headers: KEY })).status).toBe(200);
    } finally {
      await quiet.kill('SIGTERM');
    }
  });

  it('two sender replicas share the queue without sending any attempt twice', async () => {
    const vars = { WEBHOOK_SENDER_POLL_MS: '50', WEBHOOK_SENDER_CONCURRENCY: '8' };
    apps.push(await startInProcess('dispatcher', env, vars), await startInProcess('dispatcher', env, vars));
    receiver.on('/replicas', () => ({ status: 200, delayMs: 3 }));
    const webhookId = await webhook('/replicas', ['cart.afterAddItem']);
    const eventIds = await publishBurst('cart.afterAddItem', 200);
    await waitFor(async () => (await statusCounts(webhookId)).succeeded === 200, 30_000, '200 deliveries to succeed');
    const got = receiver.at('/replicas');
    const keys = got.map((r) => `${r.headers['x-commerce-delivery']}#${r.headers['x-commerce-attempt']}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(got).toHaveLength(200);
    expect(new Set(got.map((r) => r.headers['x-commerce-event-id']))).toEqual(new Set(eventIds));
    const attempts = (await db.query('select count(*)::int as n from dispatch.attempts a join dispatch.deliveries d on d.id = a.delivery_id where d.webhook_id = $1', [webhookId])).rows[0].n;
    expect(attempts).toBe(200);
    // Both replicas took part, as each one's metrics show.
    for (const app of apps) {
      const metrics = await (await fetch(`${urlOf(app)}/metrics`)).text();
      const sent = Number(/herald_deliveries_total\{outcome="succeeded"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
      expect(sent).toBeGreaterThan(0);
    }
    for (const app of apps.splice(0)) await app.close();
  });

  it('a dispatcher process SIGKILLed mid-burst and restarted delivers every event, each delivery once after de-duplication', async () => {
    // A generous timeout: on a loaded machine a 1 s timeout turned a slow 200 into a failed attempt.
    const vars = { WEBHOOK_TIMEOUT_MS: '5000', WEBHOOK_LEASE_MS: '7000', WEBHOOK_SENDER_POLL_MS: '100', WEBHOOK_SENDER_CONCURRENCY: '16', CONSUMER_BATCH_SIZE: '50' };
    const dispatcher = await ServiceProcess.start('dispatcher', env, vars);
    receiver.on('/crash', () => ({ status: 200, delayMs: 5 }));
    const webhookId = await webhook('/crash', ['orders.create']);
    const eventIds = await publishBurst('orders.create', 300);
    await waitFor(() => receiver.at('/crash').length >= 60, 30_000, 'the burst to be under way');
    expect(await dispatcher.kill('SIGKILL')).toBeNull();
    const atKill = receiver.at('/crash').length;
    expect(atKill).toBeLessThan(300);
    await dispatcher.launch();
    try {
      await waitFor(async () => (await statusCounts(webhookId)).succeeded === 300, 60_000, 'all 300 deliveries to succeed after the restart');
      const deliveries = (await db.query('select id, event_id, attempt_count from dispatch.deliveries where webhook_id = $1', [webhookId])).rows as { id: string; event_id: string; attempt_count: number }[];
      expect(deliveries).toHaveLength(300);
      expect(new Set(deliveries.map((d) => d.event_id))).toEqual(new Set(eventIds));
      const got = receiver.at('/crash');
      expect(got.every((r) => signatureValid(r, SECRET))).toBe(true);
      // De-duplicated by delivery id, the receiver saw exactly the 300 deliveries.
      const byDelivery = new Map<string, string[]>();
      for (const r of got) byDelivery.set(String(r.headers['x-commerce-delivery']), [...(byDelivery.get(String(r.headers['x-commerce-delivery'])) ?? []), String(r.headers['x-commerce-attempt'])]);
      expect(new Set(byDelivery.keys())).toEqual(new Set(deliveries.map((d) => d.id)));
      // A repeat is only an attempt sent but not recorded when the process died, sent again after its
      // lease: one of the 16 in flight, or one of at most 16 whose response was in (its slot already
      // reused) while its record waited for the write before it.
      const repeats = got.length - 300;
      expect(repeats).toBeLessThanOrEqual(32);
      const attempts = (await db.query('select delivery_id, attempt_number, status_code from dispatch.attempts a join dispatch.deliveries d on d.id = a.delivery_id where d.webhook_id = $1', [webhookId])).rows as { delivery_id: string; attempt_number: number; status_code: number }[];
      expect(attempts).toHaveLength(300);
      expect(attempts.every((a) => a.attempt_number === 1 && a.status_code === 200)).toBe(true);
      for (const [, numbers] of byDelivery) expect(new Set(numbers)).toEqual(new Set(['1']));
    } finally {
      await dispatcher.kill('SIGTERM');
    }
  });

  it('a delivery that waited in the local queue too long for its lease is handed back and sent once, by a claim', async () => {
    // One slot, a 400 ms receiver and a lease that leaves a queued delivery 100 ms to start
    // (2100 - 1000 timeout - 1000 margin): all but the first of a burst are handed back unsent.
    const vars = { WEBHOOK_SENDER_CONCURRENCY: '1', WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_LEASE_MS: '2100', WEBHOOK_SENDER_POLL_MS: '50' };
    const app = await startInProcess('dispatcher', env, vars);
    apps.push(app);
    receiver.on('/queued', () => ({ status: 200, delayMs: 400 }));
    const webhookId = await webhook('/queued', ['orders.create']);
    const eventIds = await publishBurst('orders.create', 8);
    await waitFor(async () => (await statusCounts(webhookId)).succeeded === 8, 30_000, '8 deliveries to succeed');
    const got = receiver.at('/queued');
    expect(got).toHaveLength(8);
    expect(new Set(got.map((r) => r.headers['x-commerce-event-id']))).toEqual(new Set(eventIds));
    expect(got.every((r) => r.headers['x-commerce-attempt'] === '1')).toBe(true);
    const attempts = (await db.query('select attempt_number from dispatch.attempts a join dispatch.deliveries d on d.id = a.delivery_id where d.webhook_id = $1', [webhookId])).rows;
    expect(attempts).toHaveLength(8);
    const metrics = await (await fetch(`${urlOf(app)}/metrics`)).text();
    expect(Number(/^herald_deliveries_handed_back_total\{[^}]*\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    await apps.splice(apps.indexOf(app), 1)[0].close();
  });

  it('a URL that resolves to a private address at send time is refused before connecting', async () => {
    // Registered while private URLs were allowed (as when the name still resolved to a public
    // address); the sender that runs now allows none, and checks again before every attempt.
    const lenient = await startInProcess('dispatcher', env, { JOBS_AUTORUN_ENABLED: 'false' });
    const webhookId = await webhook('/private', ['catalog.update']);
    await lenient.close();
    apps.push(await startInProcess('dispatcher', env, { WEBHOOKS_ALLOW_PRIVATE_URLS: 'false', WEBHOOK_SENDER_POLL_MS: '50', WEBHOOK_RETRY_BASE_MS: '20', WEBHOOK_MAX_RETRIES: '1' }));
    const [eventId] = await publishBurst('catalog.update', 1);
    const row = await waitFor(async () => {
      const r = (await db.query('select id, status from dispatch.deliveries where webhook_id = $1 and event_id = $2', [webhookId, eventId])).rows[0];
      return r?.status === 'failed' && r;
    }, 15_000, 'the delivery to fail');
    const attempts = (await db.query('select status_code, error from dispatch.attempts where delivery_id = $1 order by attempt_number', [row.id])).rows;
    expect(attempts).toHaveLength(2);
    for (const a of attempts) {
      expect(a.status_code).toBeNull();
      // The tenant reads the rule; which internal address the name resolved to is only logged.
      expect(a.error).toBe('refused before sending: url resolves to a private, loopback, link-local or reserved address');
    }
    expect(receiver.at('/private')).toHaveLength(0);
  });
});
