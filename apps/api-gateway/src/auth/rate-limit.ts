/**
 * A fixed-window request counter per API key, kept in this replica's memory (so the limit is per
 * replica: N replicas let a key make up to N × RATE_LIMIT_MAX requests per window).
 *
 * Hand-written rather than @nestjs/throttler: it is one counter per configured key (the map cannot
 * grow past the number of keys, since only authenticated keys are counted), it runs inside the
 * auth guard that already knows the key, and it costs one Map lookup on the hot path.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window ends (x-ratelimit-reset, and retry-after when refused). */
  resetSeconds: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { endsAt: number; count: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.max > 0;
  }

  take(keyId: string): RateDecision {
    const now = this.now();
    let w = this.windows.get(keyId);
    if (!w || w.endsAt <= now) {
      w = { endsAt: now + this.windowMs, count: 0 };
      this.windows.set(keyId, w);
    }
    const resetSeconds = Math.max(1, Math.ceil((w.endsAt - now) / 1000));
    if (w.count >= this.max) return { allowed: false, limit: this.max, remaining: 0, resetSeconds };
    w.count++;
    return { allowed: true, limit: this.max, remaining: this.max - w.count, resetSeconds };
  }
}
