import { EVENT_LIMITS, deriveEntity, isPlainDateTime, jsonDepth, parseEventMessage, validateEnvelope } from './envelope';
import { isEventSelector, selectorsMatch } from './event-types';
import { grants } from './permissions';
import { HeraldError } from './errors';

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const good = {
  id: 'evt_01HQZX3V8Y5T7K9M2N4P6R8S0A',
  type: 'orders.create',
  timestamp: '2026-03-15T10:30:00.000Z',
  data: { id: '550e8400-e29b-41d4-a716-446655440000', grandTotal: 4999 },
};

describe('event envelope (SPEC 1)', () => {
  it('applies the defaults: organization default, entity from the module and data.id', () => {
    const e = validateEnvelope(good);
    expect(e.organizationId).toBe('default');
    expect(e.entity).toEqual({ type: 'order', id: '550e8400-e29b-41d4-a716-446655440000' });
    expect(e.actor).toBeNull();
  });

  it.each([
    ['orders', 'order'], ['catalog', 'catalog'], ['inventory', 'inventory'], ['customers', 'customer'], ['pricing', 'pricing'],
    ['promotions', 'promotion'], ['fulfillment', 'fulfillment'], ['cart', 'cart'], ['webhooks', 'webhook'], ['loyalty', 'loyalty'],
  ])('module %s gives entity type %s', (module, entityType) => {
    expect(deriveEntity({ type: `${module}.create`, data: { id: 7 } })).toEqual({ type: entityType, id: '7' });
  });

  it('leaves entity.id null when data.id is neither string nor number', () => {
    expect(deriveEntity({ type: 'orders.create', data: { id: { x: 1 } } }).id).toBeNull();
  });

  it('keeps an explicit entity', () => {
    expect(validateEnvelope({ ...good, entity: { type: 'shipment', id: 's1' } }).entity).toEqual({ type: 'shipment', id: 's1' });
  });

  it.each([
    [{ ...good, id: 'evt_123' }, 'id'],
    [{ ...good, id: undefined }, 'id'],
    [{ ...good, type: 'orders' }, 'type'],
    [{ ...good, timestamp: 'yesterday' }, 'timestamp'],
    [{ ...good, data: [1] }, 'data'],
    [{ ...good, data: undefined }, 'data'],
    [{ ...good, actor: { id: 'x', type: 'robot' } }, 'actor.type'],
    [{ ...good, actor: [] }, 'actor'],
    [{ ...good, actor: 'staff-1' }, 'actor'],
    [{ ...good, entity: [] }, 'entity'],
    [{ ...good, entity: [{ type: 'order', id: '1' }] }, 'entity'],
    [{ ...good, organizationId: '' }, 'organizationId'],
  ])('refuses %j naming %s', (plain, field) => {
    try {
      validateEnvelope(plain);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(HeraldError);
      expect((err as HeraldError).details?.map((d) => d.field)).toContain(field);
    }
  });

  it('reads a bus message: not JSON, invalid, type not matching the subject', () => {
    expect(parseEventMessage('commerce.events', 'commerce.events.orders.create', enc('{nope'))).toEqual({ ok: false, reason: 'body is not JSON' });
    expect(parseEventMessage('commerce.events', 'commerce.events.orders.create', enc({ ...good, id: 'x' }))).toMatchObject({ ok: false, reason: expect.stringContaining('envelope invalid') });
    expect(parseEventMessage('commerce.events', 'commerce.events.orders.statusChange', enc(good))).toMatchObject({ ok: false, reason: expect.stringContaining('does not match subject') });
    expect(parseEventMessage('commerce.events', 'commerce.events.orders.create', enc(good))).toMatchObject({ ok: true });
  });

  it('is not fooled by __proto__ or constructor keys, and ignores unknown fields', () => {
    const read = (json: string) => parseEventMessage('commerce.events', 'commerce.events.orders.create', enc(json));
    const fields = (extra: string, id = good.id) => `{"id":"${id}","type":"orders.create","timestamp":"${good.timestamp}","data":{"id":"o-1"}${extra}}`;
    // An own `constructor` would point class-validator at no rules at all; `__proto__` would swap the class.
    expect(read(fields(',"constructor":{}', 'evt_bad'))).toMatchObject({ ok: false, reason: expect.stringContaining('id must be evt_') });
    expect(read(fields(',"__proto__":{"id":"evt_01HQZX3V8Y5T7K9M2N4P6R8S0A"}', 'evt_bad'))).toMatchObject({ ok: false, reason: expect.stringContaining('id must be evt_') });
    expect(read(fields(',"actor":{"id":"u1","type":"robot","constructor":{}}'))).toMatchObject({ ok: false, reason: expect.stringContaining('actor.type must be one of') });
    // A __proto__ key in data, spelled out or escaped, never reaches a webhook body.
    for (const key of ['__proto__', '\\u005f_proto__']) {
      const r = read(`{"id":"${good.id}","type":"orders.create","timestamp":"${good.timestamp}","data":{"id":"o-1","lines":[{"${key}":{"admin":true},"sku":"a"}],"${key}":{"admin":true}}}`);
      expect(r.ok && JSON.stringify(r.event.data)).toBe('{"id":"o-1","lines":[{"sku":"a"}]}');
    }
    const ok = read(fields(',"extra":1,"actor":{"id":"u1","type":"user","role":"admin"}'));
    expect(ok).toEqual({ ok: true, event: expect.objectContaining({ actor: { id: 'u1', type: 'user' }, data: { id: 'o-1' } }) });
    expect(ok.ok && Object.keys(ok.event)).not.toContain('extra');
  });
});

describe('bounds at the door (issue 13): what Herald cannot store is refused with a reason', () => {
  const read = (body: Uint8Array | string, maxBytes?: number) =>
    parseEventMessage('commerce.events', 'commerce.events.orders.create', typeof body === 'string' ? enc(body) : body, maxBytes);
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const withData = (data: string) => `{"id":"${good.id}","type":"orders.create","timestamp":"${good.timestamp}","data":${data}}`;

  it.each([
    ['2026-03-15T10:30:00Z', true],
    ['2026-03-15T10:30:00.123456789+05:30', true],
    ['1000-01-01T00:00:00Z', true],
    ['9999-12-31T23:59:59.999Z', true],
    ['2024-02-29T00:00:00Z', true],
    ['0999-12-31T23:59:59Z', false],
    ['1000-01-01T00:00:00+01:00', false], // 0999 in UTC
    ['9999-12-31T23:59:59-01:00', false], // 10000 in UTC
    ['+002026-03-15T10:30:00Z', false],
    ['2026-W11-1T10:30:00Z', false],
    ['2026-074T10:30:00Z', false],
    ['2026-02-29T00:00:00Z', false],
    ['2026-02-30T10:30:00Z', false],
    ['2026-03-15T24:00:00Z', false],
    ['2026-12-31T23:59:60Z', false],
    ['2026-03-15T10:30:00+24:00', false],
    ['2026-03-15T10:30:00', false],
    ['2026-03-15 10:30:00Z', false],
    ['2026-03-15T10:30:00.1234567890Z', false],
    ['2026-03-15T10:30Z', false],
  ])('timestamp %s: %s', (ts, ok) => {
    expect(isPlainDateTime(ts)).toBe(ok);
    const r = read(JSON.stringify({ ...good, timestamp: ts }));
    expect(r.ok ? 'ok' : r.reason).toEqual(ok ? 'ok' : expect.stringContaining('timestamp must be an RFC 3339 date-time'));
  });

  it('counts nesting from the bytes, skipping brackets in strings and escaped quotes', () => {
    expect(jsonDepth(enc('{"a":"[[[{{{\\"","b":[1,{"c":[]}]}'))).toBe(4);
    expect(jsonDepth(enc(nested(100000)), 64)).toBe(65);
  });

  it(`takes nesting of ${EVENT_LIMITS.maxDepth} levels and refuses ${EVENT_LIMITS.maxDepth + 1}, deep enough to break a recursive walk included`, () => {
    // The envelope is level 1 and data level 2.
    const at = EVENT_LIMITS.maxDepth - 2;
    expect(read(withData(`{"x":${nested(at)}}`)).ok).toBe(true);
    expect(read(withData(`{"x":${nested(at + 1)}}`))).toEqual({ ok: false, reason: `JSON nests objects and arrays deeper than ${EVENT_LIMITS.maxDepth} levels` });
    expect(read(withData(`{"x":${nested(200000)}}`))).toMatchObject({ ok: false, reason: expect.stringContaining('deeper than') });
  });

  it('takes a message of EVENTS_MAX_MESSAGE_BYTES and refuses one byte more, without reading it', () => {
    const body = withData(`{"id":"o-1","pad":"${'x'.repeat(2000)}"}`);
    const size = Buffer.byteLength(body);
    expect(read(body, size).ok).toBe(true);
    expect(read(body, size - 1)).toEqual({ ok: false, reason: `message is ${size} bytes, over the limit of ${size - 1} (EVENTS_MAX_MESSAGE_BYTES)` });
    expect(read(enc(`"${'x'.repeat(EVENT_LIMITS.maxMessageBytes)}"`))).toMatchObject({ ok: false, reason: expect.stringContaining('over the limit of 1048576') });
  });

  it.each([
    ['a NUL in data', withData('{"id":"o-1","note":"a\\u0000b"}')],
    ['a NUL in a key', withData('{"id":"o-1","a\\u0000":1}')],
    ['a lone high surrogate', withData('{"id":"o-1","note":"\\ud800"}')],
    ['a lone low surrogate', withData('{"id":"o-1","note":"x\\udc00y"}')],
    ['a NUL in requestId', `{"id":"${good.id}","type":"orders.create","timestamp":"${good.timestamp}","requestId":"r\\u0000","data":{}}`],
  ])('refuses %s, which Postgres cannot store', (_, body) => {
    expect(read(body)).toEqual({ ok: false, reason: expect.stringContaining('NUL (\\u0000) or an unpaired UTF-16 surrogate') });
  });

  it('takes a surrogate pair and other escapes', () => {
    const r = read(withData('{"id":"o-1","note":"\\ud83d\\ude00 \\u00e9"}'));
    expect(r.ok && r.event.data.note).toBe('😀 é');
  });

  it(`bounds the type, and the entity id derived from data.id, to what the indexes hold`, () => {
    const longType = `orders.${'a'.repeat(EVENT_LIMITS.typeLength - 7)}`;
    expect(() => validateEnvelope({ ...good, type: longType })).not.toThrow();
    expect(() => validateEnvelope({ ...good, type: `${longType}b` })).toThrow(HeraldError);
    const id = 'i'.repeat(EVENT_LIMITS.entityIdLength);
    expect(validateEnvelope({ ...good, data: { id } }).entity.id).toBe(id);
    try {
      validateEnvelope({ ...good, data: { id: `${id}i` } });
      throw new Error('accepted');
    } catch (err) {
      expect((err as HeraldError).details).toEqual([{ field: 'data.id', message: expect.stringContaining('longer than 200 characters') }]);
    }
    // An explicit entity keeps a long data.id out of the index.
    expect(validateEnvelope({ ...good, entity: { type: 'order', id: 'o-1' }, data: { id: `${id}i` } }).entity.id).toBe('o-1');
  });
});

describe('event selectors', () => {
  it('accepts the 14 types, * and <module>.* of a deliverable module', () => {
    for (const s of ['orders.create', 'cart.afterAddItem', '*', 'orders.*', 'inventory.*']) expect(isEventSelector(s)).toBe(true);
    for (const s of ['orders.delete', 'webhooks.create', 'webhooks.*', 'orders', '*.*', '', 3]) expect(isEventSelector(s)).toBe(false);
  });

  it('matches exact types, module wildcards and *', () => {
    expect(selectorsMatch(['orders.create'], 'orders.create')).toBe(true);
    expect(selectorsMatch(['orders.*'], 'orders.statusChange')).toBe(true);
    expect(selectorsMatch(['*'], 'cart.afterAddItem')).toBe(true);
    expect(selectorsMatch(['orders.*'], 'catalog.create')).toBe(false);
  });
});

describe('permissions', () => {
  it('grants exact, resource wildcard and *:*', () => {
    expect(grants(['webhooks:manage'], 'webhooks:manage')).toBe(true);
    expect(grants(['audit:*'], 'audit:read')).toBe(true);
    expect(grants(['*:*'], 'audit:read')).toBe(true);
    expect(grants(['audit:read'], 'webhooks:manage')).toBe(false);
  });
});
