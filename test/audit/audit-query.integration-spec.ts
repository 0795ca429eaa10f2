import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { DomainEvent } from '@herald/contracts';
import { Client } from 'pg';
import { Stack, publisherFor, startStack, waitFor } from '../stack';
import { Page, apiKeys, dbOf, entryCount, getJson } from './audit-helpers';

const ACME = { 'x-api-key': 'acme-auditor' };
const HOOKS_ONLY = { 'x-api-key': 'acme-hooks' };
const TYPES = ['orders.create', 'orders.statusChange', 'catalog.update', 'customers.create'];
const ACTORS = ['staff-1', 'staff-2', undefined];
const BASE = Date.parse('2026-03-01T00:00:00.000Z');

type Entry = Record<string, unknown>;

/** The order of SPEC 2: createdAt desc, then id desc. */
function isNewestFirst(entries: Entry[]): boolean {
  return entries.every((e, i) => i === 0 || [entries[i - 1].createdAt as string, entries[i - 1].id as string].join('|') > [e.createdAt as string, e.id as string].join('|'));
}

describe('GET /api/audit through the gateway: filters, validation, order, paging (SPEC 2)', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let db: Client;
  const fixture: DomainEvent[] = [];

  beforeAll(async () => {
    stack = await startStack({
      'api-gateway': {
        API_KEYS: apiKeys([
          { id: 'acme-auditor', organizationId: 'acme', permissions: ['audit:read'] },
          { id: 'acme-hooks', organizationId: 'acme', permissions: ['webhooks:manage'] },
        ]),
      },
    });
    ({ publisher, nc } = await publisherFor(stack.env));
    db = await dbOf(stack.env);
    // 60 events of the default organization, two per hour from 2026-03-01T00:00Z (pairs share a
    // timestamp, so the id decides their order), and 5 of organization acme.
    for (let i = 0; i < 60; i++) {
      const actor = ACTORS[i % 3];
      const { event } = await publisher.publish({
        type: TYPES[i % 4],
        timestamp: new Date(BASE + Math.floor(i / 2) * 3_600_000).toISOString(),
        ...(actor ? { actor: { id: actor, type: 'user' as const } } : {}),
        data: { id: `e-${i % 5}`, n: i },
      });
      fixture.push(event);
    }
    for (let i = 0; i < 5; i++) {
      fixture.push((await publisher.publish({ type: 'orders.create', organizationId: 'acme', timestamp: new Date(BASE).toISOString(), data: { id: `e-${i}` } })).event);
    }
    await waitFor(async () => (await entryCount(db)) === 65, 20_000, 'the fixture to be recorded');
  });

  afterAll(async () => {
    await db?.end();
    await nc?.close();
    await stack?.close();
  });

  const expected = (pred: (e: DomainEvent) => boolean, org = 'default') =>
    fixture
      .filter((e) => e.organizationId === org && pred(e))
      .map((e) => e.id)
      .sort();
  const eventIds = (page: Page) => page.body.data.map((e) => e.eventId as string).sort();

  it('lists the organization\'s entries newest first, 50 by default, with a cursor to the rest', async () => {
    const first = await getJson(`${stack.url}/api/audit`);
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(50);
    expect(isNewestFirst(first.body.data)).toBe(true);
    expect(first.body.data[0].createdAt).toBe(new Date(BASE + 29 * 3_600_000).toISOString());
    expect(typeof first.body.nextCursor).toBe('string');
    const rest = await getJson(`${stack.url}/api/audit?cursor=${first.body.nextCursor}`);
    expect(rest.body.data).toHaveLength(10);
    expect(rest.body.nextCursor).toBeNull();
    expect([...eventIds(first), ...eventIds(rest)].sort()).toEqual(expected(() => true));
    expect(isNewestFirst([...first.body.data, ...rest.body.data])).toBe(true);
  });

  it.each<[string, (e: DomainEvent) => boolean]>([
    ['entityType=order', (e) => e.entity.type === 'order'],
    ['entityType=catalog&entityId=e-2', (e) => e.entity.type === 'catalog' && e.entity.id === 'e-2'],
    ['entityId=e-3', (e) => e.entity.id === 'e-3'],
    ['event=orders.statusChange', (e) => e.type === 'orders.statusChange'],
    ['actorId=staff-2', (e) => e.actor?.id === 'staff-2'],
    ['event=orders.create&actorId=staff-1', (e) => e.type === 'orders.create' && e.actor?.id === 'staff-1'],
    ['from=2026-03-01T20:00:00Z', (e) => e.timestamp >= '2026-03-01T20:00:00.000Z'],
    ['to=2026-03-01T03:00:00.000Z', (e) => e.timestamp <= '2026-03-01T03:00:00.000Z'],
    ['from=2026-03-01T03:00:00Z&to=2026-03-01T05:00:00Z', (e) => e.timestamp >= '2026-03-01T03:00:00.000Z' && e.timestamp <= '2026-03-01T05:00:00.000Z'],
    ['from=2026-03-02', (e) => e.timestamp >= '2026-03-02T00:00:00.000Z'],
    ['to=2026-03-01', (e) => e.timestamp < '2026-03-02T00:00:00.000Z'],
    ['from=2026-03-01&to=2026-03-01', (e) => e.timestamp < '2026-03-02T00:00:00.000Z'],
    ['from=2026-03-01T05:00:00%2B02:00', (e) => e.timestamp >= '2026-03-01T03:00:00.000Z'],
    ['to=2026-03-01T02:00', (e) => e.timestamp <= '2026-03-01T02:00:00.000Z'],
    ['entityType=order&from=2026-03-01T10:00:00Z&to=2026-03-01T20:00:00Z', (e) => e.entity.type === 'order' && e.timestamp >= '2026-03-01T10:00:00.000Z' && e.timestamp <= '2026-03-01T20:00:00.000Z'],
    ['event=no.such', () => false],
  ])('?%s matches exactly, newest first', async (qs, pred) => {
    const page = await getJson(`${stack.url}/api/audit?${qs}&limit=100`);
    expect(page.status).toBe(200);
    expect(eventIds(page)).toEqual(expected(pred));
    expect(isNewestFirst(page.body.data)).toBe(true);
    expect(page.body.nextCursor).toBeNull();
  });

  it('GET /api/audit/:entityType/:entityId gives one entity\'s history, with from, to, limit and cursor', async () => {
    const all = await getJson(`${stack.url}/api/audit/order/e-0?limit=100`);
    expect(eventIds(all)).toEqual(expected((e) => e.entity.type === 'order' && e.entity.id === 'e-0'));
    expect(all.body.data.length).toBeGreaterThan(1);
    const ranged = await getJson(`${stack.url}/api/audit/order/e-0?from=2026-03-01T10:00:00Z&to=2026-03-02`);
    expect(eventIds(ranged)).toEqual(expected((e) => e.entity.type === 'order' && e.entity.id === 'e-0' && e.timestamp >= '2026-03-01T10:00:00.000Z'));
    const one = await getJson(`${stack.url}/api/audit/order/e-0?limit=1`);
    expect(one.body.data).toHaveLength(1);
    const next = await getJson(`${stack.url}/api/audit/order/e-0?limit=1&cursor=${one.body.nextCursor}`);
    expect(next.body.data[0].id).toBe(all.body.data[1].id);
    expect((await getJson(`${stack.url}/api/audit/order/nothing-here`)).body).toEqual({ data: [], nextCursor: null });
  });

  it.each<[string, string, RegExp]>([
    ['limit=0', 'limit', /integer from 1 to 100/],
    ['limit=101', 'limit', /integer from 1 to 100/],
    ['limit=1.5', 'limit', /integer from 1 to 100/],
    ['limit=ten', 'limit', /integer from 1 to 100/],
    ['limit=-1', 'limit', /integer from 1 to 100/],
    ['limit=', 'limit', /integer from 1 to 100/],
    ['from=yesterday', 'from', /ISO 8601/],
    ['from=2026-13-01', 'from', /ISO 8601/],
    ['from=2026-02-30', 'from', /ISO 8601/],
    ['to=2026-W10', 'to', /ISO 8601/],
    ['to=1709251200', 'to', /ISO 8601/],
    ['from=2026-03-02&to=2026-03-01', 'to', /must not be before from/],
    ['from=2026-03-01T12:00:00Z&to=2026-03-01T11:59:59Z', 'to', /must not be before from/],
    ['cursor=not-a-cursor', 'cursor', /nextCursor/],
    [`cursor=${Buffer.from('{"id":1}').toString('base64url')}`, 'cursor', /nextCursor/],
    ['entityType=', 'entityType', /empty/],
    [`actorId=${'x'.repeat(201)}`, 'actorId', /200/],
    ['sort=asc', 'sort', /should not exist/],
  ])('?%s is 422 VALIDATION_FAILED naming %s', async (qs, field, message) => {
    const page = await getJson(`${stack.url}/api/audit?${qs}`);
    expect(page.status).toBe(422);
    expect(page.body.error!.code).toBe('VALIDATION_FAILED');
    expect(page.body.error!.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.stringMatching(message) })]));
  });

  it('the same rules hold on the entity route', async () => {
    for (const qs of ['limit=0', 'from=nope', 'from=2026-03-02&to=2026-03-01', 'cursor=x', 'event=orders.create']) {
      const page = await getJson(`${stack.url}/api/audit/order/e-0?${qs}`);
      expect({ qs, status: page.status, code: page.body.error?.code }).toEqual({ qs, status: 422, code: 'VALIDATION_FAILED' });
    }
  });

  it('limit=1 and limit=100 are accepted; from equal to to is accepted', async () => {
    expect((await getJson(`${stack.url}/api/audit?limit=1`)).body.data).toHaveLength(1);
    expect((await getJson(`${stack.url}/api/audit?limit=100`)).body.data).toHaveLength(60);
    const exact = await getJson(`${stack.url}/api/audit?from=2026-03-01T01:00:00Z&to=2026-03-01T01:00:00Z`);
    expect(eventIds(exact)).toEqual(expected((e) => e.timestamp === '2026-03-01T01:00:00.000Z'));
  });

  it('a key sees only its organization\'s entries; keys need audit:read', async () => {
    const acme = await getJson(`${stack.url}/api/audit?limit=100`, ACME);
    expect(eventIds(acme)).toEqual(expected(() => true, 'acme'));
    expect(acme.body.data.every((e) => e.organizationId === 'acme')).toBe(true);
    const dev = await getJson(`${stack.url}/api/audit?limit=100`);
    expect(dev.body.data.some((e) => e.organizationId === 'acme')).toBe(false);
    const foreign = fixture.find((e) => e.organizationId === 'acme')!;
    expect((await getJson(`${stack.url}/api/audit/order/${foreign.entity.id}?limit=100`, ACME)).body.data.every((e) => e.organizationId === 'acme')).toBe(true);

    const forbidden = await getJson(`${stack.url}/api/audit`, HOOKS_ONLY);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toMatchObject({ code: 'FORBIDDEN', message: "Permission 'audit:read' is required." });
    expect((await getJson(`${stack.url}/api/audit/verify`, HOOKS_ONLY)).status).toBe(403);
    expect((await getJson(`${stack.url}/api/audit`, {})).status).toBe(401);
    expect((await getJson(`${stack.url}/api/audit`, { authorization: 'Bearer acme-auditor' })).status).toBe(200);
  });

  it('paging visits every entry that matched when paging began exactly once, while new entries arrive', async () => {
    const before = await getJson(`${stack.url}/api/audit?limit=100`);
    const initial = before.body.data.map((e) => e.id as string);
    const seen: string[] = [];
    let cursor: string | null | undefined;
    let inserted = 0;
    do {
      const page = await getJson(`${stack.url}/api/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((e) => e.id as string));
      cursor = page.body.nextCursor;
      // New entries at the head, in the middle (timestamps inside the range) and at the tail of the order.
      for (const offset of [40 * 3_600_000, 7 * 3_600_000 + 1, -3_600_000]) {
        await publisher.publish({ type: 'orders.create', timestamp: new Date(BASE + offset).toISOString(), data: { id: `late-${inserted++}` } });
      }
      await waitFor(async () => (await entryCount(db, 'organization_id = $1', ['default'])) === 60 + inserted, 10_000, 'the new entries');
    } while (cursor);
    expect(seen).toHaveLength(new Set(seen).size);
    expect(seen.sort()).toEqual(initial.sort());
  });
});
