import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { dbOf, entryCount } from './audit/audit-helpers';
import { AppName, TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from './stack';

/** The reading an alert rule sees: the gauge's value on the service's /metrics. */
async function lagOf(app: INestApplication, metric: string): Promise<number | undefined> {
  const text = await (await fetch(`${urlOf(app)}/metrics`)).text();
  const m = new RegExp(`^${metric}\\{[^}]*\\} (-?\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

interface LagCase {
  app: AppName;
  metric: string;
  /** A table every batch of this consumer needs: holding an exclusive lock on it stalls the consumer. */
  stallTable: string;
  /** What the consumer must have written once it caught up. */
  caughtUp?: (env: TestEnv) => Promise<void>;
}

const cases: LagCase[] = [
  {
    app: 'dispatcher',
    metric: 'herald_dispatcher_consumer_lag',
    // The intake reads the webhooks table in every batch.
    stallTable: 'dispatch.webhooks',
  },
  {
    app: 'audit-writer',
    metric: 'herald_audit_consumer_lag',
    // Every batch locks its organizations' chain heads.
    stallTable: 'audit.chain_heads',
    async caughtUp(env) {
      const db = await dbOf(env);
      try {
        await waitFor(async () => (await entryCount(db)) === 200, 10_000, 'every entry');
      } finally {
        await db.end();
      }
    },
  },
];

describe.each(cases)('$metric: events the $app has not been handed yet', ({ app, metric, stallTable, caughtUp }) => {
  let env: TestEnv;
  let service: INestApplication;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let blocker: Client;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    service = await startInProcess(app, env, { CONSUMER_BATCH_SIZE: '10' });
    ({ publisher, nc } = await publisherFor(env));
    blocker = await dbOf(env);
  });

  afterAll(async () => {
    await blocker?.query('rollback').catch(() => undefined);
    await blocker?.end();
    await nc?.close();
    await service?.close();
    await env?.cleanup();
  });

  it('grows while the consumer is stuck, returns to 0 once it catches up, and nothing is lost', async () => {
    expect(await lagOf(service, metric)).toBe(0);
    await blocker.query('begin');
    await blocker.query(`lock table ${stallTable} in access exclusive mode`);
    for (let i = 0; i < 200; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => publisher.publish({ type: 'orders.create', data: { id: `o-${i + j}` } })));
    }
    // At most two batches (20) are in the consumer's hands; the rest wait in the stream.
    const stuck = await waitFor(async () => {
      const lag = await lagOf(service, metric);
      return lag !== undefined && lag >= 150 ? lag : undefined;
    }, 15_000, 'the lag to show the waiting events');
    expect(stuck).toBeLessThanOrEqual(200);
    await blocker.query('rollback');
    await waitFor(async () => (await lagOf(service, metric)) === 0, 20_000, 'the lag to return to 0');
    await caughtUp?.(env);
  });
});
