import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { Receiver, signatureValid } from './receiver';
import { Stack, publisherFor, startStack, waitFor } from './stack';

const KEY = { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' };
const SECRET = 'whsec_test_secret_0123456789abcdef';

describe('delivery: events reach real receivers, signed, retried and recorded', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let receiver: Receiver;
  let db: Client;

  beforeAll(async () => {
    stack = await startStack({
      // Small backoff so six attempts take about a second: 40, 80, 160, 320, 640 ms (± 20 %).
      dispatcher: { WEBHOOK_RETRY_BASE_MS: '40', WEBHOOK_RETRY_FACTOR: '2', WEBHOOK_SENDER_POLL_MS: '100', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_LEASE_MS: '5000' },
    });
    ({ publisher, nc } = await publisherFor(stack.env));
    receiver = await Receiver.start();
    db = new Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await receiver?.close();
    await nc?.close();
    await stack?.close();
  });

  async function webhook(path: string, events: string[] = ['orders.create'], headers: Record<string, string> = KEY): Promise<string> {
    const res = await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers, body: JSON.stringify({ url: receiver.url(path), events, secret: SECRET }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { data: { id: string } }).data.id;
  }

  async function attemptsOf(deliveryId: string): Promise<Array<{ attempt_number: number; status_code: number | null; error: string | null }>> {
    return (await db.query('select attempt_number, status_code, error from dispatch.attempts where delivery_id = $1 order by attempt_number', [deliveryId])).rows;
  }

  async function deliveryOf(webhookId: string, eventId: string): Promise<{ id: string; status: string; attempt_count: number; last_status_code: number | null; next_attempt_at: Date | null; delivered_at: Date | null }> {
    const rows = (await db.query('select * from dispatch.deliveries where webhook_id = $1 and event_id = $2', [webhookId, eventId])).rows;
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  it('POSTs the seed payload with every SPEC 3 header, signed so the seed verifyWebhookSignature accepts it', async () => {
    const webhookId = await webhook('/signed');
    const data = { id: 'ord-1', orderNumber: 'ORD-2026-000042', status: 'pending', grandTotal: 4999, currency: 'USD', note: 'é ✓ "quoted"' };
    const { event } = await publisher.publish({ type: 'orders.create', actor: { id: 'staff-1', type: 'user' }, data });
    const [got] = await waitFor(() => receiver.at('/signed').length > 0 && receiver.at('/signed'), 15_000, 'the delivery');
    expect(got.method).toBe('POST');
    expect(signatureValid(got, SECRET)).toBe(true);
    expect(signatureValid(got, 'whsec_some_other_secret_entirely')).toBe(false);
    expect(got.headers['x-commerce-signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(got.rawBody)).toEqual({ id: event.id, type: 'orders.create', timestamp: event.timestamp, data });
    expect(got.rawBody).toBe(JSON.stringify({ id: event.id, type: event.type, timestamp: event.timestamp, data }));
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-commerce-event']).toBe('orders.create');
    expect(got.headers['x-commerce-event-id']).toBe(event.id);
    expect(got.headers['x-commerce-delivery']).toMatch(/^dlv_[0-9A-Z]{26}$/);
    expect(got.headers['x-commerce-attempt']).toBe('1');
    expect(got.headers['user-agent']).toMatch(/^Herald-Webhooks\/\d+\.\d+\.\d+$/);
    const d = await waitFor(async () => {
      const row = await deliveryOf(webhookId, event.id);
      return row.status === 'succeeded' && row;
    });
    expect(d).toMatchObject({ id: got.headers['x-commerce-delivery'], attempt_count: 1, last_status_code: 200, next_attempt_at: null });
    expect(d.delivered_at).toBeInstanceOf(Date);
    expect(await attemptsOf(d.id)).toEqual([{ attempt_number: 1, status_code: 200, error: null }]);
  });

  it('500, 500, 500, then 200: four attempts recorded, numbered in the header, then succeeded', async () => {
    receiver.script('/flaky', [500, 500, 500, 200]);
    const webhookId = await webhook('/flaky');
    const { event } = await publisher.publish({ type: 'orders.create', data: { id: 'ord-2' } });
    const d = await waitFor(async () => {
      const row = await deliveryOf(webhookId, event.id);
      return row.status === 'succeeded' && row;
    }, 20_000, 'the delivery to succeed');
    expect(d.attempt_count).toBe(4);
    expect(await attemptsOf(d.id)).toEqual([
      { attempt_number: 1, status_code: 500, error: null },
      { attempt_number: 2, status_code: 500, error: null },
      { attempt_number: 3, status_code: 500, error: null },
      { attempt_number: 4, status_code: 200, error: null },
    ]);
    const got = receiver.at('/flaky');
    expect(got.map((r) => r.headers['x-commerce-attempt'])).toEqual(['1', '2', '3', '4']);
    expect(new Set(got.map((r) => r.headers['x-commerce-delivery']))).toEqual(new Set([d.id]));
    expect(got.every((r) => signatureValid(r, SECRET))).toBe(true);
    // Backoff: each wait is at least 80 % of 40 × 2^(n-1) ms.
    for (let i = 1; i < got.length; i++) expect(got[i].at - got[i - 1].at).toBeGreaterThanOrEqual(0.8 * 40 * 2 ** (i - 1) - 5);
  });
});
