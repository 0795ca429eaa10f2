import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { Client } from 'pg';
import { Stack, publisherFor, startStack, waitFor } from '../stack';
import { apiKeys, dbOf, entryCount, getJson } from './audit-helpers';

const ORGS = ['intact', 'changed', 'removed', 'inserted', 'truncated', 'appended'];
const keyOf = (org: string) => ({ 'x-api-key': `${org}-key` });

describe('GET /api/audit/verify finds entries changed, removed or inserted behind Herald\'s back', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let db: Client;

  beforeAll(async () => {
    stack = await startStack({ 'api-gateway': { API_KEYS: apiKeys(ORGS.map((o) => ({ id: `${o}-key`, organizationId: o, permissions: ['audit:*'] }))) } });
    ({ publisher, nc } = await publisherFor(stack.env));
    db = await dbOf(stack.env);
    // Each organization has a chain of its own, so each tampering below is found on its own.
    for (let i = 0; i < 10; i++) {
      for (const org of ORGS) {
        await publisher.publish({ type: 'orders.create', organizationId: org, timestamp: new Date(Date.UTC(2026, 2, 1, i)).toISOString(), data: { id: `o-${i}`, total: i * 100 } });
      }
    }
    await waitFor(async () => (await entryCount(db)) === 10 * ORGS.length, 20_000, 'the entries');
  });

  afterAll(async () => {
    await db?.end();
    await nc?.close();
    await stack?.close();
  });

  const verify = async (org: string, qs = '') => {
    const r = await getJson(`${stack.url}/api/audit/verify${qs}`, keyOf(org));
    expect(r.status).toBe(200);
    return r.body.data as unknown as { valid: boolean; checked: number; firstInvalid: { id: string | null; reason: string } | null };
  };
  /** The entry at a chain position. */
  const at = async (org: string, seq: number) =>
    (await db.query<{ id: string; event_id: string }>('select id, event_id from audit.entries where organization_id = $1 and chain_seq = $2', [org, seq])).rows[0];
  /** Tampering as an administrator would: with the append-only triggers switched off for the session. */
  const tamper = async (sql: string, params: unknown[] = []) => {
    await db.query('set session_replication_role = replica');
    try {
      await db.query(sql, params);
    } finally {
      await db.query('set session_replication_role = origin');
    }
  };

  it('an untouched chain is valid, whole or in a range', async () => {
    expect(await verify('intact')).toEqual({ valid: true, checked: 10, firstInvalid: null });
    expect(await verify('intact', '?from=2026-03-01T03:00:00Z&to=2026-03-01T05:00:00Z')).toEqual({ valid: true, checked: 3, firstInvalid: null });
  });

  it('a changed payload is found at that entry', async () => {
    const victim = await at('changed', 4);
    await tamper(`update audit.entries set payload = jsonb_set(payload, '{total}', '1') where id = $1`, [victim.id]);
    expect(await verify('changed')).toEqual({ valid: false, checked: 4, firstInvalid: { id: victim.id, reason: expect.stringMatching(/^changed/) } });
    // A range after it still checks out: each entry is anchored on the stored hash before it.
    expect((await verify('changed', '?from=2026-03-01T05:00:00Z')).valid).toBe(true);
  });

  it('a removed entry is found at the entry after it', async () => {
    const victim = await at('removed', 6);
    const next = await at('removed', 7);
    await tamper('delete from audit.entries where id = $1', [victim.id]);
    expect(await verify('removed')).toEqual({ valid: false, checked: 6, firstInvalid: { id: next.id, reason: expect.stringMatching(/^removed/) } });
  });

  it('an inserted entry is found, whether it takes a used position or one past the head', async () => {
    const copy = async (seq: number, newSeq: number, suffix: string) => {
      await tamper(
        `insert into audit.entries (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, chain_seq, hash)
         select id || $3::text, event_id || $3::text, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, $4, hash
         from audit.entries where organization_id = $1 and chain_seq = $2`,
        ['inserted', seq, suffix, newSeq],
      );
    };
    await copy(3, 11, 'x');
    expect((await verify('inserted')).firstInvalid).toEqual({ id: `${(await at('inserted', 3)).id}x`, reason: expect.stringMatching(/^inserted: chain position 11 is past/) });
    await copy(2, 2, 'y');
    const result = await verify('inserted');
    expect(result.valid).toBe(false);
    expect(result.firstInvalid!.reason).toMatch(/^inserted: a second entry at chain position 2/);
  });

  it('removing the newest entries is found too', async () => {
    await tamper(`delete from audit.entries where organization_id = 'truncated' and chain_seq >= 9`);
    expect(await verify('truncated')).toEqual({ valid: false, checked: 8, firstInvalid: { id: (await at('truncated', 8)).id, reason: expect.stringMatching(/^removed: the newest/) } });
  });

  it('keeps verifying entries written after a check', async () => {
    expect((await verify('appended')).checked).toBe(10);
    const { event } = await publisher.publish({ type: 'orders.create', organizationId: 'appended', data: { id: 'later' } });
    await waitFor(async () => (await entryCount(db, 'event_id = $1', [event.id])) === 1);
    expect(await verify('appended')).toEqual({ valid: true, checked: 11, firstInvalid: null });
  });

  it('from/to are validated like the queries', async () => {
    for (const qs of ['?from=nope', '?from=2026-03-02&to=2026-03-01', '?limit=5']) {
      const r = await getJson(`${stack.url}/api/audit/verify${qs}`, keyOf('intact'));
      expect({ qs, status: r.status, code: r.body.error?.code }).toEqual({ qs, status: 422, code: 'VALIDATION_FAILED' });
    }
  });
});
