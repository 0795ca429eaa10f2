import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, DurableBatchConsumer, EventBatch, REJECTED_RAW_LIMIT, ReceivedEvent, RejectedMessage } from '@herald/bus';
import { newId } from '@herald/contracts';
import { inTransaction } from '@herald/database';
import { METRICS_REGISTRY, gaugeOnScrape } from '@herald/observability';
import { Counter, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { AuditWriterConfig } from '../config';
import { NewEntry, Partitions, appendEntries, recordRejected } from '../log/audit-log';
import { redact } from './redact';

/** How many months of partitions exist ahead of the current one. */
const PARTITION_MONTHS_AHEAD = 2;

/** Postgres refused the data itself (SQLSTATE classes 22 and 23), not the connection or the server. */
function isDataError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

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
 * A batch that Postgres refuses for its data is written again event by event, and the events it
 * still refuses are recorded as rejected, so one bad event never stalls the others.
 */
@Injectable()
export class IngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditIngest');
  private consumer?: DurableBatchConsumer;
  private readonly partitions = new Partitions();
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
    this.rejected = new Counter({ name: 'herald_audit_events_rejected_total', help: 'Malformed or refused messages recorded and not redelivered', registers: [registry] });
    this.batchSize = new Histogram({ name: 'herald_audit_batch_size', help: 'Messages per committed batch', buckets: [1, 5, 25, 100, 250, 500, 1000, 2500], registers: [registry] });
    gaugeOnScrape(registry, 'herald_audit_consumer_lag', 'Events in the stream not yet handed to the audit-writer', () => this.consumer?.lag());
  }

  async onApplicationBootstrap(): Promise<void> {
    const now = new Date();
    await inTransaction(this.ds, (q) => this.partitions.ensure(q, now, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + PARTITION_MONTHS_AHEAD, 1))));
    this.consumer = this.bus.consumer(
      {
        durableName: this.config.CONSUMER_NAME,
        batchSize: this.config.CONSUMER_BATCH_SIZE,
        ackWaitMs: this.config.CONSUMER_ACK_WAIT_MS,
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
    try {
      await this.commit(batch.events, batch.rejected);
    } catch (err) {
      if (!isDataError(err) || batch.events.length === 0) throw err;
      this.logger.warn({ err: err.message, size: batch.events.length }, 'Postgres refused a batch; writing its events one by one');
      const refused: RejectedMessage[] = [];
      for (const e of batch.events) {
        try {
          await this.commit([e], []);
        } catch (one) {
          if (!isDataError(one)) throw one;
          refused.push({
            subject: e.subject,
            // The event as validated (the consumer keeps no copy of the original bytes).
            raw: Buffer.from(JSON.stringify(e.event)).subarray(0, REJECTED_RAW_LIMIT),
            reason: `refused by the database: ${one.message}`,
            streamSeq: e.streamSeq,
          });
        }
      }
      await this.commit([], [...batch.rejected, ...refused]);
    }
  }

  private async commit(events: ReceivedEvent[], rejected: RejectedMessage[]): Promise<void> {
    const written = await inTransaction(this.ds, async (query) => {
      const n = await appendEntries(query, this.partitions, events.map(toNewEntry));
      await recordRejected(query, rejected);
      return n;
    });
    this.ingested.inc(written);
    this.rejected.inc(rejected.length);
  }
}
