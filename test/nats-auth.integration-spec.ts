import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { jetstream } from '@nats-io/jetstream';
import { AuthorizationError, NatsConnection, PermissionViolationError } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { EventPublisher } from '@herald/bus';
import { NatsServerProcess } from './nats-server';
import { Receiver, signatureValid } from './receiver';
import { TestEnv, createTestEnv, migrate, startInProcess, urlOf, waitFor } from './stack';

/**
 * The shipped docker/nats/nats.conf, as is, on a server of this test's own: each service runs under
 * its user, and every user is held to what its role needs. The file names Herald's default stream
 * and subjects, so on this private server the services use those (not a test's own prefixes).
 */
const CONF = join(__dirname, '../docker/nats/nats.conf');
const PASSWORDS = {
  'api-gateway': 'gw-pw-4d1f',
  dispatcher: 'disp-pw-9a2c',
  'audit-writer': 'aw-pw-7e3b',
  publisher: 'pub-pw-1c5d',
};
const SERVER_ENV = {
  NATS_API_GATEWAY_PASSWORD: PASSWORDS['api-gateway'],
  NATS_DISPATCHER_PASSWORD: PASSWORDS.dispatcher,
  NATS_AUDIT_WRITER_PASSWORD: PASSWORDS['audit-writer'],
  NATS_PUBLISHER_PASSWORD: PASSWORDS.publisher,
};
const DEFAULT_NAMES = { EVENTS_STREAM: 'COMMERCE_EVENTS', EVENTS_SUBJECT_PREFIX: 'commerce.events', RPC_SUBJECT_PREFIX: 'herald.rpc' };
const KEY = { 'x-api-key': 'dev-staff-key' };
type Role = keyof typeof PASSWORDS;

/** Runs a built app until it exits (Nest ends the process when a module fails to start, so not in this one). */
function runBuilt(app: 'api-gateway', vars: Record<string, string>): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(__dirname, `../dist/apps/${app}/main.js`)], { env: { PATH: process.env.PATH ?? '', ...vars }, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** Every permission violation the server reported to a connection. */
function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error' && s.error instanceof PermissionViolationError) seen.push(s.error.message);
  })();
  return seen;
}

describe('NATS authentication and authorization with docker/nats/nats.conf', () => {
  let nats: NatsServerProcess;
  let env: TestEnv;
  let apps: INestApplication[] = [];
  let gatewayUrl: string;
  let receiver: Receiver;
  const clients: NatsConnection[] = [];

  const as = async (role: Role) => {
    const nc = await connect({ servers: nats.url, user: role, pass: PASSWORDS[role], inboxPrefix: `_INBOX.${role}` });
    clients.push(nc);
    return nc;
  };
  const serviceVars = (role: Role) => ({ ...DEFAULT_NAMES, NATS_URL: nats.url, NATS_USER: role, NATS_PASSWORD: PASSWORDS[role] });

  beforeAll(async () => {
    nats = await NatsServerProcess.start(CONF, SERVER_ENV);
    env = await createTestEnv();
    await migrate(env);
    receiver = await Receiver.start();
    apps = [await startInProcess('dispatcher', env, serviceVars('dispatcher')), await startInProcess('audit-writer', env, serviceVars('audit-writer'))];
    const gateway = await startInProcess('api-gateway', env, serviceVars('api-gateway'));
    apps.push(gateway);
    gatewayUrl = urlOf(gateway);
  });

  afterAll(async () => {
    for (const nc of clients) await nc.close().catch(() => undefined);
    for (const app of apps.reverse()) await app.close();
    await receiver?.close();
    await env?.cleanup();
    await nats?.stop();
  });

  it('refuses a client without a user, with a wrong password, or with a service password for another user', async () => {
    await expect(connect({ servers: nats.url })).rejects.toBeInstanceOf(AuthorizationError);
    await expect(connect({ servers: nats.url, user: 'publisher', pass: 'wrong' })).rejects.toBeInstanceOf(AuthorizationError);
    await expect(connect({ servers: nats.url, user: 'publisher', pass: PASSWORDS.dispatcher })).rejects.toBeInstanceOf(AuthorizationError);
  });

  it('a service start with a wrong password fails instead of running unauthenticated', () => {
    const r = runBuilt('api-gateway', { ...env.vars, ...serviceVars('api-gateway'), NATS_PASSWORD: 'wrong' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('Authorization Violation');
  });

  it.each([
    [{ NATS_USER: 'api-gateway' }, 'NATS_PASSWORD: is required with NATS_USER'],
    [{ NATS_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'NATS_TLS_CA_FILE: must be a readable file'],
  ])('a service refuses to start with %j, naming the variable', (vars, message) => {
    const r = runBuilt('api-gateway', { NATS_URL: nats.url, ...vars });
    expect(r.status).toBe(1);
    expect(r.output).toContain('api-gateway: Invalid configuration');
    expect(r.output).toContain(message);
  });

  it('the publisher user publishes events that are audited and delivered, signed, to a real receiver', async () => {
    const secret = 'whsec_nats_auth_receiver_secret';
    const created = await fetch(`${gatewayUrl}/api/webhooks`, {
      method: 'POST',
      headers: { ...KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url('/hooks'), events: ['orders.create'], secret }),
    });
    expect(created.status).toBe(201);

    const publisher = new EventPublisher(jetstream(await as('publisher')), DEFAULT_NAMES.EVENTS_SUBJECT_PREFIX);
    const { event } = await publisher.publish({ type: 'orders.create', data: { id: 'o-nats-auth-1', orderNumber: 'ORD-NA-1', grandTotal: 4999 } });

    const delivered = await waitFor(() => receiver.at('/hooks').find((r) => r.rawBody.includes(event.id)), 20_000, 'the delivery');
    expect(signatureValid(delivered, secret)).toBe(true);
    const audited = await waitFor(async () => {
      const body = (await (await fetch(`${gatewayUrl}/api/audit?event=orders.create`, { headers: KEY })).json()) as { data: { eventId: string }[] };
      return body.data.find((e) => e.eventId === event.id);
    }, 20_000, 'the audit entry');
    expect(audited).toMatchObject({ eventId: event.id });
    // The gateway's own change (webhooks.create, published by the dispatcher's outbox) is audited too.
    const own = (await (await fetch(`${gatewayUrl}/api/audit?event=webhooks.create`, { headers: KEY })).json()) as { data: unknown[] };
    expect(own.data.length).toBeGreaterThan(0);
    // Everything the services did for that (stream, consumers, pulls, acks, outbox, RPC and replies)
    // was within their permissions: the server logs any violation, and there was none yet.
    expect(nats.output).toContain('Server is ready');
    expect(nats.output.split('\n').filter((l) => / Violation - /.test(l))).toEqual([]);
  });

  it('the tools connect as their users too: publish-event as publisher, audit-prune as the audit-writer', async () => {
    const tool = (name: string, args: string[], vars: Record<string, string>) =>
      spawnSync(process.execPath, [join(__dirname, `../dist/tools/${name}.js`), ...args], { env: { PATH: process.env.PATH ?? '', ...env.vars, ...vars }, encoding: 'utf8', timeout: 30_000 });
    const published = tool('publish-event', ['orders.create', '{"id":"o-from-the-tool"}'], serviceVars('publisher'));
    expect([published.status, published.stderr]).toEqual([0, '']);
    const { id } = JSON.parse(published.stdout) as { id: string };
    const pruned = tool('audit-prune', ['--before', '2001-01-01'], serviceVars('audit-writer'));
    expect([pruned.status, pruned.stderr]).toEqual([0, '']);
    for (const [event, match] of [['orders.create', (e: { eventId: string }) => e.eventId === id], ['audit.prune', () => true]] as const) {
      await waitFor(async () => {
        const body = (await (await fetch(`${gatewayUrl}/api/audit?event=${event}`, { headers: KEY })).json()) as { data: { eventId: string }[] };
        return body.data.some(match);
      }, 20_000, `the ${event} event to be audited`);
    }
    // Without its user, the tool is refused.
    const anonymous = tool('publish-event', ['orders.create', '{"id":"o-anon"}'], { ...DEFAULT_NAMES, NATS_URL: nats.url });
    expect(anonymous.status).toBe(1);
    expect(anonymous.stderr).toContain('Authorization Violation');
  });

  it('the publisher user can neither send nor receive RPC, read other inboxes, nor publish Herald’s own events', async () => {
    const nc = await as('publisher');
    const seen = violations(nc);
    await expect(nc.request('herald.rpc.dispatcher.webhooks.list', JSON.stringify({ context: { organizationId: 'default', actorId: 'x', requestId: 'r' }, payload: {} }), { timeout: 2000 })).rejects.toMatchObject({
      message: expect.stringContaining('Permissions Violation for Publish to "herald.rpc.dispatcher.webhooks.list"'),
    });
    const rpcSub = nc.subscribe('herald.rpc.>');
    const queueSub = nc.subscribe('herald.rpc.dispatcher.>', { queue: 'herald.dispatcher' });
    const inboxSub = nc.subscribe('_INBOX.>');
    nc.publish('commerce.events.webhooks.create', '{}');
    nc.publish('commerce.events.audit.prune', '{}');
    nc.publish('$JS.API.STREAM.DELETE.COMMERCE_EVENTS');
    await nc.flush();
    await waitFor(() => seen.length >= 6, 5000, `six violations, got ${JSON.stringify(seen)}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        'Permissions Violation for Publish to "herald.rpc.dispatcher.webhooks.list"',
        'Permissions Violation for Subscription to "herald.rpc.>"',
        'Permissions Violation for Subscription to "herald.rpc.dispatcher.>" using queue "herald.dispatcher"',
        'Permissions Violation for Subscription to "_INBOX.>"',
        'Permissions Violation for Publish to "commerce.events.webhooks.create"',
        'Permissions Violation for Publish to "commerce.events.audit.prune"',
        'Permissions Violation for Publish to "$JS.API.STREAM.DELETE.COMMERCE_EVENTS"',
      ]),
    );
    for (const s of [rpcSub, queueSub, inboxSub]) expect(s.isClosed()).toBe(true);
    // The server logs each one too (what the check of the services' own traffic above relies on).
    await waitFor(() => nats.output.includes('Publish Violation - User "publisher", Subject "herald.rpc.dispatcher.webhooks.list"'), 5000, 'the server to log the violation');
  });

  it('the gateway works end to end under its user, and can only ask, not answer or publish events', async () => {
    const list = await fetch(`${gatewayUrl}/api/webhooks`, { headers: KEY });
    expect(list.status).toBe(200);
    const nc = await as('api-gateway');
    const seen = violations(nc);
    nc.subscribe('herald.rpc.dispatcher.>', { queue: 'herald.dispatcher' });
    nc.subscribe('_INBOX.dispatcher.>');
    nc.publish('commerce.events.orders.create', '{}');
    await nc.flush();
    await waitFor(() => seen.length >= 3, 5000, `three violations, got ${JSON.stringify(seen)}`);
    expect(seen.sort()).toEqual([
      'Permissions Violation for Publish to "commerce.events.orders.create"',
      'Permissions Violation for Subscription to "_INBOX.dispatcher.>"',
      'Permissions Violation for Subscription to "herald.rpc.dispatcher.>" using queue "herald.dispatcher"',
    ]);
  });

  it.each([
    ['dispatcher', 'herald.rpc.audit-writer.audit.query', 'commerce.events.orders.create', 'herald.rpc.audit-writer.>'],
    ['audit-writer', 'herald.rpc.dispatcher.webhooks.create', 'commerce.events.webhooks.create', 'herald.rpc.dispatcher.>'],
  ] as const)('the %s user cannot call another service’s RPC, answer it, or forge events', async (role, otherRpc, forged, otherQueue) => {
    const nc = await as(role);
    const seen = violations(nc);
    const body = JSON.stringify({ context: { organizationId: 'victim', actorId: 'x', requestId: 'r' }, payload: {} });
    await expect(nc.request(otherRpc, body, { timeout: 2000 })).rejects.toMatchObject({ message: expect.stringContaining(`Permissions Violation for Publish to "${otherRpc}"`) });
    nc.publish(forged, '{}');
    nc.subscribe(otherQueue, { queue: `herald.${otherQueue.split('.')[2]}` });
    nc.publish('$JS.API.STREAM.PURGE.COMMERCE_EVENTS');
    await nc.flush();
    await waitFor(() => seen.length >= 4, 5000, `four violations, got ${JSON.stringify(seen)}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        `Permissions Violation for Publish to "${forged}"`,
        `Permissions Violation for Subscription to "${otherQueue}" using queue "herald.${otherQueue.split('.')[2]}"`,
        'Permissions Violation for Publish to "$JS.API.STREAM.PURGE.COMMERCE_EVENTS"',
      ]),
    );
  });
});

/**
 * TLS on top of the same users: the shipped file included by one that adds a server certificate and
 * asks clients for theirs; certificates made here with openssl.
 */
describe('NATS over TLS (NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE)', () => {
  // Made in beforeAll, so a run that skips these tests leaves nothing behind.
  let dir: string;
  const path = (f: string) => join(dir, f);
  let nats: NatsServerProcess;
  let env: TestEnv;
  let gateway: INestApplication | undefined;

  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  function issue(name: string, subject: string, ext: string): void {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-subj', subject, '-out', `${name}.csr`);
    writeFileSync(path(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-nats-tls-'));
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-subj', '/CN=Herald test CA', '-days', '1', '-out', 'ca.pem');
    issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    issue('client', '/CN=api-gateway', 'extendedKeyUsage=clientAuth\n');
    for (const f of ['nats.conf', 'herald-users.conf']) copyFileSync(join(__dirname, '../docker/nats', f), path(f));
    writeFileSync(path('tls.conf'), `include ./nats.conf\ntls {\n  cert_file: "${path('server.pem')}"\n  key_file: "${path('server-key.pem')}"\n  ca_file: "${path('ca.pem')}"\n  verify: true\n}\n`);
    nats = await NatsServerProcess.start(path('tls.conf'), SERVER_ENV, 'tls');
    env = await createTestEnv();
  });

  afterAll(async () => {
    await gateway?.close();
    await env?.cleanup();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the gateway connects with its user, the CA and a client certificate; without the certificate the server refuses', async () => {
    const vars = { ...DEFAULT_NAMES, NATS_URL: nats.url, NATS_USER: 'api-gateway', NATS_PASSWORD: PASSWORDS['api-gateway'], NATS_TLS_CA_FILE: path('ca.pem') };
    // Without a client certificate, or without trusting the CA, the handshake fails.
    const attempt = (tls: object) => connect({ servers: nats.url, user: 'api-gateway', pass: PASSWORDS['api-gateway'], tls, timeout: 3000, reconnect: false });
    await expect(attempt({ caFile: path('ca.pem') })).rejects.toThrow();
    await expect(attempt({ certFile: path('client.pem'), keyFile: path('client-key.pem') })).rejects.toThrow();
    gateway = await startInProcess('api-gateway', env, { ...vars, NATS_TLS_CERT_FILE: path('client.pem'), NATS_TLS_KEY_FILE: path('client-key.pem') });
    const ready = await fetch(`${urlOf(gateway)}/readyz`);
    expect(ready.status).toBe(200);
  });
});

describe('NATS with a token (NATS_TOKEN)', () => {
  let dir: string;
  let nats: NatsServerProcess;
  let env: TestEnv;
  let gateway: INestApplication | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-nats-token-'));
    writeFileSync(join(dir, 'token.conf'), 'jetstream: enabled\nauthorization { token: $HERALD_TEST_NATS_TOKEN }\n');
    nats = await NatsServerProcess.start(join(dir, 'token.conf'), { HERALD_TEST_NATS_TOKEN: 'tok-3f9a1c' });
    env = await createTestEnv();
  });

  afterAll(async () => {
    await gateway?.close();
    await env?.cleanup();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a service connects with the token; without it, or with another, the server refuses', async () => {
    gateway = await startInProcess('api-gateway', env, { ...DEFAULT_NAMES, NATS_URL: nats.url, NATS_TOKEN: 'tok-3f9a1c' });
    expect((await fetch(`${urlOf(gateway)}/readyz`)).status).toBe(200);
    await expect(connect({ servers: nats.url })).rejects.toBeInstanceOf(AuthorizationError);
    await expect(connect({ servers: nats.url, token: 'another' })).rejects.toBeInstanceOf(AuthorizationError);
  });
});
