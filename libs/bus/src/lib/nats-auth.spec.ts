import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsAuthConnectionOptions, natsAuthFrom } from './nats-auth';

describe('NATS connection options for authentication and TLS', () => {
  it('adds nothing when nothing is configured (the anonymous local server of npm start)', () => {
    expect(natsAuthConnectionOptions()).toEqual({});
    expect(natsAuthConnectionOptions(natsAuthFrom({ natsInboxPrefix: '_INBOX' }))).toEqual({});
  });

  it('passes a user and password, and the user’s own inbox prefix', () => {
    const auth = natsAuthFrom({ NATS_USER: 'dispatcher', NATS_PASSWORD: 'pw', natsInboxPrefix: '_INBOX.dispatcher' });
    expect(natsAuthConnectionOptions(auth)).toEqual({ user: 'dispatcher', pass: 'pw', inboxPrefix: '_INBOX.dispatcher' });
  });

  it('passes a token', () => {
    expect(natsAuthConnectionOptions({ token: 's3cret' })).toEqual({ token: 's3cret' });
  });

  it('passes only the TLS files that are set', () => {
    expect(natsAuthConnectionOptions(natsAuthFrom({ NATS_TLS_CA_FILE: '/ca.pem' }))).toEqual({ tls: { caFile: '/ca.pem' } });
    expect(natsAuthConnectionOptions(natsAuthFrom({ NATS_TLS_CA_FILE: '/ca.pem', NATS_TLS_CERT_FILE: '/c.pem', NATS_TLS_KEY_FILE: '/k.pem' }))).toEqual({
      tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
    });
  });

  describe('a credentials file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-creds-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // A user JWT and seed in the layout `nsc` writes (the JWT need not verify: only the client side is under test).
    const creds = (jwt: string, seed: string) => `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    const SEED = 'SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4';

    it('becomes a creds authenticator that signs the server nonce and re-reads the file at each connect', () => {
      const file = join(dir, 'user.creds');
      writeFileSync(file, creds('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.first.sig', SEED));
      const options = natsAuthConnectionOptions({ credsFile: file });
      expect(Object.keys(options)).toEqual(['authenticator']);
      const nonce = 'n0nce';
      const first = (options.authenticator as (nonce?: string) => { jwt?: string; sig?: string; nkey?: string })(nonce);
      expect(first.jwt).toBe('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.first.sig');
      expect(first.nkey).toMatch(/^U[A-Z2-7]{55}$/);
      expect(first.sig).toEqual(expect.any(String));
      writeFileSync(file, creds('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.renewed.sig', SEED));
      expect((options.authenticator as (nonce?: string) => { jwt?: string })(nonce).jwt).toBe('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.renewed.sig');
    });
  });
});
