import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DeliveryHeader, WEBHOOK_USER_AGENT } from '@herald/contracts';
import { inTransaction, queryRows } from '@herald/database';
import { METRICS_REGISTRY } from '@herald/observability';
import { Client } from 'pg';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { DispatcherConfig } from '../config';
import { SecretBox } from '../webhooks/secret-box';
import { WebhooksService } from '../webhooks/webhooks.service';
import { ClaimedDelivery, DELIVERIES_CHANNEL } from './queue';
import { Verdict, decide } from './retry-policy';
import { AttemptResult, WebhookHttpClient } from './webhook-http-client';

/** A delivery the intake leased to this process, and when that lease ends at the soonest (performance.now() ms). */
interface Queued {
  row: ClaimedDelivery;
  leaseEnd: number;
}

/** Margin the configuration requires between the lease and the timeout; also what a hand-back may take. */
const LEASE_MARGIN_MS = 1000;

/** The attempt error when no configured key opens the webhook's secret. */
export const UNDECRYPTABLE = 'not sent: the webhook secret cannot be decrypted with the configured keys (WEBHOOK_SECRET_KEY / WEBHOOK_SECRET_KEYS)';

interface Finished {
  delivery: ClaimedDelivery;
  attemptNumber: number;
  result: AttemptResult;
  verdict: Verdict;
}

/**
 * Claims up to $1 due deliveries in one statement. `next_attempt_at` is the lease: a claimed row is
 * pushed `$2` ms into the future, so no other replica sees it as due (SKIP LOCKED keeps concurrent
 * claims apart) and, if this process dies, the row becomes due again when the lease runs out.
 */
const CLAIM_SQL = `
  with due as (
    select id from dispatch.deliveries
    where status = 'pending' and next_attempt_at <= now()
    order by next_attempt_at
    limit $1
    for update skip locked
  )
  update dispatch.deliveries d
  set next_attempt_at = now() + $2 * interval '1 millisecond'
  from due, dispatch.webhooks w
  where d.id = due.id and w.id = d.webhook_id
  returning d.id, d.webhook_id, d.event_id, d.event_type, d.body, d.attempt_count, d.run_base,
            w.url, w.secret_ciphertext, (w.is_active and w.deleted_at is null) as usable`;

/**
 * Records a batch of finished attempts in one statement (atomic without an explicit transaction):
 * the attempt rows and each delivery's new state. A result only moves a delivery that is still
 * pending on exactly that attempt, so a delivery cancelled meanwhile stays cancelled (its attempt is
 * still recorded). A batch with a 410 runs it in a transaction that also deactivates the webhook
 * and adds its audit event to the outbox.
 */
const APPLIES = `(d.status = 'pending' and d.attempt_count + 1 = r.attempt_number)`;
const RECORD_SQL = `
  with r as (
    select * from unnest($1::text[], $2::int[], $3::timestamptz[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[], $9::bigint[])
      as r(delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body, status, delay_ms)
  ),
  ins as (
    insert into dispatch.attempts (delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body)
    select delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body from r
    on conflict do nothing
  )
  update dispatch.deliveries d set
    attempt_count = greatest(d.attempt_count, r.attempt_number),
    last_status_code = r.status_code,
    status = case when ${APPLIES} then r.status else d.status end,
    next_attempt_at = case when not ${APPLIES} then d.next_attempt_at
                           when r.status = 'pending' then now() + r.delay_ms * interval '1 millisecond' end,
    delivered_at = case when ${APPLIES} and r.status = 'succeeded' then now() else d.delivered_at end,
    updated_at = now()
  from r
  where d.id = r.delivery_id`;

/**
 * The sender (SPEC 3): claims due deliveries from Postgres, signs and POSTs them, records every
 * attempt and schedules the next. Woken by NOTIFY from the intake, by its own retry timers, and by a
 * short fallback poll (which also picks up leases that a dead replica left behind).
 */
@Injectable()
export class DeliverySender implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Sender');
  private readonly http: WebhookHttpClient;
  private readonly secrets = new Map<string, string>();
  private listener?: Client;
  private poll?: NodeJS.Timeout;
  private wake?: { at: number; timer: NodeJS.Timeout };
  private stopped = true;
  private inFlight = 0;
  /** Attempts whose response is in but whose record is not yet written (their slots are free). */
  private unrecorded = 0;
  /** Room promised to the intake for deliveries it inserts already leased to this process. */
  private reserved = 0;
  /** Deliveries leased to this process by the intake, waiting for a slot (FIFO from `queueHead`). */
  private queue: Queued[] = [];
  private queueHead = 0;
  private claiming?: Promise<void>;
  private again = false;
  /** The last claim filled every free slot, so more may be due. */
  private backlog = false;
  private results: Finished[] = [];
  private recording?: Promise<void>;
  private idle?: () => void;

  private readonly outcomes: Counter<'outcome'>;
  private readonly handedBack: Counter;
  private readonly undecryptable: Counter;
  private readonly latency: Histogram;

  constructor(
    private readonly ds: DataSource,
    private readonly config: DispatcherConfig,
    private readonly box: SecretBox,
    private readonly webhooks: WebhooksService,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.http = new WebhookHttpClient({
      policy: { allowPrivate: config.WEBHOOKS_ALLOW_PRIVATE_URLS, httpsOnly: config.isProduction },
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      connections: config.WEBHOOK_SENDER_CONCURRENCY,
      userAgent: WEBHOOK_USER_AGENT,
    });
    this.outcomes = new Counter({
      name: 'herald_deliveries_total',
      help: 'Delivery attempts by outcome: succeeded, retry (scheduled again), failed (retries exhausted or 410), cancelled (webhook inactive or deleted)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.undecryptable = new Counter({
      name: 'herald_webhook_secret_undecryptable_total',
      help: 'Attempts not sent because no configured key (WEBHOOK_SECRET_KEY / WEBHOOK_SECRET_KEYS) decrypts the webhook secret; each is recorded as a failed attempt',
      registers: [registry],
    });
    this.handedBack = new Counter({
      name: 'herald_deliveries_handed_back_total',
      help: 'Deliveries leased to this sender by the intake but handed back unsent: they waited in its queue too long for their lease, or it shut down',
      registers: [registry],
    });
    const queued: Gauge = new Gauge({
      name: 'herald_deliveries_queued',
      help: 'Deliveries the intake leased to this process, waiting in its memory for a slot (not counted as due)',
      registers: [registry],
      collect: () => queued.set(this.queue.length - this.queueHead),
    });
    this.latency = new Histogram({
      name: 'herald_delivery_attempt_duration_seconds',
      help: 'Time from the start of an attempt to its response (or failure)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    let due: Promise<{ count: number; age: number }> | undefined;
    // One query per scrape serves both gauges.
    const dueNow = (): Promise<{ count: number; age: number }> =>
      (due ??= this.ds
        .query(`select count(*)::int as count, coalesce(extract(epoch from now() - min(next_attempt_at)), 0)::float8 as age
                from dispatch.deliveries where status = 'pending' and next_attempt_at <= now()`)
        .then((rows: { count: number; age: number }[]) => rows[0])
        .finally(() => setImmediate(() => (due = undefined))));
    new Gauge({
      name: 'herald_deliveries_due',
      help: 'Pending deliveries whose next attempt is due and not yet claimed',
      registers: [registry],
      async collect() {
        this.set((await dueNow()).count);
      },
    });
    new Gauge({
      name: 'herald_deliveries_oldest_due_age_seconds',
      help: 'How long the oldest due, unclaimed delivery has been waiting',
      registers: [registry],
      async collect() {
        this.set((await dueNow()).age);
      },
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.JOBS_AUTORUN_ENABLED) return; // StartupNotes logs the warning.
    this.stopped = false;
    await this.listen();
    this.poll = setInterval(() => this.pump(), this.config.WEBHOOK_SENDER_POLL_MS);
    this.pump();
  }

  /** Stops claiming, lets the attempts in flight finish and be recorded, then closes connections. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.poll);
    if (this.wake) clearTimeout(this.wake.timer);
    await this.claiming;
    // Queued deliveries go back to every sender now rather than when their leases run out.
    const queued = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    if (queued.length) await this.handBack(queued, 'shutting down').catch((err: unknown) => this.logger.warn({ err }, 'Queued deliveries not handed back; their leases run out'));
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.recording;
    await this.listener?.end().catch(() => undefined);
    await this.http.close();
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.config.DATABASE_URL, application_name: 'herald-dispatcher-listen' });
    client.on('notification', () => this.pump());
    client.on('error', (err) => {
      this.logger.warn({ err }, 'LISTEN connection lost; polling until it is back');
      void client.end().catch(() => undefined);
      if (!this.stopped) setTimeout(() => void this.listen().catch(() => undefined), 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`listen ${DELIVERIES_CHANNEL}`);
      this.listener = client;
    } catch (err) {
      this.logger.warn({ err }, 'LISTEN failed; polling until it works');
      void client.end().catch(() => undefined);
      if (!this.stopped) setTimeout(() => void this.listen().catch(() => undefined), 1000).unref();
    }
  }

  /** Claims what is due into the free slots; concurrent calls fold into one more round. */
  pump(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claimRounds()
      .catch((err: unknown) => this.logger.error({ err }, 'Claiming due deliveries failed; the poll retries'))
      .finally(() => (this.claiming = undefined));
  }

  private async claimRounds(): Promise<void> {
    do {
      this.again = false;
      const free = this.freeSlots();
      if (free <= 0) return; // a finishing attempt pumps again
      const rows = await queryRows<ClaimedDelivery>(this.ds, CLAIM_SQL, [free, this.config.WEBHOOK_LEASE_MS]);
      this.backlog = rows.length === free;
      const unusable = rows.filter((r) => !r.usable);
      if (unusable.length) await this.cancel(unusable);
      for (const row of rows) if (row.usable) this.start(row);
    } while ((this.again || this.backlog) && !this.stopped);
  }

  /**
   * Room was freed (a response is in, or a record written): queued deliveries start, and during a
   * backlog more are claimed. More is due only after a claim that filled every slot; then claim in
   * groups of a quarter of the slots rather than one statement per finished attempt. Otherwise
   * NOTIFY, the retry timer and the poll wake the sender.
   */
  private refill(): void {
    if (this.stopped) return;
    this.drain();
    if (this.backlog && this.freeSlots() >= Math.max(1, this.config.WEBHOOK_SENDER_CONCURRENCY >> 2)) this.pump();
  }

  /** Slots that neither an attempt, a queued delivery nor a reservation of the intake holds. */
  private freeSlots(): number {
    return this.room() - this.reserved - (this.queue.length - this.queueHead);
  }

  /**
   * Attempts that may start now: a slot is free when its response is in, so recording overlaps the
   * next sends, but no more than WEBHOOK_SENDER_CONCURRENCY attempts may wait for their record. So
   * at most twice the concurrency are sent and not recorded, which bounds the repeats after a crash.
   */
  private room(): number {
    const c = this.config.WEBHOOK_SENDER_CONCURRENCY;
    return Math.min(c - this.inFlight, 2 * c - this.inFlight - this.unrecorded);
  }

  /**
   * Reserves room for up to `n` deliveries the intake is about to insert already leased to this
   * process (saving the NOTIFY, the claim and its row update on the way to the first attempt): the
   * free slots plus up to WEBHOOK_SENDER_QUEUE waiting in memory. Every reservation is given back
   * through `adopt`.
   */
  reserve(n: number): number {
    if (this.stopped) return 0;
    const k = Math.max(0, Math.min(n, this.freeSlots() + this.config.WEBHOOK_SENDER_QUEUE));
    this.reserved += k;
    return k;
  }

  /**
   * Ends a reservation of `reserved` and queues the leased deliveries that were inserted.
   * `leasedAt` (performance.now()) was taken before the insert was sent, so the lease the database
   * wrote ends no sooner than `leasedAt` + WEBHOOK_LEASE_MS.
   */
  async adopt(reserved: number, rows: ClaimedDelivery[], leasedAt: number): Promise<void> {
    this.reserved -= reserved;
    const leaseEnd = leasedAt + this.config.WEBHOOK_LEASE_MS;
    const queued = rows.slice(0, reserved).map((row) => ({ row, leaseEnd }));
    if (this.stopped) {
      // Shutting down: back to every sender now, rather than when the leases run out.
      if (queued.length) await this.handBack(queued, 'shutting down').catch((err: unknown) => this.logger.warn({ err }, 'Queued deliveries not handed back; their leases run out'));
      return;
    }
    for (const q of queued) this.queue.push(q);
    this.drain();
  }

  /**
   * Starts queued deliveries into the free slots. One starts only while its lease still covers a
   * whole attempt (the timeout plus the margin), so no other sender can take it meanwhile; a later
   * one goes back to every sender unsent.
   */
  private drain(): void {
    let late: Queued[] | undefined;
    const startBy = performance.now() + this.config.WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS;
    while (this.queueHead < this.queue.length && this.room() > 0) {
      const q = this.queue[this.queueHead++];
      if (q.leaseEnd < startBy) (late ??= []).push(q);
      else this.start(q.row);
    }
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 1024) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (late) void this.handBack(late, 'waited in the queue too long for its lease').catch((err: unknown) => this.logger.error({ err }, 'Queued deliveries not handed back; their leases run out'));
  }

  /**
   * Makes queued deliveries that were never sent due at once, for any sender. Only those whose lease
   * lasts longer than the margin: they are still this process's, so no other sender holds them. The
   * others are left to fall due when their lease ends, a moment later.
   */
  private async handBack(queued: Queued[], why: string): Promise<void> {
    const mine = performance.now() + LEASE_MARGIN_MS;
    const ids = queued.filter((q) => q.leaseEnd > mine).map((q) => q.row.id);
    if (ids.length) {
      await this.ds.query(`update dispatch.deliveries set next_attempt_at = now(), updated_at = now() where id = any($1) and status = 'pending'`, [ids]);
      await this.ds.query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
    }
    this.handedBack.inc(queued.length);
    this.logger.warn({ count: queued.length, reason: why }, 'Queued deliveries handed back to every sender');
  }

  private async cancel(rows: ClaimedDelivery[]): Promise<void> {
    await this.ds.query(`update dispatch.deliveries set status = 'cancelled', next_attempt_at = null, updated_at = now() where id = any($1) and status = 'pending'`, [rows.map((r) => r.id)]);
    this.outcomes.inc({ outcome: 'cancelled' }, rows.length);
  }

  /**
   * Sends one attempt. Its slot is freed as soon as the response is in, so the next claims overlap
   * with recording; the row stays leased until its result is written, so nobody else takes it.
   */
  private start(d: ClaimedDelivery): void {
    this.inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
      this.refill();
    };
    const attemptNumber = d.attempt_count + 1;
    void this.attempt(d, attemptNumber)
      .then((result) => {
        this.latency.observe(result.durationMs / 1000);
        const verdict = decide(result, attemptNumber - d.run_base, {
          maxRetries: this.config.WEBHOOK_MAX_RETRIES,
          baseMs: this.config.WEBHOOK_RETRY_BASE_MS,
          factor: this.config.WEBHOOK_RETRY_FACTOR,
          retryAfterMaxMs: this.config.WEBHOOK_RETRY_AFTER_MAX_MS,
        });
        this.results.push({ delivery: d, attemptNumber, result, verdict });
        this.unrecorded++;
        const recorded = this.record();
        release();
        return recorded;
      })
      .catch((err: unknown) => this.logger.error({ err, deliveryId: d.id }, 'Attempt not recorded; the lease hands it to a sender again'))
      .finally(release);
  }

  private async attempt(d: ClaimedDelivery, attemptNumber: number): Promise<AttemptResult> {
    let secret: string;
    try {
      secret = this.secretOf(d.secret_ciphertext, d.webhook_id);
    } catch (err) {
      // Nothing can be signed: a failed attempt, so the retry policy runs (the keys may be fixed
      // meanwhile, e.g. a rollout that adds WEBHOOK_SECRET_KEYS) and the delivery ends `failed`
      // instead of being leased again forever.
      this.undecryptable.inc();
      this.logger.error({ err, webhookId: d.webhook_id, deliveryId: d.id }, 'Webhook secret cannot be decrypted with any configured key: attempt recorded as failed, nothing sent');
      return { startedAt: new Date(), durationMs: 0, statusCode: null, error: UNDECRYPTABLE, responseBody: null, retryAfter: null };
    }
    return this.http.send({
      url: d.url,
      secret,
      body: Buffer.from(d.body, 'utf8'),
      headers: {
        [DeliveryHeader.event]: d.event_type,
        [DeliveryHeader.eventId]: d.event_id,
        [DeliveryHeader.delivery]: d.id,
        [DeliveryHeader.attempt]: String(attemptNumber),
      },
    });
  }

  private secretOf(ciphertext: string, webhookId: string): string {
    // Cached per webhook and ciphertext: a ciphertext copied into another webhook's row must not
    // find the secret it opened for its own webhook here (the box binds secrets to webhook ids).
    const cacheKey = `${webhookId}:${ciphertext}`;
    let secret = this.secrets.get(cacheKey);
    if (secret === undefined) {
      if (this.secrets.size > 10_000) this.secrets.clear();
      secret = this.box.decrypt(ciphertext, webhookId);
      this.secrets.set(cacheKey, secret);
    }
    return secret;
  }

  /**
   * Writes finished attempts; results that arrive while a write runs go together in the next one.
   * Resolves once the caller's result is durable.
   */
  private record(): Promise<void> {
    const previous = this.recording ?? Promise.resolve();
    const next = previous.then(async () => {
      const batch = this.results;
      this.results = [];
      try {
        if (batch.length) await this.write(batch);
      } finally {
        this.unrecorded -= batch.length;
        if (batch.length) this.refill();
      }
    });
    this.recording = next.catch(() => undefined);
    return next;
  }

  private async write(batch: Finished[]): Promise<void> {
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    const gone: string[] = [];
    for (const f of batch) {
      const r = f.result;
      const delayMs = f.verdict.status === 'pending' ? f.verdict.delayMs : null;
      [f.delivery.id, f.attemptNumber, r.startedAt, r.durationMs, r.statusCode, r.error, r.responseBody, f.verdict.status, delayMs].forEach((v, i) => cols[i].push(v));
      if (f.verdict.status === 'failed' && f.verdict.gone) gone.push(f.delivery.webhook_id);
    }
    if (!gone.length) {
      await this.ds.query(RECORD_SQL, cols);
    } else {
      // Webhook rows first, as a webhook's deletion locks them (then its deliveries).
      const events = await inTransaction(this.ds, async (query) => {
        const changes = await this.webhooks.deactivateGone(query, [...new Set(gone)]);
        await query(RECORD_SQL, cols);
        return changes;
      });
      this.webhooks.publishChanges(events);
    }
    for (const f of batch) this.outcomes.inc({ outcome: f.verdict.status === 'pending' ? 'retry' : f.verdict.status });
    if (gone.length) this.logger.warn({ webhookIds: [...new Set(gone)] }, 'Receiver answered 410 Gone: webhook deactivated');
    const soonest = Math.min(...batch.map((f) => (f.verdict.status === 'pending' ? f.verdict.delayMs : Infinity)));
    if (soonest < this.config.WEBHOOK_SENDER_POLL_MS) this.wakeIn(soonest);
  }

  /** A retry due before the next poll wakes the sender itself. */
  private wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.wake && this.wake.at <= at) return;
    if (this.wake) clearTimeout(this.wake.timer);
    this.wake = {
      at,
      timer: setTimeout(() => {
        this.wake = undefined;
        this.pump();
      }, ms + 5),
    };
  }
}
