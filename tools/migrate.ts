import 'reflect-metadata';
import { DatabaseConfig, loadConfig } from '@herald/config';
import { migrateSchema } from '@herald/database';
import { auditSchema } from '../apps/audit-writer/src/migrate';
import { dispatchSchema } from '../apps/dispatcher/src/migrate';

/** `npm run migrate`: every service's migrations, idempotent and safe from several replicas at once. */
async function main(): Promise<void> {
  const config = loadConfig(DatabaseConfig, { ...process.env, CONSUMER_NAME: 'migrate' });
  for (const s of [dispatchSchema, auditSchema]) {
    const applied = await migrateSchema({ url: config.DATABASE_URL, ...s });
    process.stdout.write(`${s.schema}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`migrate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
