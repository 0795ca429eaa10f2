import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { AppName } from './stack';

/** Runs a built app with `env` and returns how it ended: a config error exits before any connection. */
function run(app: AppName, env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(__dirname, `../dist/apps/${app}/main.js`)], {
    env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('a bad setting stops the process with a message naming the variable', () => {
  it.each<[AppName, Record<string, string>, string]>([
    ['api-gateway', { PORT: 'eighty' }, 'PORT'],
    ['api-gateway', { NATS_URL: 'localhost' }, 'NATS_URL'],
    ['api-gateway', { RPC_TIMEOUT_MS: '-5' }, 'RPC_TIMEOUT_MS'],
    ['api-gateway', { AUDIT_VERIFY_TIMEOUT_MS: '2h' }, 'AUDIT_VERIFY_TIMEOUT_MS'],
    ['api-gateway', { AUDIT_VERIFY_TIMEOUT_MS: '3600001' }, 'AUDIT_VERIFY_TIMEOUT_MS'],
    ['api-gateway', { API_KEYS: '[{"id":"k"}]' }, 'API_KEYS'],
    ['api-gateway', { NODE_ENV: 'production', DEV_STAFF_KEY_ENABLED: 'true' }, 'DEV_STAFF_KEY_ENABLED'],
    ['dispatcher', { DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL'],
    ['dispatcher', { JOBS_AUTORUN_ENABLED: 'sometimes' }, 'JOBS_AUTORUN_ENABLED'],
    ['dispatcher', { WEBHOOK_MAX_RETRIES: 'five' }, 'WEBHOOK_MAX_RETRIES'],
    ['dispatcher', { WEBHOOK_SECRET_KEY: 'short' }, 'WEBHOOK_SECRET_KEY'],
    ['dispatcher', { NODE_ENV: 'production' }, 'WEBHOOK_SECRET_KEY'],
    ['audit-writer', { LOG_LEVEL: 'chatty' }, 'LOG_LEVEL'],
    ['audit-writer', { CONSUMER_BATCH_SIZE: '0' }, 'CONSUMER_BATCH_SIZE'],
  ])('%s with %j names %s', (app, env, variable) => {
    const r = run(app, env);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${app}: Invalid configuration`);
    expect(r.stderr).toMatch(new RegExp(`\\b${variable}: `));
  });
});
