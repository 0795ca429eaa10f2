import { MigrationInterface, QueryRunner } from 'typeorm';

export class AuditEntries1764300000000 implements MigrationInterface {
  name = 'AuditEntries1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table audit.entries (
        id text primary key,
        event_id text not null unique,
        event text not null,
        entity_type text not null,
        entity_id text,
        actor_id text,
        actor_type text,
        organization_id text not null,
        request_id text,
        payload jsonb not null,
        created_at timestamptz not null,
        recorded_at timestamptz not null default now()
      )`);
    await q.query(`create index entries_org_created on audit.entries (organization_id, created_at desc, id desc)`);
    await q.query(`
      create table audit.rejected_events (
        id bigint generated always as identity primary key,
        subject text not null,
        raw bytea not null,
        reason text not null,
        stream_seq bigint,
        received_at timestamptz not null default now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table audit.rejected_events');
    await q.query('drop table audit.entries');
  }
}
