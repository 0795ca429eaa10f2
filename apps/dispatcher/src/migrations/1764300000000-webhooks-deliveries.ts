import { MigrationInterface, QueryRunner } from 'typeorm';

export class WebhooksDeliveries1764300000000 implements MigrationInterface {
  name = 'WebhooksDeliveries1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table dispatch.webhooks (
        id text primary key,
        organization_id text not null,
        url text not null,
        events text[] not null,
        secret_ciphertext text not null,
        is_active boolean not null default true,
        metadata jsonb not null default '{}',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        deleted_at timestamptz
      )`);
    await q.query(`create index webhooks_org on dispatch.webhooks (organization_id, created_at desc, id desc) where deleted_at is null`);
    await q.query(`
      create table dispatch.deliveries (
        id text primary key,
        webhook_id text not null references dispatch.webhooks (id),
        organization_id text not null,
        event_id text not null,
        event_type text not null,
        body text not null,
        status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed', 'cancelled')),
        attempt_count integer not null default 0,
        next_attempt_at timestamptz,
        last_status_code integer,
        locked_until timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        delivered_at timestamptz,
        unique (event_id, webhook_id)
      )`);
    await q.query(`create index deliveries_due on dispatch.deliveries (next_attempt_at) where status = 'pending'`);
    await q.query(`create index deliveries_webhook on dispatch.deliveries (webhook_id, created_at desc, id desc)`);
    await q.query(`
      create table dispatch.attempts (
        delivery_id text not null references dispatch.deliveries (id),
        attempt_number integer not null,
        started_at timestamptz not null,
        duration_ms integer not null,
        status_code integer,
        error text,
        response_body text,
        primary key (delivery_id, attempt_number)
      )`);
    await q.query(`
      create table dispatch.outbox (
        event_id text primary key,
        envelope jsonb not null,
        created_at timestamptz not null default now()
      )`);
    await q.query(`
      create table dispatch.rejected_events (
        id bigint generated always as identity primary key,
        subject text not null,
        raw bytea not null,
        reason text not null,
        stream_seq bigint,
        received_at timestamptz not null default now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['rejected_events', 'outbox', 'attempts', 'deliveries', 'webhooks']) await q.query(`drop table dispatch.${t}`);
  }
}
