import { Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { DomainEvent, HeraldError } from '@herald/contracts';
import { BusService } from '@herald/bus';
import { Query } from '@herald/database';
import { DataSource } from 'typeorm';

const RELAY_INTERVAL_MS = 5000;

/**
 * Transactional outbox for the events the dispatcher itself publishes (webhooks.*): the event row
 * commits with the change, is published right after, and a relay republishes any that a crash or
 * a NATS outage left behind. `Nats-Msg-Id` = event id makes the republish harmless.
 */
@Injectable()
export class OutboxService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Outbox');
  private timer?: NodeJS.Timeout;
  /** Publishes started after a commit and not yet finished (shutdown waits for them). */
  private readonly publishing = new Set<Promise<void>>();

  constructor(
    private readonly ds: DataSource,
    private readonly bus: BusService,
  ) {}

  async add(query: Query, event: DomainEvent): Promise<void> {
    await query('insert into dispatch.outbox (event_id, envelope) values ($1, $2)', [event.id, JSON.stringify(event)]);
  }

  /**
   * Publishes committed events in the background: the change is durable, so its caller gets its
   * answer now, however slow JetStream is; what fails stays for the relay.
   */
  publishSoon(events: DomainEvent[]): void {
    const done: Promise<void> = this.flush(events).finally(() => this.publishing.delete(done));
    this.publishing.add(done);
  }

  /** Publishes committed events and forgets them; what fails stays for the relay. */
  async flush(events: DomainEvent[]): Promise<void> {
    for (const event of events) {
      try {
        await this.bus.publisher.publishPrepared(event);
        await this.ds.query('delete from dispatch.outbox where event_id = $1', [event.id]);
      } catch (err) {
        if (err instanceof HeraldError) {
          // The event itself is refused (it would be rejected by every consumer): retrying cannot fix it.
          this.logger.error({ err, eventId: event.id, event }, 'Outbox event refused by the publisher; dropped from the outbox');
          await this.ds.query('delete from dispatch.outbox where event_id = $1', [event.id]).catch(() => undefined);
        } else {
          this.logger.warn({ err, eventId: event.id }, 'Event left in the outbox for the relay');
        }
      }
    }
  }

  async relay(): Promise<void> {
    const rows: { envelope: DomainEvent }[] = await this.ds.query(
      `select envelope from dispatch.outbox where created_at < now() - interval '2 seconds' order by created_at limit 100`,
    );
    await this.flush(rows.map((r) => r.envelope));
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.relay().catch((err: unknown) => this.logger.warn({ err }, 'Outbox relay failed')), RELAY_INTERVAL_MS);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.publishing]);
  }
}
