import { decide, parseRetryAfter } from './retry-policy';

const policy = { maxRetries: 5, baseMs: 30_000, factor: 5, retryAfterMaxMs: 3_600_000 };

describe('retry policy', () => {
  it('any 2xx succeeds', () => {
    expect(decide({ statusCode: 200 }, 1, policy)).toEqual({ status: 'succeeded' });
    expect(decide({ statusCode: 204 }, 3, policy)).toEqual({ status: 'succeeded' });
  });

  it('410 Gone fails at once and marks the webhook gone', () => {
    expect(decide({ statusCode: 410 }, 1, policy)).toEqual({ status: 'failed', gone: true });
  });

  it('backs off base × factor^(n-1) within ±20 % jitter', () => {
    for (const [n, nominal] of [[1, 30_000], [2, 150_000], [3, 750_000], [4, 3_750_000], [5, 18_750_000]]) {
      expect(decide({ statusCode: 500 }, n, policy, () => 0)).toEqual({ status: 'pending', delayMs: nominal * 0.8 });
      expect(decide({ statusCode: null }, n, policy, () => 1)).toEqual({ status: 'pending', delayMs: nominal * 1.2 });
    }
  });

  it('the 6th failed attempt (5 retries) ends the run as failed', () => {
    expect(decide({ statusCode: 503 }, 6, policy)).toEqual({ status: 'failed', gone: false });
  });

  it('honours Retry-After (seconds or date) up to the cap', () => {
    expect(decide({ statusCode: 429, retryAfter: '7' }, 1, policy)).toEqual({ status: 'pending', delayMs: 7000 });
    expect(decide({ statusCode: 503, retryAfter: '999999' }, 1, policy)).toEqual({ status: 'pending', delayMs: 3_600_000 });
    const now = Date.parse('2026-11-29T10:00:00Z');
    expect(parseRetryAfter('Sun, 29 Nov 2026 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(decide({ statusCode: 503, retryAfter: 'soon' }, 1, policy, () => 0.5).status).toBe('pending');
  });
});
