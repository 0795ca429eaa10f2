import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Stack, publisherFor, startStack, urlOf, waitFor } from './stack';

const KEY = { 'x-api-key': 'dev-staff-key' };

describe('walking skeleton: publish → audit, and webhooks through the gateway', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;

  beforeAll(async () => {
    stack = await startStack();
    ({ publisher, nc } = await publisherFor(stack.env));
  });

  afterAll(async () => {
    await nc?.close();
    await stack?.close();
  });

  it('an orders.create published with the library comes back from GET /api/audit', async () => {
    const { event } = await publisher.publish({
      type: 'orders.create',
      actor: { id: 'staff-42', type: 'user' },
      requestId: 'req-123',
      data: { id: '550e8400-e29b-41d4-a716-446655440000', orderNumber: 'ORD-2026-000042', status: 'pending', grandTotal: 4999, currency: 'USD' },
    });
    const entry = await waitFor(async () => {
      const res = await fetch(`${stack.url}/api/audit?event=orders.create`, { headers: KEY });
      const body = (await res.json()) as { data: Array<Record<string, unknown>> };
      return body.data.find((e) => e.eventId === event.id);
    });
    expect(entry).toMatchObject({
      event: 'orders.create',
      entityType: 'order',
      entityId: '550e8400-e29b-41d4-a716-446655440000',
      actorId: 'staff-42',
      actorType: 'user',
      organizationId: 'default',
      requestId: 'req-123',
      createdAt: event.timestamp,
    });
  });

  it('POST then GET /api/webhooks persists through the dispatcher', async () => {
    const created = await fetch(`${stack.url}/api/webhooks`, {
      method: 'POST',
      headers: { ...KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hooks', events: ['orders.create'] }),
    });
    expect(created.status).toBe(201);
    const { data } = (await created.json()) as { data: { id: string; secret: string } };
    expect(data.secret).toMatch(/^whsec_/);
    const list = await fetch(`${stack.url}/api/webhooks`, { headers: KEY });
    expect(list.status).toBe(200);
    expect(list.headers.get('x-request-id')).toBeTruthy();
    const body = (await list.json()) as { data: Array<Record<string, unknown>> };
    expect(body.data.map((w) => w.id)).toContain(data.id);
    expect(body.data.every((w) => !('secret' in w))).toBe(true);
  });

  it('every app answers /healthz, /readyz and /metrics', async () => {
    for (const app of [stack.gateway, stack.dispatcher, stack.auditWriter]) {
      const base = urlOf(app);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: Record<string, boolean> }).checks.nats).toBe(true);
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      expect(await metrics.text()).toContain('herald_process_cpu_user_seconds_total');
    }
  });
});
