import fc from 'fast-check';
import { ACTOR_TYPES, DELIVERABLE_EVENT_TYPES } from '@herald/contracts';
import { dateEdge, deepNesting, hostileKey, hostileString, jsonText, notJsonBody, scalarText } from './generators';

/**
 * Bus messages for the fuzz of issue 18: envelopes built field by field from `EventEnvelope`'s
 * fields (each mostly valid, sometimes not), as JSON text so that `__proto__` keys, huge numbers and
 * lone surrogates reach the consumers exactly as written, and now and then bytes that are not an
 * envelope at all. The event id is left as a hole (`$ID`) that the test fills with a fresh one, so
 * an accepted message can be found by its id.
 */
export interface BusMessage {
  /** The subject's tail: the type when it is one, another type otherwise (a mismatch). */
  subjectType: string;
  /** The body, with `"$ID"` where a valid event id goes. */
  body: string | Uint8Array;
  /** Whether the body carries a valid event id in place of `$ID`. */
  validId: boolean;
}

/** true `yes` times in `yes + no`, drawn from the seed. */
const weighted = (yes: number, no: number) => fc.oneof({ weight: yes, arbitrary: fc.constant(true) }, { weight: no, arbitrary: fc.constant(false) });

const SUBJECT_TYPE = /^[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*$/;
const str = (a: fc.Arbitrary<string>) => a.map((s) => JSON.stringify(s));
const field = (name: string, value: fc.Arbitrary<string>, freq: number) => fc.option(value.map((v) => `${JSON.stringify(name)}:${v}`), { freq, nil: undefined });

const eventType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...DELIVERABLE_EVENT_TYPES) },
  { weight: 2, arbitrary: fc.constantFrom('loyalty.earn', 'inventory.beforeAdjust', 'webhooks.update', 'customers.delete') },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,120}\.[a-z][a-zA-Z0-9]{0,20}$/) },
  { weight: 1, arbitrary: hostileString() },
);

const timestamp = fc.oneof(
  { weight: 12, arbitrary: fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()) },
  { weight: 1, arbitrary: dateEdge },
  { weight: 1, arbitrary: hostileString() },
);

const actor = fc.oneof(
  { weight: 8, arbitrary: fc.record({ id: fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) }, { weight: 1, arbitrary: hostileString() }), type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...ACTOR_TYPES) }, { weight: 1, arbitrary: hostileString() }) }).map((a) => JSON.stringify(a)) },
  { weight: 1, arbitrary: jsonText(2) },
);

const entity = fc.oneof(
  { weight: 8, arbitrary: fc.record({ type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('order', 'shipment') }, { weight: 1, arbitrary: hostileString() }), id: fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) }, { weight: 1, arbitrary: hostileString() }) }).map((e) => JSON.stringify(e)) },
  { weight: 1, arbitrary: jsonText(2) },
);

/** `data`: an object with hostile keys and values, sometimes a deep one, sometimes not an object. */
const data = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom('id', 'id', 'password', 'lines'), hostileKey), fc.oneof(scalarText, jsonText(3))), { maxLength: 8 }).map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`) },
  { weight: 1, arbitrary: deepNesting.map((d) => `{"id":"deep","x":${d}}`) },
  { weight: 1, arbitrary: fc.oneof(scalarText, jsonText(2)) },
);

const envelope: fc.Arbitrary<BusMessage> = fc
  .record({
    validId: weighted(9, 1),
    badId: str(hostileString()),
    type: eventType,
    mismatch: weighted(1, 9),
    timestamp: str(timestamp),
    organizationId: fc.option(str(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('default', 'default', 'other-org') }, { weight: 1, arbitrary: hostileString() })), { freq: 2, nil: undefined }),
    actor: fc.option(actor, { freq: 2, nil: undefined }),
    entity: fc.option(entity, { freq: 3, nil: undefined }),
    requestId: fc.option(str(fc.oneof({ weight: 6, arbitrary: fc.string({ maxLength: 40 }) }, { weight: 1, arbitrary: hostileString() })), { freq: 3, nil: undefined }),
    data,
    extra: field('__proto__', fc.constant('{"isAdmin":true}'), 8),
  })
  .map((r) => {
    const parts = [
      `"id":${r.validId ? '"$ID"' : r.badId}`,
      `"type":${JSON.stringify(r.type)}`,
      `"timestamp":${r.timestamp}`,
      r.organizationId !== undefined ? `"organizationId":${r.organizationId}` : undefined,
      r.actor !== undefined ? `"actor":${r.actor}` : undefined,
      r.entity !== undefined ? `"entity":${r.entity}` : undefined,
      r.requestId !== undefined ? `"requestId":${r.requestId}` : undefined,
      `"data":${r.data}`,
      r.extra,
    ].filter((p): p is string => p !== undefined);
    const subjectType = SUBJECT_TYPE.test(r.type) && r.type.length <= 150 && !r.mismatch ? r.type : 'orders.create';
    return { subjectType, body: `{${parts.join(',')}}`, validId: r.validId };
  });

/** A message of the bus: mostly envelopes, sometimes anything else (not JSON, invalid UTF-8). */
export const busMessage: fc.Arbitrary<BusMessage> = fc.oneof(
  { weight: 12, arbitrary: envelope },
  { weight: 1, arbitrary: notJsonBody.map((body) => ({ subjectType: 'orders.create', body, validId: false })) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((body) => ({ subjectType: 'orders.create', body, validId: false })) },
);
