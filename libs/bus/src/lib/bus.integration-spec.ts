import { JetStreamClient, JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NatsConnection, headers } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { HeraldError } from '@herald/contracts';
import { TEST_NATS_URL, waitFor } from '@herald/testing';
import { randomBytes } from 'node:crypto';
import { EventBatch, DurableBatchConsumer } from './batch-consumer';
import { BusOptions } from './bus.options';
import { EventPublisher } from './event-publisher';
import { ensureEventStream } from './event-stream';

describe('bus on real JetStream', () => {
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let options: BusOptions;
  let publisher: EventPublisher;

  beforeAll(async () => {
    const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    options = {
      servers: [TEST_NATS_URL],
      name: 'bus-test',
      eventsStream: `HERALD_BUS_TEST_${id}`,
      eventsSubjectPrefix: `herald_test.${id}.events`,
      rpcSubjectPrefix: `herald_test.${id}.rpc`,
      maxAgeSeconds: 600,
      duplicateWindowSeconds: 120,
      replicas: 1,
    };
    nc = await connect({ servers: TEST_NATS_URL });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    await ensureEventStream(jsm, options);
    publisher = new EventPublisher(js, options.eventsSubjectPrefix);
  });

  afterAll(async () => {
    await jsm.streams.delete(options.eventsStream).catch(() => undefined);
    await nc.close();
  });

  it('creates the stream once and updates its limits idempotently', async () => {
    await ensureEventStream(jsm, options);
    await ensureEventStream(jsm, { ...options, maxAgeSeconds: 900 });
    const info = await jsm.streams.info(options.eventsStream);
    expect(info.config.subjects).toEqual([`${options.eventsSubjectPrefix}.>`]);
    expect(info.config.max_age).toBe(900 * 1e9);
    expect(info.config.duplicate_window).toBe(120 * 1e9);
    await ensureEventStream(jsm, options);
  });

  it('publish fills id and timestamp, sets Nats-Msg-Id, and JetStream drops a republish', async () => {
    const first = await publisher.publish({ type: 'orders.create', data: { id: 'o-1' } });
    expect(first.event.id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(Number.isNaN(Date.parse(first.event.timestamp))).toBe(false);
    expect(first.duplicate).toBe(false);
    const { id, type, timestamp, data } = first.event;
    const again = await publisher.publish({ id, type, timestamp, data });
    expect(again.duplicate).toBe(true);
    const msg = await jsm.streams.getMessage(options.eventsStream, { seq: first.seq });
    expect(msg?.subject).toBe(`${options.eventsSubjectPrefix}.orders.create`);
    expect(msg?.header.get('Nats-Msg-Id')).toBe(first.event.id);
  });

  it('publish refuses an invalid envelope before it reaches the stream', async () => {
    const before = (await jsm.streams.info(options.eventsStream)).state.messages;
    await expect(publisher.publish({ type: 'not a type', data: {} })).rejects.toBeInstanceOf(HeraldError);
    expect((await jsm.streams.info(options.eventsStream)).state.messages).toBe(before);
  });

  it('a consumer acks after the handler, redelivers a failed batch, and terminates malformed messages', async () => {
    const seen: EventBatch[] = [];
    let failures = 0;
    const good = publisher.prepare({ type: 'catalog.update', data: { id: 'c-1' } });
    const consumer = new DurableBatchConsumer(js, jsm, { stream: options.eventsStream, subjectPrefix: options.eventsSubjectPrefix, durableName: 'bus-test-consumer', batchSize: 50, retryDelayMs: 100, isTransient: (err) => (err as Error).message === 'database down' }, async (batch) => {
      // The first batch holding the good event fails, as a database outage would.
      if (failures === 0 && batch.events.some((e) => e.event.id === good.id)) {
        failures++;
        throw new Error('database down');
      }
      seen.push(batch);
    });
    await consumer.start();
    await publisher.publishPrepared(good);
    const h = headers();
    h.set('Nats-Msg-Id', `poison-${Date.now()}`);
    await js.publish(`${options.eventsSubjectPrefix}.orders.create`, 'not json at all', { headers: h });
    const mismatched = publisher.prepare({ type: 'orders.create', data: { id: 'o-2' } });
    await js.publish(`${options.eventsSubjectPrefix}.orders.statusChange`, JSON.stringify(mismatched));

    const events = () => seen.flatMap((b) => b.events.map((e) => e.event.id));
    const rejected = () => seen.flatMap((b) => b.rejected.map((r) => r.reason));
    await waitFor(() => events().includes(good.id) && rejected().length >= 2, 15_000, 'redelivery after the failed batch');
    expect(failures).toBe(1);
    expect(rejected()).toEqual(expect.arrayContaining(['body is not JSON', expect.stringContaining('does not match subject')]));
    await waitFor(async () => (await jsm.consumers.info(options.eventsStream, 'bus-test-consumer')).num_ack_pending === 0, 10_000, 'all acked or terminated');

    await consumer.stop();
    const info = await jsm.consumers.info(options.eventsStream, 'bus-test-consumer');
    expect(info.num_pending).toBe(0);
    expect(info.num_ack_pending).toBe(0);
    // The good event reached the handler in exactly one committed batch.
    expect(events().filter((id) => id === good.id)).toHaveLength(1);
  });
});
