import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { sha256Hex } from '../apps/api-gateway/src/auth/api-keys';
import { ServiceProcess, TestEnv, createTestEnv, migrate, startInProcess, waitFor } from './stack';

/** `npm run keys -- …`, run as the built tool (what `npm run keys` runs). */
function keys(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(__dirname, '../dist/tools/keys.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function gatewayRun(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(__dirname, '../dist/apps/api-gateway/main.js')], {
    env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('API keys (SPEC 2: configured, hashed, reloaded, created by a command)', () => {
  let env: TestEnv;
  let dispatcher: INestApplication;
  let gateway: ServiceProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'herald-keys-'));
  const file = join(dir, 'keys.json');

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    dispatcher = await startInProcess('dispatcher', env);
  });

  afterAll(async () => {
    if (gateway?.child?.exitCode === null) await gateway.kill('SIGTERM');
    await dispatcher?.close();
    await env?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('`keys create` prints a hrld_ key and a valid entry whose hash is the SHA-256 of the key', () => {
    const r = keys('create', '--id', 'ci-bot', '--org', 'acme', '--permissions', 'webhooks:manage,audit:read');
    expect(r.status).toBe(0);
    const key = /key:\s+(\S+)/.exec(r.stdout)![1];
    const entry = JSON.parse(/entry:\s+(\{.*\})/.exec(r.stdout)![1]);
    expect(key).toMatch(/^hrld_[A-Za-z0-9_-]{43}$/);
    expect(entry).toEqual({ id: 'ci-bot', organizationId: 'acme', sha256: sha256Hex(key), permissions: ['webhooks:manage', 'audit:read'] });
    expect(keys('hash', key).stdout.trim()).toBe(sha256Hex(key));
    expect(JSON.parse(keys('hash', '--id', 'old', '--org', 'acme', '--permissions', 'audit:read', key).stdout)).toEqual({ id: 'old', organizationId: 'acme', sha256: sha256Hex(key), permissions: ['audit:read'] });
  });

  it('`keys create` refuses a bad permission or a missing id with a message', () => {
    const bad = keys('create', '--id', 'x', '--permissions', 'everything');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('each permission must be');
    const noId = keys('create', '--permissions', 'audit:read');
    expect(noId.status).toBe(1);
    expect(noId.stderr).toContain('--id');
  });

  it('a key from API_KEYS_FILE works; the file is re-read on change; a bad file keeps the old keys and logs an error', async () => {
    const created = keys('create', '--id', 'second', '--org', 'default', '--permissions', 'webhooks:manage');
    const secondKey = /key:\s+(\S+)/.exec(created.stdout)![1];
    const secondEntry = JSON.parse(/entry:\s+(\{.*\})/.exec(created.stdout)![1]);
    const firstKey = 'hrld_first_key_for_the_file';
    const first = { id: 'first', organizationId: 'default', sha256: sha256Hex(firstKey), permissions: ['webhooks:manage'] };
    writeFileSync(file, JSON.stringify([first]));
    gateway = await ServiceProcess.start('api-gateway', env, { API_KEYS_FILE: file, LOG_LEVEL: 'info' });
    const status = async (key: string) => (await fetch(`${gateway!.url}/api/webhooks`, { headers: { 'x-api-key': key } })).status;
    expect(await status(firstKey)).toBe(200);
    expect(await status(secondKey)).toBe(401);

    writeFileSync(file, JSON.stringify([first, secondEntry]));
    await waitFor(async () => (await status(secondKey)) === 200, 10_000, 'the new key to be accepted');

    writeFileSync(file, '[{"id": "broken"');
    await waitFor(() => gateway!.output.includes('Key file reload failed'), 10_000, 'the reload error to be logged');
    expect(await status(firstKey)).toBe(200);
    expect(await status(secondKey)).toBe(200);

    writeFileSync(file, JSON.stringify([secondEntry]));
    await waitFor(async () => (await status(firstKey)) === 401, 10_000, 'the removed key to be refused');
    expect(await status(secondKey)).toBe(200);
    // The keys themselves never reach the logs.
    expect(gateway.output).not.toContain(firstKey);
    expect(gateway.output).not.toContain(secondKey);
  });

  it('dev-staff-key is refused in production, and a production start with it enabled fails clearly', async () => {
    const prodEntry = { id: 'p', organizationId: 'acme', sha256: sha256Hex('hrld_prod'), permissions: ['*:*'] };
    const enabled = gatewayRun({ NODE_ENV: 'production', DEV_STAFF_KEY_ENABLED: 'true', API_KEYS: JSON.stringify([prodEntry]) });
    expect(enabled.status).toBe(1);
    expect(enabled.stderr).toContain('api-gateway: Invalid configuration');
    expect(enabled.stderr).toContain('DEV_STAFF_KEY_ENABLED: dev-staff-key must not be enabled when NODE_ENV=production');

    const smuggled = gatewayRun({ NODE_ENV: 'production', API_KEYS: JSON.stringify([{ ...prodEntry, sha256: sha256Hex('dev-staff-key') }]) });
    expect(smuggled.status).toBe(1);
    expect(smuggled.stderr).toContain('API_KEYS: a key equal to dev-staff-key must not be configured when NODE_ENV=production');

    const prod = await ServiceProcess.start('api-gateway', env, { NODE_ENV: 'production', API_KEYS: JSON.stringify([prodEntry]) });
    try {
      expect((await fetch(`${prod.url}/api/webhooks`, { headers: { 'x-api-key': 'dev-staff-key' } })).status).toBe(401);
      expect((await fetch(`${prod.url}/api/webhooks`, { headers: { 'x-api-key': 'hrld_prod' } })).status).toBe(200);
    } finally {
      await prod.kill('SIGTERM');
    }
  });

  it('a key file reloaded in production with a key equal to dev-staff-key is refused like at start-up; the previous keys stay', async () => {
    const prodFile = join(dir, 'prod-keys.json');
    const prodEntry = { id: 'p', organizationId: 'acme', sha256: sha256Hex('hrld_prod_file'), permissions: ['*:*'] };
    writeFileSync(prodFile, JSON.stringify([prodEntry]));
    const prod = await ServiceProcess.start('api-gateway', env, { NODE_ENV: 'production', API_KEYS_FILE: prodFile, LOG_LEVEL: 'info' });
    try {
      const status = async (key: string) => (await fetch(`${prod.url}/api/webhooks`, { headers: { 'x-api-key': key } })).status;
      expect(await status('hrld_prod_file')).toBe(200);
      writeFileSync(prodFile, JSON.stringify([prodEntry, { ...prodEntry, id: 'smuggled', sha256: sha256Hex('dev-staff-key') }]));
      await waitFor(() => prod.output.includes('a key equal to dev-staff-key must not be configured when NODE_ENV=production'), 10_000, 'the reload to be refused');
      expect(prod.output).toContain('Key file reload failed');
      expect(await status('dev-staff-key')).toBe(401);
      expect(await status('hrld_prod_file')).toBe(200);
    } finally {
      await prod.kill('SIGTERM');
    }
  });

  it.each([
    [{ RATE_LIMIT_MAX: '-1' }, 'RATE_LIMIT_MAX'],
    [{ RATE_LIMIT_MAX: 'lots' }, 'RATE_LIMIT_MAX'],
    [{ RATE_LIMIT_WINDOW_MS: '10' }, 'RATE_LIMIT_WINDOW_MS'],
    [{ RATE_LIMIT_WINDOW_MS: '1.5' }, 'RATE_LIMIT_WINDOW_MS'],
    [{ RPC_TIMEOUT_MS: '999999' }, 'RPC_TIMEOUT_MS'],
    [{ DEV_STAFF_KEY_ENABLED: 'maybe' }, 'DEV_STAFF_KEY_ENABLED'],
  ])('the gateway refuses %j naming %s', (vars, variable) => {
    const r = gatewayRun(vars);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('api-gateway: Invalid configuration');
    expect(r.stderr).toMatch(new RegExp(`\\b${variable}: `));
  });

  it('a bad key document stops the start and names the variable and the entry', () => {
    const r = gatewayRun({ API_KEYS: JSON.stringify([{ id: 'a', organizationId: 'acme', sha256: 'abc', permissions: ['audit:read'] }]) });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/API_KEYS: .*sha256 must be 64 lowercase hex characters/);
    const both = gatewayRun({ API_KEYS: '[]', API_KEYS_FILE: file });
    expect(both.stderr).toContain('API_KEYS: set API_KEYS_FILE or API_KEYS, not both');
    const missing = gatewayRun({ API_KEYS_FILE: join(dir, 'missing.json') });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('API_KEYS_FILE');
  });
});
