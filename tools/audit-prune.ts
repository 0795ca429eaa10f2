import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { EventPublisher, busOptionsFrom, openBus } from '@herald/bus';
import { rangeBound } from '@herald/contracts';
import { loadConfig } from '@herald/config';
import { dataSourceOptions, inTransaction } from '@herald/database';
import { DataSource } from 'typeorm';
import { AUDIT_SCHEMA, AuditWriterConfig } from '../apps/audit-writer/src/config';
import { AUDIT_MIGRATIONS } from '../apps/audit-writer/src/migrations';
import { publishPrunes, pruneBefore } from '../apps/audit-writer/src/retention/prune';

const USAGE = `Usage: npm run audit:prune -- --before <date>
  Drops the audit entries recorded before <date> (ISO 8601), a whole month at a time: every monthly
  partition that ends on or before <date>. The prune is recorded (audit.prunes), published as an
  audit.prune event, and the hash chain is verified from the pruned position on.
  Reads DATABASE_URL, NATS_URL, EVENTS_STREAM and EVENTS_SUBJECT_PREFIX like the audit-writer.
`;

async function main(argv: string[]): Promise<number> {
  let values: { before?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { before: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`audit-prune: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const before = values.before === undefined ? null : rangeBound(values.before, 'from');
  if (!before) {
    process.stderr.write(`audit-prune: --before must be an ISO 8601 date or date-time, got ${values.before === undefined ? 'nothing' : JSON.stringify(values.before)}\n${USAGE}`);
    return 2;
  }
  if (before.getTime() > Date.now()) {
    process.stderr.write(`audit-prune: --before ${before.toISOString()} is in the future; only the past can be pruned\n`);
    return 2;
  }
  const config = loadConfig(AuditWriterConfig);
  const ds = new DataSource(dataSourceOptions({ url: config.DATABASE_URL, schema: AUDIT_SCHEMA, migrations: AUDIT_MIGRATIONS, poolSize: 2, applicationName: 'herald-audit-prune' }));
  await ds.initialize();
  const bus = await openBus(busOptionsFrom(config, 'audit-prune'));
  try {
    const result = await inTransaction(ds, (q) => pruneBefore(q, before));
    process.stdout.write(
      result.partitions.length
        ? `audit-prune: dropped ${result.partitions.join(', ')} (${result.entries} entries recorded before ${result.before}); prune ${result.id}\n`
        : `audit-prune: no partition ends on or before ${result.before}; prune ${result.id} recorded\n`,
    );
    await inTransaction(ds, (q) => publishPrunes(q, new EventPublisher(bus.js, config.EVENTS_SUBJECT_PREFIX), 'audit-prune'));
    process.stdout.write(`audit-prune: published ${result.eventId} (audit.prune)\n`);
    return 0;
  } finally {
    await bus.nc.drain().catch(() => undefined);
    await ds.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`audit-prune: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
