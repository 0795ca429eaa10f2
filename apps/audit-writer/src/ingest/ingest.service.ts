import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, DurableBatchConsumer, EventBatch } from '@herald/bus';
import { inTransaction } from '@herald/database';
import { METRICS_REGISTRY } from '@herald/observability';
import { Counter, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { ulid } from 'ulid';
import { AuditWriterConfig } from '../config';
import { redact } from './redact';

/** Turns every well-formed event into one audit entry, a batch per transaction, acked after commit. */
@Injectable()
export class IngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditIngest');
  private consumer?: DurableBatchConsumer;
  private readonly ingested: Counter;
  private readonly rejected: Counter;
  private readonly batchSize: Histogram;

  constructor(
    private readonly bus: BusService,
    private readonly ds: DataSource,
    private readonly config: AuditWriterConfig,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.ingested = new Counter({ name: 'herald_audit_events_ingested_total', help: 'Audit entries written', registers: [registry] });
    this.rejected = new Counter({ name: 'herald_audit_events_rejected_total', help: 'Malformed messages recorded and terminated', registers: [registry] });
    this.batchSize = new Histogram({ name: 'herald_audit_batch_size', help: 'Messages per committed batch', buckets: [1, 5, 25, 100, 250, 500, 1000], registers: [registry] });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.consumer = this.bus.consumer(
      {
        durableName: this.config.CONSUMER_NAME,
        batchSize: this.config.CONSUMER_BATCH_SIZE,
        onError: (err, size) => this.logger.error({ err, size }, 'Audit batch failed; handed back for redelivery'),
        onBatch: (batch) => this.batchSize.observe(batch.events.length + batch.rejected.length),
      },
      (batch) => this.write(batch),
    );
    await this.consumer.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
  }

  async write(batch: EventBatch): Promise<void> {
    await inTransaction(this.ds, async (query) => {
      if (batch.events.length) {
        const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], [], []];
        for (const { event } of batch.events) {
          const row = [
            `aud_${ulid()}`,
            event.id,
            event.type,
            event.entity.type,
            event.entity.id,
            event.actor?.id ?? null,
            event.actor?.type ?? null,
            event.organizationId,
            event.requestId,
            JSON.stringify(redact(event.data)),
            event.timestamp,
          ];
          row.forEach((v, i) => cols[i].push(v));
        }
        await query(
          `insert into audit.entries (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::timestamptz[])
           on conflict (event_id) do nothing`,
          cols,
        );
      }
      if (batch.rejected.length) {
        await query(
          `insert into audit.rejected_events (subject, raw, reason, stream_seq)
           select * from unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[])`,
          [batch.rejected.map((r) => r.subject), batch.rejected.map((r) => r.raw), batch.rejected.map((r) => r.reason), batch.rejected.map((r) => r.streamSeq)],
        );
      }
    });
    this.ingested.inc(batch.events.length);
    this.rejected.inc(batch.rejected.length);
  }
}
