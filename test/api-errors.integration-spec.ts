import { Client } from 'pg';
import { connect } from '@nats-io/transport-node';
import { Msg, NatsConnection } from '@nats-io/nats-core';
import { INestApplication } from '@nestjs/common';
import { Stack, startInProcess, startStack, urlOf } from './stack';
import { API_KEYS_JSON, KEYS, errorOf, json } from './api-keys-fixture';
import { RawResponse, rawRequest } from './raw-http';

/** SPEC 2's error table, one row at a time, over real HTTP against the gateway and the dispatcher. */
describe('the error contract (SPEC 2 table)', () => {
  let stack: Stack;
  const extra: INestApplication[] = [];
  const conns: NatsConnection[] = [];
  const natsConn = async () => {
    const c = await connect({ servers: stack.env.vars.NATS_URL });
    conns.push(c);
    return c;
  };

  beforeAll(async () => {
    stack = await startStack({ 'api-gateway': { API_KEYS: API_KEYS_JSON } });
  });

  afterAll(async () => {
    for (const app of extra) await app.close();
    for (const c of conns) await c.close();
    await stack?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${stack.url}${path}`, { headers });

  describe('401 UNAUTHORIZED', () => {
    it.each([
      ['no key', {}],
      ['an unknown x-api-key', { 'x-api-key': 'hrld_nobody' }],
      ['an unknown bearer token', { authorization: 'Bearer hrld_nobody' }],
      ['an empty bearer token', { authorization: 'Bearer ' }],
    ])('%s', async (_what, headers) => {
      await errorOf(await get('/api/webhooks', headers), 401, 'UNAUTHORIZED');
    });

    it('accepts a configured key as x-api-key and as a bearer token, and dev-staff-key outside production', async () => {
      expect((await get('/api/webhooks', { 'x-api-key': KEYS.acme })).status).toBe(200);
      expect((await get('/api/webhooks', { authorization: `Bearer ${KEYS.acme}` })).status).toBe(200);
      expect((await get('/api/webhooks', { authorization: `bearer ${KEYS.acme}` })).status).toBe(200);
      expect((await get('/api/webhooks', { authorization: `Basic ${KEYS.acme}` })).status).toBe(401);
      expect((await get('/api/webhooks', { 'x-api-key': 'dev-staff-key' })).status).toBe(200);
    });
  });

  it('403 FORBIDDEN names the permission; resource:* grants it', async () => {
    const e = await errorOf(await get('/api/webhooks', { 'x-api-key': KEYS.auditor }), 403, 'FORBIDDEN');
    expect(e.message).toBe("Permission 'webhooks:manage' is required.");
    expect((await get('/api/webhooks', { 'x-api-key': KEYS.globex })).status).toBe(200);
    const audit = await errorOf(await get('/api/audit', { 'x-api-key': KEYS.globex }), 403, 'FORBIDDEN');
    expect(audit.message).toBe("Permission 'audit:read' is required.");
  });

  it('422 VALIDATION_FAILED lists every field error in details', async () => {
    const e = await errorOf(await fetch(`${stack.url}/api/webhooks`, json(KEYS.acme, { url: 'ftp://x', events: [], color: 'red' })), 422, 'VALIDATION_FAILED');
    const fields = e.details!.map((d) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['url', 'events', 'color']));
    for (const d of e.details!) expect(typeof d.message).toBe('string');
  });

  it('422 for an invalid query parameter', async () => {
    const e = await errorOf(await get('/api/audit?limit=0', { 'x-api-key': KEYS.acme }), 422, 'VALIDATION_FAILED');
    expect(e.details).toEqual([expect.objectContaining({ field: 'limit' })]);
  });

  it.each([
    ['truncated JSON', '{"url": "http://x'],
    ['plain text', 'hello'],
    ['a JSON string', '"just a string"'],
  ])('400 BAD_REQUEST for a body that is %s', async (_what, body) => {
    await errorOf(await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme, 'content-type': 'application/json' }, body }), 400, 'BAD_REQUEST');
  });

  it('reads every body as JSON whatever its content-type, and none', async () => {
    const body = JSON.stringify({ url: 'http://127.0.0.1:9/h', events: ['orders.create'] });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', undefined]) {
      const headers: Record<string, string> = { 'x-api-key': KEYS.acme, ...(type ? { 'content-type': type } : {}) };
      // A Uint8Array body makes fetch send no content-type of its own.
      const res = await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers, body: new TextEncoder().encode(body) });
      expect({ type, status: res.status }).toEqual({ type, status: 201 });
    }
    await errorOf(await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme, 'content-type': 'text/plain' }, body: 'url=x' }), 400, 'BAD_REQUEST');
  });

  it('404 NOT_FOUND for an unknown route, also without a key, and for an unknown id', async () => {
    await errorOf(await get('/api/nothing-here'), 404, 'NOT_FOUND');
    await errorOf(await get('/api/nothing-here', { 'x-api-key': KEYS.acme }), 404, 'NOT_FOUND');
    await errorOf(await get('/api/webhooks/wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', { 'x-api-key': KEYS.acme }), 404, 'NOT_FOUND');
    await errorOf(await get('/api/webhooks/not-an-id', { 'x-api-key': KEYS.acme }), 404, 'NOT_FOUND');
  });

  it('413 PAYLOAD_TOO_LARGE for a body over 1 MiB; 1 MiB minus a little is read', async () => {
    const big = JSON.stringify({ url: 'http://127.0.0.1:9/h', events: ['orders.create'], metadata: { pad: 'x'.repeat(1024 * 1024) } });
    const e = await errorOf(await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme, 'content-type': 'application/json' }, body: big }), 413, 'PAYLOAD_TOO_LARGE');
    expect(e.message).toContain('1 MiB');
    const fits = JSON.stringify({ url: 'http://127.0.0.1:9/h', events: ['orders.create'], metadata: { pad: 'x'.repeat(1000 * 1000) } });
    expect((await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme, 'content-type': 'application/json' }, body: fits })).status).toBe(201);
  });

  describe('before Nest: malformed URLs, bytes that are not HTTP, bodies no route reads', () => {
    const MiB = 1024 * 1024;
    const head = (method: string, path: string, headers: Record<string, string | number> = {}) =>
      `${method} ${path} HTTP/1.1\r\nhost: herald\r\n${Object.entries({ 'x-api-key': KEYS.acme, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    /** SPEC 2's envelope in a raw response, with the request id every response carries. */
    const envelopeOf = (res: RawResponse, status: number, code: string) => {
      expect({ status: res.status, code: (JSON.parse(res.body || '{}') as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
      expect(res.headers['x-request-id']).toMatch(/^\S+$/);
    };

    it.each(['/api/webhooks/%E0%A4%A', '/api/%', '/api/audit/%ZZ/x', '/api/webhooks/%C0%AF'])('400 BAD_REQUEST for malformed percent-encoding in %s, with the request id', async (path) => {
      const res = await get(path, { 'x-api-key': KEYS.acme, 'x-request-id': 'bad-url-1' });
      const e = await errorOf(res, 400, 'BAD_REQUEST');
      expect(e.message).toContain('URL');
      expect(res.headers.get('x-request-id')).toBe('bad-url-1');
    });

    it('a parameter longer than any id is a 404; an audit entity id of 200 characters is served', async () => {
      await errorOf(await get(`/api/webhooks/${'x'.repeat(201)}`, { 'x-api-key': KEYS.acme }), 404, 'NOT_FOUND');
      const res = await get(`/api/audit/order/${'é'.repeat(200)}`, { 'x-api-key': KEYS.acme });
      expect(res.status).toBe(200);
    });

    it.each([
      ['nested 33 levels deep', `{"url":"http://127.0.0.1:9/h","events":["*"],"metadata":${'{"a":'.repeat(32)}1${'}'.repeat(32)}}`, 'body'],
      ['nested 100,000 levels deep', `[${'['.repeat(100_000)}${']'.repeat(100_000)}]`, 'body'],
      ['holding U+0000', '{"url":"http://127.0.0.1:9/h","events":["*"],"metadata":{"note":"a\\u0000b"}}', 'metadata.note'],
      ['holding a lone surrogate in a key', '{"url":"http://127.0.0.1:9/h","events":["*"],"metadata":{"\\ud800":1}}', 'metadata.\ufffd'],
    ])('422 VALIDATION_FAILED for a body %s, which no service could store (was a 500)', async (_what, body, field) => {
      const e = await errorOf(await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme }, body }), 422, 'VALIDATION_FAILED');
      expect(e.details![0].field.startsWith(field)).toBe(true);
    });

    it('takes a body nested 32 levels deep', async () => {
      const body = `{"url":"http://127.0.0.1:9/h","events":["*"],"metadata":${'{"a":'.repeat(31)}1${'}'.repeat(31)}}`;
      expect((await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme }, body })).status).toBe(201);
    });

    it('U+0000 in a path parameter is a 404, in a query value a 422 (were 500s); a surrogate in the path is a malformed URL', async () => {
      await errorOf(await fetch(`${stack.url}/api/deliveries/x%00/retry`, { method: 'POST', headers: { 'x-api-key': KEYS.acme } }), 404, 'NOT_FOUND');
      await errorOf(await get('/api/audit/order/a%00b', { 'x-api-key': KEYS.acme }), 404, 'NOT_FOUND');
      await errorOf(await get('/api/audit/order/a%ED%A0%80', { 'x-api-key': KEYS.acme }), 400, 'BAD_REQUEST');
      const e = await errorOf(await get('/api/audit?entityId=a%00b', { 'x-api-key': KEYS.acme }), 422, 'VALIDATION_FAILED');
      expect(e.details).toEqual([{ field: 'entityId', message: expect.stringContaining('U+0000') }]);
    });

    it.each([';;;', 'text', 'a/b/c', ''])('400 BAD_REQUEST for the content-type %j, which is no media type', async (type) => {
      const res = await rawRequest(stack.url, head('POST', '/api/webhooks', { 'content-type': type, 'content-length': 2 }), Buffer.from('{}'));
      envelopeOf(res, 400, 'BAD_REQUEST');
    });

    it.each([
      ['an unknown method', 'FOO /api/webhooks HTTP/1.1\r\nhost: h\r\n\r\n'],
      ['a broken request line', 'GET /api/webhooks HTTP/9\r\n\r\n'],
      ['a header without a colon', 'GET /api/webhooks HTTP/1.1\r\nhost h\r\n\r\n'],
      ['both content-length and transfer-encoding', 'POST /api/webhooks HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n{}'],
      ['headers over the limit', `GET /api/webhooks HTTP/1.1\r\nhost: h\r\nx-big: ${'a'.repeat(20 * 1024)}\r\n\r\n`],
    ])('400 BAD_REQUEST in the envelope for %s, and the connection closes cleanly', async (_what, bytes) => {
      const res = await rawRequest(stack.url, bytes);
      envelopeOf(res, 400, 'BAD_REQUEST');
      expect(res.headers.connection).toBe('close');
    });

    it('CONNECT, which Node drops without a listener, is a 404 in the envelope with a clean close', async () => {
      const res = await rawRequest(stack.url, 'CONNECT herald:443 HTTP/1.1\r\nhost: herald:443\r\n\r\n');
      envelopeOf(res, 404, 'NOT_FOUND');
      expect(res.headers.connection).toBe('close');
    });

    it('an Expect other than 100-continue is ignored (Node answered a bare 417)', async () => {
      const res = await rawRequest(stack.url, head('GET', '/api/webhooks', { expect: 'something-else' }));
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ data: expect.any(Array) });
    });

    it('an unknown method followed by 5 MiB still gets its whole answer (no reset)', async () => {
      const res = await rawRequest(stack.url, head('FOO', '/api/webhooks', { 'content-length': 5 * MiB }), 5 * MiB);
      envelopeOf(res, 400, 'BAD_REQUEST');
    });

    // A body over 1 MiB sent to any route with any method: Fastify reads bodies of these methods.
    const readsBody = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
    const paths = ['/api/webhooks', '/api/webhooks/wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', '/api/nothing-here', '/healthz', '/api/%'];
    it.each(readsBody.flatMap((m) => paths.map((p) => [m, p])))('%s %s with 5 MiB: the whole 413 (400 for the bad URL) arrives, not a reset', async (method, path) => {
      const res = await rawRequest(stack.url, head(method, path, { 'content-type': 'application/json', 'content-length': 5 * MiB }), 5 * MiB);
      if (path === '/api/%') envelopeOf(res, 400, 'BAD_REQUEST');
      else envelopeOf(res, 413, 'PAYLOAD_TOO_LARGE');
    });

    it.each(readsBody)('%s with a chunked body over 1 MiB (no content-length): 413, whole', async (method) => {
      const chunk = Buffer.alloc(3 * MiB, 'x');
      const body = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n0\r\n\r\n')]);
      envelopeOf(await rawRequest(stack.url, head(method, '/api/webhooks/wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', { 'transfer-encoding': 'chunked' }), body), 413, 'PAYLOAD_TOO_LARGE');
    });

    it.each([
      ['GET', '/api/webhooks', 200],
      ['GET', '/api/nothing-here', 404],
      ['HEAD', '/api/webhooks', 200],
      ['HEAD', '/api/nothing-here', 404],
    ])('%s %s ignores a 5 MiB body (Fastify reads none for GET and HEAD) and answers %i, also with connection: close', async (method, path, status) => {
      for (const connection of ['keep-alive', 'close']) {
        const res = await rawRequest(stack.url, head(method, path, { connection, 'content-length': 5 * MiB }), 5 * MiB);
        expect({ connection, status: res.status }).toEqual({ connection, status });
        if (method === 'GET' && status !== 200) envelopeOf(res, status, 'NOT_FOUND');
      }
    });

    it('fetch (undici) gets the 413 of a PATCH, PUT or OPTIONS over 1 MiB, not ECONNRESET', async () => {
      for (const method of ['PATCH', 'PUT', 'OPTIONS']) {
        const res = await fetch(`${stack.url}/api/webhooks/wh_01HQZX3V8Y5T7K9M2N4P6R8S0A`, { method, headers: { 'x-api-key': KEYS.acme }, body: 'x'.repeat(4 * MiB) });
        await errorOf(res, 413, 'PAYLOAD_TOO_LARGE');
      }
    });
  });

  it('429 RATE_LIMITED per key with retry-after and x-ratelimit-* headers', async () => {
    const gw = await startInProcess('api-gateway', stack.env, { API_KEYS: API_KEYS_JSON, RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    extra.push(gw);
    const url = `${urlOf(gw)}/api/webhooks`;
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url, { headers: { 'x-api-key': KEYS.acme } });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('3');
      seen.push(res.headers.get('x-ratelimit-remaining')!);
      expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    }
    expect(seen).toEqual(['2', '1', '0']);
    const limited = await fetch(url, { headers: { 'x-api-key': KEYS.acme } });
    await errorOf(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another key has its own window.
    expect((await fetch(url, { headers: { 'x-api-key': KEYS.globex } })).status).toBe(200);
  });

  describe('503 SERVICE_UNAVAILABLE when a backing service does not answer in time', () => {
    it('no dispatcher at all: answered at once, not after a hang', async () => {
      const gw = await startInProcess('api-gateway', stack.env, { API_KEYS: API_KEYS_JSON, RPC_SUBJECT_PREFIX: `${stack.env.vars.RPC_SUBJECT_PREFIX}.nobody`, RPC_TIMEOUT_MS: '300' });
      extra.push(gw);
      const started = Date.now();
      const e = await errorOf(await fetch(`${urlOf(gw)}/api/webhooks`, { headers: { 'x-api-key': KEYS.acme } }), 503, 'SERVICE_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(3000);
      expect(e.message).toContain('dispatcher');
    });

    it('a dispatcher that takes the request and never answers: 503 after RPC_TIMEOUT_MS', async () => {
      const prefix = `${stack.env.vars.RPC_SUBJECT_PREFIX}.silent`;
      const silent = await natsConn();
      silent.subscribe(`${prefix}.dispatcher.>`, { callback: () => undefined });
      await silent.flush();
      const gw = await startInProcess('api-gateway', stack.env, { API_KEYS: API_KEYS_JSON, RPC_SUBJECT_PREFIX: prefix, RPC_TIMEOUT_MS: '400' });
      extra.push(gw);
      const started = Date.now();
      await errorOf(await fetch(`${urlOf(gw)}/api/webhooks`, { headers: { 'x-api-key': KEYS.acme } }), 503, 'SERVICE_UNAVAILABLE');
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(350);
      expect(took).toBeLessThan(3000);
    });
  });

  it('verify waits AUDIT_VERIFY_TIMEOUT_MS, not RPC_TIMEOUT_MS, for an audit-writer that takes its time', async () => {
    const prefix = `${stack.env.vars.RPC_SUBJECT_PREFIX}.slowaudit`;
    const slow = await natsConn();
    // Stands in for an audit-writer whose chain check takes 800 ms: it answers as the real one does.
    slow.subscribe(`${prefix}.audit-writer.>`, {
      callback: (_err: Error | null, msg: Msg) => setTimeout(() => msg.respond(JSON.stringify({ data: { valid: true, checked: 3, firstInvalid: null } })), 800),
    });
    await slow.flush();
    const gw = await startInProcess('api-gateway', stack.env, { API_KEYS: API_KEYS_JSON, RPC_SUBJECT_PREFIX: prefix, RPC_TIMEOUT_MS: '300', AUDIT_VERIFY_TIMEOUT_MS: '5000' });
    extra.push(gw);
    const verify = await fetch(`${urlOf(gw)}/api/audit/verify`, { headers: { 'x-api-key': KEYS.acme } });
    expect(verify.status).toBe(200);
    expect(await verify.json()).toEqual({ data: { valid: true, checked: 3, firstInvalid: null } });
    // A page is held to RPC_TIMEOUT_MS.
    await errorOf(await fetch(`${urlOf(gw)}/api/audit`, { headers: { 'x-api-key': KEYS.acme } }), 503, 'SERVICE_UNAVAILABLE');
  });

  it('every response carries x-request-id, taken from the request when given', async () => {
    const given = await get('/api/webhooks', { 'x-api-key': KEYS.acme, 'x-request-id': 'req-abc-123' });
    expect(given.headers.get('x-request-id')).toBe('req-abc-123');
    for (const res of [
      await get('/api/webhooks'),
      await get('/api/nope'),
      await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: { 'x-api-key': KEYS.acme }, body: '{' }),
      await get('/healthz'),
    ]) expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f-]{36}$/);
    expect((await get('/api/nope', { 'x-request-id': 'mine-1' })).headers.get('x-request-id')).toBe('mine-1');
    // A given id that is too long or not printable ASCII is replaced, so logs and events stay clean.
    for (const bad of ['a'.repeat(201), 'has space', 'tab\there']) {
      expect((await get('/api/webhooks', { 'x-api-key': KEYS.acme, 'x-request-id': bad })).headers.get('x-request-id')).toMatch(/^req_[0-9a-f-]{36}$/);
    }
  });

  it('a success body is the service reply as it came, as application/json', async () => {
    const res = await get('/api/webhooks', { 'x-api-key': KEYS.globex });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.text()).toBe('{"data":[]}');
  });

  it('no ETag and no x-powered-by on API responses', async () => {
    const res = await get('/api/webhooks', { 'x-api-key': KEYS.acme });
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  // Last: it breaks the dispatcher's table for a moment.
  it('500 INTERNAL_ERROR with no internals when the dispatcher fails unexpectedly', async () => {
    const pg = new Client({ connectionString: stack.env.databaseUrl });
    await pg.connect();
    await pg.query('alter table dispatch.webhooks rename to webhooks_away');
    try {
      const e = await errorOf(await get('/api/webhooks', { 'x-api-key': KEYS.acme }), 500, 'INTERNAL_ERROR');
      expect(e).toEqual({ code: 'INTERNAL_ERROR', message: 'An internal error occurred.' });
    } finally {
      await pg.query('alter table dispatch.webhooks_away rename to webhooks');
      await pg.end();
    }
    expect((await get('/api/webhooks', { 'x-api-key': KEYS.acme })).status).toBe(200);
  });
});
