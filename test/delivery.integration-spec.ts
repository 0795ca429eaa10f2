import { jetstream } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { API_KEYS_JSON, KEYS } from './api-keys-fixture';
import { Receiver, signatureValid } from './receiver';
import { Stack, publisherFor, startStack, urlOf, waitFor } from './stack';

const KEY = { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' };
const SECRET = 'whsec_test_secret_0123456789abcdef';
const ACME_KEY = KEYS.acme;

describe('delivery: events reach real receivers, signed, retried and recorded', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let receiver: Receiver;
  let db: Client;

  beforeAll(async () => {
    stack = await startStack({
      'api-gateway': { API_KEYS: API_KEYS_JSON },
      // Small backoff so six attempts take about a second: 40, 80, 160, 320, 640 ms (± 20 %).
      dispatcher: { WEBHOOK_RETRY_BASE_MS: '40', WEBHOOK_RETRY_FACTOR: '2', WEBHOOK_SENDER_POLL_MS: '100', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_LEASE_MS: '5000', WEBHOOK_RETRY_AFTER_MAX_MS: '1500' },
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
    const metrics = await (await fetch(`${urlOf(stack.dispatcher)}/metrics`)).text();
    expect(metrics).toMatch(/^herald_deliveries_total\{outcome="succeeded"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^herald_delivery_attempt_duration_seconds_count\{[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^herald_deliveries_created_total\{[^}]*\} [1-9]/m);
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

  async function api<T = unknown>(method: string, path: string, headers: Record<string, string> = KEY): Promise<{ status: number; body: T }> {
    const res = await fetch(`${stack.url}${path}`, { method, headers });
    return { status: res.status, body: (await res.json()) as T };
  }

  type DeliveryJson = { id: string; webhookId: string; eventId: string; eventType: string; status: string; attemptCount: number; nextAttemptAt: string | null; lastStatusCode: number | null; createdAt: string; updatedAt: string; deliveredAt: string | null };
  type DetailJson = DeliveryJson & { attempts: Array<{ attemptNumber: number; startedAt: string; durationMs: number; statusCode: number | null; error: string | null; responseBody: string | null }> };

  async function settled(deliveryId: string, status: string, timeoutMs = 20_000): Promise<DetailJson> {
    return waitFor(async () => {
      const { body } = await api<{ data: DetailJson }>('GET', `/api/deliveries/${deliveryId}`);
      return body.data.status === status && body.data;
    }, timeoutMs, `delivery ${deliveryId} to be ${status}`);
  }

  it('always failing: six attempts in all, then failed; a manual retry starts a new run whose attempts are appended', async () => {
    let healthy = false;
    receiver.on('/down', () => (healthy ? { status: 200, body: 'back' } : { status: 503, body: 'x'.repeat(10_000) }));
    const webhookId = await webhook('/down', ['inventory.*']);
    const { event } = await publisher.publish({ type: 'inventory.afterAdjust', data: { id: 'sku-1', delta: -2 } });
    const id = (await waitFor(() => deliveryOf(webhookId, event.id))).id;
    const failed = await settled(id, 'failed');
    expect(failed).toMatchObject({ webhookId, eventId: event.id, eventType: 'inventory.afterAdjust', attemptCount: 6, lastStatusCode: 503, nextAttemptAt: null, deliveredAt: null });
    expect(failed.attempts.map((a) => [a.attemptNumber, a.statusCode])).toEqual([1, 2, 3, 4, 5, 6].map((n) => [n, 503]));
    expect(failed.attempts[0].responseBody).toHaveLength(4096);
    expect(failed.attempts.every((a) => a.durationMs >= 0 && !Number.isNaN(Date.parse(a.startedAt)))).toBe(true);
    expect(receiver.at('/down')).toHaveLength(6);

    const list = await api<{ data: DeliveryJson[]; nextCursor: string | null }>('GET', `/api/webhooks/${webhookId}/deliveries?status=failed`);
    expect(list.status).toBe(200);
    expect(list.body.data.map((d) => d.id)).toEqual([id]);
    expect(list.body.nextCursor).toBeNull();

    healthy = true;
    const retried = await api<{ data: DeliveryJson }>('POST', `/api/deliveries/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body.data).toMatchObject({ id, status: 'pending', attemptCount: 6 });
    const done = await settled(id, 'succeeded');
    expect(done.attempts.map((a) => [a.attemptNumber, a.statusCode])).toEqual([...[1, 2, 3, 4, 5, 6].map((n) => [n, 503]), [7, 200]]);
    expect(done.attempts[6].responseBody).toBe('back');
    expect(done.deliveredAt).not.toBeNull();
    expect(receiver.at('/down').at(-1)!.headers['x-commerce-attempt']).toBe('7');

    const again = await api<{ error: { code: string; details: Array<{ field: string; message: string }> } }>('POST', `/api/deliveries/${id}/retry`);
    expect(again.status).toBe(422);
    expect(again.body.error.code).toBe('VALIDATION_FAILED');
    expect(again.body.error.details[0].message).toContain('succeeded');
  });

  it('410 Gone: no more attempts, delivery failed, webhook deactivated, and the deactivation audited with the system as its actor', async () => {
    receiver.script('/gone', [410]);
    const webhookId = await webhook('/gone', ['catalog.create']);
    const { event } = await publisher.publish({ type: 'catalog.create', data: { id: 'p-1' } });
    const id = (await waitFor(() => deliveryOf(webhookId, event.id))).id;
    const failed = await settled(id, 'failed');
    expect(failed.attempts.map((a) => a.statusCode)).toEqual([410]);
    const hook = await api<{ data: { isActive: boolean } }>('GET', `/api/webhooks/${webhookId}`);
    expect(hook.body.data.isActive).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at('/gone')).toHaveLength(1);
    // The deactivation is a webhooks.update like any other change, published through the outbox.
    type Entry = { event: string; actorId: string | null; actorType: string | null; payload: { isActive: boolean; reason?: string } };
    const entries = await waitFor(async () => {
      const { body } = await api<{ data: Entry[] }>('GET', `/api/audit/webhook/${webhookId}`);
      return body.data?.length === 2 && body.data;
    }, 15_000, 'the create and the deactivation in the audit trail');
    expect(entries.map((e) => [e.event, e.actorId, e.actorType])).toEqual([
      ['webhooks.update', 'dispatcher', 'system'],
      ['webhooks.create', 'dev-staff-key', 'api_key'],
    ]);
    expect(entries[0].payload).toMatchObject({ isActive: false, reason: 'receiver answered 410 Gone' });
    expect((await db.query('select count(*)::int as n from dispatch.outbox')).rows[0].n).toBe(0);
  });

  it('a redirect is not followed: the 302 is a failed attempt and the target never hears of it', async () => {
    receiver.on('/moved', () => ({ status: 302, headers: { location: receiver.url('/moved-target') } }));
    const webhookId = await webhook('/moved', ['customers.create']);
    const { event } = await publisher.publish({ type: 'customers.create', data: { id: 'c-1' } });
    const id = (await waitFor(() => deliveryOf(webhookId, event.id))).id;
    const failed = await settled(id, 'failed');
    expect(failed.attempts.map((a) => a.statusCode)).toEqual([302, 302, 302, 302, 302, 302]);
    expect(receiver.at('/moved-target')).toHaveLength(0);
  });

  it("another organization's events are not delivered to this one's webhooks, nor its deliveries shown", async () => {
    const mine = await webhook('/mine', ['pricing.create']);
    const theirs = await webhook('/theirs', ['pricing.create'], { ...KEY, 'x-api-key': ACME_KEY });
    const { event: acmeEvent } = await publisher.publish({ type: 'pricing.create', organizationId: 'acme', data: { id: 'price-acme' } });
    const { event: ownEvent } = await publisher.publish({ type: 'pricing.create', data: { id: 'price-default' } });
    await waitFor(() => receiver.at('/mine').length >= 1 && receiver.at('/theirs').length >= 1, 15_000, 'both deliveries');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at('/mine').map((r) => r.headers['x-commerce-event-id'])).toEqual([ownEvent.id]);
    expect(receiver.at('/theirs').map((r) => r.headers['x-commerce-event-id'])).toEqual([acmeEvent.id]);
    const acmeDelivery = await deliveryOf(theirs, acmeEvent.id);
    expect((await api('GET', `/api/deliveries/${acmeDelivery.id}`)).status).toBe(404);
    expect((await api('POST', `/api/deliveries/${acmeDelivery.id}/retry`)).status).toBe(404);
    expect((await api('GET', `/api/webhooks/${theirs}/deliveries`)).status).toBe(404);
    expect((await api('GET', `/api/webhooks/${mine}/deliveries`, { ...KEY, 'x-api-key': ACME_KEY })).status).toBe(404);
  });

  it('lists page newest first with a cursor; bad queries are 422 and unknown ids 404', async () => {
    receiver.script('/paged', [200]);
    const webhookId = await webhook('/paged', ['fulfillment.create']);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await publisher.publish({ type: 'fulfillment.create', data: { id: `f-${i}` } })).event.id);
    await waitFor(() => receiver.at('/paged').length === 5, 15_000, 'five deliveries');
    const seen: DeliveryJson[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { data: DeliveryJson[]; nextCursor: string | null } } = await api('GET', `/api/webhooks/${webhookId}/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.map((d) => d.eventId).sort()).toEqual([...ids].sort());
    const order = seen.map((d) => [d.createdAt, d.id].join(' '));
    expect(order).toEqual([...order].sort().reverse());

    for (const query of ['status=done', 'limit=0', 'limit=101', 'limit=two', 'cursor=bm9wZQ', 'colour=red']) {
      const r = await api<{ error: { code: string; details: Array<{ field: string }> } }>('GET', `/api/webhooks/${webhookId}/deliveries?${query}`);
      expect([query, r.status, r.body.error.code]).toEqual([query, 422, 'VALIDATION_FAILED']);
    }
    for (const path of ['/api/webhooks/wh_01M8JSJKQD7TQ80SM9BD64RY5F/deliveries', '/api/webhooks/nope/deliveries', '/api/deliveries/dlv_01M8JSJKQD7TQ80SM9BD64RY5F', '/api/deliveries/nope']) {
      const r = await api<{ error: { code: string } }>('GET', path);
      expect([path, r.status, r.body.error.code]).toEqual([path, 404, 'NOT_FOUND']);
    }
    expect((await api('POST', '/api/deliveries/dlv_01M8JSJKQD7TQ80SM9BD64RY5F/retry')).status).toBe(404);
    expect((await api('GET', `/api/webhooks/${webhookId}/deliveries`, { 'x-api-key': 'wrong' })).status).toBe(401);
  });

  it('deleting a webhook cancels its pending deliveries and keeps their history readable', async () => {
    receiver.script('/deleted', [500]);
    const webhookId = await webhook('/deleted', ['promotions.create']);
    const { event } = await publisher.publish({ type: 'promotions.create', data: { id: 'promo-1' } });
    await waitFor(() => receiver.at('/deleted').length >= 1, 15_000, 'a first attempt');
    expect((await api('DELETE', `/api/webhooks/${webhookId}`)).status).toBe(200);
    const d = await deliveryOf(webhookId, event.id);
    const view = await settled(d.id, 'cancelled', 5000);
    expect(view.attempts.length).toBeGreaterThanOrEqual(1);
    const list = await api<{ data: DeliveryJson[] }>('GET', `/api/webhooks/${webhookId}/deliveries`);
    expect(list.status).toBe(200);
    expect(list.body.data.map((x) => [x.id, x.status])).toEqual([[d.id, 'cancelled']]);
    const retry = await api<{ error: { code: string } }>('POST', `/api/deliveries/${d.id}/retry`);
    expect(retry.status).toBe(422);
  });

  it('Retry-After is honoured, up to WEBHOOK_RETRY_AFTER_MAX_MS', async () => {
    // 503 asking for 1 s, then 429 asking for an hour (cut to the 1.5 s maximum), then 200.
    receiver.on('/busy', (_req, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : n === 2 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 }));
    const webhookId = await webhook('/busy', ['catalog.update']);
    const { event } = await publisher.publish({ type: 'catalog.update', data: { id: 'sku-busy' } });
    const id = (await waitFor(() => deliveryOf(webhookId, event.id))).id;
    const done = await settled(id, 'succeeded');
    expect(done.attempts.map((a) => a.statusCode)).toEqual([503, 429, 200]);
    const at = receiver.at('/busy').map((r) => r.at);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(950);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(1450);
    expect(at[2] - at[1]).toBeLessThan(5000);
  });

  it('a malformed message is recorded in dispatch.rejected_events and does not hold up the deliveries around it', async () => {
    const webhookId = await webhook('/around-malformed', ['orders.statusChange']);
    const js = jetstream(nc);
    const subject = `${stack.env.vars.EVENTS_SUBJECT_PREFIX}.orders.statusChange`;
    await js.publish(subject, 'not json at all');
    const { event } = await publisher.publish({ type: 'orders.statusChange', data: { id: 'ord-after', status: 'paid' } });
    await waitFor(() => receiver.at('/around-malformed').length === 1, 15_000, 'the delivery after the malformed message');
    expect(receiver.at('/around-malformed')[0].headers['x-commerce-event-id']).toBe(event.id);
    const rejected = (await db.query('select subject, reason, convert_from(raw, $1) as raw from dispatch.rejected_events where subject = $2', ['UTF8', subject])).rows;
    expect(rejected).toEqual([{ subject, reason: expect.any(String), raw: 'not json at all' }]);
    expect((await db.query('select count(*)::int as n from dispatch.deliveries where webhook_id = $1', [webhookId])).rows[0].n).toBe(1);
  });
});
