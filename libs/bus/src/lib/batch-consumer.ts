import { AckPolicy, ConsumerMessages, DeliverPolicy, JetStreamApiError, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { DomainEvent, parseEventMessage } from '@herald/contracts';

/** How much of a rejected message's body is kept for inspection. */
export const REJECTED_RAW_LIMIT = 64 * 1024;

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

export interface BatchConsumerOptions {
  stream: string;
  durableName: string;
  subjectPrefix: string;
  /** Only types for which this returns true reach the handler; others are acked untouched. */
  accepts?: (subjectTail: string) => boolean;
  batchSize: number;
  /** How long a message may stay unacked before JetStream redelivers it (the process died). */
  ackWaitMs?: number;
  /** Delay before a batch whose handler failed is redelivered. */
  retryDelayMs?: number;
  onError?: (err: unknown, batchSize: number) => void;
  onBatch?: (batch: EventBatch, ms: number) => void;
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
  /** Received, not yet handed to the handler. */
  private buffer: JsMsg[] = [];
  /** The batch being committed; the next one is taken from the buffer only when it is done. */
  private inFlight?: Promise<void>;
  private kickScheduled = false;
  private loop?: Promise<void>;
  private stopping = false;

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
      ack_wait: nanos(o.ackWaitMs ?? 30_000),
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
    this.messages = await consumer.consume({ max_messages: o.batchSize * 2 });
    this.loop = this.pull(this.messages);
  }

  /**
   * Pipelined: while one batch commits, the next accumulates, and it is taken whole the moment the
   * commit ends. (Committing each small group as it arrived queued many tiny transactions behind
   * each other and let latency grow under steady load.) Pulling pauses while a full batch waits.
   */
  private async pull(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      this.buffer.push(m);
      if (this.buffer.length >= this.options.batchSize && this.inFlight) await this.inFlight;
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
    const batch = this.buffer.splice(0, this.options.batchSize);
    this.inFlight = this.process(batch)
      .catch((err: unknown) => this.options.onError?.(err, batch.length))
      .finally(() => {
        this.inFlight = undefined;
        this.kick();
      });
  }

  private async process(msgs: JsMsg[]): Promise<void> {
    const o = this.options;
    const batch: EventBatch = { events: [], rejected: [] };
    const acceptedMsgs: JsMsg[] = [];
    const rejectedMsgs: JsMsg[] = [];
    const skipped: JsMsg[] = [];
    for (const m of msgs) {
      const parsed = parseEventMessage(o.subjectPrefix, m.subject, m.data);
      if (!parsed.ok) {
        batch.rejected.push({ subject: m.subject, raw: Buffer.from(m.data.subarray(0, REJECTED_RAW_LIMIT)), reason: parsed.reason, streamSeq: m.seq });
        rejectedMsgs.push(m);
      } else if (o.accepts && !o.accepts(parsed.event.type)) {
        skipped.push(m);
      } else {
        batch.events.push({ event: parsed.event, subject: m.subject, streamSeq: m.seq, deliveryCount: m.info.deliveryCount });
        acceptedMsgs.push(m);
      }
    }
    const started = performance.now();
    try {
      if (batch.events.length || batch.rejected.length) await this.handler(batch);
    } catch (err) {
      o.onError?.(err, msgs.length);
      for (const m of [...acceptedMsgs, ...rejectedMsgs]) m.nak(o.retryDelayMs ?? 1000);
      for (const m of skipped) m.ack();
      return;
    }
    for (const m of acceptedMsgs) m.ack();
    for (const m of skipped) m.ack();
    // No reason on +TERM: servers before 2.10 (Debian's 2.9) ignore a TERM that carries one. The
    // reason is in the handler's rejected-events table instead.
    for (const m of rejectedMsgs) m.term();
    o.onBatch?.(batch, performance.now() - started);
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
    if (this.messages) {
      await this.messages.close().catch(() => undefined);
    }
    await this.loop?.catch(() => undefined);
    this.kick();
    while (this.inFlight) await this.inFlight;
  }
}
