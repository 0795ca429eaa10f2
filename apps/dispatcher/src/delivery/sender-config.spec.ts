import { ConfigError, loadConfig } from '@herald/config';
import { DispatcherConfig } from '../config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(DispatcherConfig, env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.variable}: ${p.message}`);
  }
}

describe('sender configuration', () => {
  it('defaults: 6 attempts, 30 s × 5^n backoff, 10 s timeout, 60 s lease, 1 s poll, 64 in flight, 5000 queued, Retry-After up to 1 h', () => {
    const c = loadConfig(DispatcherConfig, {});
    expect([c.WEBHOOK_MAX_RETRIES, c.WEBHOOK_RETRY_BASE_MS, c.WEBHOOK_RETRY_FACTOR, c.WEBHOOK_TIMEOUT_MS]).toEqual([5, 30_000, 5, 10_000]);
    expect([c.WEBHOOK_LEASE_MS, c.WEBHOOK_SENDER_POLL_MS, c.WEBHOOK_SENDER_CONCURRENCY, c.WEBHOOK_RETRY_AFTER_MAX_MS]).toEqual([60_000, 1000, 64, 3_600_000]);
    expect(c.WEBHOOK_SENDER_QUEUE).toBe(5000);
  });

  it.each([
    [{ WEBHOOK_LEASE_MS: 'soon' }, 'WEBHOOK_LEASE_MS: must be a whole number of milliseconds'],
    [{ WEBHOOK_LEASE_MS: '10000' }, 'WEBHOOK_LEASE_MS: must exceed WEBHOOK_TIMEOUT_MS (10000)'],
    [{ WEBHOOK_TIMEOUT_MS: '60000' }, 'WEBHOOK_LEASE_MS: must exceed WEBHOOK_TIMEOUT_MS (60000)'],
    [{ WEBHOOK_SENDER_POLL_MS: '5' }, 'WEBHOOK_SENDER_POLL_MS: '],
    [{ WEBHOOK_SENDER_POLL_MS: '1.5' }, 'WEBHOOK_SENDER_POLL_MS: must be a whole number of milliseconds from 10 to 60000'],
    [{ WEBHOOK_SENDER_CONCURRENCY: '0' }, 'WEBHOOK_SENDER_CONCURRENCY: '],
    [{ WEBHOOK_SENDER_CONCURRENCY: 'many' }, 'WEBHOOK_SENDER_CONCURRENCY: must be a whole number from 1 to 1000'],
    [{ WEBHOOK_SENDER_QUEUE: '-1' }, 'WEBHOOK_SENDER_QUEUE: '],
    [{ WEBHOOK_SENDER_QUEUE: 'lots' }, 'WEBHOOK_SENDER_QUEUE: must be a whole number from 0 to 100000'],
    [{ WEBHOOK_RETRY_AFTER_MAX_MS: '-1' }, 'WEBHOOK_RETRY_AFTER_MAX_MS: '],
    [{ WEBHOOK_RETRY_BASE_MS: '0' }, 'WEBHOOK_RETRY_BASE_MS: '],
    [{ WEBHOOK_RETRY_FACTOR: '0.5' }, 'WEBHOOK_RETRY_FACTOR: '],
  ])('%j is refused: %s', (env, expected) => {
    expect(problemsOf(env).join('\n')).toContain(expected);
  });

  it('a lease longer than the timeout by more than a second is accepted', () => {
    expect(problemsOf({ WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_LEASE_MS: '5000' })).toEqual([]);
  });
});
