import { AuditEntries1764300000000 } from './1764300000000-audit-entries';

/** Every migration of the audit schema, in order. Listed, not globbed, so the bundle carries them. */
export const AUDIT_MIGRATIONS = [AuditEntries1764300000000];
