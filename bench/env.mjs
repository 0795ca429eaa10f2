// Shared by the benchmarks: a database, stream and prefixes of the run's own, the built services
// as child processes (as the images run them), and small statistics helpers.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';

/** The run's own names: database, stream and prefixes, and the variables every service gets. */
export function benchNames() {
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbName = `herald_bench_${id}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const vars = {
    NODE_ENV: 'test',
    DATABASE_URL: url.toString(),
    NATS_URL,
    EVENTS_STREAM: `HERALD_BENCH_${id}`,
    EVENTS_SUBJECT_PREFIX: `herald_bench.${id}.events`,
    RPC_SUBJECT_PREFIX: `herald_bench.${id}.rpc`,
    EVENTS_MAX_AGE_SECONDS: '3600',
    LOG_LEVEL: 'warn',
  };
  return { id, dbName, vars };
}

export async function createBenchEnv() {
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
  const { id, dbName, vars: base } = benchNames();
  const vars = { ...base, RATE_LIMIT_MAX: '100000000' };
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  await admin.end();
  execFileSync(process.execPath, [join(root, 'dist/tools/migrate.js')], { env: { PATH: process.env.PATH, ...vars }, stdio: 'ignore' });
  const db = new pg.Client({ connectionString: vars.DATABASE_URL });
  await db.connect();
  const children = [];
  return {
    id,
    vars,
    db,
    async start(app, extra = {}, nodeArgs = []) {
      const port = await freePort();
      const child = spawn(process.execPath, [...nodeArgs, join(root, `dist/apps/${app}/main.js`)], {
        env: { PATH: process.env.PATH, ...vars, ...extra, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; ; i++) {
        try {
          if ((await fetch(`${base}/readyz`)).ok) break;
        } catch {
          // not listening yet
        }
        if (i > 400) throw new Error(`${app} did not become ready`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const stop = () => {
        child.kill('SIGTERM');
        return new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      };
      return { base, stop };
    },
    async cleanup() {
      for (const c of children) {
        c.kill('SIGTERM');
        await new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)));
      }
      await db.end();
      const nc = await connect({ servers: NATS_URL });
      await (await jetstreamManager(nc)).streams.delete(vars.EVENTS_STREAM).catch(() => undefined);
      await nc.close();
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`drop database if exists ${dbName} with (force)`);
      await a.end();
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
