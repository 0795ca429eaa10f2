import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from './stack';

/** The reading an alert rule sees: the gauge's value on the service's /metrics. */
async function lagOf(app: INestApplication, metric: string): Promise<number | undefined> {
  const text = await (await fetch(`${urlOf(app)}/metrics`)).text();
  const m = new RegExp(`^${metric}\\{[^}]*\\} (-?\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('herald_dispatcher_consumer_lag: events the dispatcher intake has not been handed yet', () => {
  let env: TestEnv;
  let dispatcher: INestApplication;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let blocker: Client;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    dispatcher = await startInProcess('dispatcher', env, { CONSUMER_BATCH_SIZE: '10' });
    ({ publisher, nc } = await publisherFor(env));
    blocker = new Client({ connectionString: env.databaseUrl });
    await blocker.connect();
  });

  afterAll(async () => {
    await blocker?.query('rollback').catch(() => undefined);
    await blocker?.end();
    await nc?.close();
    await dispatcher?.close();
    await env?.cleanup();
  });

  it('grows while the intake is stuck and returns to 0 once it catches up', async () => {
    expect(await lagOf(dispatcher, 'herald_dispatcher_consumer_lag')).toBe(0);
    // The intake reads the webhooks table in every batch: holding a lock on it stalls the intake.
    await blocker.query('begin');
    await blocker.query('lock table dispatch.webhooks in access exclusive mode');
    for (let i = 0; i < 200; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => publisher.publish({ type: 'orders.create', data: { id: `o-${i + j}` } })));
    }
    // At most two batches (20) are in the intake's hands; the rest wait in the stream.
    const stuck = await waitFor(async () => {
      const lag = await lagOf(dispatcher, 'herald_dispatcher_consumer_lag');
      return lag !== undefined && lag >= 150 ? lag : undefined;
    }, 15_000, 'the lag to show the waiting events');
    expect(stuck).toBeLessThanOrEqual(200);
    await blocker.query('rollback');
    await waitFor(async () => (await lagOf(dispatcher, 'herald_dispatcher_consumer_lag')) === 0, 20_000, 'the lag to return to 0');
  });
});
