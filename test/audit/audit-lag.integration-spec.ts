import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from '../stack';
import { dbOf, entryCount } from './audit-helpers';

async function gauge(app: INestApplication, metric: string): Promise<number | undefined> {
  const m = new RegExp(`^${metric}\\{[^}]*\\} (-?\\d+)`, 'm').exec(await (await fetch(`${urlOf(app)}/metrics`)).text());
  return m ? Number(m[1]) : undefined;
}

describe('herald_audit_consumer_lag: events the audit-writer has not been handed yet', () => {
  let env: TestEnv;
  let writer: INestApplication;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let blocker: Client;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    writer = await startInProcess('audit-writer', env, { CONSUMER_BATCH_SIZE: '10' });
    ({ publisher, nc } = await publisherFor(env));
    blocker = await dbOf(env);
  });

  afterAll(async () => {
    await blocker?.query('rollback').catch(() => undefined);
    await blocker?.end();
    await nc?.close();
    await writer?.close();
    await env?.cleanup();
  });

  it('grows while the writer is stuck, returns to 0 once it catches up, and nothing is lost', async () => {
    expect(await gauge(writer, 'herald_audit_consumer_lag')).toBe(0);
    // Every batch locks its organizations' chain heads: holding the table stalls the writer.
    await blocker.query('begin');
    await blocker.query('lock table audit.chain_heads in access exclusive mode');
    for (let i = 0; i < 200; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => publisher.publish({ type: 'orders.create', data: { id: `o-${i + j}` } })));
    }
    const stuck = await waitFor(async () => {
      const lag = await gauge(writer, 'herald_audit_consumer_lag');
      return lag !== undefined && lag >= 150 ? lag : undefined;
    }, 15_000, 'the lag to show the waiting events');
    expect(stuck).toBeLessThanOrEqual(200);
    await blocker.query('rollback');
    await waitFor(async () => (await gauge(writer, 'herald_audit_consumer_lag')) === 0, 20_000, 'the lag to return to 0');
    const db = await dbOf(env);
    try {
      await waitFor(async () => (await entryCount(db)) === 200, 10_000, 'every entry');
    } finally {
      await db.end();
    }
  });
});
