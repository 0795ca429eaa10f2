import { INestApplication } from '@nestjs/common';
import { JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';
import { ServiceProcess, TestEnv, createTestEnv, migrate, startInProcess, urlOf, waitFor } from './stack';

/**
 * The audit of a webhook change survives a failed publish and a crash: the webhooks.* event is
 * committed with the change (outbox) and published later by the relay of a restarted dispatcher.
 */
describe('webhook change events: outbox across a NATS failure and a SIGKILLed dispatcher', () => {
  let env: TestEnv;
  let dispatcher: ServiceProcess;
  let gateway: INestApplication;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let pg: Client;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    nc = await connect({ servers: env.vars.NATS_URL });
    jsm = await jetstreamManager(nc);
    pg = new Client({ connectionString: env.databaseUrl });
    await pg.connect();
    dispatcher = await ServiceProcess.start('dispatcher', env);
    gateway = await startInProcess('api-gateway', env);
  });

  afterAll(async () => {
    await gateway?.close();
    if (dispatcher?.child?.exitCode === null) await dispatcher.kill('SIGTERM');
    await pg?.end();
    await nc?.close();
    await env?.cleanup();
  });

  it('a change committed while the stream is gone is published after the dispatcher is killed and restarted', async () => {
    // The stream disappears (an outage of JetStream, as far as publishing is concerned).
    await jsm.streams.delete(env.vars.EVENTS_STREAM);
    const res = await fetch(`${urlOf(gateway)}/api/webhooks`, {
      method: 'POST',
      headers: { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json', 'x-request-id': 'req-outbox-1' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/h', events: ['orders.create'] }),
    });
    // The change itself is done: the publish failure does not fail the request.
    expect(res.status).toBe(201);
    const { data } = (await res.json()) as { data: { id: string; secret: string } };
    const pending = await pg.query<{ envelope: { type: string; entity: { id: string }; requestId: string } }>('select envelope from dispatch.outbox');
    expect(pending.rows.map((r) => [r.envelope.type, r.envelope.entity.id, r.envelope.requestId])).toEqual([['webhooks.create', data.id, 'req-outbox-1']]);

    // The dispatcher dies before any relay could publish it.
    expect(await dispatcher.kill('SIGKILL')).toBeNull();
    // A new dispatcher recreates the stream at start-up, and its relay publishes what the outbox holds.
    await dispatcher.launch();
    const subject = `${env.vars.EVENTS_SUBJECT_PREFIX}.webhooks.create`;
    const msg = await waitFor(async () => (await jsm.streams.getMessage(env.vars.EVENTS_STREAM, { last_by_subj: subject }).catch(() => null)) ?? undefined, 20_000, 'the relayed event');
    const event = msg!.json<{ type: string; actor: { id: string }; requestId: string; data: Record<string, unknown> }>();
    expect(event).toMatchObject({ type: 'webhooks.create', actor: { id: 'dev-staff-key' }, requestId: 'req-outbox-1', data: { id: data.id } });
    expect(msg!.string()).not.toContain(data.secret);
    await waitFor(async () => (await pg.query('select 1 from dispatch.outbox')).rowCount === 0, 10_000, 'the outbox to empty');
  });

  it('a change whose event JetStream is slow to take still answers its success at once; the relay publishes the event later', async () => {
    // Events of webhooks.* reach no stream, and a subscriber that never answers holds each publish
    // until the client's timeout (as a JetStream that is slow or partitioned would).
    const prefix = env.vars.EVENTS_SUBJECT_PREFIX;
    await jsm.streams.update(env.vars.EVENTS_STREAM, { subjects: [`${prefix}.orders.>`] });
    const silent = nc.subscribe(`${prefix}.webhooks.>`);
    const impatient = await startInProcess('api-gateway', env, { RPC_TIMEOUT_MS: '2000' });
    try {
      const started = Date.now();
      const res = await fetch(`${urlOf(impatient)}/api/webhooks`, {
        method: 'POST',
        headers: { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json', 'x-request-id': 'req-outbox-slow' },
        body: JSON.stringify({ url: 'http://127.0.0.1:9/slow', events: ['orders.create'] }),
      });
      expect(res.status).toBe(201);
      expect(Date.now() - started).toBeLessThan(2000);
      const { data } = (await res.json()) as { data: { id: string } };
      expect((await pg.query(`select envelope->>'type' as type from dispatch.outbox where envelope->'entity'->>'id' = $1`, [data.id])).rows).toEqual([{ type: 'webhooks.create' }]);

      // JetStream takes webhooks.* again: the relay publishes what the outbox kept.
      silent.unsubscribe();
      await jsm.streams.update(env.vars.EVENTS_STREAM, { subjects: [`${prefix}.>`] });
      const msg = await waitFor(
        async () => {
          const m = await jsm.streams.getMessage(env.vars.EVENTS_STREAM, { last_by_subj: `${prefix}.webhooks.create` }).catch(() => null);
          return m?.json<{ requestId: string }>().requestId === 'req-outbox-slow' ? m : undefined;
        },
        20_000,
        'the relayed event',
      );
      expect(msg!.json<{ requestId: string; data: { id: string } }>()).toMatchObject({ requestId: 'req-outbox-slow', data: { id: data.id } });
      await waitFor(async () => (await pg.query('select 1 from dispatch.outbox')).rowCount === 0, 15_000, 'the outbox to empty');
    } finally {
      if (!silent.isClosed()) silent.unsubscribe();
      await impatient.close();
    }
  });
});
