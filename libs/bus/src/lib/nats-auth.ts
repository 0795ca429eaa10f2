import { readFileSync } from 'node:fs';
import { ConnectionOptions, credsAuthenticator } from '@nats-io/nats-core';

/** How a process proves who it is to NATS, and how it checks the server (SPEC 6: NATS auth). */
export interface NatsAuthOptions {
  user?: string;
  password?: string;
  token?: string;
  /** A JWT `.creds` file (decentralized auth with an operator and accounts). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Where replies arrive; a prefix per user lets the server keep each user to its own inboxes. */
  inboxPrefix?: string;
}

/** Reads the NATS_* connection variables of any service config (BaseConfig). */
export function natsAuthFrom(config: {
  NATS_USER?: string;
  NATS_PASSWORD?: string;
  NATS_TOKEN?: string;
  NATS_CREDS_FILE?: string;
  NATS_TLS_CA_FILE?: string;
  NATS_TLS_CERT_FILE?: string;
  NATS_TLS_KEY_FILE?: string;
  natsInboxPrefix?: string;
}): NatsAuthOptions {
  const tls = { caFile: config.NATS_TLS_CA_FILE, certFile: config.NATS_TLS_CERT_FILE, keyFile: config.NATS_TLS_KEY_FILE };
  return {
    user: config.NATS_USER,
    password: config.NATS_PASSWORD,
    token: config.NATS_TOKEN,
    credsFile: config.NATS_CREDS_FILE,
    tls: Object.values(tls).some(Boolean) ? tls : undefined,
    inboxPrefix: config.natsInboxPrefix,
  };
}

/**
 * The part of `connect()`'s options that authenticates and encrypts; nothing when nothing is set,
 * which is the anonymous local connection of `npm start`.
 */
export function natsAuthConnectionOptions(auth: NatsAuthOptions = {}): Pick<ConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls' | 'inboxPrefix'> {
  const options: Pick<ConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls' | 'inboxPrefix'> = {};
  if (auth.user) {
    options.user = auth.user;
    options.pass = auth.password;
  }
  if (auth.token) options.token = auth.token;
  if (auth.credsFile) {
    const file = auth.credsFile;
    // Read at every (re)connect, not once: a rotated credentials file (a renewed Secret) is used
    // without a restart, and a process never holds a JWT longer than the file does.
    options.authenticator = credsAuthenticator(() => readFileSync(file));
  }
  if (auth.tls) {
    // The client reads the files itself when it connects; only the ones given are passed, so a CA
    // alone means server-verified TLS without a client certificate.
    options.tls = Object.fromEntries(Object.entries(auth.tls).filter(([, v]) => Boolean(v)));
  }
  if (auth.inboxPrefix && auth.inboxPrefix !== '_INBOX') options.inboxPrefix = auth.inboxPrefix;
  return options;
}
