import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DeliveryHeader, WEBHOOK_USER_AGENT } from '@herald/contracts';
import { queryRows } from '@herald/database';
import { METRICS_REGISTRY } from '@herald/observability';
import { Client } from 'pg';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { DispatcherConfig } from '../config';
import { SecretBox } from '../webhooks/secret-box';
import { ClaimedDelivery, DELIVERIES_CHANNEL } from './queue';
import { Verdict, decide } from './retry-policy';
import { AttemptResult, WebhookHttpClient } from './webhook-http-client';

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
 * the attempt rows, the webhooks a 410 deactivated, and each delivery's new state. A result only
 * moves a delivery that is still pending on exactly that attempt, so a delivery cancelled meanwhile
 * stays cancelled (its attempt is still recorded).
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
  ),
  gone as (
    update dispatch.webhooks set is_active = false, updated_at = now() where id = any($10::text[]) and is_active
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
  /** Slots promised to the intake for deliveries it inserts already leased to this process. */
  private reserved = 0;
  private claiming?: Promise<void>;
  private again = false;
  /** The last claim filled every free slot, so more may be due. */
  private backlog = false;
  private results: Finished[] = [];
  private recording?: Promise<void>;
  private idle?: () => void;

  private readonly outcomes: Counter<'outcome'>;
  private readonly latency: Histogram;

  constructor(
    private readonly ds: DataSource,
    private readonly config: DispatcherConfig,
    private readonly box: SecretBox,
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
      const free = this.config.WEBHOOK_SENDER_CONCURRENCY - this.inFlight - this.reserved;
      if (free <= 0) return; // a finishing attempt pumps again
      const rows = await queryRows<ClaimedDelivery>(this.ds, CLAIM_SQL, [free, this.config.WEBHOOK_LEASE_MS]);
      this.backlog = rows.length === free;
      const unusable = rows.filter((r) => !r.usable);
      if (unusable.length) await this.cancel(unusable);
      for (const row of rows) if (row.usable) this.start(row);
    } while ((this.again || this.backlog) && !this.stopped);
  }

  /**
   * Reserves up to `n` free slots for deliveries the intake is about to insert already leased to
   * this process (saving the NOTIFY and the claim on the way to the first attempt). Every
   * reservation is given back through `adopt`.
   */
  reserve(n: number): number {
    if (this.stopped) return 0;
    const k = Math.max(0, Math.min(n, this.config.WEBHOOK_SENDER_CONCURRENCY - this.inFlight - this.reserved));
    this.reserved += k;
    return k;
  }

  /** Ends a reservation of `reserved` slots and starts the leased deliveries that were inserted. */
  adopt(reserved: number, rows: ClaimedDelivery[]): void {
    this.reserved -= reserved;
    if (this.stopped) return; // shutting down: the leases run out and a sender takes them over
    for (const row of rows.slice(0, reserved)) this.start(row);
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
      // More is due only after a claim that filled every slot; then claim in groups of a quarter
      // of the slots rather than one statement per finished attempt. Otherwise NOTIFY, the retry
      // timer and the poll wake the sender.
      const free = this.config.WEBHOOK_SENDER_CONCURRENCY - this.inFlight - this.reserved;
      if (this.backlog && free >= Math.max(1, this.config.WEBHOOK_SENDER_CONCURRENCY >> 2)) this.pump();
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
        const recorded = this.record();
        release();
        return recorded;
      })
      .catch((err: unknown) => this.logger.error({ err, deliveryId: d.id }, 'Attempt not recorded; the lease hands it to a sender again'))
      .finally(release);
  }

  private async attempt(d: ClaimedDelivery, attemptNumber: number): Promise<AttemptResult> {
    return this.http.send({
      url: d.url,
      secret: this.secretOf(d.secret_ciphertext),
      body: Buffer.from(d.body, 'utf8'),
      headers: {
        [DeliveryHeader.event]: d.event_type,
        [DeliveryHeader.eventId]: d.event_id,
        [DeliveryHeader.delivery]: d.id,
        [DeliveryHeader.attempt]: String(attemptNumber),
      },
    });
  }

  private secretOf(ciphertext: string): string {
    let secret = this.secrets.get(ciphertext);
    if (secret === undefined) {
      if (this.secrets.size > 10_000) this.secrets.clear();
      secret = this.box.decrypt(ciphertext);
      this.secrets.set(ciphertext, secret);
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
      if (batch.length) await this.write(batch);
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
    await this.ds.query(RECORD_SQL, [...cols, gone]);
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
