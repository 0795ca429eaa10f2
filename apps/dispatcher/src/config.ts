import { DatabaseConfig, toBoolean, toNumber } from '@herald/config';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

export class DispatcherConfig extends DatabaseConfig {
  override PORT = 4001;
  override CONSUMER_NAME = 'dispatcher';

  /** 32 bytes, base64: encrypts webhook secrets at rest (AES-256-GCM). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9+/]{43}=$/, { message: 'must be 32 bytes in base64 (44 characters); make one with: openssl rand -base64 32' })
  WEBHOOK_SECRET_KEY?: string;

  /**
   * Earlier WEBHOOK_SECRET_KEYs, comma-separated: secrets stored under them still decrypt, so the key
   * can be rotated without downtime (`npm run webhook-secrets -- rotate` then re-encrypts them).
   */
  @IsOptional()
  @Matches(/^[A-Za-z0-9+/]{43}=(\s*,\s*[A-Za-z0-9+/]{43}=)*$/, { message: 'must be 32-byte base64 keys (44 characters each) separated by commas' })
  WEBHOOK_SECRET_KEYS?: string;

  /** Where development state (the generated secret key) is kept. */
  @IsString()
  DATA_DIR = '.data';

  @Transform(toBoolean) @IsBoolean({ message: 'must be true or false' })
  WEBHOOKS_ALLOW_PRIVATE_URLS = false;

  @Transform(toBoolean) @IsBoolean({ message: 'must be true or false' })
  JOBS_AUTORUN_ENABLED = true;

  @Transform(toNumber) @IsInt({ message: 'must be a whole number from 0 to 20' }) @Min(0) @Max(20)
  WEBHOOK_MAX_RETRIES = 5;

  /** First retry delay; later ones grow by WEBHOOK_RETRY_FACTOR (30 s, 2.5 min, 12.5 min, ~1 h, ~5 h). */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(1)
  WEBHOOK_RETRY_BASE_MS = 30_000;

  @Transform(toNumber) @IsNumber({}, { message: 'must be a number of at least 1' }) @Min(1)
  WEBHOOK_RETRY_FACTOR = 5;

  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(100) @Max(120_000)
  WEBHOOK_TIMEOUT_MS = 10_000;

  /** Longest wait a receiver's `Retry-After` can impose; a longer one is cut to this. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(0)
  WEBHOOK_RETRY_AFTER_MAX_MS = 3_600_000;

  /** How long a claimed delivery belongs to one sender before another replica may take it over. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(1000)
  WEBHOOK_LEASE_MS = 60_000;

  /** Fallback poll for due deliveries; NOTIFY from the intake wakes the sender at once. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds from 10 to 60000' }) @Min(10) @Max(60_000)
  WEBHOOK_SENDER_POLL_MS = 1000;

  /** Requests in flight per dispatcher process. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number from 1 to 1000' }) @Min(1) @Max(1000)
  WEBHOOK_SENDER_CONCURRENCY = 64;

  /**
   * Deliveries the intake may insert already leased to this process beyond its free slots, queued in
   * memory until a slot frees (0: only as many as there are free slots). Each is started only while
   * its lease still covers a whole attempt; one that waited too long is handed back to every sender.
   */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number from 0 to 100000' }) @Min(0) @Max(100_000)
  WEBHOOK_SENDER_QUEUE = 5000;

  override validateCombination(): { variable: string; message: string }[] {
    const problems = super.validateCombination();
    if (this.isProduction && !this.WEBHOOK_SECRET_KEY) {
      problems.push({ variable: 'WEBHOOK_SECRET_KEY', message: 'is required when NODE_ENV=production' });
    }
    if (this.isProduction && this.WEBHOOKS_ALLOW_PRIVATE_URLS) {
      problems.push({ variable: 'WEBHOOKS_ALLOW_PRIVATE_URLS', message: 'must not be true when NODE_ENV=production' });
    }
    if (this.WEBHOOK_LEASE_MS <= this.WEBHOOK_TIMEOUT_MS + 1000) {
      problems.push({ variable: 'WEBHOOK_LEASE_MS', message: `must exceed WEBHOOK_TIMEOUT_MS (${this.WEBHOOK_TIMEOUT_MS}) by more than 1000, or a slow attempt could be sent twice` });
    }
    return problems;
  }
}

export const DISPATCH_SCHEMA = 'dispatch';
