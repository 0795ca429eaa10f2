import { DISPATCH_SCHEMA } from './config';
import { DISPATCH_MIGRATIONS } from './migrations';

/** The dispatch schema and its migrations, for `npm run migrate` and the migration Job. */
export const dispatchSchema = { schema: DISPATCH_SCHEMA, migrations: DISPATCH_MIGRATIONS };
