import { DEFAULT_EVENTS_STREAM, DEFAULT_EVENTS_SUBJECT_PREFIX, DEFAULT_RPC_SUBJECT_PREFIX } from '@herald/contracts';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsString, Matches, Max, Min } from 'class-validator';
import { toNumber } from './load-config';

const NATS_URLS = /^(nats|tls|ws|wss):\/\/[^\s,]+(,\s*(nats|tls|ws|wss):\/\/[^\s,]+)*$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Variables every Herald service reads (SPEC 5). Each app extends this with its own. */
export class BaseConfig {
  @IsIn(['development', 'production', 'test'], { message: 'must be development, production or test' })
  NODE_ENV: 'development' | 'production' | 'test' = 'development';

  @Matches(NATS_URLS, { message: 'must be nats:// URLs separated by commas' })
  NATS_URL = 'nats://127.0.0.1:4222';

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'must be a pino level (fatal, error, warn, info, debug, trace, silent)' })
  LOG_LEVEL = 'info';

  @Transform(toNumber) @IsInt({ message: 'must be a port number' }) @Min(0) @Max(65535)
  PORT = 0;

  /** Name of the JetStream stream that carries domain events. */
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'must be a JetStream stream name (letters, digits, _ -)' })
  EVENTS_STREAM = DEFAULT_EVENTS_STREAM;

  @Matches(SUBJECT_PREFIX, { message: 'must be a NATS subject prefix without wildcards' })
  EVENTS_SUBJECT_PREFIX = DEFAULT_EVENTS_SUBJECT_PREFIX;

  @Transform(toNumber) @IsInt({ message: 'must be a whole number of seconds' }) @Min(60)
  EVENTS_MAX_AGE_SECONDS = 7 * 24 * 3600;

  @Transform(toNumber) @IsInt({ message: 'must be a whole number of seconds' }) @Min(1)
  EVENTS_DUPLICATE_WINDOW_SECONDS = 120;

  @Transform(toNumber) @IsInt({ message: 'must be 1, 3 or 5' }) @IsIn([1, 3, 5], { message: 'must be 1, 3 or 5' })
  EVENTS_REPLICAS = 1;

  @Matches(SUBJECT_PREFIX, { message: 'must be a NATS subject prefix without wildcards' })
  RPC_SUBJECT_PREFIX = DEFAULT_RPC_SUBJECT_PREFIX;

  /**
   * How long a graceful shutdown (SIGTERM, SIGINT) may take before the process gives up and exits 1.
   * Keep it below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds minus preStop).
   */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds from 1000 to 600000' }) @Min(1000) @Max(600_000)
  SHUTDOWN_TIMEOUT_MS = 25_000;

  get natsServers(): string[] {
    return this.NATS_URL.split(',').map((s) => s.trim());
  }

  get isProduction(): boolean {
    return this.NODE_ENV === 'production';
  }
}

/** Services that own a Postgres schema. */
export class DatabaseConfig extends BaseConfig {
  @IsString()
  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'must be a postgres:// URL' })
  DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/herald';

  /** Durable consumer name; replicas of one service share it. */
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'must be a consumer name (letters, digits, _ -)' })
  CONSUMER_NAME = '';

  @Transform(toNumber) @IsInt({ message: 'must be a whole number' }) @Min(1) @Max(5000)
  CONSUMER_BATCH_SIZE = 500;
}
