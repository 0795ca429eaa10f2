/** What to do after an attempt: stop (succeeded or failed for good) or try again at a time. */
export type Verdict = { status: 'succeeded' } | { status: 'failed'; gone: boolean } | { status: 'pending'; delayMs: number };

export interface RetryPolicyOptions {
  /** Retries after the first attempt (SPEC: 5, so 6 attempts in all). */
  maxRetries: number;
  baseMs: number;
  factor: number;
  retryAfterMaxMs: number;
}

export interface AttemptOutcome {
  /** HTTP status, or null when no response came (timeout, connection error, refused address). */
  statusCode: number | null;
  /** The response's `Retry-After`, when it had one. */
  retryAfter?: string | null;
}

/** ±20 %: spreads retries of many deliveries that failed together, so they do not return together. */
const JITTER = 0.2;

/**
 * Exponential backoff with jitter: the n-th retry waits base × factor^(n-1) ± 20 %, or what the
 * receiver's Retry-After asks for, up to retryAfterMaxMs. `attemptInRun` is 1 for the first attempt
 * of a run (a manual retry starts a new run with a fresh budget).
 */
export function decide(outcome: AttemptOutcome, attemptInRun: number, o: RetryPolicyOptions, random: () => number = Math.random, now = Date.now()): Verdict {
  const code = outcome.statusCode;
  if (code !== null && code >= 200 && code < 300) return { status: 'succeeded' };
  if (code === 410) return { status: 'failed', gone: true };
  if (attemptInRun > o.maxRetries) return { status: 'failed', gone: false };
  const asked = parseRetryAfter(outcome.retryAfter, now);
  if (asked !== undefined) return { status: 'pending', delayMs: Math.min(asked, o.retryAfterMaxMs) };
  const nominal = o.baseMs * o.factor ** (attemptInRun - 1);
  return { status: 'pending', delayMs: Math.round(nominal * (1 - JITTER + 2 * JITTER * random())) };
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3), in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
