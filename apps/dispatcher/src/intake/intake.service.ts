import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, DurableBatchConsumer, EventBatch } from '@herald/bus';
import { isDeliverable, selectorsMatch } from '@herald/contracts';
import { inTransaction } from '@herald/database';
import { METRICS_REGISTRY } from '@herald/observability';
import { Counter, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { ulid } from 'ulid';
import { DispatcherConfig } from '../config';

interface ActiveWebhook {
  id: string;
  organization_id: string;
  events: string[];
}

/** Channel the sender listens on; notified in the intake transaction so it wakes at commit. */
export const DELIVERIES_CHANNEL = 'herald_deliveries';

/**
 * Intake: each deliverable event becomes one pending delivery per matching active webhook of its
 * organization, in one transaction per batch, idempotent on (event, webhook), acked after commit.
 */
@Injectable()
export class IntakeService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Intake');
  private consumer?: DurableBatchConsumer;
  private readonly created: Counter;
  private readonly rejected: Counter;

  constructor(
    private readonly bus: BusService,
    private readonly ds: DataSource,
    private readonly config: DispatcherConfig,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.created = new Counter({ name: 'herald_deliveries_created_total', help: 'Deliveries recorded by the intake', registers: [registry] });
    this.rejected = new Counter({ name: 'herald_dispatcher_events_rejected_total', help: 'Malformed messages recorded and terminated', registers: [registry] });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.consumer = this.bus.consumer(
      {
        durableName: this.config.CONSUMER_NAME,
        batchSize: this.config.CONSUMER_BATCH_SIZE,
        accepts: isDeliverable,
        onError: (err, size) => this.logger.error({ err, size }, 'Intake batch failed; handed back for redelivery'),
      },
      (batch) => this.record(batch),
    );
    await this.consumer.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
  }

  async record(batch: EventBatch): Promise<void> {
    const orgs = [...new Set(batch.events.map((e) => e.event.organizationId))];
    const created = await inTransaction(this.ds, async (query) => {
      let count = 0;
      if (orgs.length) {
        const hooks = await query<ActiveWebhook>(
          `select id, organization_id, events from dispatch.webhooks
           where organization_id = any($1) and is_active and deleted_at is null`,
          [orgs],
        );
        const cols: string[][] = [[], [], [], [], [], []];
        for (const { event } of batch.events) {
          const body = JSON.stringify({ id: event.id, type: event.type, timestamp: event.timestamp, data: event.data });
          for (const hook of hooks) {
            if (hook.organization_id !== event.organizationId || !selectorsMatch(hook.events, event.type)) continue;
            [`dlv_${ulid()}`, hook.id, event.organizationId, event.id, event.type, body].forEach((v, i) => cols[i].push(v));
          }
        }
        if (cols[0].length) {
          const inserted = await query(
            `insert into dispatch.deliveries (id, webhook_id, organization_id, event_id, event_type, body, next_attempt_at)
             select d.*, now() from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) as d
             on conflict (event_id, webhook_id) do nothing returning id`,
            cols,
          );
          count = inserted.length;
          if (count) await query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
        }
      }
      if (batch.rejected.length) {
        await query(
          `insert into dispatch.rejected_events (subject, raw, reason, stream_seq)
           select * from unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[])`,
          [batch.rejected.map((r) => r.subject), batch.rejected.map((r) => r.raw), batch.rejected.map((r) => r.reason), batch.rejected.map((r) => r.streamSeq)],
        );
      }
      return count;
    });
    this.created.inc(created);
    this.rejected.inc(batch.rejected.length);
  }
}
