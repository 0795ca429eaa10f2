import { deriveEntity, parseEventMessage, validateEnvelope } from './envelope';
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
