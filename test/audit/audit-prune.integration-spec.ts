import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { ulid } from 'ulid';
import { NewEntry, Partitions, appendEntries } from '../../apps/audit-writer/src/log/audit-log';
import { TestEnv, createTestEnv, migrate, startInProcess, urlOf, waitFor } from '../stack';
import { dbOf, entryCount, getJson } from './audit-helpers';

function prune(env: TestEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [join(__dirname, '../../dist/tools/audit-prune.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env.vars },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const entry = (org: string, i: number, recordedAt?: string): NewEntry => ({
  id: `aud_${ulid()}`,
  eventId: `evt_${ulid()}`,
  event: 'orders.create',
  entityType: 'order',
  entityId: `o-${i}`,
  actorId: null,
  actorType: null,
  organizationId: org,
  requestId: null,
  payload: { id: `o-${i}` },
  createdAt: (recordedAt ?? new Date().toISOString()).replace(/T.*/, 'T00:00:00.000Z'),
  ...(recordedAt ? { recordedAt } : {}),
});

describe('npm run audit:prune -- --before <date>: drops whole months, records and publishes it, the chain still verifies', () => {
  let env: TestEnv;
  let db: Client;
  let gateway: INestApplication;
  let writer: INestApplication;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    db = await dbOf(env);
    // History recorded in January and February 2026 (written as the migration moves old entries),
    // then entries recorded now by the running writer's code path.
    const q = async <R>(sql: string, params?: unknown[]) => (await db.query(sql, params)).rows as R[];
    const partitions = new Partitions();
    for (const org of ['default', 'other']) {
      await db.query('begin');
      await appendEntries(q, partitions, [
        ...Array.from({ length: 10 }, (_, i) => entry(org, i, new Date(Date.UTC(2026, 0, 2 + i)).toISOString())),
        ...Array.from({ length: 10 }, (_, i) => entry(org, 10 + i, new Date(Date.UTC(2026, 1, 2 + i)).toISOString())),
      ]);
      await appendEntries(q, partitions, Array.from({ length: 5 }, (_, i) => entry(org, 20 + i)));
      await db.query('commit');
    }
    writer = await startInProcess('audit-writer', env);
    gateway = await startInProcess('api-gateway', env);
  });

  afterAll(async () => {
    await gateway?.close();
    await writer?.close();
    await db?.end();
    await env?.cleanup();
  });

  const partitionNames = async () =>
    (await db.query<{ name: string }>(`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit.entries'::regclass order by 1`)).rows.map(
      (r) => r.name,
    );

  it('refuses a missing, unparseable or future --before', () => {
    for (const args of [[], ['--before', 'last-month'], ['--before', '2999-01-01'], ['--after', '2026-01-01']]) {
      const r = prune(env, ...args);
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toMatch(/audit-prune: .*(--before|Unknown option)/);
    }
  });

  it('drops only partitions that end on or before the date, and verification starts after them', async () => {
    expect(await partitionNames()).toEqual(expect.arrayContaining(['entries_p202601', 'entries_p202602']));
    const mid = prune(env, '--before', '2026-02-15');
    expect(mid.stderr).toBe('');
    expect(mid.status).toBe(0);
    expect(mid.stdout).toContain('dropped entries_p202601 (20 entries recorded before 2026-02-15T00:00:00.000Z)');
    expect(await partitionNames()).not.toContain('entries_p202601');
    expect(await partitionNames()).toContain('entries_p202602');
    expect(await entryCount(db)).toBe(30);
    // 10 entries of February, 5 of now, and the audit.prune entry of this prune once it is ingested.
    await waitFor(async () => (await getJson(`${urlOf(gateway)}/api/audit?event=audit.prune`)).body.data.length === 1);
    expect((await getJson(`${urlOf(gateway)}/api/audit/verify`)).body.data).toEqual({ valid: true, checked: 16, firstInvalid: null });

    const march = prune(env, '--before', '2026-03-01T00:00:00Z');
    expect(march.status).toBe(0);
    expect(await partitionNames()).not.toContain('entries_p202602');
    expect((await getJson(`${urlOf(gateway)}/api/audit/verify`)).body.data).toMatchObject({ valid: true, checked: expect.any(Number) });
    const anchors = await db.query(`select organization_id, seq from audit.chain_anchors order by 1`);
    expect(anchors.rows).toEqual([
      { organization_id: 'default', seq: '20' },
      { organization_id: 'other', seq: '20' },
    ]);
    const prunes = await db.query(`select before, partitions, entries, published_at from audit.prunes order by pruned_at`);
    expect(prunes.rows.map((p) => ({ before: p.before.toISOString(), partitions: p.partitions, entries: p.entries, published: p.published_at !== null }))).toEqual([
      { before: '2026-02-15T00:00:00.000Z', partitions: ['entries_p202601'], entries: '20', published: true },
      { before: '2026-03-01T00:00:00.000Z', partitions: ['entries_p202602'], entries: '20', published: true },
    ]);
    expect((await db.query(`select count(*)::int as n from audit.event_ids where recorded_at < '2026-03-01'`)).rows[0].n).toBe(0);
  });

  it('each prune is itself an audit entry (audit.prune), and the chain verifies with it', async () => {
    const page = await waitFor(async () => {
      const r = await getJson(`${urlOf(gateway)}/api/audit?event=audit.prune`);
      return r.body.data.length === 2 && r.body.data;
    });
    expect(page.map((e) => e.payload)).toEqual([
      expect.objectContaining({ before: '2026-03-01T00:00:00.000Z', partitions: ['entries_p202602'], entries: 20 }),
      expect.objectContaining({ before: '2026-02-15T00:00:00.000Z', partitions: ['entries_p202601'], entries: 20 }),
    ]);
    expect(page[0]).toMatchObject({ entityType: 'auditPrune', actorId: 'audit-prune', actorType: 'system' });
    expect((await getJson(`${urlOf(gateway)}/api/audit/verify`)).body.data).toEqual({ valid: true, checked: 7, firstInvalid: null });
  });

  it('a prune with nothing to drop is still recorded; entries stay append-only afterwards', async () => {
    const r = prune(env, '--before', '2025-06-01');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no partition ends on or before');
    await expect(db.query(`delete from audit.entries`)).rejects.toThrow(/append-only/);
  });
});
