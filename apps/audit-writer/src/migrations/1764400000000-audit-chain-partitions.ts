import { Query } from '@herald/database';
import { MigrationInterface, QueryRunner } from 'typeorm';
import { NewEntry, Partitions, appendEntries } from '../log/audit-log';

/**
 * Entries become append-only (triggers), hash-chained per organization, and partitioned by month
 * of recording so retention drops whole partitions. Entries of the first schema are moved over,
 * oldest first, and chained as they go.
 */
export class AuditChainPartitions1764400000000 implements MigrationInterface {
  name = 'AuditChainPartitions1764400000000';

  async up(q: QueryRunner): Promise<void> {
    const query: Query = async (sql, params) => (await q.query(sql, params, true)).records;
    await q.query(`alter table audit.entries rename to entries_v1`);
    await q.query(`alter index audit.entries_org_created rename to entries_v1_org_created`);
    await q.query(`create table audit.event_ids (event_id text primary key, recorded_at timestamptz not null default now())`);
    await q.query(`
      create table audit.chain_heads (
        organization_id text primary key,
        seq bigint not null default 0,
        hash text not null default '${'0'.repeat(64)}',
        last_recorded_at timestamptz not null default '-infinity'
      )`);
    // Where an organization's chain starts after a prune: the position and hash of its last pruned entry.
    await q.query(`create table audit.chain_anchors (organization_id text primary key, seq bigint not null, hash text not null)`);
    await q.query(`
      create table audit.prunes (
        id text primary key,
        before timestamptz not null,
        partitions text[] not null,
        entries bigint not null,
        event_id text not null,
        pruned_at timestamptz not null default now(),
        published_at timestamptz
      )`);
    await q.query(`
      create table audit.entries (
        id text not null,
        event_id text not null,
        event text not null,
        entity_type text not null,
        entity_id text,
        actor_id text,
        actor_type text,
        organization_id text not null,
        request_id text,
        payload jsonb not null,
        created_at timestamptz not null,
        recorded_at timestamptz not null,
        chain_seq bigint not null,
        hash text not null,
        primary key (id, recorded_at)
      ) partition by range (recorded_at)`);
    // One index behind each filter of GET /api/audit, each ending in the page order.
    await q.query(`create index entries_org_created on audit.entries (organization_id, created_at desc, id desc)`);
    await q.query(`create index entries_org_entity on audit.entries (organization_id, entity_type, entity_id, created_at desc, id desc)`);
    await q.query(`create index entries_org_entity_type on audit.entries (organization_id, entity_type, created_at desc, id desc)`);
    await q.query(`create index entries_org_event on audit.entries (organization_id, event, created_at desc, id desc)`);
    await q.query(`create index entries_org_actor on audit.entries (organization_id, actor_id, created_at desc, id desc)`);
    await q.query(`create index entries_org_chain on audit.entries (organization_id, chain_seq)`);
    await q.query(`
      create function audit.refuse_change() returns trigger language plpgsql as $$
      begin
        raise exception 'audit entries are append-only: % is refused', tg_op using errcode = 'insufficient_privilege';
      end $$`);
    await q.query(`create trigger entries_append_only before update or delete on audit.entries for each row execute function audit.refuse_change()`);
    await q.query(`create trigger entries_no_truncate before truncate on audit.entries for each statement execute function audit.refuse_change()`);
    // Row triggers reach every partition by themselves; TRUNCATE triggers must be created on each.
    await q.query(`
      create function audit.ensure_partitions(p_from timestamptz, p_to timestamptz) returns void language plpgsql as $$
      declare
        m timestamptz := date_trunc('month', p_from, 'UTC');
        part text;
      begin
        perform pg_advisory_xact_lock(hashtext('herald:audit:partitions'));
        while m <= p_to loop
          part := 'entries_p' || to_char(m at time zone 'UTC', 'YYYYMM');
          if to_regclass('audit.' || part) is null then
            execute format('create table audit.%I partition of audit.entries for values from (%L) to (%L)', part, m, m + interval '1 month');
            execute format('create trigger entries_no_truncate before truncate on audit.%I for each statement execute function audit.refuse_change()', part);
          end if;
          m := m + interval '1 month';
        end loop;
      end $$`);
    const partitions = new Partitions();
    await partitions.ensure(query, new Date(), new Date(Date.now() + 62 * 86_400_000));

    const old = await query<{ min: Date | null; max: Date | null }>(`select min(recorded_at), max(recorded_at) from audit.entries_v1`);
    if (old[0].min && old[0].max) await partitions.ensure(query, old[0].min, old[0].max);
    for (let after = { recordedAt: '-infinity', id: '' }; ; ) {
      // The key is the exact timestamp as text: a JS Date would drop its microseconds.
      const rows = await query<Record<string, string | Date | null> & { payload: unknown }>(
        `select *, recorded_at::text as recorded_key from audit.entries_v1 where (recorded_at, id) > ($1::timestamptz, $2) order by recorded_at, id limit 1000`,
        [after.recordedAt, after.id],
      );
      if (!rows.length) break;
      const entries: NewEntry[] = rows.map((r) => ({
        id: r.id as string,
        eventId: r.event_id as string,
        event: r.event as string,
        entityType: r.entity_type as string,
        entityId: r.entity_id as string | null,
        actorId: r.actor_id as string | null,
        actorType: r.actor_type as string | null,
        organizationId: r.organization_id as string,
        requestId: r.request_id as string | null,
        payload: r.payload,
        createdAt: (r.created_at as Date).toISOString(),
        recordedAt: (r.recorded_at as Date).toISOString(),
      }));
      await appendEntries(query, partitions, entries);
      const last = rows[rows.length - 1];
      after = { recordedAt: last.recorded_key as string, id: last.id as string };
    }
    await q.query(`drop table audit.entries_v1`);
  }

  async down(): Promise<void> {
    throw new Error('The audit trail is append-only: this migration cannot be undone.');
  }
}
