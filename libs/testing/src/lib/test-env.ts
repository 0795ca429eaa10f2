import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';

export const TEST_PG_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * A database, a stream and subject prefixes of this test's own, on the machine's real Postgres and
 * NATS, so tests never touch a running development stack or each other.
 */
export interface TestEnv {
  id: string;
  databaseUrl: string;
  vars: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function createTestEnv(): Promise<TestEnv> {
  const id = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbName = `herald_test_${id}`;
  const admin = new Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  await admin.end();
  const base = new URL(TEST_PG_ADMIN_URL);
  base.pathname = `/${dbName}`;
  const databaseUrl = base.toString();
  const vars: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    NATS_URL: TEST_NATS_URL,
    EVENTS_STREAM: `HERALD_TEST_${id}`,
    EVENTS_SUBJECT_PREFIX: `herald_test.${id}.events`,
    RPC_SUBJECT_PREFIX: `herald_test.${id}.rpc`,
    EVENTS_MAX_AGE_SECONDS: '3600',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    WEBHOOKS_ALLOW_PRIVATE_URLS: 'true',
    PORT: '0',
  };
  return {
    id,
    databaseUrl,
    vars,
    async cleanup() {
      const nc = await connect({ servers: TEST_NATS_URL });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(vars.EVENTS_STREAM).catch(() => undefined);
      await nc.close();
      const c = new Client({ connectionString: TEST_PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${dbName} with (force)`);
      await c.end();
    },
  };
}

/** Polls until `fn` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
