import { DEFAULT_EVENTS_STREAM, DEFAULT_EVENTS_SUBJECT_PREFIX, DEFAULT_RPC_SUBJECT_PREFIX, EVENT_LIMITS } from '@herald/contracts';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { IsReadableFile, natsConnectionProblems } from './nats-connection.config';
import { toNumber } from './load-config';

const NATS_URLS = /^(nats|tls|ws|wss):\/\/[^\s,]+(,\s*(nats|tls|ws|wss):\/\/[^\s,]+)*$/;
const BYTES_1K_64M = 'must be a whole number of bytes from 1024 to 67108864';
const BYTES_64K_256M = 'must be a whole number of bytes from 65536 to 268435456';
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

  /**
   * Longest event message: a longer one is recorded as rejected unread. At most NATS's own largest
   * payload (64 MiB); keep it at or below the server's max_payload (1 MiB by default).
   */
  @Transform(toNumber) @IsInt({ message: BYTES_1K_64M }) @Min(1024, { message: BYTES_1K_64M }) @Max(64 * 1024 * 1024, { message: BYTES_1K_64M })
  EVENTS_MAX_MESSAGE_BYTES = EVENT_LIMITS.maxMessageBytes;

  @Matches(SUBJECT_PREFIX, { message: 'must be a NATS subject prefix without wildcards' })
  RPC_SUBJECT_PREFIX = DEFAULT_RPC_SUBJECT_PREFIX;

  /**
   * How long a graceful shutdown (SIGTERM, SIGINT) may take before the process gives up and exits 1.
   * Keep it below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds minus preStop).
   */
  @Transform(toNumber) @IsInt({ message: 'must be a whole number of milliseconds from 1000 to 600000' }) @Min(1000) @Max(600_000)
  SHUTDOWN_TIMEOUT_MS = 25_000;

  /**
   * NATS authentication (all optional: unset connects anonymously, as `npm start`'s local server
   * expects). One of user and password, a token, or a JWT credentials file; docker/nats/nats.conf
   * has one user per service.
   */
  @IsOptional() @IsString()
  NATS_USER?: string;

  @IsOptional() @IsString()
  NATS_PASSWORD?: string;

  @IsOptional() @IsString()
  NATS_TOKEN?: string;

  /** A `.creds` file (user JWT and NKey seed), re-read at every reconnect so a rotated file is picked up. */
  @IsOptional() @IsReadableFile()
  NATS_CREDS_FILE?: string;

  /** TLS: the CA that signed the server's certificate, and a client certificate and key when the server asks for one. */
  @IsOptional() @IsReadableFile()
  NATS_TLS_CA_FILE?: string;

  @IsOptional() @IsReadableFile()
  NATS_TLS_CERT_FILE?: string;

  @IsOptional() @IsReadableFile()
  NATS_TLS_KEY_FILE?: string;

  /**
   * Where replies (RPC answers, JetStream acks and pulled messages) arrive. Unset: `_INBOX.<NATS_USER>`
   * with a user, else `_INBOX`. A prefix of its own per user lets the server allow each user only its
   * own inboxes, so no client can read the replies another one gets (docker/nats/nats.conf).
   */
  @IsOptional() @Matches(SUBJECT_PREFIX, { message: 'must be a NATS subject prefix without wildcards' })
  NATS_INBOX_PREFIX?: string;

  get natsInboxPrefix(): string {
    return this.NATS_INBOX_PREFIX ?? (this.NATS_USER ? `_INBOX.${this.NATS_USER}` : '_INBOX');
  }

  /** Settings that are valid alone but not together; subclasses add theirs to these. */
  validateCombination(): { variable: string; message: string }[] {
    return natsConnectionProblems(this);
  }

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

  /**
   * Most bytes of event bodies in one batch, and so in one statement's parameters (a catch-up after
   * an outage takes many batches, never one of hundreds of megabytes). A message larger than this
   * still goes alone.
   */
  @Transform(toNumber) @IsInt({ message: BYTES_64K_256M }) @Min(64 * 1024, { message: BYTES_64K_256M }) @Max(256 * 1024 * 1024, { message: BYTES_64K_256M })
  CONSUMER_BATCH_MAX_BYTES = 8 * 1024 * 1024;
}
