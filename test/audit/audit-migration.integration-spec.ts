import { migrateSchema } from '@herald/database';
import { auditSchema } from '../../apps/audit-writer/src/migrate';
import { AUDIT_MIGRATIONS } from '../../apps/audit-writer/src/migrations';
import { createTestEnv, startInProcess, urlOf } from '../stack';
import { dbOf, getJson } from './audit-helpers';

describe('the audit schema migration to chained, partitioned entries', () => {
  it('moves the entries of the first schema over, oldest first, chained and verifiable', async () => {
    const env = await createTestEnv();
    const db = await dbOf(env);
    try {
      await migrateSchema({ url: env.databaseUrl, ...auditSchema, migrations: AUDIT_MIGRATIONS.slice(0, 1) });
      await db.query(`
        insert into audit.entries (id, event_id, event, entity_type, entity_id, organization_id, payload, created_at, recorded_at)
        select 'aud_' || lpad(i::text, 26, '0'), 'evt_' || lpad(i::text, 26, '0'), 'orders.create', 'order', 'o-' || i, 'default',
               jsonb_build_object('id', 'o-' || i, 'b', 1, 'a', 2), '2025-01-01T00:00:00Z'::timestamptz + i * interval '1 day',
               '2025-01-01T00:00:00.123456Z'::timestamptz + i * interval '1 day'
        from generate_series(1, 1200) i`);
      await migrateSchema({ url: env.databaseUrl, ...auditSchema });
      const moved = await db.query<{ n: string; seqs: string; parts: string }>(
        `select count(*) as n, count(distinct chain_seq) as seqs, count(distinct tableoid) as parts from audit.entries where organization_id = 'default'`,
      );
      expect(moved.rows[0]).toEqual({ n: '1200', seqs: '1200', parts: expect.any(String) });
      expect(Number(moved.rows[0].parts)).toBeGreaterThan(30);
      const first = await db.query(`select chain_seq, recorded_at from audit.entries where chain_seq = 1`);
      expect(first.rows[0].recorded_at.toISOString()).toBe('2025-01-02T00:00:00.123Z');
      expect((await db.query(`select to_regclass('audit.entries_v1') as t`)).rows[0].t).toBeNull();

      const gateway = await startInProcess('api-gateway', env);
      const writer = await startInProcess('audit-writer', env);
      try {
        expect((await getJson(`${urlOf(gateway)}/api/audit/verify`)).body.data).toEqual({ valid: true, checked: 1200, firstInvalid: null });
        expect((await getJson(`${urlOf(gateway)}/api/audit/order/o-7`)).body.data).toEqual([expect.objectContaining({ eventId: `evt_${'7'.padStart(26, '0')}` })]);
      } finally {
        await gateway.close();
        await writer.close();
      }
    } finally {
      await db.end();
      await env.cleanup();
    }
  });
});
