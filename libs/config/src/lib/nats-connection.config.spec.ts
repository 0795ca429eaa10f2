import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseConfig } from './base.config';
import { ConfigError, configVariables, loadConfig } from './load-config';

describe('NATS authentication and TLS settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-nats-config-'));
  const file = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, 'x');
    return path;
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(BaseConfig, env);
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems;
    }
  };

  it('are all optional: unset connects anonymously with the default inbox', () => {
    const c = loadConfig(BaseConfig, {});
    expect([c.NATS_USER, c.NATS_PASSWORD, c.NATS_TOKEN, c.NATS_CREDS_FILE, c.NATS_TLS_CA_FILE]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(c.natsInboxPrefix).toBe('_INBOX');
    expect(configVariables(BaseConfig)).toEqual(
      expect.arrayContaining(['NATS_USER', 'NATS_PASSWORD', 'NATS_TOKEN', 'NATS_CREDS_FILE', 'NATS_TLS_CA_FILE', 'NATS_TLS_CERT_FILE', 'NATS_TLS_KEY_FILE', 'NATS_INBOX_PREFIX']),
    );
  });

  it('a user gets inboxes of its own unless NATS_INBOX_PREFIX says otherwise', () => {
    expect(loadConfig(BaseConfig, { NATS_USER: 'dispatcher', NATS_PASSWORD: 'pw' }).natsInboxPrefix).toBe('_INBOX.dispatcher');
    expect(loadConfig(BaseConfig, { NATS_USER: 'dispatcher', NATS_PASSWORD: 'pw', NATS_INBOX_PREFIX: '_I.d' }).natsInboxPrefix).toBe('_I.d');
    expect(problems({ NATS_INBOX_PREFIX: '_INBOX.>' })).toEqual([{ variable: 'NATS_INBOX_PREFIX', message: expect.stringContaining('without wildcards') }]);
  });

  it('accepts one way to authenticate, with TLS files that exist', () => {
    expect(problems({ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_TLS_CA_FILE: file('ca.pem'), NATS_TLS_CERT_FILE: file('c.pem'), NATS_TLS_KEY_FILE: file('k.pem') })).toEqual([]);
    expect(problems({ NATS_TOKEN: 't' })).toEqual([]);
    expect(problems({ NATS_CREDS_FILE: file('u.creds') })).toEqual([]);
  });

  it.each([
    [{ NATS_USER: 'u' }, 'NATS_PASSWORD', 'is required with NATS_USER'],
    [{ NATS_PASSWORD: 'p' }, 'NATS_USER', 'is required with NATS_PASSWORD'],
    [{ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_TOKEN: 't' }, 'NATS_TOKEN', 'set one way to authenticate'],
    [{ NATS_TOKEN: 't', NATS_CREDS_FILE: '<creds>' }, 'NATS_CREDS_FILE', 'not NATS_TOKEN and NATS_CREDS_FILE'],
    [{ NATS_TLS_CERT_FILE: '<cert>' }, 'NATS_TLS_KEY_FILE', 'is required with NATS_TLS_CERT_FILE'],
    [{ NATS_TLS_KEY_FILE: '<key>' }, 'NATS_TLS_CERT_FILE', 'is required with NATS_TLS_KEY_FILE'],
  ])('refuses %j, naming %s', (env, variable, message) => {
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.startsWith('<') ? file(`${k}.pem`) : v]));
    expect(problems(resolved)).toEqual([{ variable, message: expect.stringContaining(message) }]);
  });

  it.each(['NATS_CREDS_FILE', 'NATS_TLS_CA_FILE', 'NATS_TLS_CERT_FILE', 'NATS_TLS_KEY_FILE'])('refuses a %s that does not exist or is a directory, naming the variable', (variable) => {
    const pair: Record<string, string> = variable === 'NATS_TLS_CERT_FILE' ? { NATS_TLS_KEY_FILE: file('k.pem') } : variable === 'NATS_TLS_KEY_FILE' ? { NATS_TLS_CERT_FILE: file('c.pem') } : {};
    expect(problems({ ...pair, [variable]: join(dir, 'missing.pem') })).toEqual([{ variable, message: expect.stringContaining('must be a readable file') }]);
    expect(problems({ ...pair, [variable]: dir })).toEqual([{ variable, message: expect.stringContaining(dir) }]);
  });
});
