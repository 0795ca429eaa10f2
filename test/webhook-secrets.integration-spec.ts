import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { NatsConnection } from '@nats-io/nats-core';
import { Client } from 'pg';
import { EventPublisher } from '@herald/bus';
import { Receiver, signatureValid } from './receiver';
import { ServiceProcess, TestEnv, createTestEnv, migrate, publisherFor, startInProcess, urlOf, waitFor } from './stack';

/** A secret as releases up to 0.1.0 stored it: `v1:`, AES-256-GCM without associated data. */
function sealV1(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
}

const KEY = { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' };
const OLD_KEY = randomBytes(32).toString('base64');
const NEW_KEY = randomBytes(32).toString('base64');

describe('rotating WEBHOOK_SECRET_KEY: WEBHOOK_SECRET_KEYS and npm run webhook-secrets', () => {
  let env: TestEnv;
  let receiver: Receiver;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    receiver = await Receiver.start();
    ({ publisher, nc } = await publisherFor(env));
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await nc?.close();
    await receiver?.close();
    await env?.cleanup();
  });

  async function startDispatcherAndGateway(vars: Record<string, string>): Promise<string> {
    const dispatcher = await startInProcess('dispatcher', env, vars);
    const gateway = await startInProcess('api-gateway', env);
    apps.push(gateway, dispatcher);
    return urlOf(gateway);
  }

  async function stopAll(): Promise<void> {
    while (apps.length) await apps.pop()!.close();
  }

  /** The tool as an operator runs it (the migrate image holds it too), with the dispatcher's settings. */
  function tool(command: string, vars: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [join(__dirname, '../dist/tools/webhook-secrets.js'), command], {
      env: { PATH: process.env.PATH ?? '', ...env.vars, DATA_DIR: join('/tmp', `herald-${env.id}`), ...vars },
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('secrets stored under the old key are re-encrypted and keep signing deliveries after the old key is gone', async () => {
    // Two webhooks whose secrets are stored under the old key.
    const url = await startDispatcherAndGateway({ WEBHOOK_SECRET_KEY: OLD_KEY });
    const secrets = ['whsec_rotation_first_0001', 'whsec_rotation_second_002'];
    for (const [i, secret] of secrets.entries()) {
      const res = await fetch(`${url}/api/webhooks`, { method: 'POST', headers: KEY, body: JSON.stringify({ url: receiver.url(`/hook-${i}`), events: ['orders.create'], secret }) });
      expect(res.status).toBe(201);
    }
    await stopAll();

    // The new key alone cannot read them: check says so and exits 1.
    const before = tool('check', { WEBHOOK_SECRET_KEY: NEW_KEY });
    expect(before.status).toBe(1);
    expect(before.stdout).toContain('0 under the current key, 0 under an earlier key, 2 unreadable');
    expect(before.stderr).toContain('WEBHOOK_SECRET_KEYS');

    // Step 1: the new key, with the old one kept for decryption. Step 2: re-encrypt.
    const check = tool('check', { WEBHOOK_SECRET_KEY: NEW_KEY, WEBHOOK_SECRET_KEYS: OLD_KEY });
    expect(check.stdout).toContain('0 under the current key, 2 under an earlier key, 0 unreadable');
    expect(check.status).toBe(0);
    const rotate = tool('rotate', { WEBHOOK_SECRET_KEY: NEW_KEY, WEBHOOK_SECRET_KEYS: OLD_KEY });
    expect(rotate.stdout).toContain('2 under an earlier key (2 re-encrypted)');
    expect(rotate.status).toBe(0);

    // Step 3: the old key is dropped; everything opens with the new key alone…
    const after = tool('check', { WEBHOOK_SECRET_KEY: NEW_KEY });
    expect(after.stdout).toContain('2 under the current key, 0 under an earlier key, 0 unreadable');
    expect(after.status).toBe(0);

    // …and deliveries are still signed with each webhook's own secret.
    await startDispatcherAndGateway({ WEBHOOK_SECRET_KEY: NEW_KEY });
    await publisher.publish({ type: 'orders.create', data: { id: 'order-rotated' } });
    await waitFor(() => receiver.at('/hook-0').length >= 1 && receiver.at('/hook-1').length >= 1, 20_000, 'both deliveries');
    expect(signatureValid(receiver.at('/hook-0')[0], secrets[0])).toBe(true);
    expect(signatureValid(receiver.at('/hook-1')[0], secrets[1])).toBe(true);
  });

  it('a secret no configured key opens: attempts recorded as failed and nothing sent, the delivery ends failed, the log and a counter say so; a retry after the key is back succeeds', async () => {
    await stopAll();
    const LOST_KEY = randomBytes(32).toString('base64');
    const url = await startDispatcherAndGateway({ WEBHOOK_SECRET_KEY: LOST_KEY });
    const created = await fetch(`${url}/api/webhooks`, { method: 'POST', headers: KEY, body: JSON.stringify({ url: receiver.url('/unreadable'), events: ['cart.afterAddItem'], secret: 'whsec_unreadable_secret_01' }) });
    expect(created.status).toBe(201);
    const webhookId = ((await created.json()) as { data: { id: string } }).data.id;
    await stopAll();

    // A dispatcher without that key: one retry, 50 ms later.
    const vars = { WEBHOOK_SECRET_KEY: NEW_KEY, WEBHOOK_MAX_RETRIES: '1', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_SENDER_POLL_MS: '50', LOG_LEVEL: 'warn' };
    const dispatcher = await ServiceProcess.start('dispatcher', env, vars);
    const gateway = await startInProcess('api-gateway', env);
    apps.push(gateway);
    try {
      const { event } = await publisher.publish({ type: 'cart.afterAddItem', data: { id: 'cart-1' } });
      type Detail = { id: string; status: string; attempts: Array<{ statusCode: number | null; error: string | null }> };
      const list = await waitFor(async () => {
        const r = await fetch(`${urlOf(gateway)}/api/webhooks/${webhookId}/deliveries`, { headers: KEY });
        const rows = ((await r.json()) as { data: Array<{ id: string; eventId: string; status: string }> }).data;
        return rows.find((d) => d.eventId === event.id && d.status === 'failed');
      }, 20_000, 'the delivery to fail');
      const detail = ((await (await fetch(`${urlOf(gateway)}/api/deliveries/${list.id}`, { headers: KEY })).json()) as { data: Detail }).data;
      expect(detail.attempts).toHaveLength(2);
      for (const a of detail.attempts) expect(a).toEqual(expect.objectContaining({ statusCode: null, error: expect.stringContaining('cannot be decrypted with the configured keys') }));
      expect(receiver.at('/unreadable')).toHaveLength(0);
      const line = dispatcher.output.split('\n').find((l) => l.includes('cannot be decrypted') && l.includes(webhookId));
      expect(line).toBeDefined();
      const metrics = await (await fetch(`${dispatcher.url}/metrics`)).text();
      expect(Number(/^herald_webhook_secret_undecryptable_total\{[^}]*\} (\S+)$/m.exec(metrics)?.[1])).toBe(2);
      expect(await dispatcher.kill('SIGTERM')).toBe(0);

      // The key comes back (as an earlier key): a manual retry signs and sends it.
      const fixed = await ServiceProcess.start('dispatcher', env, { ...vars, WEBHOOK_SECRET_KEYS: LOST_KEY });
      try {
        expect((await fetch(`${urlOf(gateway)}/api/deliveries/${list.id}/retry`, { method: 'POST', headers: KEY })).status).toBe(202);
        const [got] = await waitFor(() => receiver.at('/unreadable').length > 0 && receiver.at('/unreadable'), 20_000, 'the retried delivery');
        expect(signatureValid(got, 'whsec_unreadable_secret_01')).toBe(true);
      } finally {
        await fixed.kill('SIGTERM');
      }
    } finally {
      await dispatcher.kill('SIGTERM');
    }
  });

  it('secrets are bound to their webhook: v1 rows still sign until rotate re-encrypts them, and a ciphertext copied to another webhook opens nowhere', async () => {
    await stopAll();
    const url = await startDispatcherAndGateway({ WEBHOOK_SECRET_KEY: NEW_KEY });
    const create = async (path: string, secret: string) => {
      const res = await fetch(`${url}/api/webhooks`, { method: 'POST', headers: KEY, body: JSON.stringify({ url: receiver.url(path), events: ['inventory.afterAdjust'], secret }) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { data: { id: string } }).data.id;
    };
    const legacy = await create('/bound-legacy', 'whsec_bound_legacy_000001');
    const victim = await create('/bound-victim', 'whsec_bound_victim_000001');
    const copier = await create('/bound-copier', 'whsec_bound_copier_000001');
    await stopAll();

    const db = new Client({ connectionString: env.databaseUrl });
    await db.connect();
    try {
      // As 0.1.0 stored it (no associated data), and the victim's ciphertext pasted into another row.
      await db.query('update dispatch.webhooks set secret_ciphertext = $2 where id = $1', [legacy, sealV1(Buffer.from(NEW_KEY, 'base64'), 'whsec_bound_legacy_000001')]);
      await db.query('update dispatch.webhooks set secret_ciphertext = (select secret_ciphertext from dispatch.webhooks where id = $2) where id = $1', [copier, victim]);
    } finally {
      await db.end();
    }

    const check = tool('check', { WEBHOOK_SECRET_KEY: NEW_KEY });
    // (The unreadable count also holds the webhook of the test above, whose key is gone.)
    expect(check.stdout).toContain(' unreadable; 1 in the v1 format, not bound to their webhook (rotate re-encrypts them)');
    expect(check.stderr).toContain(copier);
    expect(check.status).toBe(1);
    const rotate = tool('rotate', { WEBHOOK_SECRET_KEY: NEW_KEY });
    expect(rotate.stdout).toContain('0 under an earlier key (1 re-encrypted)');
    const after = tool('check', { WEBHOOK_SECRET_KEY: NEW_KEY });
    expect(after.stdout).toContain('; 0 in the v1 format');

    const gateway = await startDispatcherAndGateway({ WEBHOOK_SECRET_KEY: NEW_KEY, WEBHOOK_RETRY_BASE_MS: '60000' });
    const { event } = await publisher.publish({ type: 'inventory.afterAdjust', data: { id: 'stock-bound' } });
    await waitFor(() => receiver.at('/bound-legacy').length >= 1 && receiver.at('/bound-victim').length >= 1, 20_000, 'the deliveries');
    expect(signatureValid(receiver.at('/bound-legacy')[0], 'whsec_bound_legacy_000001')).toBe(true);
    expect(signatureValid(receiver.at('/bound-victim')[0], 'whsec_bound_victim_000001')).toBe(true);
    // The copied secret signs nothing: its attempt is recorded as failed, unsent.
    const attempt = await waitFor(async () => {
      const rows = ((await (await fetch(`${gateway}/api/webhooks/${copier}/deliveries`, { headers: KEY })).json()) as { data: Array<{ id: string; eventId: string }> }).data;
      const d = rows.find((r) => r.eventId === event.id);
      if (!d) return undefined;
      const detail = ((await (await fetch(`${gateway}/api/deliveries/${d.id}`, { headers: KEY })).json()) as { data: { attempts: Array<{ error: string | null }> } }).data;
      return detail.attempts[0];
    }, 20_000, 'the copied secret’s attempt');
    expect(attempt.error).toContain('cannot be decrypted with the configured keys');
    expect(receiver.at('/bound-copier')).toHaveLength(0);
  });

  it('a WEBHOOK_SECRET_KEYS that is not a list of 32-byte base64 keys stops the dispatcher naming it', () => {
    const r = spawnSync(process.execPath, [join(__dirname, '../dist/apps/dispatcher/main.js')], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1', WEBHOOK_SECRET_KEYS: `${OLD_KEY},short` },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dispatcher: Invalid configuration[\s\S]*\bWEBHOOK_SECRET_KEYS: must be 32-byte base64 keys/);
  });
});
