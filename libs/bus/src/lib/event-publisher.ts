import { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { DomainEvent, EventInput, HeraldError, REQUEST_ID_HEADER, eventSubject, newId, parseEventMessage, validateEnvelope } from '@herald/contracts';

export interface PublishResult {
  event: DomainEvent;
  /** True when JetStream already held an event with this id inside the duplicate window. */
  duplicate: boolean;
  seq: number;
}

/**
 * The publisher API of SPEC 1: validates the envelope, fills `id` and `timestamp` when missing,
 * publishes on `<prefix>.<type>` with `Nats-Msg-Id` = event id, and waits for the stream's ack.
 */
export class EventPublisher {
  constructor(
    private readonly js: JetStreamClient,
    private readonly subjectPrefix: string,
    /** EVENTS_MAX_MESSAGE_BYTES of the consumers. */
    private readonly maxMessageBytes?: number,
  ) {}

  /** Fills `id` and `timestamp` and validates; throws VALIDATION_FAILED with field errors. */
  prepare(input: EventInput): DomainEvent {
    return validateEnvelope({ ...input, id: input.id ?? newId('evt'), timestamp: input.timestamp ?? new Date().toISOString() });
  }

  async publish(input: EventInput): Promise<PublishResult> {
    const event = this.prepare(input);
    const ack = await this.publishPrepared(event);
    return { event, duplicate: ack.duplicate, seq: ack.seq };
  }

  /**
   * Publishes an already validated event (the envelope exactly as given, defaults left implicit).
   * The bytes are read back as the consumers read them (size, nesting, storable text), so what this
   * library publishes is never rejected by Herald.
   */
  async publishPrepared(event: DomainEvent): Promise<PubAck> {
    const h = natsHeaders();
    if (event.requestId) h.set(REQUEST_ID_HEADER, event.requestId);
    const envelope = {
      id: event.id,
      type: event.type,
      timestamp: event.timestamp,
      organizationId: event.organizationId,
      ...(event.actor ? { actor: event.actor } : {}),
      ...(event.entity.id !== null ? { entity: event.entity } : {}),
      ...(event.requestId ? { requestId: event.requestId } : {}),
      data: event.data,
    };
    const subject = eventSubject(this.subjectPrefix, event.type);
    const body = Buffer.from(JSON.stringify(envelope));
    const check = parseEventMessage(this.subjectPrefix, subject, body, this.maxMessageBytes);
    if (!check.ok) throw HeraldError.validation([{ field: '', message: check.reason }]);
    return this.js.publish(subject, body, { msgID: event.id, headers: h });
  }
}
