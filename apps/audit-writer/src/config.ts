import { DatabaseConfig, toNumber } from '@herald/config';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';

export class AuditWriterConfig extends DatabaseConfig {
  override PORT = 4002;
  override CONSUMER_NAME = 'audit-writer';

  /** How long a received event may stay unacknowledged before JetStream hands it to another replica. */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds' }) @Min(1000, { message: 'must be at least 1000 (ms)' }) @Max(3_600_000, { message: 'must be at most 3600000 (ms)' })
  CONSUMER_ACK_WAIT_MS = 30_000;
}

export const AUDIT_SCHEMA = 'audit';
