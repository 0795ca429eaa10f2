import { AuditQueryDto } from '@herald/contracts';
import { Client } from 'pg';
import { pageQuery } from '../../apps/audit-writer/src/query/audit-query.service';
import { TestEnv, createTestEnv, migrate } from '../stack';
import { dbOf } from './audit-helpers';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe('every filter of GET /api/audit is served by an index in page order', () => {
  let env: TestEnv;
  let db: Client;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    db = await dbOf(env);
    // 60,000 entries over a year of event time, recorded over three months, 90% in one organization.
    await db.query(`select audit.ensure_partitions(now() - interval '2 months', now())`);
    await db.query(`
      insert into audit.entries (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, chain_seq, hash)
      select 'aud_' || lpad(i::text, 26, '0'), 'evt_' || lpad(i::text, 26, '0'), m || '.' || (array['create','update','delete'])[1 + i % 3],
             m, 'e-' || (i % 3000), case when i % 5 = 0 then null else 'staff-' || (i % 200) end, 'user',
             case when i % 10 = 0 then 'org-' || (i % 7) else 'default' end, null, jsonb_build_object('n', i),
             now() - (i % 365) * interval '1 day' - (i % 86400) * interval '1 second', now() - (i % 60) * interval '1 day', i, md5(i::text)
      from generate_series(1, 60000) i, lateral (select (array['orders','catalog','inventory','customers','pricing','promotions'])[1 + i % 6] as m) mm`);
    await db.query('analyze audit.entries');
  });

  afterAll(async () => {
    await db?.end();
    await env?.cleanup();
  });

  const cursor = Buffer.from(JSON.stringify({ createdAt: new Date(Date.now() - 30 * 86_400_000).toISOString(), id: 'aud_5', asOf: new Date().toISOString() })).toString('base64url');
  const cases: [string, Partial<AuditQueryDto>, string][] = [
    ['no filter', {}, 'entries_org_created'],
    ['entityType', { entityType: 'orders' }, 'entries_org_entity_type'],
    ['entityType + entityId', { entityType: 'orders', entityId: 'e-6' }, 'entries_org_entity'],
    ['event', { event: 'orders.update' }, 'entries_org_event'],
    ['actorId', { actorId: 'staff-7' }, 'entries_org_actor'],
    ['from + to', { from: new Date(Date.now() - 20 * 86_400_000).toISOString(), to: new Date(Date.now() - 10 * 86_400_000).toISOString() }, 'entries_org_created'],
    ['event + cursor', { event: 'catalog.create', cursor }, 'entries_org_event'],
    ['actorId + from', { actorId: 'staff-8', from: new Date(Date.now() - 100 * 86_400_000).toISOString() }, 'entries_org_actor'],
  ];

  /** Every partition that holds entries is read through its copy of the filter's index; empty ones may be scanned. */
  async function expectIndexScans(plan: PlanNode, index: string): Promise<void> {
    const partitionIndexes = (await db.query<{ name: string }>(`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = $1::regclass`, [`audit.${index}`])).rows.map((r) => r.name);
    const withRows = (await db.query<{ name: string }>(`select distinct tableoid::regclass::text as name from audit.entries`)).rows.map((r) => r.name.replace(/^audit\./, ''));
    const scans = nodes(plan).filter((n) => n['Relation Name'] && withRows.includes(n['Relation Name']));
    expect(scans).toHaveLength(withRows.length);
    for (const scan of scans) {
      expect({ partition: scan['Relation Name'], type: scan['Node Type'] }).toEqual({ partition: scan['Relation Name'], type: 'Index Scan' });
      expect(partitionIndexes).toContain(scan['Index Name']);
    }
  }

  it.each(cases)("%s: the filter's index on every partition with entries", async (_, filters, index) => {
    const { sql, params } = pageQuery(filters as AuditQueryDto, 'default');
    const plan = (await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (format json) ${sql}`, params)).rows[0]['QUERY PLAN'][0].Plan;
    await expectIndexScans(plan, index);
  });

  // The audit-writer prepares each page shape, and Postgres switches to the generic plan (one made
  // without the parameters' values) once it costs no more than the custom ones: it must use the index too.
  it.each(cases)("%s: the same index in the generic plan of the prepared statement", async (_, filters, index) => {
    const { sql, params } = pageQuery(filters as AuditQueryDto, 'default');
    const literal = (v: unknown) => db.escapeLiteral(v instanceof Date ? v.toISOString() : String(v));
    await db.query('set plan_cache_mode = force_generic_plan');
    try {
      await db.query(`prepare page as ${sql}`);
      const plan = (await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (format json) execute page(${params.map(literal).join(', ')})`)).rows[0]['QUERY PLAN'][0].Plan;
      await expectIndexScans(plan, index);
    } finally {
      await db.query('deallocate all');
      await db.query('reset plan_cache_mode');
    }
  });
});
