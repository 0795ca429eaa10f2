import { Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { DomainEvent } from '@herald/contracts';
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

  constructor(
    private readonly ds: DataSource,
    private readonly bus: BusService,
  ) {}

  async add(query: Query, event: DomainEvent): Promise<void> {
    await query('insert into dispatch.outbox (event_id, envelope) values ($1, $2)', [event.id, JSON.stringify(event)]);
  }

  /** Publishes committed events and forgets them; what fails stays for the relay. */
  async flush(events: DomainEvent[]): Promise<void> {
    for (const event of events) {
      try {
        await this.bus.publisher.publishPrepared(event);
        await this.ds.query('delete from dispatch.outbox where event_id = $1', [event.id]);
      } catch (err) {
        this.logger.warn({ err, eventId: event.id }, 'Event left in the outbox for the relay');
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

  beforeApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
