import { AckPolicy, ConsumerMessages, DeliverPolicy, JetStreamApiError, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { DomainEvent, parseEventMessage } from '@herald/contracts';

/** How much of a rejected message's body is kept for inspection. */
export const REJECTED_RAW_LIMIT = 64 * 1024;
/** How much of a failure's message is kept as a rejection's reason. */
const REASON_LIMIT = 2000;

export interface RejectedMessage {
  subject: string;
  /** The body, cut at REJECTED_RAW_LIMIT bytes. */
  raw: Buffer;
  reason: string;
  streamSeq: number;
}

export interface ReceivedEvent {
  event: DomainEvent;
  subject: string;
  streamSeq: number;
  deliveryCount: number;
}

export interface EventBatch {
  events: ReceivedEvent[];
  rejected: RejectedMessage[];
}

/** Commits a batch; resolves only once its effects are durable. Throwing hands the batch back. */
export type BatchHandler = (batch: EventBatch) => Promise<void>;

/** What the consumer logs through (a Nest Logger). */
export interface ConsumerLogger {
  log(message: unknown, ...rest: unknown[]): void;
  warn(message: unknown, ...rest: unknown[]): void;
  error(message: unknown, ...rest: unknown[]): void;
}

export interface BatchConsumerOptions {
  stream: string;
  durableName: string;
  subjectPrefix: string;
  /** Only types for which this returns true reach the handler; others are acked untouched. */
  accepts?: (subjectTail: string) => boolean;
  batchSize: number;
  /** Most bytes of message bodies in one batch (and asked for by one pull). */
  batchMaxBytes?: number;
  /** Longer messages are rejected unread (EVENTS_MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /** How long a message may stay unacked before JetStream redelivers it (the process died). */
  ackWaitMs?: number;
  /** First delay after an infrastructure failure; it doubles with each failure in a row. */
  retryDelayMs?: number;
  /** Longest delay after infrastructure failures in a row (capped at half the ack wait). */
  retryMaxDelayMs?: number;
  /**
   * True for a failure of the infrastructure (connection lost, timeout, server shutting down):
   * the batch is retried, with backoff, for ever. Any other failure is the messages' own: the batch
   * is split until the failing messages stand alone, and those are rejected.
   */
  isTransient?: (err: unknown) => boolean;
  logger?: ConsumerLogger;
  /** A batch was handed back after an infrastructure failure. */
  onRetry?: (err: unknown, batchSize: number) => void;
  onBatch?: (batch: EventBatch, ms: number) => void;
}

/** A message of the batch being settled, with what it was read as. */
interface Item {
  msg: JsMsg;
  event?: ReceivedEvent;
  rejected?: RejectedMessage;
  settled: boolean;
}

class InfrastructureFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('infrastructure failure');
  }
}

/** Text any rejected-events table stores: no NUL, no unpaired surrogate, bounded. */
function storable(text: string, limit = REASON_LIMIT): string {
  // toWellFormed is in Node 20 (ES2024); the project's type library is ES2023.
  const clean = (text as string & { toWellFormed(): string }).toWellFormed().replace(/\0/g, '\uFFFD');
  return clean.length > limit ? `${clean.slice(0, limit)}…` : clean;
}

function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' ? `${e.code}: ${message}` : message;
}

/**
 * A durable pull consumer that hands the handler batches of validated events and acks them only
 * after the handler resolves. Malformed messages are given to the handler as `rejected` (so it can
 * record them in the same transaction) and then terminated, never redelivered.
 *
 * Written on the official client because no maintained library batches JetStream messages for a
 * transactional handler: Nest's NATS transport is core NATS (at most once).
 */
export class DurableBatchConsumer {
  private messages?: ConsumerMessages;
  /** Received, not yet handed to the handler, and the bytes of their bodies. */
  private buffer: JsMsg[] = [];
  private bufferedBytes = 0;
  /** The batch being committed; the next one is taken from the buffer only when it is done. */
  private inFlight?: Promise<void>;
  private kickScheduled = false;
  private loop?: Promise<void>;
  private stopping = false;
  /** Infrastructure failures in a row, and since when (for backoff and for logging at a bounded rate). */
  private failures = 0;
  private failingSince = 0;
  private lastFailureLog = 0;
  private suppressed = 0;
  /** Ends the pause after an infrastructure failure (stop() ends it early). */
  private resume?: () => void;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: BatchConsumerOptions,
    private readonly handler: BatchHandler,
  ) {}

  /** Creates or updates the durable consumer and starts pulling. */
  async start(): Promise<void> {
    const o = this.options;
    const config = {
      durable_name: o.durableName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${o.subjectPrefix}.>`,
      ack_wait: nanos(this.ackWaitMs),
      max_ack_pending: Math.max(o.batchSize * 4, 1000),
      max_deliver: -1,
    };
    try {
      await this.jsm.consumers.add(o.stream, config);
    } catch (err) {
      // An existing durable with other settings: bring it to ours (several replicas may race here).
      if (!(err instanceof JetStreamApiError)) throw err;
      await this.jsm.consumers.update(o.stream, o.durableName, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending, filter_subject: config.filter_subject });
    }
    const consumer = await this.js.consumers.get(o.stream, o.durableName);
    // Pulls are bounded by count, not by bytes: the client (3.4) accepts one bound or the other, and
    // with `max_bytes` it stalls for two missed heartbeats (about 30 s) whenever the next message is
    // larger than what is left of a pull's byte budget (status 409), which the bus fuzz found.
    // Memory is bounded by the batch's bytes instead: reading pauses while a full batch waits.
    this.messages = await consumer.consume({ max_messages: this.options.batchSize * 2 });
    this.loop = this.pull(this.messages);
  }

  private get ackWaitMs(): number {
    return this.options.ackWaitMs ?? 30_000;
  }

  private get batchMaxBytes(): number {
    return this.options.batchMaxBytes ?? 8 * 1024 * 1024;
  }

  /**
   * Pipelined: while one batch commits, the next accumulates, and it is taken whole the moment the
   * commit ends. (Committing each small group as it arrived queued many tiny transactions behind
   * each other and let latency grow under steady load.) Pulling pauses while a full batch waits,
   * full by count or by bytes, so memory holds about two batches and one pull.
   */
  private async pull(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      this.buffer.push(m);
      this.bufferedBytes += m.data.length;
      if ((this.buffer.length >= this.options.batchSize || this.bufferedBytes >= this.batchMaxBytes) && this.inFlight) await this.inFlight;
      if (!this.kickScheduled) {
        // Let every message already received join this batch before it is taken.
        this.kickScheduled = true;
        setImmediate(() => {
          this.kickScheduled = false;
          this.kick();
        });
      }
    }
  }

  /** Starts committing the buffered messages, unless a batch is still committing (it kicks again when done). */
  private kick(): void {
    if (this.inFlight || !this.buffer.length) return;
    const batch = this.take();
    this.inFlight = this.process(batch)
      .catch((err: unknown) => this.options.logger?.error({ err, size: batch.length }, 'Batch not settled; JetStream redelivers it after the ack wait'))
      .finally(() => {
        this.inFlight = undefined;
        this.kick();
      });
  }

  /** The next batch: up to batchSize messages and batchMaxBytes of bodies (always at least one). */
  private take(): JsMsg[] {
    let n = 0;
    let bytes = 0;
    const max = Math.min(this.options.batchSize, this.buffer.length);
    while (n < max && (n === 0 || bytes + this.buffer[n].data.length <= this.batchMaxBytes)) bytes += this.buffer[n++].data.length;
    this.bufferedBytes -= bytes;
    return this.buffer.splice(0, n);
  }

  private async process(msgs: JsMsg[]): Promise<void> {
    const o = this.options;
    const items: Item[] = [];
    for (const m of msgs) {
      const parsed = parseEventMessage(o.subjectPrefix, m.subject, m.data, o.maxMessageBytes);
      if (!parsed.ok) {
        items.push({ msg: m, rejected: this.rejection(m, parsed.reason), settled: false });
      } else if (o.accepts && !o.accepts(parsed.event.type)) {
        m.ack();
      } else {
        items.push({ msg: m, event: { event: parsed.event, subject: m.subject, streamSeq: m.seq, deliveryCount: m.info.deliveryCount }, settled: false });
      }
    }
    if (!items.length) return;
    const started = performance.now();
    try {
      await this.settle(items);
    } catch (err) {
      if (!(err instanceof InfrastructureFailure)) throw err;
      await this.retryLater(items, err.cause);
      return;
    }
    if (this.failures) this.recovered();
    o.onBatch?.(this.batchOf(items), performance.now() - started);
  }

  private rejection(m: JsMsg, reason: string): RejectedMessage {
    return { subject: storable(m.subject, 1000), raw: Buffer.from(m.data.subarray(0, REJECTED_RAW_LIMIT)), reason: storable(reason), streamSeq: m.seq };
  }

  private batchOf(items: Item[]): EventBatch {
    const batch: EventBatch = { events: [], rejected: [] };
    for (const it of items) {
      if (it.event) batch.events.push(it.event);
      else batch.rejected.push(it.rejected!);
    }
    return batch;
  }

  /**
   * Commits the items, acks the events and terminates the rejected ones. A failure that is not the
   * infrastructure's splits the batch in halves, and halves again, until each failing message stands
   * alone and is rejected: a batch of 500 holding one poison message costs about twenty more
   * transactions, and its batch-mates are committed. The handler is idempotent on event ids, so a
   * half that is tried again after its other half failed records nothing twice.
   */
  private async settle(items: Item[]): Promise<void> {
    try {
      await this.handler(this.batchOf(items));
    } catch (err) {
      if (this.options.isTransient?.(err)) throw new InfrastructureFailure(err);
      if (items.length > 1) {
        const half = items.length >> 1;
        await this.settle(items.slice(0, half));
        await this.settle(items.slice(half));
        return;
      }
      await this.rejectAlone(items[0], err);
      return;
    }
    for (const it of items) {
      // No reason on +TERM: servers before 2.10 (Debian's 2.9) ignore a TERM that carries one. The
      // reason is in the handler's rejected-events table instead.
      if (it.event) it.msg.ack();
      else it.msg.term();
      it.settled = true;
    }
  }

  /** One message the handler refuses on its own: recorded as rejected with the handler's reason, and terminated. */
  private async rejectAlone(item: Item, err: unknown): Promise<void> {
    const reason = item.event ? `refused while handling it: ${describeError(err)}` : `${item.rejected!.reason} (then not recordable in full: ${describeError(err)})`;
    const rejected = this.rejection(item.msg, reason);
    try {
      await this.handler({ events: [], rejected: [item.event ? rejected : { ...rejected, raw: Buffer.alloc(0) }] });
    } catch (again) {
      if (this.options.isTransient?.(again)) throw new InfrastructureFailure(again);
      // Not even its rejection can be written: the log keeps the evidence, and the message is not
      // retried for a reason retrying cannot fix.
      this.options.logger?.error({ err: again, subject: item.msg.subject, streamSeq: item.msg.seq, reason, raw: rejected.raw.toString('base64') }, 'Message could not be recorded, even as rejected; terminated');
    }
    item.msg.term();
    item.settled = true;
  }

  /**
   * Hands the unsettled messages back to JetStream with a delay that doubles with each failure in a
   * row (with jitter, capped below the ack wait so the buffered messages are not redelivered
   * meanwhile), and waits as long before taking the next batch: an outage costs one attempt per
   * delay, not one per message. Logs the first failure, then at most one line a minute.
   */
  private async retryLater(items: Item[], cause: unknown): Promise<void> {
    const o = this.options;
    const unsettled = items.filter((it) => !it.settled);
    if (this.failures++ === 0) this.failingSince = Date.now();
    const cap = Math.min(o.retryMaxDelayMs ?? 30_000, this.ackWaitMs / 2);
    const delay = Math.round(Math.min(cap, (o.retryDelayMs ?? 1000) * 2 ** (this.failures - 1)) * (0.8 + Math.random() * 0.4));
    for (const it of unsettled) it.msg.nak(delay);
    o.onRetry?.(cause, unsettled.length);
    const now = Date.now();
    if (this.failures === 1 || now - this.lastFailureLog >= 60_000) {
      o.logger?.error({ err: cause, size: unsettled.length, failures: this.failures, suppressed: this.suppressed, retryInMs: delay }, 'Batch failed for an infrastructure reason; retrying with backoff');
      this.lastFailureLog = now;
      this.suppressed = 0;
    } else {
      this.suppressed++;
    }
    if (this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.resume = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.resume = undefined;
  }

  private recovered(): void {
    this.options.logger?.log({ failures: this.failures, seconds: Math.round((Date.now() - this.failingSince) / 1000) }, 'Batches commit again after infrastructure failures');
    this.failures = 0;
    this.suppressed = 0;
  }

  /** Messages of the stream this consumer has not been handed yet (for a lag gauge). */
  async lag(): Promise<number> {
    const info = await this.jsm.consumers.info(this.options.stream, this.options.durableName);
    return info.num_pending;
  }

  /** Stops pulling, commits and acks what was already received, and returns when that is done. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.resume?.();
    if (this.messages) {
      await this.messages.close().catch(() => undefined);
    }
    await this.loop?.catch(() => undefined);
    this.kick();
    while (this.inFlight) await this.inFlight;
  }
}
