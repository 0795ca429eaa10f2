import { DatabaseConfig } from '@herald/config';

export class AuditWriterConfig extends DatabaseConfig {
  override PORT = 4002;
  override CONSUMER_NAME = 'audit-writer';
}

export const AUDIT_SCHEMA = 'audit';
