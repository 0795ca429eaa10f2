import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, DurableBatchConsumer, EventBatch, ReceivedEvent } from '@herald/bus';
import { newId } from '@herald/contracts';
import { inTransaction, isInfrastructureError } from '@herald/database';
import { METRICS_REGISTRY, gaugeOnScrape } from '@herald/observability';
import { Counter, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { AuditWriterConfig } from '../config';
import { NewEntry, Partitions, writeBatch } from '../log/audit-log';
import { redact } from './redact';

/** How many months of partitions exist ahead of the current one. */
const PARTITION_MONTHS_AHEAD = 2;

export function toNewEntry({ event }: ReceivedEvent): NewEntry {
  return {
    id: newId('aud'),
    eventId: event.id,
    event: event.type,
    entityType: event.entity.type,
    entityId: event.entity.id,
    actorId: event.actor?.id ?? null,
    actorType: event.actor?.type ?? null,
    organizationId: event.organizationId,
    requestId: event.requestId,
    payload: redact(event.data),
    // As stored: timestamptz keeps it, and a JS Date reads it back with milliseconds in UTC.
    createdAt: new Date(event.timestamp).toISOString(),
  };
}

/**
 * Turns every well-formed event into one audit entry, a batch per transaction, acked after commit.
 * The consumer isolates what fails: a batch refused for an event of its own is split until that
 * event stands alone and is recorded as rejected; an infrastructure failure is retried with backoff.
 */
@Injectable()
export class IngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditIngest');
  private consumer?: DurableBatchConsumer;
  private readonly partitions = new Partitions();
  private readonly ingested: Counter;
  private readonly rejected: Counter;
  private readonly retried: Counter;
  private readonly batchSize: Histogram;

  constructor(
    private readonly bus: BusService,
    private readonly ds: DataSource,
    private readonly config: AuditWriterConfig,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.ingested = new Counter({ name: 'herald_audit_events_ingested_total', help: 'Audit entries written', registers: [registry] });
    this.rejected = new Counter({ name: 'herald_audit_events_rejected_total', help: 'Malformed or refused messages recorded and not redelivered', registers: [registry] });
    this.retried = new Counter({
      name: 'herald_audit_batch_retries_total',
      help: 'Messages handed back for a later try after an infrastructure failure (database unreachable, timeout, shutdown)',
      registers: [registry],
    });
    this.batchSize = new Histogram({ name: 'herald_audit_batch_size', help: 'Messages per committed batch', buckets: [1, 5, 25, 100, 250, 500, 1000, 2500], registers: [registry] });
    gaugeOnScrape(registry, 'herald_audit_consumer_lag', 'Events in the stream not yet handed to the audit-writer', () => this.consumer?.lag());
  }

  async onApplicationBootstrap(): Promise<void> {
    const now = new Date();
    await inTransaction(this.ds, (q) => this.partitions.ensure(q, now, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + PARTITION_MONTHS_AHEAD, 1))));
    this.partitions.settle(true);
    this.consumer = this.bus.consumer(
      {
        durableName: this.config.CONSUMER_NAME,
        batchSize: this.config.CONSUMER_BATCH_SIZE,
        batchMaxBytes: this.config.CONSUMER_BATCH_MAX_BYTES,
        maxMessageBytes: this.config.EVENTS_MAX_MESSAGE_BYTES,
        ackWaitMs: this.config.CONSUMER_ACK_WAIT_MS,
        isTransient: isInfrastructureError,
        logger: this.logger,
        onRetry: (_err, size) => this.retried.inc(size),
        onBatch: (batch) => this.batchSize.observe(batch.events.length + batch.rejected.length),
      },
      (batch) => this.write(batch),
    );
    await this.consumer.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
  }

  async write({ events, rejected }: EventBatch): Promise<void> {
    const written = await writeBatch(this.ds, this.partitions, events.map(toNewEntry), rejected);
    this.ingested.inc(written);
    this.rejected.inc(rejected.length);
  }
}
