import { AUDIT_SCHEMA } from './config';
import { AUDIT_MIGRATIONS } from './migrations';

/** The audit schema and its migrations, for `npm run migrate` and the migration Job. */
export const auditSchema = { schema: AUDIT_SCHEMA, migrations: AUDIT_MIGRATIONS };
