import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { ServiceProcess, TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from '../stack';
import { dbOf, entryCount, getJson } from './audit-helpers';

const TOTAL = 3000;
const ORGS = ['default', 'beta'];

describe('two audit-writer replicas, each SIGKILLed mid-burst and restarted: exactly one entry per event, chains intact', () => {
  let env: TestEnv;
  let db: Client;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let gateway: INestApplication | undefined;
  const writers: ServiceProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    db = await dbOf(env);
    ({ publisher, nc } = await publisherFor(env));
  });

  afterAll(async () => {
    await gateway?.close();
    for (const w of writers) if (w.child?.exitCode === null) await w.kill('SIGTERM');
    await db?.end();
    await nc?.close();
    await env?.cleanup();
  });

  it(`${TOTAL} events published while the writers are killed come out as ${TOTAL} entries`, async () => {
    const vars = { CONSUMER_ACK_WAIT_MS: '2000', CONSUMER_BATCH_SIZE: '100' };
    writers.push(await ServiceProcess.start('audit-writer', env, vars), await ServiceProcess.start('audit-writer', env, vars));
    const [a, b] = writers;
    const ids: string[] = [];
    let killedA = false;
    let killedB = false;
    for (let i = 0; i < TOTAL; i += 100) {
      const chunk = await Promise.all(
        Array.from({ length: 100 }, (_, j) => publisher.publish({ type: 'orders.create', organizationId: ORGS[(i + j) % 2], data: { id: `o-${i + j}` } })),
      );
      ids.push(...chunk.map((r) => r.event.id));
      const written = await entryCount(db);
      if (!killedA && written >= 200) {
        killedA = true;
        expect(await a.kill('SIGKILL')).toBeNull();
      } else if (killedA && !killedB && written >= 1000) {
        killedB = true;
        expect(await b.kill('SIGKILL')).toBeNull();
      }
    }
    if (!killedA) await a.kill('SIGKILL');
    if (!killedB) await b.kill('SIGKILL');
    const atKill = await entryCount(db);
    expect(atKill).toBeLessThan(TOTAL);

    await a.launch();
    await b.launch();
    await waitFor(async () => (await entryCount(db)) >= TOTAL, 60_000, `${TOTAL} entries`);
    // Redeliveries after ack_wait must not add anything: wait past one more ack_wait.
    await new Promise((r) => setTimeout(r, 3000));
    const counts = await db.query<{ n: string; distinct_events: string }>('select count(*) as n, count(distinct event_id) as distinct_events from audit.entries');
    expect(counts.rows[0]).toEqual({ n: String(TOTAL), distinct_events: String(TOTAL) });
    const missing = await db.query('select unnest($1::text[]) as id except select event_id from audit.entries', [ids]);
    expect(missing.rows).toEqual([]);

    // Every organization's chain has no gap and checks out through the API.
    gateway = await startInProcess('api-gateway', env, { API_KEYS: JSON.stringify([]) });
    for (const org of ORGS) {
      const seqs = await db.query<{ n: string; min: string; max: string }>('select count(distinct chain_seq) as n, min(chain_seq), max(chain_seq) from audit.entries where organization_id = $1', [org]);
      expect(seqs.rows[0]).toEqual({ n: String(TOTAL / 2), min: '1', max: String(TOTAL / 2) });
    }
    const verified = await getJson(`${urlOf(gateway)}/api/audit/verify`);
    expect(verified.body.data).toEqual({ valid: true, checked: TOTAL / 2, firstInvalid: null });
  });
});
