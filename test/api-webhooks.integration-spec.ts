import { createDecipheriv, randomBytes } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { NatsConnection, Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';
import { DELIVERABLE_EVENT_TYPES } from '@herald/contracts';
import { ServiceProcess, TestEnv, createTestEnv, migrate, startInProcess, urlOf, waitFor } from './stack';
import { API_KEYS_JSON, KEYS } from './api-keys-fixture';

interface Reply {
  status: number;
  body: { data?: never; error?: { code: string; message: string; details?: { field: string; message: string }[] } } & Record<string, never>;
  headers: Headers;
}

type Webhook = { id: string; url: string; events: string[]; secret?: string; isActive: boolean; metadata: Record<string, unknown>; createdAt: string; updatedAt: string };

const PUBLIC_URL = 'https://93.184.215.14/hooks/commerce';
const SECRET_KEY = randomBytes(32);

/** SPEC 2 "Webhooks" over real HTTP: the built gateway and dispatcher as processes (their logs are read), Postgres and NATS. */
describe('webhooks API (SPEC 2)', () => {
  let env: TestEnv;
  let gateway: ServiceProcess;
  let dispatcher: ServiceProcess;
  let auditWriter: INestApplication;
  const inProcess: INestApplication[] = [];
  let nc: NatsConnection;
  let sub: Subscription;
  let pg: Client;
  const published: { subject: string; requestIdHeader?: string; text: string }[] = [];
  const secretsSeen: string[] = [];

  async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}, base = gateway.url): Promise<Reply> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const reply = { status: res.status, body: (await res.json()) as Reply['body'], headers: res.headers };
    const secret = (reply.body.data as { secret?: unknown } | undefined)?.secret;
    if (typeof secret === 'string') secretsSeen.push(secret);
    return reply;
  }
  const create = (body: unknown, key: string = KEYS.acme, headers: Record<string, string> = {}) => call('POST', '/api/webhooks', key, body, headers);
  const data = <T = Webhook>(r: Reply) => r.body.data as unknown as T;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    nc = await connect({ servers: env.vars.NATS_URL });
    sub = nc.subscribe(`${env.vars.EVENTS_SUBJECT_PREFIX}.webhooks.>`, {
      callback: (_err, msg) => {
        published.push({ subject: msg.subject, requestIdHeader: msg.headers?.get('x-request-id'), text: msg.string() });
      },
    });
    pg = new Client({ connectionString: env.databaseUrl });
    await pg.connect();
    dispatcher = await ServiceProcess.start('dispatcher', env, { WEBHOOKS_ALLOW_PRIVATE_URLS: 'false', WEBHOOK_SECRET_KEY: SECRET_KEY.toString('base64'), LOG_LEVEL: 'trace' });
    gateway = await ServiceProcess.start('api-gateway', env, { API_KEYS: API_KEYS_JSON, LOG_LEVEL: 'trace' });
    auditWriter = await startInProcess('audit-writer', env);
  });

  afterAll(async () => {
    for (const app of inProcess) await app.close();
    await auditWriter?.close();
    await gateway?.kill('SIGTERM');
    await dispatcher?.kill('SIGTERM');
    sub?.unsubscribe();
    await nc?.close();
    await pg?.end();
    await env?.cleanup();
  });

  describe('POST /api/webhooks', () => {
    it('201 with exactly the SPEC fields; a generated secret is whsec_ + 32 random bytes', async () => {
      const r = await create({ url: PUBLIC_URL, events: ['orders.create'] });
      expect(r.status).toBe(201);
      const w = data(r);
      expect(Object.keys(w).sort()).toEqual(['createdAt', 'events', 'id', 'isActive', 'metadata', 'secret', 'updatedAt', 'url']);
      expect(w).toMatchObject({ url: PUBLIC_URL, events: ['orders.create'], isActive: true, metadata: {} });
      expect(w.id).toMatch(/^wh_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(w.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(w.secret!.slice(6), 'base64url')).toHaveLength(32);
      expect(new Date(w.createdAt).toISOString()).toBe(w.createdAt);
      const other = data(await create({ url: PUBLIC_URL, events: ['orders.create'] }));
      expect(other.secret).not.toBe(w.secret);
    });

    it('keeps a given secret, metadata and isActive; the secret is stored AES-256-GCM encrypted, never in clear', async () => {
      const secret = `my-own-secret-${randomBytes(8).toString('hex')}`;
      const r = await create({ url: PUBLIC_URL, events: ['*'], secret, metadata: { team: 'orders', n: 1 }, isActive: false });
      expect(r.status).toBe(201);
      expect(data(r)).toMatchObject({ secret, metadata: { team: 'orders', n: 1 }, isActive: false, events: ['*'] });
      const { rows } = await pg.query('select * from dispatch.webhooks where id = $1', [data(r).id]);
      const row = rows[0] as Record<string, unknown>;
      expect(JSON.stringify(row)).not.toContain(secret);
      const stored = String(row.secret_ciphertext);
      // v2: bound to the webhook id as associated data (docs/operations.md, webhook secrets).
      expect(stored).toMatch(/^v2:/);
      const buf = Buffer.from(stored.slice(3), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', SECRET_KEY, buf.subarray(0, 12));
      decipher.setAAD(Buffer.from(`herald:webhook-secret:v2:${data(r).id}`, 'utf8'));
      decipher.setAuthTag(buf.subarray(12, 28));
      expect(Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8')).toBe(secret);
    });

    it.each<[string, unknown]>([
      ['missing', undefined],
      ['not a URL', 'not a url'],
      ['relative', '/hooks'],
      ['ftp', 'ftp://93.184.215.14/x'],
      ['javascript', 'javascript:alert(1)'],
      ['with credentials', 'https://user:pw@93.184.215.14/h'],
      ['too long', `https://93.184.215.14/${'a'.repeat(2100)}`],
      ['a number', 42],
      ['a host that does not resolve', 'https://no-such-host.invalid/h'],
      ['localhost (resolves to 127.0.0.1)', 'http://localhost:8080/h'],
      ['IPv4 loopback', 'http://127.0.0.1/h'],
      ['IPv4 loopback, decimal', 'http://2130706433/h'],
      ['private 10/8', 'http://10.0.0.1/h'],
      ['private 172.16/12', 'https://172.16.5.4/h'],
      ['private 192.168/16', 'https://192.168.0.10/h'],
      ['carrier-grade NAT', 'https://100.64.0.1/h'],
      ['cloud metadata', 'http://169.254.169.254/latest/meta-data'],
      ['unspecified IPv4', 'http://0.0.0.0/h'],
      ['multicast IPv4', 'http://224.0.0.1/h'],
      ['IPv6 loopback', 'http://[::1]/h'],
      ['unspecified IPv6', 'http://[::]/h'],
      ['link-local IPv6', 'http://[fe80::1]/h'],
      ['unique-local IPv6', 'http://[fd00::1]/h'],
      ['multicast IPv6', 'http://[ff02::1]/h'],
      ['AWS metadata IPv6', 'http://[fd00:ec2::254]/h'],
      ['IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.1]/h'],
      ['IPv4-mapped IPv6 metadata', 'http://[::ffff:169.254.169.254]/h'],
      ['6to4 of the metadata address', 'http://[2002:a9fe:a9fe::1]/h'],
      ['Teredo', 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h'],
      ['local-use NAT64', 'http://[64:ff9b:1::a9fe:a9fe]/h'],
      ['IPv4-compatible IPv6', 'http://[::a9fe:a9fe]/h'],
      ['IPv4-translated IPv6', 'http://[::ffff:0:a9fe:a9fe]/h'],
    ])('422 on url: %s', async (_what, url) => {
      const r = await create({ url, events: ['orders.create'] });
      expect(r.status).toBe(422);
      expect(r.body.error!.code).toBe('VALIDATION_FAILED');
      expect(r.body.error!.details!.map((d) => d.field)).toContain('url');
    });

    it('a refused address is not echoed back: the 422 names the rule', async () => {
      const r = await create({ url: 'http://localhost:8080/h', events: ['orders.create'] });
      expect(r.status).toBe(422);
      expect(r.body.error!.details).toEqual([{ field: 'url', message: 'url resolves to a private, loopback, link-local or reserved address' }]);
      expect(JSON.stringify(r.body)).not.toContain('127.0.0.1');
    });

    it.each(['https://93.184.215.14/h', 'http://93.184.215.14:8080/h?x=1', 'https://[2606:4700::1111]/h'])('accepts the public URL %s (http allowed outside production)', async (url) => {
      expect((await create({ url, events: ['orders.create'] })).status).toBe(201);
    });

    it.each<[string, unknown]>([
      ['missing', undefined],
      ['empty', []],
      ['a string', 'orders.create'],
      ['an unknown type', ['orders.delete']],
      ['a type that is not deliverable', ['webhooks.create']],
      ['an unknown module wildcard', ['webhooks.*']],
      ['*.*', ['*.*']],
      ['a module without action', ['orders']],
      ['wrong case', ['Orders.create']],
      ['a number', [1]],
      ['one bad among good', ['orders.create', 'nope.nope']],
    ])('422 on events: %s', async (_what, events) => {
      const r = await create({ url: PUBLIC_URL, events });
      expect(r.status).toBe(422);
      expect(r.body.error!.details!.map((d) => d.field)).toContain('events');
    });

    it('accepts the 14 types, * and <module>.*, and drops repeats', async () => {
      expect(data(await create({ url: PUBLIC_URL, events: [...DELIVERABLE_EVENT_TYPES] })).events).toEqual([...DELIVERABLE_EVENT_TYPES]);
      expect(data(await create({ url: PUBLIC_URL, events: ['orders.*', 'cart.*', 'inventory.*'] })).events).toEqual(['orders.*', 'cart.*', 'inventory.*']);
      expect(data(await create({ url: PUBLIC_URL, events: ['orders.create', 'orders.create'] })).events).toEqual(['orders.create']);
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['a short secret', { secret: 'short' }, 'secret'],
      ['a secret that is not a string', { secret: 1234567890123456789 }, 'secret'],
      ['metadata as a list', { metadata: [1, 2] }, 'metadata'],
      ['metadata as a string', { metadata: 'x' }, 'metadata'],
      ['isActive not boolean', { isActive: 'yes' }, 'isActive'],
      ['an unknown field', { colour: 'red' }, 'colour'],
    ])('422 on %s', async (_what, extra, field) => {
      const r = await create({ url: PUBLIC_URL, events: ['orders.create'], ...extra });
      expect(r.status).toBe(422);
      expect(r.body.error!.details!.map((d) => d.field)).toContain(field);
    });
  });

  describe('GET, PATCH, DELETE', () => {
    it('lists newest first without secrets; GET one has no secret either', async () => {
      const a = data(await create({ url: PUBLIC_URL, events: ['catalog.create'] }));
      const b = data(await create({ url: PUBLIC_URL, events: ['catalog.update'] }));
      const list = await call('GET', '/api/webhooks', KEYS.acme);
      expect(list.status).toBe(200);
      const items = data<Webhook[]>(list);
      expect(items.map((w) => w.id).indexOf(b.id)).toBeLessThan(items.map((w) => w.id).indexOf(a.id));
      expect(items.map((w) => w.createdAt)).toEqual([...items.map((w) => w.createdAt)].sort().reverse());
      for (const w of items) expect(Object.keys(w).sort()).toEqual(['createdAt', 'events', 'id', 'isActive', 'metadata', 'updatedAt', 'url']);
      const one = await call('GET', `/api/webhooks/${a.id}`, KEYS.acme);
      expect(one.status).toBe(200);
      expect(data(one)).toEqual({ ...a, secret: undefined });
      expect(JSON.stringify(list.body) + JSON.stringify(one.body)).not.toContain(a.secret!);
    });

    it('PATCH changes url, events, isActive and metadata with the same rules; the secret cannot be changed this way', async () => {
      const w = data(await create({ url: PUBLIC_URL, events: ['orders.create'] }));
      const r = await call('PATCH', `/api/webhooks/${w.id}`, KEYS.acme, { url: 'https://93.184.215.15/new', events: ['cart.*'], isActive: false, metadata: { v: 2 } });
      expect(r.status).toBe(200);
      expect(data(r)).toMatchObject({ id: w.id, url: 'https://93.184.215.15/new', events: ['cart.*'], isActive: false, metadata: { v: 2 }, createdAt: w.createdAt });
      expect(data(r).secret).toBeUndefined();
      expect(Date.parse(data(r).updatedAt)).toBeGreaterThan(Date.parse(w.updatedAt));
      expect(data(await call('GET', `/api/webhooks/${w.id}`, KEYS.acme))).toMatchObject({ url: 'https://93.184.215.15/new', isActive: false });
      const partial = await call('PATCH', `/api/webhooks/${w.id}`, KEYS.acme, { isActive: true });
      expect(data(partial)).toMatchObject({ url: 'https://93.184.215.15/new', events: ['cart.*'], isActive: true, metadata: { v: 2 } });
      for (const [body, field] of [
        [{ url: 'http://10.0.0.1/h' }, 'url'],
        [{ url: 'nope' }, 'url'],
        [{ events: [] }, 'events'],
        [{ events: ['orders.nope'] }, 'events'],
        [{ isActive: 1 }, 'isActive'],
        [{ metadata: null }, 'metadata'],
        [{ url: null }, 'url'],
        [{ isActive: null }, 'isActive'],
        [{ secret: 'whsec_0123456789abcdef0123' }, 'secret'],
      ] as const) {
        const bad = await call('PATCH', `/api/webhooks/${w.id}`, KEYS.acme, body);
        expect({ body, status: bad.status }).toEqual({ body, status: 422 });
        expect(bad.body.error!.details!.map((d) => d.field)).toContain(field);
      }
      expect((await call('PATCH', '/api/webhooks/wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', KEYS.acme, { isActive: false })).status).toBe(404);
    });

    it('DELETE answers {deleted:true}; afterwards the webhook is gone from GET and the list, and a second DELETE is 404', async () => {
      const w = data(await create({ url: PUBLIC_URL, events: ['orders.create'] }));
      const r = await call('DELETE', `/api/webhooks/${w.id}`, KEYS.acme);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ data: { deleted: true } });
      expect((await call('GET', `/api/webhooks/${w.id}`, KEYS.acme)).status).toBe(404);
      expect(data<Webhook[]>(await call('GET', '/api/webhooks', KEYS.acme)).map((x) => x.id)).not.toContain(w.id);
      expect((await call('DELETE', `/api/webhooks/${w.id}`, KEYS.acme)).body.error!.code).toBe('NOT_FOUND');
      expect((await call('PATCH', `/api/webhooks/${w.id}`, KEYS.acme, { isActive: true })).status).toBe(404);
    });
  });

  it("tenancy: another organization's key never sees, changes or deletes a webhook (404)", async () => {
    const w = data(await create({ url: PUBLIC_URL, events: ['orders.create'], metadata: { owner: 'acme' } }));
    const mine = data(await create({ url: PUBLIC_URL, events: ['cart.*'] }, KEYS.globex));
    const globexList = data<Webhook[]>(await call('GET', '/api/webhooks', KEYS.globex)).map((x) => x.id);
    expect(globexList).toEqual([mine.id]);
    expect((await call('GET', `/api/webhooks/${w.id}`, KEYS.globex)).status).toBe(404);
    expect((await call('PATCH', `/api/webhooks/${w.id}`, KEYS.globex, { isActive: false, url: 'https://93.184.215.99/x' })).status).toBe(404);
    expect((await call('DELETE', `/api/webhooks/${w.id}`, KEYS.globex)).status).toBe(404);
    const after = await call('GET', `/api/webhooks/${w.id}`, KEYS.acme);
    expect(data(after)).toMatchObject({ url: PUBLIC_URL, isActive: true, metadata: { owner: 'acme' }, updatedAt: w.updatedAt });
    expect(data<Webhook[]>(await call('GET', '/api/webhooks', KEYS.acme)).map((x) => x.id)).not.toContain(mine.id);
    expect((await call('GET', `/api/webhooks/${mine.id}`, KEYS.acme)).status).toBe(404);
  });

  it('create, update and delete publish webhooks.* with the key as actor and the request id, without the secret; they are audited', async () => {
    const created = await create({ url: PUBLIC_URL, events: ['orders.create'], metadata: { k: 'v' } }, KEYS.acme, { 'x-request-id': 'req-wh-create' });
    const w = data(created);
    await call('PATCH', `/api/webhooks/${w.id}`, KEYS.acme, { isActive: false }, { 'x-request-id': 'req-wh-update' });
    await call('DELETE', `/api/webhooks/${w.id}`, KEYS.acme, undefined, { 'x-request-id': 'req-wh-delete' });
    const mine = await waitFor(() => {
      const m = published.filter((p) => p.text.includes(w.id));
      return m.length >= 3 ? m : undefined;
    }, 15_000, 'three webhooks.* events');
    expect(mine.map((m) => m.subject)).toEqual(['create', 'update', 'delete'].map((a) => `${env.vars.EVENTS_SUBJECT_PREFIX}.webhooks.${a}`));
    for (const [i, action] of ['create', 'update', 'delete'].entries()) {
      const e = JSON.parse(mine[i].text);
      expect(e).toMatchObject({
        type: `webhooks.${action}`,
        organizationId: 'acme',
        actor: { id: 'acme-admin', type: 'api_key' },
        entity: { type: 'webhook', id: w.id },
        requestId: `req-wh-${action}`,
        data: { id: w.id, url: PUBLIC_URL, events: ['orders.create'] },
      });
      expect(e.id).toMatch(/^evt_/);
      expect(mine[i].requestIdHeader).toBe(`req-wh-${action}`);
      expect(e.data).not.toHaveProperty('secret');
      expect(mine[i].text).not.toContain(w.secret!);
    }
    const audit = await waitFor(async () => {
      const r = await call('GET', `/api/audit/webhook/${w.id}`, KEYS.acme);
      const entries = data<Array<Record<string, unknown>>>(r);
      return entries?.length === 3 ? entries : undefined;
    }, 15_000, 'the audit entries');
    expect(audit.map((e) => [e.event, e.actorId, e.actorType, e.requestId])).toEqual([
      ['webhooks.delete', 'acme-admin', 'api_key', 'req-wh-delete'],
      ['webhooks.update', 'acme-admin', 'api_key', 'req-wh-update'],
      ['webhooks.create', 'acme-admin', 'api_key', 'req-wh-create'],
    ]);
    expect(JSON.stringify(audit)).not.toContain(w.secret!);
  });

  it('the dispatcher logs the change with the request id; no secret is in any log line or event', async () => {
    await create({ url: PUBLIC_URL, events: ['orders.create'] }, KEYS.acme, { 'x-request-id': 'req-log-check' });
    const line = await waitFor(
      () => dispatcher.output.split('\n').find((l) => l.includes('"Webhook created"') && l.includes('req-log-check')),
      10_000,
      'the dispatcher log line',
    );
    expect(JSON.parse(line)).toMatchObject({ service: 'dispatcher', requestId: 'req-log-check', organizationId: 'acme', actorId: 'acme-admin' });
    const request = await waitFor(() => gateway.output.split('\n').find((l) => l.includes('"request completed"') && l.includes('req-log-check')), 10_000, 'the gateway request line');
    expect(JSON.parse(request)).toMatchObject({ service: 'api-gateway', requestId: 'req-log-check', req: { method: 'POST', url: '/api/webhooks' } });
    expect(secretsSeen.length).toBeGreaterThan(10);
    const everything = gateway.output + dispatcher.output + published.map((p) => p.text).join('\n');
    for (const s of secretsSeen) expect(everything).not.toContain(s);
    expect(everything).not.toContain(KEYS.acme);
  });

  it('WEBHOOKS_ALLOW_PRIVATE_URLS=true lets loopback and private URLs in (development and tests)', async () => {
    const prefix = `${env.vars.RPC_SUBJECT_PREFIX}.open`;
    inProcess.push(await startInProcess('dispatcher', env, { RPC_SUBJECT_PREFIX: prefix, WEBHOOKS_ALLOW_PRIVATE_URLS: 'true' }));
    const gw = await startInProcess('api-gateway', env, { RPC_SUBJECT_PREFIX: prefix, API_KEYS: API_KEYS_JSON });
    inProcess.push(gw);
    for (const url of ['http://127.0.0.1:9/h', 'http://localhost:3000/h', 'http://10.0.0.1/h', 'http://[::1]:8080/h']) {
      expect({ url, status: (await call('POST', '/api/webhooks', KEYS.acme, { url, events: ['*'] }, {}, urlOf(gw))).status }).toEqual({ url, status: 201 });
    }
  });

  it('NODE_ENV=production: https only', async () => {
    const prefix = `${env.vars.RPC_SUBJECT_PREFIX}.prod`;
    inProcess.push(await startInProcess('dispatcher', env, { RPC_SUBJECT_PREFIX: prefix, NODE_ENV: 'production', WEBHOOKS_ALLOW_PRIVATE_URLS: 'false', WEBHOOK_SECRET_KEY: SECRET_KEY.toString('base64') }));
    const gw = await startInProcess('api-gateway', env, { RPC_SUBJECT_PREFIX: prefix, NODE_ENV: 'production', API_KEYS: API_KEYS_JSON });
    inProcess.push(gw);
    const http = await call('POST', '/api/webhooks', KEYS.acme, { url: 'http://93.184.215.14/h', events: ['*'] }, {}, urlOf(gw));
    expect(http.status).toBe(422);
    expect(http.body.error!.details).toEqual([{ field: 'url', message: 'url must use https in production' }]);
    expect((await call('POST', '/api/webhooks', KEYS.acme, { url: 'https://93.184.215.14/h', events: ['*'] }, {}, urlOf(gw))).status).toBe(201);
  });

  it('GET /api/docs is OpenAPI generated from the DTO classes that validate', async () => {
    const res = await fetch(`${gateway.url}/api/docs`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref: string } }> } }>>; components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> } };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/webhooks', '/api/webhooks/{id}', '/api/audit']));
    expect(Object.keys(doc.paths['/api/webhooks/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    const ref = doc.paths['/api/webhooks'].post.requestBody!.content['application/json'].schema.$ref;
    const schema = doc.components.schemas[ref.split('/').pop()!];
    expect(Object.keys(schema.properties).sort()).toEqual(['events', 'isActive', 'metadata', 'secret', 'url']);
    expect(schema.required?.sort()).toEqual(['events', 'url']);
    // Responses: the data wrapper around the view classes, and the one error shape per table row.
    const created = (doc.paths['/api/webhooks'].post as unknown as { responses: Record<string, { content: Record<string, { schema: { properties: { data: { $ref: string } } } }> }> }).responses;
    expect(created['201'].content['application/json'].schema.properties.data.$ref).toMatch(/CreatedWebhookView$/);
    expect(Object.keys(created).sort()).toEqual(['201', '400', '401', '403', '413', '422', '429', '500', '503']);
    expect(Object.keys(doc.components.schemas.CreatedWebhookView.properties)).toEqual(expect.arrayContaining(['id', 'url', 'events', 'secret', 'isActive', 'metadata', 'createdAt', 'updatedAt']));
    expect(Object.keys(doc.components.schemas.WebhookView.properties)).not.toContain('secret');
    expect(Object.keys(doc.components.schemas.ErrorBodyView.properties).sort()).toEqual(['code', 'details', 'message']);
  });
});
