import { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { ulid } from 'ulid';
import { Stack, publisherFor, startStack, urlOf, waitFor } from '../stack';
import { DEV_KEY, dbOf, entryCount, getJson } from './audit-helpers';

describe('audit ingest (SPEC 1 and 4): one entry per event, redacted, append-only', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let db: Client;
  const subject = (type: string) => `${stack.env.vars.EVENTS_SUBJECT_PREFIX}.${type}`;

  beforeAll(async () => {
    stack = await startStack();
    ({ publisher, nc } = await publisherFor(stack.env));
    db = await dbOf(stack.env);
  });

  afterAll(async () => {
    await db?.end();
    await nc?.close();
    await stack?.close();
  });

  const entryOf = (eventId: string) =>
    waitFor(async () => {
      const r = await db.query('select * from audit.entries where event_id = $1', [eventId]);
      return r.rows[0] as Record<string, unknown> | undefined;
    }, 15_000, `the entry of ${eventId}`);

  it('redacts secret-like keys at any depth and keeps everything else', async () => {
    const { event } = await publisher.publish({
      type: 'customers.update',
      data: {
        id: 'cus_1',
        email: 'a@example.com',
        password: 'hunter2',
        nested: { apiKey: 'k', api_key: 'k2', list: [{ cardNumber: '4242', cvv: '123', last4: '4242' }], Authorization: 'Bearer x', refresh_token: 't' },
      },
    });
    const res = await waitFor(async () => {
      const page = await getJson(`${stack.url}/api/audit/customer/cus_1`);
      return page.body.data.find((e) => e.eventId === event.id);
    });
    expect(res.payload).toEqual({
      id: 'cus_1',
      email: 'a@example.com',
      password: '[REDACTED]',
      nested: { apiKey: '[REDACTED]', api_key: '[REDACTED]', list: [{ cardNumber: '[REDACTED]', cvv: '[REDACTED]', last4: '4242' }], Authorization: '[REDACTED]', refresh_token: '[REDACTED]' },
    });
    expect(JSON.stringify(await entryOf(event.id))).not.toMatch(/hunter2|4242"[^}]*cvv|Bearer x/);
  });

  it('derives the entity from the module and data.id when the event has none, and keeps an explicit one', async () => {
    const cases: Array<[string, Record<string, unknown>, { type: string; id: string } | undefined, string, string | null]> = [
      ['orders.statusChange', { id: 'o-1' }, undefined, 'order', 'o-1'],
      ['inventory.afterAdjust', { id: 42 }, undefined, 'inventory', '42'],
      ['promotions.create', { id: 'p-1' }, undefined, 'promotion', 'p-1'],
      ['loyalty.earn', { points: 5 }, undefined, 'loyalty', null],
      ['cart.afterAddItem', { id: 'c-1' }, { type: 'cartItem', id: 'ci-9' }, 'cartItem', 'ci-9'],
    ];
    for (const [type, data, entity, entityType, entityId] of cases) {
      const { event } = await publisher.publish({ type, data, ...(entity ? { entity } : {}) });
      const row = await entryOf(event.id);
      expect({ type, entityType: row.entity_type, entityId: row.entity_id }).toEqual({ type, entityType, entityId });
    }
  });

  it('the same event id twice (a redelivery or a second publish) makes one entry', async () => {
    const js = jetstream(nc);
    const event = publisher.prepare({ type: 'orders.create', data: { id: 'dup-1' } });
    const body = JSON.stringify({ id: event.id, type: event.type, timestamp: event.timestamp, data: event.data });
    // Different Nats-Msg-Ids, so JetStream's own duplicate window does not drop the second one.
    await js.publish(subject('orders.create'), body, { msgID: `${event.id}-a` });
    await js.publish(subject('orders.create'), body, { msgID: `${event.id}-b` });
    const marker = await publisher.publish({ type: 'orders.create', data: { id: 'after-dup' } });
    await entryOf(marker.event.id);
    expect(await entryCount(db, 'event_id = $1', [event.id])).toBe(1);
  });

  it('a poison message between two good ones is recorded and does not stop the good ones', async () => {
    const js = jetstream(nc);
    const first = await publisher.publish({ type: 'orders.create', data: { id: 'good-1' } });
    await js.publish(subject('orders.create'), 'this is not json');
    // A valid envelope holding what Postgres cannot store (jsonb refuses a NUL character): refused at the door.
    const refused = publisher.prepare({ type: 'orders.create', data: { id: 'nul', note: 'a\u0000b' } });
    await js.publish(subject('orders.create'), JSON.stringify(refused), { msgID: refused.id });
    const misrouted = publisher.prepare({ type: 'orders.create', data: {} });
    await js.publish(subject('orders.update'), JSON.stringify({ id: misrouted.id, type: misrouted.type, timestamp: misrouted.timestamp, data: {} }));
    const second = await publisher.publish({ type: 'orders.create', data: { id: 'good-2' } });
    await entryOf(first.event.id);
    await entryOf(second.event.id);
    const rejected = await waitFor(async () => {
      const r = await db.query<{ subject: string; reason: string; raw: Buffer }>('select subject, reason, raw from audit.rejected_events order by id');
      return r.rows.length >= 3 && r.rows;
    });
    expect(rejected).toHaveLength(3);
    expect(rejected.map((r) => r.reason)).toEqual(
      expect.arrayContaining(['body is not JSON', expect.stringContaining('NUL (\\u0000)'), expect.stringMatching(/does not match subject/)]),
    );
    expect(rejected.find((r) => r.reason === 'body is not JSON')!.raw.toString()).toBe('this is not json');
    expect(await entryCount(db, 'event_id = $1', [refused.id])).toBe(0);
    const metrics = await (await fetch(`${urlOf(stack.auditWriter)}/metrics`)).text();
    expect(metrics).toMatch(/herald_audit_events_rejected_total\{service="audit-writer"\} 3\b/);
    expect(metrics).toMatch(/herald_audit_events_ingested_total\{service="audit-writer"\} [1-9]/);
    expect(metrics).toMatch(/herald_audit_batch_size_count\{service="audit-writer"\} [1-9]/);
    expect(metrics).toMatch(/herald_audit_consumer_lag\{service="audit-writer"\} 0\b/);
  });

  it('requestId and actor travel into the entry; createdAt is the event timestamp, recordedAt the write time', async () => {
    const before = Date.now();
    const { event } = await publisher.publish({
      id: `evt_${ulid()}`,
      type: 'pricing.update',
      timestamp: '2026-03-15T10:30:00.000Z',
      actor: { id: 'svc-pricing', type: 'service' },
      requestId: 'req-xyz',
      data: { id: 'price-1', amount: 10 },
    });
    const page = await waitFor(async () => (await getJson(`${stack.url}/api/audit?event=pricing.update`, DEV_KEY)).body.data.find((e) => e.eventId === event.id));
    expect(page).toMatchObject({ actorId: 'svc-pricing', actorType: 'service', requestId: 'req-xyz', createdAt: '2026-03-15T10:30:00.000Z', organizationId: 'default' });
    expect(Date.parse(page.recordedAt as string)).toBeGreaterThanOrEqual(before - 1000);
    expect(page.id).toMatch(/^aud_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('the database refuses UPDATE, DELETE and TRUNCATE of entries, on the table and on a partition', async () => {
    const { event } = await publisher.publish({ type: 'orders.create', data: { id: 'immutable' } });
    await entryOf(event.id);
    const partition = (await db.query<{ p: string }>(`select tableoid::regclass::text as p from audit.entries where event_id = $1`, [event.id])).rows[0].p;
    for (const table of ['audit.entries', partition]) {
      await expect(db.query(`update ${table} set payload = '{}' where event_id = $1`, [event.id])).rejects.toThrow(/append-only: UPDATE is refused/);
      await expect(db.query(`delete from ${table} where event_id = $1`, [event.id])).rejects.toThrow(/append-only: DELETE is refused/);
      await expect(db.query(`truncate ${table}`)).rejects.toThrow(/append-only: TRUNCATE is refused/);
    }
    expect(await entryCount(db, 'event_id = $1', [event.id])).toBe(1);
  });
});
