import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig } from '@herald/config';
import { AuditWriterConfig } from '../../apps/audit-writer/src/config';

describe('audit-writer settings', () => {
  it.each([['999'], ['3600001'], ['soon'], ['1.5']])('CONSUMER_ACK_WAIT_MS=%s stops the process naming the variable', (value) => {
    const r = spawnSync(process.execPath, [join(__dirname, '../../dist/apps/audit-writer/main.js')], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1', CONSUMER_ACK_WAIT_MS: value },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('audit-writer: Invalid configuration');
    expect(r.stderr).toMatch(/\bCONSUMER_ACK_WAIT_MS: must be/);
  });

  it('CONSUMER_ACK_WAIT_MS defaults to 30 s and accepts whole milliseconds from 1000 to 3600000', () => {
    expect(loadConfig(AuditWriterConfig, {}).CONSUMER_ACK_WAIT_MS).toBe(30_000);
    expect(loadConfig(AuditWriterConfig, { CONSUMER_ACK_WAIT_MS: '1000' }).CONSUMER_ACK_WAIT_MS).toBe(1000);
    expect(loadConfig(AuditWriterConfig, { CONSUMER_ACK_WAIT_MS: '3600000' }).CONSUMER_ACK_WAIT_MS).toBe(3_600_000);
  });
});
