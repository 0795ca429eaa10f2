import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, DurableBatchConsumer, EventBatch } from '@herald/bus';
import { isDeliverable, newId, selectorsMatch } from '@herald/contracts';
import { Query, inTransaction, isInfrastructureError, queryRows } from '@herald/database';
import { METRICS_REGISTRY, gaugeOnScrape } from '@herald/observability';
import { Counter, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { DispatcherConfig } from '../config';
import { DeliverySender } from '../delivery/delivery-sender.service';
import { ClaimedDelivery, DELIVERIES_CHANNEL } from '../delivery/queue';

interface ActiveWebhook {
  id: string;
  organization_id: string;
  events: string[];
  url: string;
  secret_ciphertext: string;
}

const INSERT_SQL = `
  with rejected as (
    insert into dispatch.rejected_events (subject, raw, reason, stream_seq)
    select * from unnest($9::text[], $10::bytea[], $11::text[], $12::bigint[])
  )
  insert into dispatch.deliveries (id, webhook_id, organization_id, event_id, event_type, body, next_attempt_at)
  select d.id, d.webhook_id, d.organization_id, d.event_id, d.event_type, d.body,
         case when d.leased then now() + $8 * interval '1 millisecond' else now() end
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[])
    as d(id, webhook_id, organization_id, event_id, event_type, body, leased)
  on conflict (event_id, webhook_id) do nothing
  returning id, next_attempt_at > now() as leased`;

/** The first seven parameters of INSERT_SQL; the first `leased` rows are leased to this process. */
function deliveryColumns(rows: ClaimedDelivery[], orgOf: Map<string, string>, leased: number): unknown[][] {
  return [
    rows.map((r) => r.id),
    rows.map((r) => r.webhook_id),
    rows.map((r) => orgOf.get(r.webhook_id)),
    rows.map((r) => r.event_id),
    rows.map((r) => r.event_type),
    rows.map((r) => r.body),
    rows.map((_, i) => i < leased),
  ];
}

/** [from, to) ranges of rows whose bodies add up to at most `maxBytes` (a longer body goes alone); at least one range. */
function byBytes(rows: ClaimedDelivery[], maxBytes: number): [number, number][] {
  const ranges: [number, number][] = [];
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    const n = Buffer.byteLength(rows[i].body);
    if (i > from && bytes + n > maxBytes) {
      ranges.push([from, i]);
      from = i;
      bytes = 0;
    }
    bytes += n;
  }
  ranges.push([from, rows.length]);
  return ranges;
}

/**
 * Intake: each deliverable event becomes one pending delivery per matching active webhook of its
 * organization, idempotent on (event, webhook), acked after the rows are committed.
 *
 * One statement per batch writes its deliveries and its rejected messages (so one transaction, with
 * no BEGIN/COMMIT round trips), after one read of the matching webhooks. As many new deliveries as
 * the local sender has room for (free slots plus WEBHOOK_SENDER_QUEUE) are inserted already leased
 * to it and handed over in memory, so they need no claim; the rest are due at once and announced with
 * NOTIFY to every sender.
 */
@Injectable()
export class IntakeService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Intake');
  private consumer?: DurableBatchConsumer;
  private readonly created: Counter;
  private readonly rejected: Counter;
  private readonly retried: Counter;

  constructor(
    private readonly bus: BusService,
    private readonly ds: DataSource,
    private readonly config: DispatcherConfig,
    private readonly sender: DeliverySender,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.created = new Counter({ name: 'herald_deliveries_created_total', help: 'Deliveries recorded by the intake', registers: [registry] });
    this.rejected = new Counter({ name: 'herald_dispatcher_events_rejected_total', help: 'Malformed messages recorded and terminated', registers: [registry] });
    this.retried = new Counter({
      name: 'herald_dispatcher_batch_retries_total',
      help: 'Messages handed back for a later try after an infrastructure failure (database unreachable, timeout, shutdown)',
      registers: [registry],
    });
    gaugeOnScrape(registry, 'herald_dispatcher_consumer_lag', 'Events in the stream not yet handed to the dispatcher intake', () => this.consumer?.lag());
  }

  async onApplicationBootstrap(): Promise<void> {
    this.consumer = this.bus.consumer(
      {
        durableName: this.config.CONSUMER_NAME,
        batchSize: this.config.CONSUMER_BATCH_SIZE,
        batchMaxBytes: this.config.CONSUMER_BATCH_MAX_BYTES,
        maxMessageBytes: this.config.EVENTS_MAX_MESSAGE_BYTES,
        accepts: isDeliverable,
        isTransient: isInfrastructureError,
        logger: this.logger,
        onRetry: (_err, size) => this.retried.inc(size),
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
    const hooks: ActiveWebhook[] = orgs.length
      ? await this.ds.query(
          `select id, organization_id, events, url, secret_ciphertext from dispatch.webhooks
           where organization_id = any($1) and is_active and deleted_at is null`,
          [orgs],
        )
      : [];
    const orgOf = new Map(hooks.map((h) => [h.id, h.organization_id]));
    const rows: ClaimedDelivery[] = [];
    for (const { event } of batch.events) {
      const body = JSON.stringify({ id: event.id, type: event.type, timestamp: event.timestamp, data: event.data });
      for (const hook of hooks) {
        if (hook.organization_id !== event.organizationId || !selectorsMatch(hook.events, event.type)) continue;
        rows.push({ id: newId('dlv'), webhook_id: hook.id, event_id: event.id, event_type: event.type, body, attempt_count: 0, run_base: 0, url: hook.url, secret_ciphertext: hook.secret_ciphertext, usable: true });
      }
    }
    if (!rows.length && !batch.rejected.length) return;
    const slots = this.sender.reserve(rows.length);
    const leasedAt = performance.now();
    let handed: ClaimedDelivery[] = [];
    try {
      const chunks = byBytes(rows, this.config.CONSUMER_BATCH_MAX_BYTES);
      const insert = (query: Query, [from, to]: [number, number], rejected: EventBatch['rejected']) =>
        query<{ id: string; leased: boolean }>(INSERT_SQL, [
          ...deliveryColumns(rows.slice(from, to), orgOf, slots - from),
          this.config.WEBHOOK_LEASE_MS,
          rejected.map((r) => r.subject),
          rejected.map((r) => r.raw),
          rejected.map((r) => r.reason),
          rejected.map((r) => r.streamSeq),
        ]);
      // One statement is one transaction: the batch's deliveries and its rejected messages are
      // written together or not at all (a redelivered batch then records nothing twice). An event
      // that many webhooks match copies its body into each delivery, so when the copies pass
      // CONSUMER_BATCH_MAX_BYTES they go in several statements of one transaction instead.
      const inserted =
        chunks.length === 1
          ? await insert((sql, params) => queryRows(this.ds, sql, params), chunks[0], batch.rejected)
          : await inTransaction(this.ds, async (query) => {
              const out: { id: string; leased: boolean }[] = [];
              for (const [i, chunk] of chunks.entries()) out.push(...(await insert(query, chunk, i === 0 ? batch.rejected : [])));
              return out;
            });
      this.created.inc(inserted.length);
      this.rejected.inc(batch.rejected.length);
      const leased = new Set(inserted.filter((r) => r.leased).map((r) => r.id));
      handed = rows.filter((r) => leased.has(r.id));
      if (inserted.length > leased.size) await this.ds.query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
    } finally {
      await this.sender.adopt(slots, handed, leasedAt);
    }
  }
}
