import { RateLimiter } from './rate-limit';

describe('RateLimiter (fixed window per key)', () => {
  it('counts down, refuses past the limit until the window ends, and keeps keys apart', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(2, 10_000, () => now);
    expect(limiter.take('a')).toEqual({ allowed: true, limit: 2, remaining: 1, resetSeconds: 10 });
    expect(limiter.take('a')).toMatchObject({ allowed: true, remaining: 0 });
    now += 2500;
    expect(limiter.take('a')).toEqual({ allowed: false, limit: 2, remaining: 0, resetSeconds: 8 });
    expect(limiter.take('b')).toMatchObject({ allowed: true, remaining: 1 });
    now += 7500;
    expect(limiter.take('a')).toMatchObject({ allowed: true, remaining: 1, resetSeconds: 10 });
  });

  it('is off when the maximum is 0', () => {
    expect(new RateLimiter(0, 1000).enabled).toBe(false);
  });
});
