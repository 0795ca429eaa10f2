import { BaseConfig, toBoolean, toNumber } from '@herald/config';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Max, Min } from 'class-validator';

export class GatewayConfig extends BaseConfig {
  override PORT = 4000;

  /** Path of a JSON file of keys, reloaded when it changes (a mounted Kubernetes Secret). */
  @IsOptional() @IsString()
  API_KEYS_FILE?: string;

  /** The same JSON array given inline. */
  @IsOptional() @IsString()
  API_KEYS?: string;

  /** `dev-staff-key` (`*:*`, organization `default`); on by default outside production, refused in production. */
  @Transform(toBoolean) @IsOptional() @IsBoolean({ message: 'must be true or false' })
  DEV_STAFF_KEY_ENABLED?: boolean;

  /** How long the gateway waits for a service before answering 503. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(100) @Max(60_000)
  RPC_TIMEOUT_MS = 5000;

  /** How long `GET /api/audit/verify` waits for the audit-writer to walk the chain before 503. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(100) @Max(3_600_000)
  AUDIT_VERIFY_TIMEOUT_MS = 120_000;

  /** Requests a key may make per RATE_LIMIT_WINDOW_MS; 0 turns the limit off. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number' }) @Min(0)
  RATE_LIMIT_MAX = 1200;

  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(100)
  RATE_LIMIT_WINDOW_MS = 60_000;

  get devStaffKeyEnabled(): boolean {
    return this.DEV_STAFF_KEY_ENABLED ?? !this.isProduction;
  }

  override validateCombination(): { variable: string; message: string }[] {
    const problems = super.validateCombination();
    if (this.isProduction && this.DEV_STAFF_KEY_ENABLED) {
      problems.push({ variable: 'DEV_STAFF_KEY_ENABLED', message: 'dev-staff-key must not be enabled when NODE_ENV=production' });
    }
    if (this.API_KEYS_FILE && this.API_KEYS) {
      problems.push({ variable: 'API_KEYS', message: 'set API_KEYS_FILE or API_KEYS, not both' });
    }
    return problems;
  }
}
