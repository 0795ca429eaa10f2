import { AuditEntries1764300000000 } from './1764300000000-audit-entries';
import { AuditChainPartitions1764400000000 } from './1764400000000-audit-chain-partitions';

/** Every migration of the audit schema, in order. Listed, not globbed, so the bundle carries them. */
export const AUDIT_MIGRATIONS = [AuditEntries1764300000000, AuditChainPartitions1764400000000];
