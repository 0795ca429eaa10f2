import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { EventPublisher } from '@herald/bus';
import { Rpc, rpcSubject } from '@herald/contracts';
import { Client } from 'pg';
import { Receiver } from './receiver';
import { ServiceProcess, TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from './stack';

/** Grace the services get in these tests; a clean shutdown must end well inside it. */
const GRACE_MS = 10_000;
const KEY = { 'x-api-key': 'dev-staff-key' };

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await p;
  return { value, ms: Date.now() - started };
}

async function count(db: Client, sql: string): Promise<number> {
  return Number((await db.query<{ n: string }>(sql)).rows[0].n);
}

/** Publishes `total` events, a few at a time, so they keep flowing while the service is stopped. */
async function publishSteadily(publisher: EventPublisher, type: string, total: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < total; i += 50) {
    const sent = await Promise.all(
      Array.from({ length: Math.min(50, total - i) }, (_, j) => publisher.publish({ type, data: { id: `item-${i + j}`, n: i + j } })),
    );
    ids.push(...sent.map((s) => s.event.id));
    await new Promise((r) => setTimeout(r, 5));
  }
  return ids;
}

/** The durable consumer's state: nothing received may be left unacknowledged by a clean stop. */
async function consumerState(env: TestEnv, durable: string): Promise<{ ackPending: number; delivered: number; redelivered: number }> {
  const nc = await connect({ servers: env.vars.NATS_URL });
  try {
    const info = await (await jetstreamManager(nc)).consumers.info(env.vars.EVENTS_STREAM, durable);
    return { ackPending: info.num_ack_pending, delivered: info.delivered.stream_seq, redelivered: info.num_redelivered };
  } finally {
    await nc.close();
  }
}

describe('graceful shutdown: SIGTERM mid-work exits 0 in time and loses nothing', () => {
  let env: TestEnv;
  let db: Client;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    db = new Client({ connectionString: env.databaseUrl });
    await db.connect();
    ({ publisher, nc } = await publisherFor(env));
  });

  afterAll(async () => {
    for (const p of running) if (p.child?.exitCode === null) await p.kill('SIGKILL');
    await nc?.close();
    await db?.end();
    await env?.cleanup();
  });

  async function start(name: ServiceProcess['name'], vars: Record<string, string> = {}): Promise<ServiceProcess> {
    const p = await ServiceProcess.start(name, env, { SHUTDOWN_TIMEOUT_MS: String(GRACE_MS), LOG_LEVEL: 'info', ...vars });
    running.push(p);
    return p;
  }

  it('audit-writer: every event is audited exactly once across a SIGTERM while events flow', async () => {
    // A short ack_wait, so what the server was still sending at SIGTERM comes back within the test.
    const vars = { CONSUMER_BATCH_SIZE: '50', CONSUMER_ACK_WAIT_MS: '5000' };
    const writer = await start('audit-writer', vars);
    const flowing = publishSteadily(publisher, 'inventory.afterAdjust', 3000);
    await waitFor(async () => (await count(db, 'select count(*) n from audit.entries')) >= 300, 20_000, 'the first entries');

    const { value: code, ms } = await timed(writer.kill('SIGTERM'));
    expect(code).toBe(0);
    expect(ms).toBeLessThan(GRACE_MS);
    expect(writer.output).toContain('Shut down cleanly');

    // Every message the server handed out is either committed (and acked) or unacked for
    // redelivery: none half-done. Unacked can only be what was still on its way from the server when
    // pulling stopped (the client drops it after unsubscribing), at most one pull (2 x batch size).
    const state = await consumerState(env, 'audit-writer');
    expect(await count(db, 'select count(*) n from audit.entries')).toBe(state.delivered - state.ackPending);
    expect(state.ackPending).toBeLessThanOrEqual(100);

    const ids = await flowing;
    const restarted = await start('audit-writer', vars);
    await waitFor(async () => (await count(db, 'select count(*) n from audit.entries')) >= ids.length, 30_000, 'every event audited');
    const { rows } = await db.query<{ event_id: string; n: string }>(
      'select event_id, count(*) n from audit.entries where event = $1 group by event_id',
      ['inventory.afterAdjust'],
    );
    expect(rows).toHaveLength(ids.length);
    expect(rows.every((r) => r.n === '1')).toBe(true);
    expect(new Set(rows.map((r) => r.event_id))).toEqual(new Set(ids));
    expect(await restarted.kill('SIGTERM')).toBe(0);
  }, 120_000);

  it('dispatcher: every event is recorded and delivered across a SIGTERM while events flow and attempts are in flight', async () => {
    const receiver = await Receiver.start();
    // Slow enough that attempts are in flight when SIGTERM arrives.
    receiver.on('/hooks', () => ({ status: 200, delayMs: 150 }));
    const vars = { CONSUMER_BATCH_SIZE: '50', WEBHOOK_SENDER_CONCURRENCY: '16' };
    const dispatcher = await start('dispatcher', vars);
    const gateway: INestApplication = await startInProcess('api-gateway', env);
    try {
      const created = await fetch(`${urlOf(gateway)}/api/webhooks`, {
        method: 'POST',
        headers: { ...KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url('/hooks'), events: ['orders.create'] }),
      });
      expect(created.status).toBe(201);
    } finally {
      await gateway.close();
    }
    try {
      const flowing = publishSteadily(publisher, 'orders.create', 1000);
      await waitFor(() => receiver.at('/hooks').length >= 50, 20_000, 'the first deliveries');
      const { value: code, ms } = await timed(dispatcher.kill('SIGTERM'));
      expect(code).toBe(0);
      expect(ms).toBeLessThan(GRACE_MS);
      expect(dispatcher.output).toContain('Shut down cleanly');
      expect((await consumerState(env, 'dispatcher')).ackPending).toBeLessThanOrEqual(100);
      // Attempts in flight were finished and recorded, not left claimed until their lease runs out
      // (a claim moves next_attempt_at into the future; every receiver answer here is a 200, so no retries).
      const leased = await count(db, `select count(*) n from dispatch.deliveries where status = 'pending' and next_attempt_at > now()`);
      expect(leased).toBe(0);

      const ids = await flowing;
      const restarted = await start('dispatcher', vars);
      await waitFor(async () => (await count(db, `select count(*) n from dispatch.deliveries where status = 'succeeded'`)) >= ids.length, 60_000, 'every delivery sent');
      const { rows } = await db.query<{ event_id: string; n: string }>(
        `select event_id, count(*) n from dispatch.deliveries where event_type = 'orders.create' group by event_id`,
      );
      expect(rows).toHaveLength(ids.length);
      expect(rows.every((r) => r.n === '1')).toBe(true);
      const received = new Set(receiver.at('/hooks').map((r) => r.headers['x-commerce-event-id']));
      expect(ids.filter((id) => !received.has(id))).toEqual([]);
      expect(await restarted.kill('SIGTERM')).toBe(0);
    } finally {
      await receiver.close();
    }
  }, 120_000);

  /** Answers the gateway's webhooks.list requests itself, after `delayMs`, and says when one arrived. */
  function slowDispatcher(delayMs: number): { arrived: Promise<void>; stop: () => void } {
    let arrivedResolve!: () => void;
    const arrived = new Promise<void>((r) => (arrivedResolve = r));
    const timers: NodeJS.Timeout[] = [];
    const sub = nc.subscribe(rpcSubject(env.vars.RPC_SUBJECT_PREFIX, Rpc.webhooksList), {
      callback: (_err, msg) => {
        arrivedResolve();
        timers.push(setTimeout(() => msg.respond(JSON.stringify({ data: [] })), delayMs));
      },
    });
    return {
      arrived,
      stop: () => {
        timers.forEach(clearTimeout);
        sub.unsubscribe();
      },
    };
  }

  it('api-gateway: a slow request in flight is answered, new ones are turned away, and it exits 0', async () => {
    const gateway = await start('api-gateway', { RPC_TIMEOUT_MS: '10000' });
    const slow = slowDispatcher(1500);
    try {
      const inFlight = fetch(`${gateway.url}/api/webhooks`, { headers: KEY });
      await slow.arrived;
      const exited = timed(gateway.kill('SIGTERM'));
      await new Promise((r) => setTimeout(r, 200));
      // Closing: not ready, and no new work (a refused connection counts as turned away too), in SPEC 2's envelope.
      const late = await fetch(`${gateway.url}/readyz`).then((r) => r.status, () => 'refused');
      expect([503, 'refused']).toContain(late);
      const lateWork = await fetch(`${gateway.url}/api/webhooks`, { headers: KEY }).then(async (r) => ({ status: r.status, body: await r.json() }), () => 'refused');
      if (lateWork !== 'refused') expect(lateWork).toEqual({ status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String) } } });

      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ data: [] });
      const { value: code, ms } = await exited;
      expect(code).toBe(0);
      expect(ms).toBeGreaterThanOrEqual(1000);
      expect(ms).toBeLessThan(GRACE_MS);
    } finally {
      slow.stop();
    }
  });

  it('api-gateway: work that outlives SHUTDOWN_TIMEOUT_MS makes it exit 1 at the deadline', async () => {
    const gateway = await start('api-gateway', { RPC_TIMEOUT_MS: '20000', SHUTDOWN_TIMEOUT_MS: '1000' });
    const slow = slowDispatcher(15_000);
    try {
      const inFlight = fetch(`${gateway.url}/api/webhooks`, { headers: KEY }).catch(() => undefined);
      await slow.arrived;
      const { value: code, ms } = await timed(gateway.kill('SIGTERM'));
      expect(code).toBe(1);
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(5000);
      expect(gateway.output).toContain('SHUTDOWN_TIMEOUT_MS');
      await inFlight;
    } finally {
      slow.stop();
    }
  });

  it('Ctrl-C under npm start (SIGINT from the terminal, then SIGTERM from the launcher) still ends cleanly', async () => {
    const writer = await start('audit-writer');
    writer.child!.kill('SIGINT');
    const { value: code, ms } = await timed(writer.kill('SIGTERM'));
    expect(code).toBe(0);
    expect(ms).toBeLessThan(GRACE_MS);
    expect(writer.output).not.toContain('exiting now');
  });

  it('SHUTDOWN_TIMEOUT_MS that is not a number of milliseconds stops the process naming it', () => {
    for (const app of ['api-gateway', 'dispatcher', 'audit-writer']) {
      const r = spawnSync(process.execPath, [join(__dirname, `../dist/apps/${app}/main.js`)], {
        env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1', SHUTDOWN_TIMEOUT_MS: 'soon' },
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${app}: Invalid configuration`);
      expect(r.stderr).toMatch(/\bSHUTDOWN_TIMEOUT_MS: must be a whole number of milliseconds/);
    }
  });
});
